"""The one reader of the results stream in a dashboard process: parses each entry once, hands it on.

The aggregator (counting) and the live feed (pages) both consume what this reader reads, so a
process reads the stream once whatever it does with the results.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from shared import keys
from shared.schemas import AlertRecord, FrameResult, LineCrossing, PersonRecord, parse_result
from shared.streams import REDIS_ERRORS, Backoff, decode_str, describe_redis_error

log = logging.getLogger(__name__)
Result = FrameResult | PersonRecord | LineCrossing | AlertRecord


@dataclass(frozen=True)
class ResultEntry:
    """One results-stream entry: its id, the parsed result (None when malformed) and whether it is live
    (added after the reader started, not part of a catch-up backlog)."""

    id: str
    result: Result | None
    live: bool = True

    @property
    def sort_key(self) -> tuple[int, int]:
        """The id as (milliseconds, sequence), the order Redis gives stream entries."""
        return stream_id_key(self.id)


def stream_id_key(entry_id: str) -> tuple[int, int]:
    """A stream id "ms-seq" as a comparable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def parse_entry(entry_id: bytes | str, fields: dict | None, live: bool = True) -> ResultEntry:
    """Parse a raw stream entry; a malformed one is logged (one line) and kept with `result` None."""
    entry_id = decode_str(entry_id)
    raw = fields.get(b"data", fields.get("data")) if fields else None
    try:
        if raw is None:
            raise ValueError("entry has no data field")
        result = parse_result(raw)
        if not result.camera:
            raise ValueError("result has no camera")
    except ValueError as exc:
        log.warning("skipping results entry %s: %s", entry_id, exc)
        return ResultEntry(entry_id, None, live)
    return ResultEntry(entry_id, result, live)


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep up to `seconds`, returning early when `stop` is set."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except asyncio.TimeoutError:
        pass


Consumer = Callable[[Sequence[ResultEntry]], Awaitable[None] | None]


class ResultsReader:
    """Tails the results stream with XREAD and gives every batch, in stream order, to each consumer.

    `start` picks the first id: the aggregator's cursor (so a restarted process catches up on what
    nobody counted yet) or, without one, the stream's newest entry (only new results). Entries up to
    the newest one at start are handed on with `live` False (a backlog the live pages skip).
    `on_error(up)` hears about Redis going away and coming back. `pace_s` waits that long after each
    batch (a reader that needs no low latency reads fewer, larger batches: less CPU).
    """

    def __init__(self, redis: aioredis.Redis, consumers: Sequence[Consumer],
                 start: Callable[[], Awaitable[str | None]] | None = None,
                 on_error: Callable[[bool], None] | None = None, batch: int = 200, block_ms: int = 250,
                 pace_s: float = 0.0) -> None:
        self.redis, self.consumers, self.start, self.on_error = redis, list(consumers), start, on_error
        self.batch, self.block_ms, self.pace_s = batch, block_ms, pace_s
        self.last_id: str | None = None
        self.live_after: tuple[int, int] | None = None
        self.read = 0

    async def step(self) -> int:
        """Read one batch (waiting up to `block_ms`) and hand it on; returns the number of entries."""
        if self.last_id is None:
            newest = await self.redis.xrevrange(keys.RESULTS_STREAM, count=1)
            newest_id = decode_str(newest[0][0]) if newest else "0-0"
            self.live_after = stream_id_key(newest_id)
            self.last_id = (await self.start() or "0-0") if self.start is not None else newest_id
        reply = await self.redis.xread({keys.RESULTS_STREAM: self.last_id}, count=self.batch, block=self.block_ms)
        entries = [parse_entry(entry_id, fields, stream_id_key(decode_str(entry_id)) > self.live_after)
                   for _, stream in reply or [] for entry_id, fields in stream]
        if entries:
            self.last_id = entries[-1].id
            for consume in self.consumers:
                outcome = consume(entries)
                if asyncio.iscoroutine(outcome):
                    await outcome
            self.read += len(entries)
        return len(entries)

    async def run(self, stop: asyncio.Event) -> None:
        """Read until `stop` is set; Redis outages are logged in one line and retried with backoff."""
        backoff, down = Backoff(), False
        while not stop.is_set():
            try:
                read = await self.step()
                if down and self.on_error is not None:
                    self.on_error(True)
                down = False
                backoff.reset()
                if read and self.pace_s:
                    await wait_or_stop(stop, self.pace_s)
                continue
            except (*REDIS_ERRORS, OSError, ResponseError) as exc:
                delay = backoff.delay()
                log.warning("results reader: redis unavailable (%s); retrying in %.1fs",
                            describe_redis_error(exc), delay)
            if not down and self.on_error is not None:
                self.on_error(False)
            down = True
            await wait_or_stop(stop, delay)
        await self._drain()

    async def _drain(self, timeout: float = 2.0) -> None:
        """On stop, hand on what is already in the stream (the services upstream stopped first)."""
        if self.last_id is None:
            return

        async def drain() -> None:
            while await self.step() == self.batch:
                pass

        try:
            await asyncio.wait_for(drain(), timeout)
        except (asyncio.TimeoutError, *REDIS_ERRORS, OSError, ResponseError):
            pass
