"""People, not frames: tracks faces of one camera or video, votes a label per track, reports ended tracks.

Public API:
- `PeopleTracker(camera, fps, lost_after_s=1.0, min_frames=3, switch_margin=1.5, activation_score=0.6,
  crop_size=None)`
- `.update(result, t, image=None) -> (result with track_id/track_label on every tracked face, ended
  PersonRecords)`; `t` is the frame's time in seconds (video position, or unix capture time for cameras).
  With `crop_size` set and the frame's `image` given, each track keeps a crop of its best face, and
  `.ended_crops` maps the track ids of the records just returned to those crops (BGR, square).
- `.expire(t) -> list[PersonRecord]`: end every track when no frame came for `lost_after_s` (a camera
  that stopped); `update` does the same by itself when frames resume after such a gap.
- `.flush() -> list[PersonRecord]`: end every track (end of a video or stream).
- `.state() -> dict` / `.restore(state)`: open tracks, votes, ByteTrack state and clock as JSON-able
  values (the tracker service checkpoints them to Redis so another replica can take over).
- `.last_t`: the time of the last frame tracked (None before the first, and after a flush).
- `.track_ids`: ids of the tracks alive now.
- `.settled() -> SettledTracks`: the tracks of the last frame whose label is settled, for classify-once
  (shared/settled.py).

A frame marked `unchanged` (motion gating: the face detector did not run) gets the previous frame's
faces: ByteTrack is updated with their boxes again (tracks in view stay alive, lost ones keep ageing), and
nothing is voted or counted again. Faces marked
`reused` (their label came from their settled track) count as seen but do not vote.

Faces that carry a `crop` (base64 JPEG, set by the detector service) give their track's best crop; the
record of the track gets it as its `thumbnail`, shrunk to at most 96 px.

A track shorter than `min_frames` frames (a passing false detection) ends without a record. A record's
label is the track label at its last frame; `best_box` is the box of its highest-scoring detection
(ties: the larger box). A frame older than the last one tracked (late) is returned untracked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.crops import crop_face, shrink_jpeg
from shared.schemas import Face, FrameResult, PersonRecord
from shared.settled import SettledTrack, SettledTracks
from shared.tracking import FaceTracker
from shared.voting import LabelVote


@dataclass
class _Track:
    """What is known about one live track."""

    vote: LabelVote
    first_seen: float
    last_seen: float
    best_box: list[int]
    best_key: tuple[float, int] = (-1.0, -1)
    best_crop: np.ndarray | None = None
    best_jpeg: str | None = None  # the best face's `crop` (base64 JPEG) when the faces carry crops
    frames: int = 0
    checked_frame: int | None = None  # the last frame whose face was classified (not reused)
    checked_area: int = 0
    checked_label: str | None = None
    since_checked: int = 0  # frames since then whose face took the track's label (reused)

    def add(self, face: Face, t: float, image: np.ndarray | None, crop_size: int | None,
            frame: int | None = None) -> str:
        """Count one frame of this track; return the track label."""
        self.frames += 1
        self.last_seen = t
        if face.reused and self.vote.label is not None:  # its label came from this track: no vote of its own
            self.since_checked += 1
            self._keep_best(face, image, crop_size)
            return self.vote.label
        self.checked_frame, self.checked_label, self.since_checked = frame, face.label, 0
        self.checked_area = (face.box[2] - face.box[0]) * (face.box[3] - face.box[1])
        self._keep_best(face, image, crop_size)
        return self.vote.add(face.label, face.confidence)

    def settled(self, min_votes: int, min_share: float) -> bool:
        """Enough votes, a clear leader, and the last classified face agreeing with it."""
        total = sum(self.vote.evidence.values())
        return (self.vote.frames >= min_votes and self.checked_frame is not None and total > 0
                and self.checked_label == self.vote.label
                and self.vote.support(self.vote.label) / total >= min_share)

    def _keep_best(self, face: Face, image: np.ndarray | None, crop_size: int | None) -> None:
        x1, y1, x2, y2 = face.box
        key = (face.score, (x2 - x1) * (y2 - y1))
        if key > self.best_key:
            self.best_box, self.best_key = list(face.box), key
            if face.crop is not None:
                self.best_jpeg = face.crop
            if image is not None and crop_size:
                self.best_crop = crop_face(image, face.box, crop_size)
        elif self.best_jpeg is None and face.crop is not None:
            self.best_jpeg = face.crop  # resumed from a checkpoint (no images): a picture until a better face

    def state(self) -> dict[str, Any]:
        """This track as JSON-able values, without images (no `best_crop`, no `best_jpeg`): checkpoints stay small."""
        return {"label": self.vote.label, "votes": self.vote.frames, "evidence": dict(self.vote.evidence),
                "first_seen": self.first_seen, "last_seen": self.last_seen, "best_box": self.best_box,
                "best_key": list(self.best_key), "frames": self.frames,
                "checked": [self.checked_frame, self.checked_area, self.checked_label, self.since_checked]}

    @classmethod
    def from_state(cls, state: dict[str, Any], switch_margin: float) -> _Track:
        """The track `state()` described."""
        vote = LabelVote(switch_margin, label=state["label"], frames=int(state["votes"]))
        vote.evidence.update({str(k): float(v) for k, v in state["evidence"].items()})
        score, area = state["best_key"]
        checked_frame, checked_area, checked_label, *since = state.get("checked", [None, 0, None])  # older ones
        return cls(vote, first_seen=float(state["first_seen"]), last_seen=float(state["last_seen"]),
                   best_box=[int(v) for v in state["best_box"]], best_key=(float(score), int(area)),
                   best_jpeg=state.get("best_jpeg"), frames=int(state["frames"]),  # older checkpoints had it
                   checked_frame=None if checked_frame is None else int(checked_frame),
                   checked_area=int(checked_area), checked_label=checked_label,
                   since_checked=int(since[0]) if since else 0)


class PeopleTracker:
    """Per-camera tracking + voting that turns frame results into person records."""

    def __init__(
        self,
        camera: str,
        fps: float,
        lost_after_s: float = 1.0,
        min_frames: int = 3,
        switch_margin: float = 1.5,
        activation_score: float = 0.6,
        crop_size: int | None = None,
    ) -> None:
        if min_frames < 1:
            raise ValueError(f"min_frames must be at least 1, got {min_frames}")
        self.camera, self.lost_after_s, self.min_frames = camera, lost_after_s, min_frames
        self.switch_margin, self.crop_size = switch_margin, crop_size
        self.ended_crops: dict[int, np.ndarray] = {}
        self._tracker = FaceTracker(fps, lost_after_s, activation_score)
        self._tracks: dict[int, _Track] = {}
        self._last_t: float | None = None
        self._last_faces: list[Face] = []  # the last frame's tracked faces (without crops)
        self._last_frame: int | None = None

    def update(self, result: FrameResult, t: float,
               image: np.ndarray | None = None) -> tuple[FrameResult, list[PersonRecord]]:
        """Track one frame; return it with track ids and labels, plus the records of tracks that ended."""
        self.ended_crops = {}
        if self._last_t is not None and t < self._last_t:
            return result, []  # a late frame (claimed from a dead worker): too late to track
        ended = self.expire(t)
        self._last_t = t
        self._last_frame = result.frame
        hold = result.unchanged  # no motion: the previous frame's faces again, tracked but not voted or counted
        detected = [f.model_copy(update={"track_id": None, "track_label": None}) for f in self._last_faces] \
            if hold else result.faces
        ids = self._tracker.update(detected)  # on a hold too: ByteTrack's lost-frame count keeps time
        faces = []
        for face, track_id in zip(detected, ids):
            track = self._tracks.get(track_id) if track_id is not None else None
            if track is None and (track_id is None or hold):
                faces.append(face)
                continue
            if track is None:
                track = self._tracks[track_id] = _Track(
                    LabelVote(self.switch_margin), first_seen=t, last_seen=t, best_box=list(face.box)
                )
            if hold:
                track.last_seen = t
                label = track.vote.label
            else:
                label = track.add(face, t, image, self.crop_size, result.frame)
            faces.append(face.model_copy(update={"track_id": track_id, "track_label": label}))
        alive = self._tracker.active_ids()
        ended += self._end([tid for tid in self._tracks if tid not in alive])
        self._last_faces = [face.model_copy(update={"crop": None}) if face.crop else face for face in faces]
        return result.model_copy(update={"faces": faces}), ended

    def settled(self, min_votes: int = 3, min_share: float = 0.75) -> SettledTracks:
        """The last frame's tracks whose label is settled (`min_votes` votes, the label's share of the
        evidence at least `min_share`, the last classified face agreeing)."""
        tracks = []
        for face in self._last_faces:
            track = self._tracks.get(face.track_id) if face.track_id is not None else None
            if track is None or not track.settled(min_votes, min_share):
                continue
            total = sum(track.vote.evidence.values())
            probs = {label: round(value / total, 4) for label, value in track.vote.evidence.items()}
            tracks.append(SettledTrack(id=face.track_id, box=face.box, label=track.vote.label,
                                       confidence=probs[track.vote.label], probs=probs,
                                       checked=track.checked_frame, area=track.checked_area,
                                       seen=track.since_checked))
        return SettledTracks(frame=self._last_frame if self._last_frame is not None else -1, tracks=tracks)

    def expire(self, t: float) -> list[PersonRecord]:
        """End every track if the last frame came more than `lost_after_s` before `t`."""
        if self._last_t is None or t - self._last_t <= self.lost_after_s:
            return []
        return self.flush()

    def flush(self) -> list[PersonRecord]:
        """End every track now (end of a video or stream)."""
        self.ended_crops, self._last_t, self._last_faces = {}, None, []
        ended = self._end(list(self._tracks))
        self._tracker.reset()
        return ended

    @property
    def last_t(self) -> float | None:
        """Time of the last frame tracked (None before the first and after a flush)."""
        return self._last_t

    def state(self) -> dict[str, Any]:
        """Open tracks, ByteTrack state and clock, as JSON-able values."""
        return {"last_t": self._last_t, "tracker": self._tracker.state(),
                "tracks": {str(tid): track.state() for tid, track in self._tracks.items()},
                "last_frame": self._last_frame, "last_faces": [face.model_dump(mode="json", exclude_defaults=True)
                                                               for face in self._last_faces]}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a `state()` of a tracker with the same settings; raises ValueError if malformed."""
        try:
            tracks = {int(tid): _Track.from_state(saved, self.switch_margin) for tid, saved in state["tracks"].items()}
            last_t = None if state["last_t"] is None else float(state["last_t"])
            tracker_state = state["tracker"]
            last_faces = [Face.model_validate(face) for face in state.get("last_faces", [])]  # older checkpoints
            last_frame = state.get("last_frame")
            last_frame = None if last_frame is None else int(last_frame)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"malformed people-tracker state: {exc!r}") from None
        self._tracker.restore(tracker_state)
        self._tracks, self._last_t = tracks, last_t
        self._last_faces, self._last_frame = last_faces, last_frame

    @property
    def active_tracks(self) -> int:
        """Number of tracks currently alive."""
        return len(self._tracks)

    @property
    def track_ids(self) -> set[int]:
        """Ids of the tracks currently alive."""
        return set(self._tracks)

    def _end(self, track_ids: list[int]) -> list[PersonRecord]:
        records = []
        for tid in sorted(track_ids):
            track = self._tracks.pop(tid)
            if track.frames < self.min_frames:
                continue
            if track.best_crop is not None:
                self.ended_crops[tid] = track.best_crop
            records.append(
                PersonRecord(
                    camera=self.camera, track_id=tid, label=track.vote.label,
                    first_seen=round(track.first_seen, 3), last_seen=round(track.last_seen, 3),
                    frames=track.frames, best_box=track.best_box,
                    thumbnail=shrink_jpeg(track.best_jpeg) if track.best_jpeg else None,
                )
            )
        return records
