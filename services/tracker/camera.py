"""One owned camera inside a tracker: reorder buffer, people tracker, observers, and their checkpoint.

Public API:
- `encode_checkpoint(state) -> bytes` / `decode_checkpoint(raw) -> dict`: the stored form (zlib JSON).
- `Observer`: what the tracker calls per camera (see services/tracker/__init__.py).
- `Outcome`: what one step produced - the messages for the results stream in order, the latest tracked
  frame, alert events, counts.
- `CameraTracker(camera, people, observers, window_s, quiet_after_s, entrances=None)`: `.add(detection, now)`,
  `.step(watermark, now, everything=False) -> Outcome`, `.flush() -> Outcome`, `.checkpoint() -> dict`,
  `.restore(checkpoint)`, `.read_from` (the detections-stream position to read after), `.set_geometry(geometry,
  problem)` (a live edit of the camera's zones and lines; with a problem the applied ones stay).
  With an `EntranceCounter` (shared/entrances.py), faces in ignore zones are dropped before tracking, faces of
  static tracks are marked, person records get their zones and static flag and are followed by their line
  crossings; the occupancy, static spots and applied geometry go to their Redis keys (`Outcome.keys`).
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from services.tracker.reorder import ReorderBuffer
from shared import keys
from shared.detections import Detection, StreamId, stream_id
from shared.entrances import EntranceCounter, end_tracks, track_frame
from shared.people import PeopleTracker
from shared.schemas import FrameResult, LineCrossing, PersonRecord
from shared.zones import CameraGeometry

log = logging.getLogger(__name__)
CHECKPOINT_VERSION = 1
START = StreamId(0, 0)


def encode_checkpoint(state: dict[str, Any]) -> bytes:
    """A checkpoint as stored: compact JSON, zlib-compressed (a third of the bytes in the append-only file). Written
    with every publish, so by orjson: 4-5x faster than the json module (benchmarks/checkpoint.py)."""
    return zlib.compress(orjson.dumps(state, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY), 1)


def decode_checkpoint(raw: bytes) -> dict[str, Any]:
    """A stored checkpoint (compressed, or plain JSON as older versions wrote it); raises ValueError."""
    try:
        text = raw if raw.lstrip().startswith(b"{") else zlib.decompress(raw)
        state = json.loads(text)
    except (zlib.error, UnicodeDecodeError) as exc:
        raise ValueError(f"not a checkpoint: {exc}") from None
    if not isinstance(state, dict):
        raise ValueError("not a checkpoint: not a JSON object")
    return state


class Observer(Protocol):
    """Called for every tracked frame (with face crops) and every person record of one camera, in order.

    Each call may return alert events (dicts); the tracker adds them to the alerts list in the same
    transaction that publishes the frame. Optional methods: `on_crossing(crossing)` (each LineCrossing, after
    its track's person record; may return alert events), `snapshot() -> JSON value` and
    `restore(value)` (saved in the camera's checkpoint, so a replica that takes over continues the
    observer's state), and `queue_writes(pipe)` (queue Redis writes on the publishing transaction).
    """

    def on_frame(self, result: FrameResult) -> Iterable[dict] | None: ...

    def on_person(self, record: PersonRecord) -> Iterable[dict] | None: ...


@dataclass
class Outcome:
    """The result of one step of one camera."""

    messages: list[FrameResult | PersonRecord | LineCrossing] = field(default_factory=list)  # results, in order
    latest: tuple[StreamId, FrameResult] | None = None  # newest tracked frame (with crops)
    events: list[dict] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)  # Redis keys to set (occupancy, static faces, geometry)
    tracked: int = 0
    late: int = 0

    def __bool__(self) -> bool:
        return bool(self.messages or self.events or self.keys)


class CameraTracker:
    """Tracks one camera's detections in frame order."""

    def __init__(self, camera: str, people: PeopleTracker, observers: Sequence[Observer], window_s: float,
                 quiet_after_s: float, entrances: EntranceCounter | None = None,
                 geometry_problem: str | None = None) -> None:
        self.camera, self.people, self.observers = camera, people, list(observers)
        self.quiet_after_s, self.entrances, self.geometry_problem = quiet_after_s, entrances, geometry_problem
        self.buffer: ReorderBuffer[Detection] = ReorderBuffer(window_s)
        self.last_read = START  # the last detections-stream entry read
        self._seen_until = START  # entries up to here were handled before a takeover: skip the handled ones
        self._late: list[Detection] = []
        self.saved_checkpoint = b""  # the checkpoint last written (encoded): an unchanged one is not written again

    @property
    def read_from(self) -> StreamId:
        """Read the detections stream after this entry id."""
        return self.last_read

    def add(self, detection: Detection, now: float) -> None:
        """Take one detections-stream entry (in stream order)."""
        self.last_read = max(self.last_read, detection.entry_id)
        released = self.buffer.released
        if detection.entry_id <= self._seen_until and released is not None and detection.frame_id <= released:
            return  # tracked, or published as late, before the checkpoint this tracker resumed from
        if not self.buffer.add(detection.frame_id, detection, now):
            self._late.append(detection)

    def step(self, watermark: StreamId | None, now: float, everything: bool = False) -> Outcome:
        """Track the frames that are ready, publish late ones untracked, end the tracks of a quiet camera."""
        out = Outcome()
        for late in self._late:
            log.debug("tracker: camera %s: frame %s arrived late; published untracked", self.camera, late.frame_id)
            out.messages.append(late.result.without_crops())
            out.late += 1
        self._late = []
        for detection in self.buffer.pop_ready(watermark, now, everything):
            self._track(detection, out)
        last_t = self.people.last_t
        if not len(self.buffer) and last_t is not None and now - last_t > self.quiet_after_s:
            self._ended(self.people.flush(), out)  # no frame can still come that would continue these tracks
        self._entrance_keys(out)
        return out

    def flush(self) -> Outcome:
        """Track everything buffered, then end every track (the last tracker stops)."""
        out = self.step(None, float("inf"), everything=True)
        self._ended(self.people.flush(), out)
        self._entrance_keys(out)
        return out

    def set_geometry(self, geometry: CameraGeometry, problem: str | None = None) -> None:
        """Apply edited zones and lines; with a `problem` keep the applied ones and publish the problem."""
        if self.entrances is None:
            return
        if problem is None:
            self.entrances.set_geometry(geometry)
        if problem != self.geometry_problem:
            self.geometry_problem = problem
            self.entrances.mark_changed("geometry")

    def checkpoint(self) -> dict[str, Any]:
        """Everything a takeover needs, as JSON-able values (written with each publish)."""
        buffered = [d.entry_id for d in self.buffer.items()]
        return {
            "version": CHECKPOINT_VERSION,
            "released": str(self.buffer.released) if self.buffer.released is not None else None,
            "last_read": str(self.last_read),
            # re-read from just before the oldest entry still buffered (those entries were not tracked yet)
            "resume_from": str(_before(min(buffered)) if buffered else self.last_read),
            "people": self.people.state(),
            "observers": [getattr(o, "snapshot", lambda: None)() for o in self.observers],
            "entrances": self.entrances.state() if self.entrances is not None else None,
        }

    def restore(self, checkpoint: dict[str, Any]) -> None:
        """Continue from a checkpoint; raises ValueError when it is unusable."""
        try:
            if checkpoint.get("version") != CHECKPOINT_VERSION:
                raise ValueError(f"unknown checkpoint version {checkpoint.get('version')!r}")
            released = checkpoint["released"]
            self.buffer.released = stream_id(released) if released is not None else None
            self._seen_until = stream_id(checkpoint["last_read"])
            self.last_read = stream_id(checkpoint["resume_from"])
            self.people.restore(checkpoint["people"])
            saved = checkpoint["observers"]
            entrances = checkpoint.get("entrances")  # absent in checkpoints of earlier versions
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed checkpoint: {exc!r}") from None
        if entrances is not None and self.entrances is not None:
            self.entrances.restore(entrances, keep_geometry=self.geometry_problem is not None)
        for observer, state in zip(self.observers, saved):
            if state is not None and hasattr(observer, "restore"):
                observer.restore(state)

    def _track(self, detection: Detection, out: Outcome) -> None:
        result = detection.result
        t = result.captured_at if result.captured_at is not None else result.time or 0.0
        tracked, ended = track_frame(self.people, self.entrances, result, t)
        for observer in self.observers:
            out.events += observer.on_frame(tracked) or []
        out.messages.append(tracked.without_crops())
        out.latest = (detection.frame_id, tracked)
        out.tracked += 1
        self._publish(ended, out)

    def _ended(self, records: list[PersonRecord], out: Outcome) -> None:
        self._publish(end_tracks(self.people, self.entrances, records), out)

    def _publish(self, messages: list[PersonRecord | LineCrossing], out: Outcome) -> None:
        for message in messages:
            for observer in self.observers:
                if isinstance(message, PersonRecord):
                    out.events += observer.on_person(message) or []
                elif hasattr(observer, "on_crossing"):
                    out.events += observer.on_crossing(message) or []
            out.messages.append(message)

    def _entrance_keys(self, out: Outcome) -> None:
        """The Redis keys of what changed: zone occupancy, static spots, the geometry applied."""
        if self.entrances is None:
            return
        changes = self.entrances.take_changes()
        now = time.time()
        if "occupancy" in changes:
            out.keys[keys.zone_occupancy(self.camera)] = _json({"time": self.people.last_t or now,
                                                                 "zones": self.entrances.occupancy})
        if "static" in changes:
            out.keys[keys.static_faces(self.camera)] = _json(self.entrances.static_faces())
        if "geometry" in changes:
            out.keys[keys.camera_geometry(self.camera)] = _json({
                **self.entrances.geometry.config.as_yaml_dict(), "problem": self.geometry_problem, "applied_at": now})


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _before(entry: StreamId) -> StreamId:
    """The id just before `entry` (XREAD reads after an id)."""
    if entry.seq > 0:
        return StreamId(entry.ms, entry.seq - 1)
    return StreamId(entry.ms - 1, 2**63 - 1) if entry.ms > 0 else START
