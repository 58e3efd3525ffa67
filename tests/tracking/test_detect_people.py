"""`maskwatch detect` on videos: track ids, voted labels, person lines, stats CSV, blurred output."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from shared.model_store import ModelStore
from shared.schemas import FrameResult, PersonRecord
from tests.conftest import REPO
from tests.core.test_detect_command import maskwatch
from tests.tracking.synthetic import Walker, write_clip


@pytest.fixture(scope="module")
def walkers_clip(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """60 frames at 25 fps: a masked face walks right in frames 0-49, a bare face walks left in 15-59.

    Both faces are from the validation split of the shipped classifier (not seen in its training)."""
    masked = cv2.imread(str(shared_data / "faces/fm12k/with_mask/fm12k_with_mask_00001.jpg"))
    bare = cv2.imread(str(shared_data / "faces/fm12k/without_mask/fm12k_without_mask_00006.jpg"))
    return write_clip(tmp_path_factory.mktemp("clip") / "walkers.mp4", [
        Walker(masked, start=0, end=50, x=10, y=40, dx=8),
        Walker(bare, start=15, end=60, x=520, y=200, dx=-8, dy=-1),
    ], frames=60)


def read_lines(path: Path) -> tuple[list[FrameResult], list[PersonRecord]]:
    frames, people = [], []
    for line in path.read_text().splitlines():
        data = json.loads(line)
        if data["type"] == "frame":
            frames.append(FrameResult.model_validate(data))
        else:
            assert data["type"] == "person", data
            people.append(PersonRecord.model_validate(data))
    return frames, people


def _detail(image: np.ndarray) -> float:
    return float(np.abs(np.diff(image.astype(int), axis=1)).mean())


def test_video_gives_tracked_frames_people_stats_and_blurred_output(tiny_store, walkers_clip, tmp_path) -> None:
    out = maskwatch(tiny_store, "detect", str(walkers_clip), "--json", str(tmp_path / "o.jsonl"),
                    "--stats", str(tmp_path / "stats.csv"), "--stats-period", "1",
                    "--save-dir", str(tmp_path / "saved"), "--blur-faces", "--no-progress")
    assert out.returncode == 0, out.stderr
    frames, people = read_lines(tmp_path / "o.jsonl")
    assert len(frames) == 60
    # Two people, each one id from its first to its last frame; the record agrees with the frame lines.
    assert len(people) == 2, people
    a, b = sorted(people, key=lambda p: p.first_seen)
    assert (a.first_seen, b.first_seen) == (0.0, pytest.approx(0.6, abs=0.05))
    assert a.last_seen == pytest.approx(1.96, abs=0.05) and b.last_seen == pytest.approx(2.36, abs=0.05)
    for person in (a, b):
        seen = [(f, face) for f in frames for face in f.faces if face.track_id == person.track_id]
        assert len(seen) == person.frames >= 44
        assert seen[-1][1].track_label == person.label
        assert all(face.track_label is not None for _, face in seen)
    assert all(face.track_id in (a.track_id, b.track_id) for f in frames for face in f.faces)
    assert "people: 2" in out.stderr

    with open(tmp_path / "stats.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["camera"], r["period_start"], r["people"]) for r in rows] == [
        (str(walkers_clip), "0.0", "2"), (str(walkers_clip), "1.0", "0"), (str(walkers_clip), "2.0", "0")]
    labels = Counter(p.label for p in people)
    assert {k: int(rows[0][k]) for k in ("with_mask", "without_mask", "mask_incorrect")} == {
        k: labels.get(k, 0) for k in ("with_mask", "without_mask", "mask_incorrect")}

    # Annotated video: faces blurred (fine detail gone) but the boxes are drawn.
    cap = cv2.VideoCapture(str(tmp_path / "saved" / "walkers.mp4"))
    ok, annotated = cap.read()
    cap.release()
    original = cv2.VideoCapture(str(walkers_clip)).read()[1]
    x1, y1, x2, y2 = frames[0].faces[0].box
    inner = (slice(y1 + 8, y2 - 8), slice(x1 + 8, x2 - 8))
    assert ok and _detail(annotated[inner]) < 0.5 * _detail(original[inner])
    # Best-face crop of each person, blurred too.
    crops = sorted((tmp_path / "saved" / "people").glob("*.jpg"))
    assert [c.name for c in crops] == sorted(f"walkers-person{p.track_id}-{p.label}.jpg" for p in people)


def test_shipped_model_gives_each_walker_its_label(walkers_clip, tmp_path) -> None:
    store = ModelStore(REPO / "models")
    if store.current("classifier") is None:
        pytest.skip("no promoted classifier in models/")
    out = maskwatch(store, "detect", str(walkers_clip), "--json", str(tmp_path / "o.jsonl"), "--stride", "2",
                    "--no-progress")
    assert out.returncode == 0, out.stderr
    _, people = read_lines(tmp_path / "o.jsonl")
    assert [p.label for p in sorted(people, key=lambda p: p.first_seen)] == ["with_mask", "without_mask"]


def test_person_lines_on_stdout_and_no_tracking_for_photos(tiny_store, walkers_clip, scene_photos, tmp_path) -> None:
    out = maskwatch(tiny_store, "detect", str(walkers_clip), str(scene_photos[4]), "--json", "-",
                    "--stride", "2", "--no-progress")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert Counter(line["type"] for line in lines) == {"frame": 31, "person": 2}
    photo = lines[-1]
    assert photo["type"] == "frame" and photo["faces"]
    assert all("track_id" not in face for face in photo["faces"])


def test_bad_stats_period_is_refused(tiny_store, walkers_clip, tmp_path) -> None:
    out = maskwatch(tiny_store, "detect", str(walkers_clip), "--stats", str(tmp_path / "s.csv"),
                    "--stats-period", "0")
    assert out.returncode == 2 and "--stats-period" in out.stderr and "Traceback" not in out.stderr


def test_airport_clip_people_and_stats_agree(tiny_store, airport_video, tmp_path) -> None:
    out = maskwatch(tiny_store, "detect", str(airport_video), "--json", str(tmp_path / "o.jsonl"),
                    "--stats", str(tmp_path / "s.csv"), "--stats-period", "15", "--stride", "5",
                    "--no-progress", timeout=300)
    assert out.returncode == 0, out.stderr
    frames, people = read_lines(tmp_path / "o.jsonl")
    assert len(frames) == 133 and len(people) >= 5
    tracked = [face for f in frames for face in f.faces if face.track_id is not None]
    # every face that can start a track (score >= the tracker's activation score, 0.6) is tracked; the stream
    # policy's lower detector threshold adds faces that only continue tracks (or stay untracked)
    strong = [face for f in frames for face in f.faces if face.score >= 0.6]
    assert sum(face.track_id is not None for face in strong) > 0.9 * len(strong)
    for person in people:
        assert person.frames >= 3 and 0 <= person.first_seen <= person.last_seen <= 26.5
    # Voting steadies the labels: far fewer changes along each track than the per-frame labels make.
    by_track: dict[int, list] = {}
    for face in tracked:
        by_track.setdefault(face.track_id, []).append(face)
    raw = sum(a.label != b.label for faces in by_track.values() for a, b in zip(faces, faces[1:]))
    voted = sum(a.track_label != b.track_label for faces in by_track.values() for a, b in zip(faces, faces[1:]))
    assert raw > 20 and voted < raw / 4, (raw, voted)
    with open(tmp_path / "s.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["period_start"] for r in rows] == ["0.0", "15.0"]
    assert sum(int(r["people"]) for r in rows) == len(people)
    for r in rows:
        assert int(r["people"]) == sum(int(r[k]) for k in ("with_mask", "without_mask", "mask_incorrect"))


def test_unwritable_stats_file_is_one_error_line(tiny_store, walkers_clip, tmp_path) -> None:
    out = maskwatch(tiny_store, "detect", str(walkers_clip), "--stats", str(tmp_path / "no" / "s.csv"),
                    "--stride", "6", "--no-progress")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "cannot write statistics" in out.stderr and "people: " in out.stderr
