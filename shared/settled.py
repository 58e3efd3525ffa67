"""Classify each person a few times, not every frame: the settled tracks of a camera and the faces they cover.

A track whose label is settled (enough agreeing votes, the last classified face agreeing too) lends its
label to the faces that continue it, so the classifier runs on them only every `RECHECK_FRAMES` frames the
detector answered for the camera (an overloaded worker that skips frames does not re-check more often), at
the latest every `RECHECK_MAX_FRAMES` frames captured, or when the face has grown (a better view). A re-check
that disagrees unsettles the track, and its faces are classified on every frame again until the vote settles,
so a mask pulled down is still seen.

In `maskwatch detect` the people tracker is in the same process; in the stack the tracker publishes each
camera's `SettledTracks` to Redis (`keys.settled_tracks`, short-lived) and the detector workers read them.
State that is missing, unreadable or too old for the frame at hand lends nothing: every face is classified.

Public API:
- `SettledTrack`, `SettledTracks` (pydantic; `.to_json()`, `SettledTracks.parse(raw) -> SettledTracks | None`).
- `FrameHints(tracks, frame)`: `.match(boxes) -> list[SettledTrack | None]`, the track each detected box may
  take its label from (None: classify it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ValidationError

from shared.zones import box_iou

RECHECK_FRAMES = 10  # a settled track's face is classified again after this many answered frames
RECHECK_MAX_FRAMES = 30  # ... and at the latest after this many frames (captured or read: the frame numbers)
GROWTH = 1.5  # ... or when its area grew by this factor since it was last classified
MATCH_IOU = 0.4  # a detected face continues a track when its box overlaps the track's last box this much
MAX_AGE_FRAMES = 15  # state older than this (in frames) lends nothing
TTL_MS = 3000  # the Redis copy expires when its tracker stops publishing


class SettledTrack(BaseModel):
    """One track whose label is settled, as of the tracker's latest frame."""

    id: int
    box: list[int]  # the face's box in the tracker's latest frame
    label: str
    confidence: float  # the label's share of the track's vote evidence
    probs: dict[str, float]
    checked: int  # the last frame whose face of this track was classified
    area: int  # that face's box area
    seen: int = 0  # frames of this track answered since then (its faces took this label)


class SettledTracks(BaseModel):
    """The settled tracks of one camera after its tracker's latest frame."""

    frame: int
    tracks: list[SettledTrack]

    def to_json(self) -> str:
        """Compact JSON (the Redis value)."""
        return self.model_dump_json()

    @classmethod
    def parse(cls, raw: bytes | str | None) -> SettledTracks | None:
        """The state from its JSON, or None when it is absent or unreadable (then everything is classified)."""
        if not raw:
            return None
        try:
            return cls.model_validate_json(raw)
        except ValidationError:
            return None


@dataclass(frozen=True)
class FrameHints:
    """The settled tracks a frame's faces may take their labels from."""

    tracks: SettledTracks
    frame: int | None

    def match(self, boxes: np.ndarray) -> list[SettledTrack | None]:
        """For each detected box (N x 4), the settled track it continues without needing a re-check, else None."""
        out: list[SettledTrack | None] = [None] * len(boxes)
        if self.frame is None or not self.tracks.tracks or not 0 < self.frame - self.tracks.frame <= MAX_AGE_FRAMES:
            return out
        known = np.array([t.box for t in self.tracks.tracks], dtype=np.float32).reshape(-1, 4)
        overlap = box_iou(np.asarray(boxes, dtype=np.float32).reshape(-1, 4), known)
        pairs = sorted(((overlap[i, j], i, j) for i, j in zip(*np.nonzero(overlap >= MATCH_IOU))), reverse=True)
        faces_done: set[int] = set()
        tracks_done: set[int] = set()
        for _overlap, i, j in pairs:  # greedy one-to-one matching, best overlap first
            if i in faces_done or j in tracks_done:
                continue
            faces_done.add(i)
            tracks_done.add(j)
            track = self.tracks.tracks[j]
            x1, y1, x2, y2 = boxes[i]
            due = track.seen + 1 >= RECHECK_FRAMES or self.frame - track.checked >= RECHECK_MAX_FRAMES
            if not due and (x2 - x1) * (y2 - y1) <= GROWTH * track.area:
                out[int(i)] = track
        return out

