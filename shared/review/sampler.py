"""The review sampler: a tracker observer that queues at most one face crop per person worth a human look.

Per open track it keeps the frame labels, the mean probabilities, and two crops: the least confident face
and the best-scoring one. When the person record arrives (`on_person`), the person is queued if
- `low_confidence`: the track's mean classifier confidence is below `review.low_confidence`;
- `split_votes`: its majority label holds fewer than `review.split_share` of its frames;
- `label_flips`: its per-frame label changed at least `review.flips` times;
- `sample`: it is the Nth person of its label on this camera (`review.sample_every`), so every class
  keeps getting examples, confident ones included.
An unsure person gets the least confident crop, a sampled one the best-scoring crop. Faces without a track
or without a `crop` (the detector sets it) are not used.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from shared.review.config import ReviewConfig
from shared.review.queue import ReviewItem, ReviewQueue
from shared.schemas import Face, FrameResult, PersonRecord

log = logging.getLogger(__name__)
MAX_OPEN = 1024  # tracks followed at most per camera (the oldest are forgotten)


@dataclass
class _TrackNotes:
    frames: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    flips: int = 0
    last_label: str | None = None
    confidence_sum: float = 0.0
    probs_sum: dict[str, float] = field(default_factory=dict)
    unsure: tuple[float, str, float | None] | None = None  # (confidence, crop, time) of the least confident face
    best: tuple[float, str, float | None] | None = None  # (detector score, crop, time) of the best face
    model_version: str | None = None

    def add(self, face: Face, t: float | None, model_version: str | None) -> None:
        self.frames += 1
        self.labels[face.label] = self.labels.get(face.label, 0) + 1
        if self.last_label is not None and face.label != self.last_label:
            self.flips += 1
        self.last_label = face.label
        self.confidence_sum += face.confidence
        for name, p in face.probs.items():
            self.probs_sum[name] = self.probs_sum.get(name, 0.0) + p
        self.model_version = model_version or self.model_version
        if face.crop is not None:
            if self.unsure is None or face.confidence < self.unsure[0]:
                self.unsure = (face.confidence, face.crop, t)
            if self.best is None or face.score > self.best[0]:
                self.best = (face.score, face.crop, t)


class ReviewSampler:
    """Observer of one camera: `on_frame(tracked result with crops)`, `on_person(record)`; queues ReviewItems.

    `transactional=True` (the tracker service): items wait for `queue_writes(pipe)`, which the tracker calls
    on its publishing transaction, so they are written exactly once; otherwise they are written at once.
    """

    def __init__(self, config: ReviewConfig, camera: str, client: redis.Redis, transactional: bool = False) -> None:
        self.config, self.camera, self.transactional = config, camera, transactional
        self.queue = ReviewQueue(client, config)
        self._tracks: dict[int, _TrackNotes] = {}
        self._seen: Counter = Counter()  # people per label (for `sample_every`)
        self._pending: list[ReviewItem] = []

    def on_frame(self, result: FrameResult) -> list[dict]:
        """Take note of every tracked face."""
        if not self.config.enabled:
            return []
        t = result.captured_at if result.captured_at is not None else result.time
        for face in result.faces:
            if face.track_id is None:
                continue
            notes = self._tracks.get(face.track_id)
            if notes is None:
                if len(self._tracks) >= MAX_OPEN:
                    self._tracks.pop(next(iter(self._tracks)))
                notes = self._tracks[face.track_id] = _TrackNotes()
            notes.add(face, t, result.model_version)
        return []

    def on_person(self, record: PersonRecord) -> list[dict]:
        """Queue the person's crop if the track is worth a look."""
        notes = self._tracks.pop(record.track_id, None)
        if not self.config.enabled or notes is None or notes.frames < self.config.min_frames or notes.best is None:
            return []
        reasons = self.reasons(notes, record.label)
        if not reasons:
            return []
        _, crop, t = notes.best if reasons == ["sample"] else notes.unsure
        probs = {k: round(v / notes.frames, 4) for k, v in notes.probs_sum.items()}
        item = ReviewItem(source=self.camera, seen_at=t, track_id=record.track_id, model_version=notes.model_version,
                          model_label=record.label, confidence=round(notes.confidence_sum / notes.frames, 4),
                          probs=probs, reasons=reasons, crop=crop)
        if self.transactional:
            self._pending.append(item)
        else:
            self.queue.add(item)
        return []

    def reasons(self, notes: _TrackNotes, label: str) -> list[str]:
        """Why a finished track is worth a look (empty: it is not)."""
        cfg = self.config
        reasons = []
        if notes.confidence_sum / notes.frames < cfg.low_confidence:
            reasons.append("low_confidence")
        if max(notes.labels.values()) / notes.frames < cfg.split_share:
            reasons.append("split_votes")
        if notes.flips >= cfg.flips:
            reasons.append("label_flips")
        self._seen[label] += 1
        if cfg.sample_every and self._seen[label] % cfg.sample_every == 0:
            reasons.append("sample")
        return reasons

    def queue_writes(self, pipe: redis.client.Pipeline) -> None:
        """Queue the items found since the last call on the tracker's publishing transaction."""
        for item in self._pending:
            self.queue.add(item, pipe)
        self._pending = []

    def snapshot(self) -> dict[str, Any]:
        """Open tracks' notes and the per-label counts, for the tracker's checkpoint."""
        return {"tracks": {str(k): asdict(v) for k, v in self._tracks.items()}, "seen": dict(self._seen)}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a `snapshot()`."""
        try:
            tracks = {}
            for key, saved in state["tracks"].items():
                notes = _TrackNotes(**saved)
                notes.unsure = tuple(notes.unsure) if notes.unsure else None
                notes.best = tuple(notes.best) if notes.best else None
                tracks[int(key)] = notes
            seen = Counter({str(k): int(v) for k, v in state["seen"].items()})
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("review sampler of %s: unusable saved state (%r); starting afresh", self.camera, exc)
            return
        self._tracks, self._seen = tracks, seen
