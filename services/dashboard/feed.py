"""The live feed: fans the results the process's reader hands it out to SSE subscribers, with overviews."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

import redis
import redis.asyncio as aioredis

from services.dashboard import queries
from services.dashboard.results import Result, ResultEntry, wait_or_stop
from shared.schemas import AlertRecord, FrameResult, LineCrossing
from shared.streams import Backoff, describe_redis_error

log = logging.getLogger(__name__)
QUEUE_SIZE = 64
OVERVIEW_EVERY = 5.0
SEND_EVERY = 0.1  # how often throttled frames are checked for being due
ALERTS_SHOWN = 10
_CLOSE: Any = object()  # the event that ends a subscriber's stream


class Feed:
    """Pushes frame results (at most `fps` per camera, the latest one), person records, line crossings, overviews
    and alerts.

    Slow subscribers lose the oldest messages rather than slowing the reader (no unbounded queues).
    """

    def __init__(self, redis: aioredis.Redis, configured: Callable[[], Iterable[str]], fps: float,
                 stale_after: float) -> None:
        self.redis, self.configured, self.stale_after = redis, configured, stale_after
        self.min_gap = 1.0 / fps if fps > 0 else 0.0
        self._subscribers: set[asyncio.Queue] = set()
        self._last_sent: dict[str, float] = {}
        self._pending: dict[str, FrameResult] = {}
        self._overviews: dict[str, dict] = {}
        self._alerts: list[dict] = []
        self.closed = False

    def close(self) -> None:
        """End every subscriber's stream now (the server is shutting down) and refuse new ones."""
        self.closed = True
        self.publish(_CLOSE, None)

    async def subscribe(self) -> AsyncIterator[str]:
        """Server-sent-event text chunks for one client, starting with the current overview."""
        queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        if self.closed:
            return
        self._subscribers.add(queue)
        try:
            if self._overviews:
                yield _sse("cameras", list(self._overviews.values()))
            yield _sse("alerts", self._alerts)
            while True:
                try:
                    event, data = await asyncio.wait_for(queue.get(), timeout=15.0)
                except asyncio.TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if event is _CLOSE:
                    return
                yield _sse(event, data)
        finally:
            self._subscribers.discard(queue)

    def publish(self, event: str, data: object) -> None:
        """Queue one event for every subscriber, dropping a slow subscriber's oldest message."""
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait((event, data))

    async def run(self, stop: asyncio.Event) -> None:
        """Send throttled frames when due and refresh overviews every 5 s until `stop` is set."""
        next_overview, backoff = 0.0, Backoff()
        while not stop.is_set():
            if time.monotonic() >= next_overview:
                try:
                    await self._refresh_overviews()
                    next_overview = time.monotonic() + OVERVIEW_EVERY
                    backoff.reset()
                except (redis.RedisError, OSError) as exc:
                    delay = backoff.delay()
                    log.warning("live feed: redis unavailable (%s); retrying in %.1fs",
                                describe_redis_error(exc), delay)
                    next_overview = time.monotonic() + delay
                except Exception as exc:  # noqa: BLE001 - nothing (a bad config, a bug) may end the live feed
                    delay = backoff.delay()
                    log.error("live feed: camera overviews failed (%s: %s); retrying in %.1fs",
                              type(exc).__name__, " ".join(str(exc).split())[:300], delay)
                    next_overview = time.monotonic() + delay
            self._send_due(time.monotonic())
            await wait_or_stop(stop, SEND_EVERY)

    def consume(self, entries: Sequence[ResultEntry]) -> None:
        """Take a batch from the results reader; only recent entries are live (not a catch-up backlog)."""
        for entry in entries:
            if entry.result is not None and entry.live:
                self._forward(entry.result)

    def redis_state(self, up: bool) -> None:
        """Tell the pages that Redis went away (or came back)."""
        self.publish("redis", {"up": up})

    async def _refresh_overviews(self) -> None:
        ids = await queries.camera_list(self.redis, self.configured())
        self._overviews = {cam: await queries.overview(self.redis, cam, self.stale_after) for cam in ids}
        self.publish("cameras", list(self._overviews.values()))
        alerts = await queries.alerts(self.redis, ALERTS_SHOWN)
        if alerts != self._alerts:
            self._alerts = alerts
            self.publish("alerts", alerts)

    def _forward(self, result: Result) -> None:
        if isinstance(result, AlertRecord):
            return  # alerts reach the pages from the alerts list
        if isinstance(result, LineCrossing):
            self.publish("crossing", json.loads(result.to_json()))
            return
        if not isinstance(result, FrameResult):
            self.publish("person", json.loads(result.to_json()))
            return
        if result.camera:
            self._pending[result.camera] = result  # latest wins: a throttled frame is replaced, not lost
            self._send_due(time.monotonic())

    def _send_due(self, now: float) -> None:
        """Send each camera's latest waiting frame once its gap since the last one sent has passed."""
        for camera in [c for c in self._pending if now - self._last_sent.get(c, float("-inf")) >= self.min_gap]:
            self._last_sent[camera] = now
            self.publish("frame", json.loads(self._pending.pop(camera).to_json()))


def _sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
