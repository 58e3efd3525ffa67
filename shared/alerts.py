"""Alerts: rules over tracked people, and webhooks that never stall detection.

Public API:
- `AlertsConfig` (the `alerts:` section of the config) with `WebhookConfig` entries: a webhook with
  no `cameras` is global, one with `cameras` only gets those cameras' events.
- `AlertDispatcher(config, sinks=())`: `.on_frame(result)` and `.on_person(record)` apply the rules and
  return the events they raised; every event goes to each sink (e.g. the Redis list of recent alerts)
  and is queued for the matching webhooks. `.flush()` sends the people alerts still being grouped;
  `.close(timeout_s)` flushes, delivers what it can, then stops.
  `.snapshot(camera) -> dict` / `.restore(camera, state)`: one camera's rule state as JSON-able values
  (the tracker service checkpoints it, so a replica that takes a camera over does not alert twice).
  Event ids are derived from what the event is about (camera, kind, track, time), so the same event
  raised again after such a takeover has the same id.
- `WebhookSender(retries, backoff_s, timeout_s, queue_size)`: POSTs JSON on a background thread from a
  bounded queue; failures are retried with exponential backoff (other events keep flowing meanwhile);
  a full queue drops the event with a log line instead of blocking the caller.

Rules (times are the frames' own times, so a video gives the same alerts as a live camera):
- person: once per track whose track label is one of `labels` for `confirm_frames` frames, or, for a
  shorter track, when its person record ends with such a label (with the record's face thumbnail).
- cooldown (grouping): after a camera's person alert, the next unmasked people of that camera within
  `cooldown_s` seconds raise no alert each; at the camera's first frame after the cooldown they go out
  as one `people` alert ("12 unmasked people in 5 min") and a new cooldown starts; a camera with nobody
  new in a cooldown alerts at once for the next person. `cooldown_s: 0` alerts for every person.
- unmasked_share: when, over the person records of the last `window_s` seconds of one camera (at least
  `min_people` of them), the share with one of `labels` exceeds `unmasked_share`; it fires again only
  after the share has dropped back to the threshold or below.
- rules (`EntranceRule`, limited to a line or a zone): a `line` alert for each crossing of that line in
  `direction` by a person with one of the rule's labels (`.on_crossing`), a `zone` alert for each person
  record that was in that zone with one of them; both carry the track's voted label, raised when the
  track ends, one per person (no cooldown grouping).
Static faces (posters, screens: `Face.static`, `PersonRecord.static`) never raise an alert.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import logging
import queue
import threading
import time
import uuid
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.schemas import FrameResult, LineCrossing, PersonRecord
from shared.sources import redact_url

log = logging.getLogger(__name__)

Event = dict[str, Any]
RETRY_STATUSES = frozenset({408, 425, 429})
MAX_BACKOFF_S = 60.0
MAX_TRACKED = 4096  # per-track alert states kept at most (oldest forgotten first)
MAX_GROUP_THUMBNAILS = 6  # face thumbnails a grouped people alert carries


class WebhookConfig(BaseModel):
    """One webhook: global, or only for the listed cameras."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    cameras: list[str] | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parsed = httpx.URL(value) if "://" in value else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"webhook url must be http:// or https:// with a host, got {redact_url(value)!r}")
        return value

    def wants(self, camera: str) -> bool:
        """Whether this webhook receives events of `camera`."""
        return self.cameras is None or camera in self.cameras


class EntranceRule(BaseModel):
    """An alert limited to a counting line or a zone, e.g. "unmasked person entered through door"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64)
    line: str | None = None
    zone: str | None = None
    direction: Literal["in", "out", "any"] = Field("in", description="lines only: which crossings alert")
    labels: list[str] | None = Field(None, description="default: the alerts section's labels")
    cameras: list[str] | None = Field(None, description="default: every camera with that line or zone")

    @model_validator(mode="after")
    def _one_place(self) -> EntranceRule:
        if (self.line is None) == (self.zone is None):
            raise ValueError(f"rule {self.name!r}: give exactly one of line or zone")
        return self

    def applies(self, camera: str, label: str) -> bool:
        """Whether a person of `camera` with `label` is this rule's concern (given the default labels)."""
        return (self.cameras is None or camera in self.cameras) and label in (self.labels or ())


class AlertsConfig(BaseModel):
    """The `alerts:` section: webhooks, rules and delivery settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhooks: list[WebhookConfig] = Field(default_factory=list)
    rules: list[EntranceRule] = Field(default_factory=list, description="alerts limited to a line or a zone")
    labels: list[str] = Field(default_factory=lambda: ["without_mask", "mask_incorrect"])
    confirm_frames: int = Field(default=5, ge=1)
    window_s: float = Field(default=60.0, gt=0)
    unmasked_share: float | None = Field(default=0.5, ge=0, le=1)
    min_people: int = Field(default=5, ge=1)
    cooldown_s: float = Field(default=300.0, ge=0)
    retries: int = Field(default=5, ge=0)
    backoff_s: float = Field(default=1.0, gt=0)
    timeout_s: float = Field(default=5.0, gt=0)
    queue_size: int = Field(default=1000, ge=1)


@dataclass
class _Cooldown:
    """A camera's person alerts held back until `due`, to go out as one `people` alert."""

    since: float
    due: float
    people: list[Event] = field(default_factory=list)


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    url: str = field(compare=False)
    event: Event = field(compare=False)
    attempt: int = field(default=0, compare=False)


class WebhookSender:
    """Posts events to webhook URLs from a background thread; `submit` never blocks."""

    def __init__(self, retries: int = 5, backoff_s: float = 1.0, timeout_s: float = 5.0,
                 queue_size: int = 1000) -> None:
        self.retries, self.backoff_s, self.timeout_s = retries, backoff_s, timeout_s
        self.submitted = self.delivered = self.failed = self.dropped = 0
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=queue_size)
        self._retry: list[_Job] = []
        self._seq = itertools.count()
        self._closing = threading.Event()
        self._abort = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-sender", daemon=True)
        self._thread.start()

    def submit(self, url: str, event: Event) -> bool:
        """Queue one POST; returns False (and logs) when the queue is full or the sender is closed."""
        if self._closing.is_set():
            return False
        try:
            self._queue.put_nowait(_Job(0.0, next(self._seq), url, event))
            self.submitted += 1
            return True
        except queue.Full:
            self.dropped += 1
            log.warning("webhook queue full (%d events): dropped an alert for %s",
                        self._queue.maxsize, redact_url(url))
            return False

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop taking events, deliver (and retry) what is queued for up to `timeout_s`, then stop."""
        self._closing.set()
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            pass
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self._abort.set()
            self._thread.join(self.timeout_s + 1)
        left = self.submitted - self.delivered - self.failed
        if left:
            log.warning("webhooks closed with %d alert(s) undelivered", left)

    def _run(self) -> None:
        closing = False
        with httpx.Client(timeout=self.timeout_s, follow_redirects=False) as client:
            while not self._abort.is_set():
                now = time.monotonic()
                if self._retry and self._retry[0].due <= now:
                    self._attempt(client, heapq.heappop(self._retry))
                    continue
                if closing and not self._retry and self._queue.empty():
                    break
                wait = min(1.0, self._retry[0].due - now) if self._retry else 1.0
                try:
                    job = self._queue.get(timeout=wait)
                except queue.Empty:
                    continue
                if job is None:
                    closing = True
                else:
                    self._attempt(client, job)

    def _attempt(self, client: httpx.Client, job: _Job) -> None:
        where = redact_url(job.url)
        try:
            response = client.post(job.url, json=job.event)
            if response.is_success:
                self.delivered += 1
                return
            why = f"HTTP {response.status_code}"
            retryable = response.status_code in RETRY_STATUSES or response.status_code >= 500
        except httpx.HTTPError as exc:
            why, retryable = _one_line(f"{type(exc).__name__}: {exc}"), True
        except Exception as exc:  # noqa: BLE001 - e.g. an event that is not JSON: never kill the sender thread
            why, retryable = _one_line(f"{type(exc).__name__}: {exc}"), False
        if retryable and job.attempt < self.retries and not self._abort.is_set():
            delay = min(MAX_BACKOFF_S, self.backoff_s * 2**job.attempt)
            job.attempt += 1
            job.due, job.seq = time.monotonic() + delay, next(self._seq)
            heapq.heappush(self._retry, job)
            log.warning("webhook %s failed (%s); retry %d/%d in %.1fs", where, why, job.attempt,
                        self.retries, delay)
        else:
            self.failed += 1
            log.error("webhook %s failed (%s); gave up after %d attempt(s)", where, why, job.attempt + 1)


class AlertDispatcher:
    """Applies the alert rules to frames and person records; fans events out to sinks and webhooks."""

    def __init__(self, config: AlertsConfig | None = None,
                 sinks: Iterable[Callable[[Event], None]] = ()) -> None:
        self.config = config or AlertsConfig()
        self.sinks = list(sinks)
        self._labels = frozenset(self.config.labels)
        self._rules = [r if r.labels is not None else r.model_copy(update={"labels": list(self.config.labels)})
                       for r in self.config.rules]
        self._streak: OrderedDict[tuple[str, int], int] = OrderedDict()
        self._alerted: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._window: dict[str, deque[tuple[float, bool]]] = defaultdict(deque)
        self._raised: set[str] = set()
        self._cooldowns: dict[str, _Cooldown] = {}
        self.sender = (
            WebhookSender(self.config.retries, self.config.backoff_s, self.config.timeout_s,
                          self.config.queue_size)
            if self.config.webhooks else None
        )

    def on_frame(self, result: FrameResult) -> list[Event]:
        """Count frames of unmasked tracks; raise a person alert when one is confirmed."""
        camera = result.camera or result.source
        t = _frame_time(result)
        events = self._end_cooldown(camera, t)
        for face in result.faces:
            if face.track_id is None or face.static:
                continue
            key = (camera, face.track_id)
            if face.track_label not in self._labels:
                self._streak.pop(key, None)
                continue
            count = self._streak.pop(key, 0) + 1
            _remember(self._streak, key, count)
            if count >= self.config.confirm_frames and key not in self._alerted:
                _remember(self._alerted, key, None)
                events += self._person_alert({
                    "kind": "person", "camera": camera, "track_id": face.track_id,
                    "label": face.track_label, "time": t, "frames": count, "box": face.box,
                })
        return events

    def on_person(self, record: PersonRecord) -> list[Event]:
        """Close a track: alert for a short unmasked track not yet alerted, then check the share rule."""
        key = (record.camera, record.track_id)
        self._streak.pop(key, None)
        alerted = key in self._alerted
        self._alerted.pop(key, None)
        if record.static:
            return []  # a poster or a screen, not a person
        unmasked = record.label in self._labels
        events = self._end_cooldown(record.camera, record.last_seen)
        if alerted and record.thumbnail:
            self._hold_thumbnail(record)
        if unmasked and not alerted:
            body = {"kind": "person", "camera": record.camera, "track_id": record.track_id,
                    "label": record.label, "time": record.last_seen, "frames": record.frames,
                    "box": record.best_box}
            if record.thumbnail:
                body["thumbnail"] = record.thumbnail
            events += self._person_alert(body)
        share_event = self._share(record.camera, record.last_seen, unmasked)
        if share_event is not None:
            events.append(self._emit(share_event))
        for rule in self._rules:
            if rule.zone is not None and rule.zone in record.zones and rule.applies(record.camera, record.label):
                events.append(self._emit({
                    "kind": "zone", "rule": rule.name, "camera": record.camera, "zone": rule.zone,
                    "track_id": record.track_id, "label": record.label, "time": record.last_seen,
                    "frames": record.frames, "box": record.best_box,
                    **({"thumbnail": record.thumbnail} if record.thumbnail else {})}))
        return events

    def on_crossing(self, crossing: LineCrossing) -> list[Event]:
        """A line alert for each rule of that line, direction and label."""
        return [self._emit({"kind": "line", "rule": rule.name, "camera": crossing.camera, "line": crossing.line,
                            "direction": crossing.direction, "track_id": crossing.track_id,
                            "label": crossing.label, "time": crossing.time})
                for rule in self._rules
                if rule.line == crossing.line and rule.direction in ("any", crossing.direction)
                and rule.applies(crossing.camera, crossing.label)]

    def flush(self) -> list[Event]:
        """Send every camera's grouped people alert now (end of a video, shutdown)."""
        events = []
        for camera in list(self._cooldowns):
            events += self._end_cooldown(camera, float("inf"))
        return events

    def snapshot(self, camera: str) -> dict[str, Any]:
        """The rule state of one camera (streaks, alerted tracks, share window, cooldown) as JSON-able values."""
        return {
            "streak": [[tid, n] for (cam, tid), n in self._streak.items() if cam == camera],
            "alerted": [tid for cam, tid in self._alerted if cam == camera],
            "window": [list(item) for item in self._window.get(camera, ())],
            "raised": camera in self._raised,
            "cooldown": dataclasses.asdict(self._cooldowns[camera]) if camera in self._cooldowns else None,
        }

    def restore(self, camera: str, state: dict[str, Any]) -> None:
        """Replace one camera's rule state with a `snapshot`; raises ValueError when it is malformed."""
        try:
            streak = [((camera, int(tid)), int(n)) for tid, n in state["streak"]]
            alerted = [(camera, int(tid)) for tid in state["alerted"]]
            window = deque((float(t), bool(flag)) for t, flag in state["window"])
            raised = bool(state["raised"])
            held = state.get("cooldown")
            cooldown = (_Cooldown(float(held["since"]), float(held["due"]), list(held["people"]))
                        if held is not None else None)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed alert state: {exc!r}") from None
        for store in (self._streak, self._alerted):
            for key in [k for k in store if k[0] == camera]:
                del store[key]
        for key, n in streak:
            _remember(self._streak, key, n)
        for key in alerted:
            _remember(self._alerted, key, None)
        self._window[camera] = window
        (self._raised.add if raised else self._raised.discard)(camera)
        if cooldown is None:
            self._cooldowns.pop(camera, None)
        else:
            self._cooldowns[camera] = cooldown

    def close(self, timeout_s: float = 5.0) -> None:
        """Send the grouped alerts, deliver queued webhooks for up to `timeout_s` and stop the sender."""
        self.flush()
        if self.sender is not None:
            self.sender.close(timeout_s)

    def _person_alert(self, body: Event) -> list[Event]:
        """Alert for one person now, or hold it for the camera's grouped alert while a cooldown runs."""
        if not self.config.cooldown_s:
            return [self._emit(body)]
        camera, t = body["camera"], body["time"]
        cooldown = self._cooldowns.get(camera)
        if cooldown is None:
            self._cooldowns[camera] = _Cooldown(since=t, due=t + self.config.cooldown_s)
            return [self._emit(body)]
        cooldown.people.append(body)
        return []

    def _hold_thumbnail(self, record: PersonRecord) -> None:
        """Give a held-back person (confirmed from its frames) the thumbnail its record brings."""
        cooldown = self._cooldowns.get(record.camera)
        for held in cooldown.people if cooldown else []:
            if held["track_id"] == record.track_id:
                held["thumbnail"] = record.thumbnail

    def _end_cooldown(self, camera: str, t: float) -> list[Event]:
        """At the end of a camera's cooldown: one alert for the people held back, and a new cooldown."""
        cooldown = self._cooldowns.get(camera)
        if cooldown is None or t < cooldown.due:
            return []
        people = cooldown.people
        if not people:
            del self._cooldowns[camera]  # nobody new: the next person alerts at once
            return []
        until = max(p["time"] for p in people)
        if t == float("inf"):
            del self._cooldowns[camera]
        else:
            self._cooldowns[camera] = _Cooldown(since=t, due=t + self.config.cooldown_s)
        labels: dict[str, int] = {}
        for p in people:
            labels[p["label"]] = labels.get(p["label"], 0) + 1
        body = {"kind": "people", "camera": camera, "time": until, "since": cooldown.since,
                "window_s": self.config.cooldown_s, "people": len(people), "labels": labels,
                "track_ids": [p["track_id"] for p in people]}
        thumbnails = [p["thumbnail"] for p in people if p.get("thumbnail")][:MAX_GROUP_THUMBNAILS]
        if thumbnails:
            body["thumbnails"] = thumbnails
        return [self._emit(body)]

    def _share(self, camera: str, t: float, unmasked: bool) -> Event | None:
        threshold = self.config.unmasked_share
        if threshold is None:
            return None
        window = self._window[camera]
        window.append((t, unmasked))
        while window and window[0][0] < t - self.config.window_s:
            window.popleft()
        people = len(window)
        count = sum(flag for _, flag in window)
        share = count / people
        if share <= threshold:
            self._raised.discard(camera)
            return None
        if people < self.config.min_people or camera in self._raised:
            return None
        self._raised.add(camera)
        return {
            "kind": "unmasked_share", "camera": camera, "time": t, "window_s": self.config.window_s,
            "people": people, "unmasked": count, "share": round(share, 4), "threshold": threshold,
        }

    def _emit(self, body: Event) -> Event:
        about = f"{body['kind']}:{body['camera']}:{body.get('track_id', '')}:{body['time']}"
        if "rule" in body:
            about += f":{body['rule']}:{body.get('direction', '')}"
        event = {"type": "alert", "id": uuid.uuid5(uuid.NAMESPACE_URL, f"maskwatch:{about}").hex, **body}
        for sink in self.sinks:
            try:
                sink(event)
            except Exception as exc:  # a broken sink must not stop detection
                log.error("alert sink %s failed: %s", getattr(sink, "__name__", sink),
                          _one_line(f"{type(exc).__name__}: {exc}"))
        if self.sender is not None:
            for hook in self.config.webhooks:
                if hook.wants(event["camera"]):
                    self.sender.submit(hook.url, event)
        return event


def _frame_time(result: FrameResult) -> float:
    if result.captured_at is not None:
        return result.captured_at
    return result.time if result.time is not None else time.time()


def _remember(store: OrderedDict, key: Any, value: Any) -> None:
    store[key] = value
    while len(store) > MAX_TRACKED:
        store.popitem(last=False)


def _one_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "no details"
