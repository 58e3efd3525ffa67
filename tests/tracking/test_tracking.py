"""FaceTracker: ByteTrack ids that stay with a face, on generated boxes, a generated clip and a real clip."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv

from shared.face_detector import RetinaFaceDetector
from shared.model_store import ModelStore
from shared.schemas import Face
from shared.sources import classify, iter_frames
from shared.tracking import FaceTracker
from tests.conftest import REPO
from tests.tracking.synthetic import Walker, face, write_clip


def test_a_moving_face_keeps_one_id() -> None:
    tracker = FaceTracker(fps=25)
    ids = [tracker.update([face(20 + 6 * i, 100 + 2 * i)])[0] for i in range(90)]
    assert ids[0] is not None
    assert set(ids) == {ids[0]}


def test_two_faces_get_distinct_stable_ids_in_input_order() -> None:
    tracker = FaceTracker(fps=25)
    first = tracker.update([face(20, 50), face(500, 250)])
    assert None not in first and first[0] != first[1]
    for i in range(1, 60):
        # Reversed input order: ids must follow the faces, not the list positions.
        ids = tracker.update([face(500 - 5 * i, 250), face(20 + 5 * i, 50)])
        assert ids == [first[1], first[0]]


def test_short_gap_keeps_the_id_long_gap_ends_the_track() -> None:
    tracker = FaceTracker(fps=10, lost_after_s=1.0)
    (a,) = tracker.update([face(100, 100)])
    for _ in range(5):  # half a second unseen
        assert tracker.update([]) == []
    assert a in tracker.active_ids()
    assert tracker.update([face(100, 100)]) == [a]
    for _ in range(11):  # more than a second unseen
        tracker.update([])
    assert a not in tracker.active_ids()
    (b,) = tracker.update([face(100, 100)])
    assert b is not None and b != a


def test_lost_time_follows_the_frame_rate() -> None:
    for fps, gap, alive in ((5, 4, True), (5, 6, False), (50, 40, True), (50, 60, False)):
        tracker = FaceTracker(fps=fps, lost_after_s=1.0)
        (a,) = tracker.update([face(100, 100)])
        for _ in range(gap):
            tracker.update([])
        assert (a in tracker.active_ids()) is alive, (fps, gap)


def test_low_score_faces_continue_tracks_but_start_none() -> None:
    tracker = FaceTracker(fps=25, activation_score=0.6)
    (a,) = tracker.update([face(100, 100, score=0.9)])
    assert tracker.update([face(104, 100, score=0.52), face(400, 100, score=0.52)]) == [a, None]


def test_ids_count_per_tracker_from_one() -> None:
    first, second = FaceTracker(fps=25), FaceTracker(fps=25)
    assert first.update([face(10, 10), face(300, 10)]) == [1, 2]
    assert second.update([face(10, 10)]) == [1]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="fps"):
        FaceTracker(fps=0)
    with pytest.raises(ValueError, match="lost_after_s"):
        FaceTracker(fps=25, lost_after_s=0)


@pytest.fixture(scope="module")
def detector() -> RetinaFaceDetector:
    return RetinaFaceDetector.from_version(ModelStore(REPO / "models").load("detector"))


def _faces(detector: RetinaFaceDetector, image: np.ndarray) -> list[Face]:
    found = detector.detect(image)
    return [Face(box=[int(round(v)) for v in box], score=float(score), label="with_mask", confidence=1.0,
                 probs={}) for box, score in zip(found.boxes, found.scores)]


def _track_clip(detector: RetinaFaceDetector, path: Path, limit: int) -> dict[int, list[tuple[int, list[int]]]]:
    """Run detection + tracking over a clip; return, per track id, its (frame, box) list."""
    tracker, tracks = None, defaultdict(list)
    for item in iter_frames(classify(str(path))):
        if item.index >= limit:
            break
        tracker = tracker or FaceTracker(fps=item.fps)
        faces = _faces(detector, item.image)
        for f, track_id in zip(faces, tracker.update(faces)):
            if track_id is not None:
                tracks[track_id].append((item.index, f.box))
    return dict(tracks)


def _max_jump_iou(track: list[tuple[int, list[int]]]) -> float:
    """Lowest IoU between consecutive boxes of one track (an id switch shows as ~0)."""
    boxes = np.array([box for _, box in track], dtype=float)
    return float(min(sv.box_iou_batch(boxes[i : i + 1], boxes[i + 1 : i + 2])[0, 0]
                     for i in range(len(boxes) - 1)))


def test_generated_clip_one_id_per_walking_face(tmp_path: Path, shared_data: Path, detector) -> None:
    masked = cv2.imread(str(shared_data / "faces/fm12k/with_mask/fm12k_with_mask_00001.jpg"))
    bare = cv2.imread(str(shared_data / "faces/fm12k/without_mask/fm12k_without_mask_00002.jpg"))
    clip = write_clip(tmp_path / "walk.mp4", [
        Walker(masked, start=0, end=50, x=10, y=40, dx=8),
        Walker(bare, start=15, end=60, x=520, y=200, dx=-8, dy=-1),
    ], frames=60)
    tracks = _track_clip(detector, clip, limit=60)
    long_tracks = {tid: t for tid, t in tracks.items() if len(t) >= 10}
    assert len(long_tracks) == 2, {tid: len(t) for tid, t in tracks.items()}
    spans = sorted((t[0][0], t[-1][0], len(t)) for t in long_tracks.values())
    # Each walker is one id from (about) its first to its last frame.
    assert spans[0][0] <= 1 and spans[0][1] >= 48 and spans[0][2] >= 45
    assert 14 <= spans[1][0] <= 17 and spans[1][1] >= 58 and spans[1][2] >= 40
    assert all(_max_jump_iou(t) > 0.5 for t in long_tracks.values())


def test_real_crowd_clip_ids_follow_faces(airport_video: Path, detector) -> None:
    tracks = _track_clip(detector, airport_video, limit=50)
    detections = sum(len(t) for t in tracks.values())
    long_tracks = [t for t in tracks.values() if len(t) >= 10]
    assert detections > 200  # a crowd: several faces per frame
    assert sum(len(t) for t in long_tracks) > 0.8 * detections  # most faces are in lasting tracks
    for track in long_tracks:
        frames = [index for index, _ in track]
        assert frames == sorted(set(frames))  # one box per id and frame
        assert _max_jump_iou(track) > 0.3  # the id never jumps to another face
