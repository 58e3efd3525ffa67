"""PeopleTracker + StatsAccumulator on a scripted clip: ids, voted labels, person records, stats rows."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from shared.people import PeopleTracker
from shared.schemas import FrameResult, PersonRecord
from shared.stats import CSV_COLUMNS, StatsAccumulator
from tests.tracking.synthetic import face, frame

FPS = 25.0


def scripted_frames() -> list[FrameResult]:
    """100 frames: A masked (0-59, flickers at 30), B unmasked (20-79, flickers at 40),
    a 2-frame false detection (50-51), C wearing the mask wrongly (85-99, still there at the end)."""
    frames = []
    for i in range(100):
        faces = []
        if i < 60:
            faces.append(face(10 + 4 * i, 40, "without_mask" if i == 30 else "with_mask", 0.9))
        if 20 <= i < 80:
            faces.append(face(560 - 4 * (i - 20), 220, "with_mask" if i == 40 else "without_mask", 0.85))
        if 50 <= i < 52:
            faces.append(face(300, 300, "without_mask", 0.7, size=40))
        if i >= 85:
            faces.append(face(200 + 2 * (i - 85), 150, "mask_incorrect", 0.8))
        frames.append(frame(i, faces, fps=FPS))
    return frames


def run(tracker: PeopleTracker, frames: list[FrameResult]) -> tuple[list[FrameResult], list[tuple[int, PersonRecord]]]:
    """Feed frames; return the tracked frames and (frame index when published, record) pairs."""
    out, records = [], []
    for result in frames:
        tracked, ended = tracker.update(result, result.time)
        out.append(tracked)
        records += [(result.frame, r) for r in ended]
    records += [(len(frames), r) for r in tracker.flush()]
    return out, records


def test_scripted_clip_gives_the_right_people() -> None:
    tracked, published = run(PeopleTracker("cam", FPS, lost_after_s=1.0, min_frames=3), scripted_frames())
    records = [r for _, r in published]
    assert [(r.label, r.first_seen, r.last_seen, r.frames) for r in records] == [
        ("with_mask", 0.0, 2.36, 60),
        ("without_mask", 0.8, 3.16, 60),
        ("mask_incorrect", 3.4, 3.96, 15),
    ]
    # A is published one second (25 frames) after its last frame; B and C when the clip ends.
    assert [when for when, _ in published] == [84, 100, 100]
    assert all(r.camera == "cam" and r.type == "person" for r in records)
    assert records[0].best_box == [10, 40, 70, 100]
    assert len({r.track_id for r in records}) == 3

    a_id, b_id = records[0].track_id, records[1].track_id
    for result in tracked:
        for f in result.faces:
            assert f.track_id is not None
            if f.track_id in (a_id, b_id):
                assert f.track_label == ("with_mask" if f.track_id == a_id else "without_mask")
    flicker = tracked[30].faces[0]
    assert (flicker.track_id, flicker.label, flicker.track_label) == (a_id, "without_mask", "with_mask")
    assert '"track_label":"with_mask"' in tracked[30].to_json()


def test_stats_rows_for_the_scripted_clip(tmp_path: Path) -> None:
    _, published = run(PeopleTracker("cam", FPS), scripted_frames())
    stats = StatsAccumulator(period_s=2.0)
    for _, record in published:
        stats.add_person(record)
    rows = stats.rows()
    assert [(r.period_start, r.period_end, r.people, r.with_mask, r.without_mask, r.mask_incorrect,
             r.compliance_rate) for r in rows] == [
        (0.0, 2.0, 2, 1, 1, 0, 0.5),
        (2.0, 4.0, 1, 0, 0, 1, 0.0),
    ]
    stats.observe("cam", 6.5)  # the clip went on, with nobody, until 6.5 s
    assert stats.write_csv(tmp_path / "stats.csv") == 4
    with open(tmp_path / "stats.csv", newline="") as fh:
        lines = list(csv.DictReader(fh))
    assert tuple(lines[0]) == CSV_COLUMNS
    assert [(line["period_start"], line["people"], line["compliance_rate"]) for line in lines] == [
        ("0.0", "2", "0.5"), ("2.0", "1", "0.0"), ("4.0", "0", ""), ("6.0", "0", ""),
    ]


def test_stats_split_cameras_and_list_quiet_ones() -> None:
    stats = StatsAccumulator(period_s=60, origin=1000.0)
    for t in (1000.0, 1119.0):
        stats.observe("back", t)
    for cam, label, t in (("door", "with_mask", 1010), ("door", "with_mask", 1075), ("door", "without_mask", 1079)):
        stats.add_person(PersonRecord(camera=cam, track_id=1, label=label, first_seen=t, last_seen=t + 5,
                                      frames=10, best_box=[0, 0, 1, 1]))
    rows = stats.rows()
    assert [(r.camera, r.period_start, r.people, r.compliance_rate) for r in rows] == [
        ("back", 1000.0, 0, None), ("door", 1000.0, 1, 1.0),
        ("back", 1060.0, 0, None), ("door", 1060.0, 2, 0.5),
    ]
    with pytest.raises(ValueError, match="period"):
        StatsAccumulator(period_s=0)


def test_a_gap_in_frames_ends_every_track() -> None:
    tracker = PeopleTracker("cam", FPS, lost_after_s=1.0, min_frames=3)
    for i in range(10):
        _, ended = tracker.update(frame(i, [face(100 + i, 100)]), 1000.0 + i / FPS)
        assert ended == []
    assert tracker.expire(1000.9) == []  # within a second of the last frame
    (record,) = tracker.expire(1002.0)  # the camera went quiet
    assert (record.frames, record.first_seen, record.last_seen) == (10, 1000.0, 1000.36)
    assert tracker.active_tracks == 0
    # When frames resume after a gap, update ends the old tracks by itself.
    for i in range(5):
        tracker.update(frame(i, [face(100, 100)]), 2000.0 + i / FPS)
    resumed, ended = tracker.update(frame(0, [face(100, 100)]), 2010.0)
    assert [r.frames for r in ended] == [5]
    assert resumed.faces[0].track_id not in (None, record.track_id)


def test_short_tracks_leave_no_record() -> None:
    tracker = PeopleTracker("cam", FPS, min_frames=5)
    for i in range(4):
        tracker.update(frame(i, [face(100, 100)]), i / FPS)
    assert tracker.flush() == []
    with pytest.raises(ValueError):
        PeopleTracker("cam", FPS, min_frames=0)


def test_best_face_crops_come_with_the_records() -> None:
    import numpy as np

    tracker = PeopleTracker("cam", FPS, crop_size=32)
    image = np.zeros((360, 640, 3), np.uint8)
    for i in range(6):
        image[:] = i * 10  # the crop must come from the frame with the best detection (i == 4)
        tracker.update(frame(i, [face(100, 100, score=0.99 if i == 4 else 0.9)]), i / FPS, image)
    (record,) = tracker.flush()
    crop = tracker.ended_crops[record.track_id]
    assert crop.shape == (32, 32, 3) and int(crop[16, 16, 0]) == 40
    tracker.update(frame(7, []), 10.0, image)
    assert tracker.ended_crops == {}


def test_a_late_frame_is_left_untracked() -> None:
    tracker = PeopleTracker("cam", FPS)
    for i in range(3):
        tracker.update(frame(i, [face(100, 100)]), 10.0 + i / FPS)
    late, ended = tracker.update(frame(1, [face(100, 100)]), 10.0)
    assert ended == [] and late.faces[0].track_id is None
    assert tracker.update(frame(3, [face(100, 100)]), 10.12)[0].faces[0].track_id == 1
