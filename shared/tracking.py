"""Face tracking with ByteTrack (Roboflow `trackers`, the successor of `supervision`'s ByteTrack).

Public API:
- `FaceTracker(fps, lost_after_s=1.0, activation_score=0.6, match_iou=0.1)`
- `FaceTracker.update(faces) -> list[int | None]`: the track id of each face, in input order
  (None for a low-score face that matches no track).
- `FaceTracker.active_ids() -> set[int]`: ids of tracks still alive (seen, or lost for less than
  `lost_after_s`); an id that leaves this set has ended.
- `FaceTracker.reset()`: forget every track (ids keep counting up).
- `FaceTracker.state() -> dict` / `.restore(state)`: the tracks (Kalman state, hits, age) and the next
  id as plain JSON-able values, so another process can continue exactly where this one stopped.

Ids are small integers counted per tracker (1, 2, ...), so each camera numbers its own people.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import supervision as sv
from trackers import ByteTrackTracker
from trackers.core.bytetrack.kalman_box_tracker import ByteTrackKalmanBoxTracker

from shared.schemas import Face


class _ByteTrack(ByteTrackTracker):
    """ByteTrack that confirms a track on its first detection and numbers ids per instance.

    Stock ByteTrack reports new tracks as -1 until their second hit and numbers ids with one
    process-wide counter; here every confident face gets an id at once (too-short tracks are
    filtered later, by their length) and each camera's ids start at 1.
    """

    def __init__(self, ids: _Ids, **options: float) -> None:
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
            track.tracker_id = self._ids.take()
            det.tracker_id = np.array([track.tracker_id])


class _Ids:
    """The per-tracker id counter (a plain int, so it can be saved and restored)."""

    def __init__(self, next_id: int = 1) -> None:
        self.next_id = next_id

    def take(self) -> int:
        """The next id."""
        self.next_id += 1
        return self.next_id - 1


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
        self._ids = _Ids()
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

    def state(self) -> dict[str, Any]:
        """Everything `restore` needs to continue tracking: the next id and each track's Kalman state."""
        return {
            "next_id": self._ids.next_id,
            "tracks": [
                {"id": int(t.tracker_id), "hits": int(t.number_of_successful_updates),
                 "since_update": int(t.time_since_update), "x": t.state.ravel().tolist(), "P": t.P.ravel().tolist()}
                for t in self._tracker.tracks
            ],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a `state()` (of a tracker with the same settings); raises ValueError if malformed."""
        try:
            ids = _Ids(int(state["next_id"]))
            tracks = []
            for saved in state["tracks"]:
                x = np.asarray(saved["x"], dtype=np.float32).reshape(8, 1)
                track = ByteTrackKalmanBoxTracker(x[:4, 0])
                track.state, track.P = x, np.asarray(saved["P"], dtype=np.float32).reshape(8, 8)
                track.tracker_id = int(saved["id"])
                track.number_of_successful_updates = int(saved["hits"])
                track.time_since_update = int(saved["since_update"])
                tracks.append(track)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed tracker state: {exc}") from None
        self._ids = ids
        self._tracker = _ByteTrack(self._ids, **self._options)
        self._tracker.tracks = tracks
