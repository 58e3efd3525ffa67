"""Counts every result once across dashboard replicas: the rolling Redis counts behind pages, API and metrics."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from services.dashboard import stats
from services.dashboard.results import ResultEntry, stream_id_key
from shared import keys
from shared.schemas import FrameResult, LineCrossing, PersonRecord
from shared.streams import decode_str

log = logging.getLogger(__name__)


class Aggregator:
    """Counts the batches the results reader hands it, each entry exactly once across replicas and crashes.

    Every replica reads the whole stream; the Redis key `keys.DASHBOARD_CURSOR` holds the id of the
    last entry counted. A batch's increments and the cursor's advance go in one MULTI/EXEC guarded by
    WATCH on the cursor: when another replica counted first, the batch is filtered again against the
    new cursor, so nothing is counted twice, and a replica that dies mid-batch leaves the cursor where
    it was, so another counts those entries.
    """

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.counted = 0
        self._last_counts: dict[str, dict[str, int]] = {}

    async def cursor(self) -> str | None:
        """The id of the last entry counted by any replica (None before the first)."""
        value = await self.redis.get(keys.DASHBOARD_CURSOR)
        return decode_str(value) if value else None

    async def count(self, entries: Sequence[ResultEntry]) -> int:
        """Count the entries nobody counted yet (malformed ones only move the cursor); returns how many."""
        if not entries:
            return 0
        now = time.time()
        events = [self._event(entry.result, now) if _counted(entry) else None for entry in entries]
        while True:
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(keys.DASHBOARD_CURSOR)
                    raw = await pipe.get(keys.DASHBOARD_CURSOR)
                    done = stream_id_key(decode_str(raw)) if raw else (-1, -1)
                    fresh = [(entry, event) for entry, event in zip(entries, events) if entry.sort_key > done]
                    if not fresh:
                        return 0
                    pipe.multi()
                    for entry, event in fresh:
                        if _counted(entry):
                            self._queue_increments(pipe, entry.result, event, now)
                    pipe.set(keys.DASHBOARD_CURSOR, fresh[-1][0].id)
                    await pipe.execute()
                except WatchError:
                    continue  # another replica moved the cursor: filter again
            self.counted += len(fresh)
            return len(fresh)

    def _queue_increments(self, pipe, result: FrameResult | PersonRecord | LineCrossing, event: dict | None,
                          now: float) -> None:
        camera = result.camera
        ts = stats.event_time(result, now)
        increments = stats.result_increments(result)
        for resolution in stats.RESOLUTIONS:
            key = keys.stats_bucket(camera, resolution.name, stats.bucket_start(ts, resolution))
            for name, amount in increments.items():
                pipe.hincrby(key, name, int(amount))
            pipe.expire(key, resolution.ttl)
        totals = keys.stats_totals(camera)
        for name, amount in increments.items():
            pipe.hincrby(totals, name, int(amount))
        if isinstance(result, FrameResult):
            for name, amount in stats.latency_increments(result).items():
                if name == "latency_sum":
                    pipe.hincrbyfloat(totals, name, amount)
                else:
                    pipe.hincrby(totals, name, int(amount))
            if result.model_version:
                pipe.hset(totals, "model_version", result.model_version)
        if event is not None:
            pipe.lpush(keys.camera_events(camera), json.dumps(event, separators=(",", ":")))
            pipe.ltrim(keys.camera_events(camera), 0, stats.EVENTS_KEPT - 1)

    def _event(self, result: FrameResult | PersonRecord | LineCrossing, now: float) -> dict | None:
        """A person record (with its face thumbnail), a line crossing, or a frame whose set of labels differs
        from the previous; static faces make no event.

        Computed once per entry a replica sees (counted by it or not), so every replica agrees on changes.
        """
        if isinstance(result, LineCrossing):
            return {"type": "crossing", "time": result.time, "line": result.line, "direction": result.direction,
                    "label": result.label, "track_id": result.track_id}
        if isinstance(result, PersonRecord) and result.static:
            return None
        if isinstance(result, PersonRecord):
            event = {"type": "person", "time": result.last_seen, "label": result.label,
                     "track_id": result.track_id, "first_seen": result.first_seen, "frames": result.frames}
            if result.thumbnail:
                event["thumbnail"] = result.thumbnail  # kept in the event, so it expires with it
            return event
        counts = {k.split(":", 1)[1]: int(v) for k, v in stats.result_increments(result).items()
                  if k.startswith("faces:")}
        previous = self._last_counts.get(result.camera)
        self._last_counts[result.camera] = counts
        if previous is None or set(counts) == set(previous):
            return None
        return {"type": "change", "time": stats.event_time(result, now), "frame": result.frame,
                "faces": counts, "previous": previous}


def _counted(entry: ResultEntry) -> bool:
    """Frames, person records and line crossings feed the rolling counts (alerts are counted elsewhere)."""
    return isinstance(entry.result, FrameResult | PersonRecord | LineCrossing)
