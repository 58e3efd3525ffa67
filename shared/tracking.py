"""Face tracking with ByteTrack (Roboflow `trackers`, the successor of `supervision`'s ByteTrack).

Public API:
- `FaceTracker(fps, lost_after_s=1.0, activation_score=0.6, match_iou=0.1)`
- `FaceTracker.update(faces) -> list[int | None]`: the track id of each face, in input order
  (None for a low-score face that matches no track).
- `FaceTracker.active_ids() -> set[int]`: ids of tracks still alive (seen, or lost for less than
  `lost_after_s`); an id that leaves this set has ended.
- `FaceTracker.reset()`: forget every track (ids keep counting up).

Ids are small integers counted per tracker (1, 2, ...), so each camera numbers its own people.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence

import numpy as np
import supervision as sv
from trackers import ByteTrackTracker

from shared.schemas import Face


class _ByteTrack(ByteTrackTracker):
    """ByteTrack that confirms a track on its first detection and numbers ids per instance.

    Stock ByteTrack reports new tracks as -1 until their second hit and numbers ids with one
    process-wide counter; here every confident face gets an id at once (too-short tracks are
    filtered later, by their length) and each camera's ids start at 1.
    """

    def __init__(self, ids: Iterator[int], **options: float) -> None:
        super().__init__(minimum_consecutive_frames=1, **options)
        self._ids = ids

    def _spawn_new_trackers(
        self,
        detections: sv.Detections,
        detection_boxes: np.ndarray,
        unmatched_detections: set[int],
        updated_detections: list[sv.Detections],
    ) -> None:
        n_tracks, n_out = len(self.tracks), len(updated_detections)
        super()._spawn_new_trackers(detections, detection_boxes, unmatched_detections, updated_detections)
        # The parent appends one new track and one output detection per spawned face, in step.
        for track, det in zip(self.tracks[n_tracks:], updated_detections[n_out:]):
            track.tracker_id = next(self._ids)
            det.tracker_id = np.array([track.tracker_id])


class FaceTracker:
    """Assigns stable track ids to the faces of consecutive frames of one video or camera."""

    def __init__(
        self,
        fps: float,
        lost_after_s: float = 1.0,
        activation_score: float = 0.6,
        match_iou: float = 0.1,
    ) -> None:
        if not 0 < fps < math.inf:
            raise ValueError(f"fps must be positive, got {fps}")
        if not 0 < lost_after_s < math.inf:
            raise ValueError(f"lost_after_s must be positive, got {lost_after_s}")
        self.fps, self.lost_after_s = float(fps), float(lost_after_s)
        frame_rate = max(1.0, self.fps)
        lost_frames = max(1, round(self.fps * self.lost_after_s))
        self._options = {
            # ByteTrack drops a track unseen for int(frame_rate / 30 * lost_track_buffer) frames.
            "lost_track_buffer": (lost_frames + 0.5) * 30.0 / frame_rate,
            "frame_rate": frame_rate,
            "track_activation_threshold": activation_score,
            "high_conf_det_threshold": activation_score,
            "minimum_iou_threshold": match_iou,
        }
        self._ids = itertools.count(1)
        self._tracker = _ByteTrack(self._ids, **self._options)

    def update(self, faces: Sequence[Face]) -> list[int | None]:
        """Track one frame's faces; returns each face's track id (None: untracked low-score face)."""
        n = len(faces)
        detections = sv.Detections(
            xyxy=np.array([f.box for f in faces], dtype=np.float32).reshape(n, 4),
            confidence=np.array([f.score for f in faces], dtype=np.float32),
            data={"face_index": np.arange(n)},
        )
        tracked = self._tracker.update(detections)
        ids: list[int | None] = [None] * n
        if len(tracked):
            for index, track_id in zip(tracked.data["face_index"], tracked.tracker_id):
                ids[int(index)] = int(track_id) if track_id >= 0 else None
        return ids

    def active_ids(self) -> set[int]:
        """Ids of the tracks the tracker still keeps (recently seen or briefly lost)."""
        return {int(t.tracker_id) for t in self._tracker.tracks if t.tracker_id >= 0}

    def reset(self) -> None:
        """Drop every track; later faces get new ids."""
        self._tracker = _ByteTrack(self._ids, **self._options)
