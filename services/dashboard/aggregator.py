"""Counts every result once: a consumer group on the results stream feeds the rolling Redis counts."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time

import redis.asyncio as aioredis
from pydantic import TypeAdapter, ValidationError
from redis.exceptions import ResponseError

from services.dashboard import stats
from shared import keys
from shared.schemas import FrameResult, PersonRecord
from shared.streams import REDIS_ERRORS, Backoff, decode_str, describe_redis_error

log = logging.getLogger(__name__)
RESULT_ADAPTER: TypeAdapter[FrameResult | PersonRecord] = TypeAdapter(FrameResult | PersonRecord)
CLAIM_IDLE_MS = 30_000


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep up to `seconds`, returning early when `stop` is set."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except asyncio.TimeoutError:
        pass


def parse_result(data: bytes | str) -> FrameResult | PersonRecord:
    """Parse one `data` field of the results stream; raises ValueError for anything malformed."""
    try:
        return RESULT_ADAPTER.validate_json(data)
    except ValidationError as exc:
        raise ValueError(f"malformed result: {exc.error_count()} validation error(s)") from None


class Aggregator:
    """Reads the results stream in the dashboard consumer group and updates counts atomically with XACK.

    Each entry's increments and its XACK go in one MULTI/EXEC, so a result is counted exactly once
    across replicas and crashes (entries left pending by a dead replica are claimed after 30 s).
    """

    def __init__(self, redis: aioredis.Redis, consumer: str | None = None, batch: int = 200,
                 block_ms: int = 1000) -> None:
        self.redis = redis
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.batch, self.block_ms = batch, block_ms
        self.counted = 0
        self._last_counts: dict[str, dict[str, int]] = {}

    async def ensure_group(self) -> None:
        """Create the consumer group (from the start of the retained stream) unless it exists."""
        try:
            await self.redis.xgroup_create(keys.RESULTS_STREAM, keys.DASHBOARD_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def step(self) -> int:
        """Claim stale pending entries, read new ones, count them; returns how many were handled."""
        claimed = await self.redis.xautoclaim(
            keys.RESULTS_STREAM, keys.DASHBOARD_GROUP, self.consumer, CLAIM_IDLE_MS, "0-0", count=self.batch
        )
        entries = list(claimed[1]) if claimed else []
        if not entries:
            reply = await self.redis.xreadgroup(
                keys.DASHBOARD_GROUP, self.consumer, {keys.RESULTS_STREAM: ">"},
                count=self.batch, block=self.block_ms,
            )
            entries = [entry for _, stream_entries in reply or [] for entry in stream_entries]
        if entries:
            await self._count(entries)
        return len(entries)

    async def run(self, stop: asyncio.Event) -> None:
        """Aggregate until `stop` is set; Redis outages are logged and retried with backoff."""
        backoff = Backoff()
        while not stop.is_set():
            try:
                await self.ensure_group()
                while not stop.is_set():
                    await self.step()
                    backoff.reset()
                return
            except (*REDIS_ERRORS, OSError) as exc:
                delay = backoff.delay()
                log.warning("aggregator: redis unavailable (%s); retrying in %.1fs", describe_redis_error(exc), delay)
            except ResponseError as exc:  # NOGROUP after a Redis restart without persistence: recreate it
                delay = backoff.delay()
                log.warning("aggregator: %s; retrying in %.1fs", describe_redis_error(exc), delay)
            await wait_or_stop(stop, delay)

    async def _count(self, entries: list) -> None:
        now = time.time()
        pipe = self.redis.pipeline(transaction=True)
        for entry_id, fields in entries:
            raw = fields.get(b"data", fields.get("data")) if fields else None
            try:
                if raw is None:
                    raise ValueError("entry has no data field")
                result = parse_result(raw)
                if not result.camera:
                    raise ValueError("result has no camera")
            except ValueError as exc:
                log.warning("skipping results entry %s: %s", decode_str(entry_id), exc)
            else:
                self._queue_increments(pipe, result, now)
            pipe.xack(keys.RESULTS_STREAM, keys.DASHBOARD_GROUP, entry_id)
        await pipe.execute()
        self.counted += len(entries)

    def _queue_increments(self, pipe, result: FrameResult | PersonRecord, now: float) -> None:
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
        event = self._event(result, increments, ts)
        if event is not None:
            pipe.lpush(keys.camera_events(camera), json.dumps(event))
            pipe.ltrim(keys.camera_events(camera), 0, stats.EVENTS_KEPT - 1)

    def _event(self, result: FrameResult | PersonRecord, increments: dict[str, float], ts: float) -> dict | None:
        """A person record, or a frame whose set of labels differs from the camera's previous frame's."""
        if isinstance(result, PersonRecord):
            return {"type": "person", "time": result.last_seen, "label": result.label,
                    "track_id": result.track_id, "first_seen": result.first_seen, "frames": result.frames}
        counts = {k.split(":", 1)[1]: int(v) for k, v in increments.items() if k.startswith("faces:")}
        previous = self._last_counts.get(result.camera)
        self._last_counts[result.camera] = counts
        if previous is None or set(counts) == set(previous):
            return None
        return {"type": "change", "time": ts, "frame": result.frame,
                "faces": counts, "previous": previous}
