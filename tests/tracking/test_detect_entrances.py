"""`maskwatch detect --config --camera`: a camera's zones, lines and motion gating applied to a file, crossings in
--json, --stats."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import yaml

from tests.core.test_detect_command import maskwatch
from tests.media import write_clip
from tests.tracking.test_detect_people import walkers_clip  # noqa: F401 - the shared clip fixture

MIDDLE = {"name": "middle", "points": [[0.5, 0.02], [0.5, 0.98]], "in": "right"}


def cameras(path: Path, **door_a) -> Path:
    path.write_text(yaml.safe_dump({"cameras": [{"id": "door-a", "url": "rtsp://cam/1", **door_a},
                                                {"id": "hall", "url": "rtsp://cam/2"}]}))
    return path


def test_lines_of_the_camera_count_entries_and_exits_of_a_file(tiny_store, walkers_clip, tmp_path) -> None:  # noqa: F811
    config = cameras(tmp_path / "cams.yaml", lines=[MIDDLE])
    out = maskwatch(tiny_store, "detect", str(walkers_clip), "--config", str(config), "--camera", "door-a",
                    "--json", str(tmp_path / "o.jsonl"), "--stats", str(tmp_path / "s.csv"), "--stats-period", "1",
                    "--no-progress")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    people = {p["track_id"]: p for p in lines if p["type"] == "person"}
    crossings = [c for c in lines if c["type"] == "crossing"]
    # the masked face walks right (an entry), the bare face walks left (an exit), each once
    assert sorted(c["direction"] for c in crossings) == ["in", "out"] and len(people) == 2
    for crossing in crossings:
        assert crossing["line"] == "middle" and crossing["label"] == people[crossing["track_id"]]["label"]
        assert lines.index(crossing) > lines.index(people[crossing["track_id"]])
    entry = next(c for c in crossings if c["direction"] == "in")
    assert entry["time"] < 1.5  # about frame 32 of 25 fps (centre 65 px + 8 px a frame reaches 320 px)
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert sum(int(r["entries"]) for r in rows) == 1 and sum(int(r["exits"]) for r in rows) == 1
    entry_row = next(r for r in rows if int(r["entries"]))
    assert float(entry_row["period_start"]) <= entry["time"] < float(entry_row["period_end"])
    assert int(entry_row[f"entries_{entry['label']}"]) == 1
    assert "entries: 1" in out.stderr and "exits: 1" in out.stderr


def test_an_ignore_zone_hides_a_face_from_a_file(tiny_store, walkers_clip, tmp_path) -> None:  # noqa: F811
    lower = {"name": "floor", "points": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]], "ignore": True}  # the bare face's way
    config = cameras(tmp_path / "cams.yaml", zones=[lower])
    out = maskwatch(tiny_store, "detect", str(walkers_clip), "--config", str(config), "--camera", "door-a",
                    "--json", "-", "--no-progress")
    assert out.returncode == 0, out.stderr
    people = [json.loads(line) for line in out.stdout.splitlines() if '"type":"person"' in line]
    assert len(people) == 1 and people[0]["first_seen"] == 0  # only the masked face, up in the frame


def test_bad_config_or_camera_is_one_error_line(tiny_store, walkers_clip, tmp_path) -> None:  # noqa: F811
    bad = cameras(tmp_path / "bad.yaml", lines=[{**MIDDLE, "points": [[0.5, 0.5], [0.5, 0.5]]}])
    for args, message in [
        (["--config", str(bad), "--camera", "door-a"], "lines[0] (middle): points: line has zero length"),
        (["--config", str(bad), "--camera", "nope"], "no camera 'nope' (cameras: door-a, hall)"),
        (["--config", str(bad)], "name the camera with --camera (one of: door-a, hall)"),
        (["--camera", "door-a"], "--camera needs --config"),
    ]:
        out = maskwatch(tiny_store, "detect", str(walkers_clip), *args, "--no-progress")
        assert out.returncode == 2 and message in out.stderr, out.stderr
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_the_cameras_motion_settings_gate_a_file_and_full_turns_them_off(tiny_store, scene_photos, tmp_path) -> None:
    still = write_clip(tmp_path / "still.mp4", cv2.imread(str(scene_photos[4])), frames=30, fps=10, shift=0)

    def unchanged(*args: str) -> int:
        out = maskwatch(tiny_store, "detect", str(still), *args, "--json", "-", "--no-progress")
        assert out.returncode == 0, out.stderr
        frames = [json.loads(line) for line in out.stdout.splitlines() if '"type":"frame"' in line]
        assert len(frames) == 30
        return sum(bool(f.get("unchanged")) for f in frames)

    # defaults: a full frame first and every 2 s (frames 0 and 20 of 3 s at 10 fps)
    assert unchanged() == 28
    often = cameras(tmp_path / "often.yaml", motion={"keyframe_s": 0.5})  # frames 0, 5, 10, ... 25
    assert unchanged("--config", str(often), "--camera", "door-a") == 24
    off = cameras(tmp_path / "off.yaml", motion={"enabled": False})
    assert unchanged("--config", str(off), "--camera", "door-a") == 0
    assert unchanged("--config", str(often), "--camera", "door-a", "--full") == 0


def test_change_in_the_cameras_ignore_zone_is_no_motion_for_a_file(tiny_store, scene_photos, tmp_path) -> None:
    image = cv2.imread(str(scene_photos[4]))
    clip = tmp_path / "clock.mp4"
    h, w = image.shape[:2]
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (w, h))
    for i in range(20):  # a blinking "clock" in the top-left corner, the rest still
        frame = image.copy()
        frame[: h // 5, : w // 5] = 255 * (i % 2)
        writer.write(frame)
    writer.release()
    corner = {"name": "clock", "points": [[0, 0], [0.25, 0], [0.25, 0.25], [0, 0.25]], "ignore": True}

    def unchanged(config: Path) -> int:
        out = maskwatch(tiny_store, "detect", str(clip), "--config", str(config), "--camera", "door-a",
                        "--json", "-", "--no-progress")
        assert out.returncode == 0, out.stderr
        return sum('"unchanged":true' in line for line in out.stdout.splitlines())

    assert unchanged(cameras(tmp_path / "plain.yaml")) == 0  # the blinking is motion
    assert unchanged(cameras(tmp_path / "clock.yaml", zones=[corner])) == 19  # all but the first frame
