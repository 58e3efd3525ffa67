"""The recorder loop: read the results stream after the stored position, write batches, prune, retry outages.

Public API: `RecorderService(client, engine, url, history, name)`: `.run(stop) -> int`, `.step(block_ms) -> int`,
`.prepare()` (schema upgrade). Database and Redis outages are logged in one line each and retried with
backoff; the position lives in the database, so the recorder catches up where it stopped.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from alembic.util import CommandError
from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from services.recorder.pruning import Pruner
from services.recorder.rows import Message
from services.recorder.writer import START, HistoryWriter, Lease
from shared import keys
from shared.detections import stream_id
from shared.exit_codes import USAGE
from shared.history.config import HistoryConfig
from shared.history.database import describe_db_error, shown_url
from shared.history.migrate import head_revision, upgrade
from shared.recorder_health import TTL_S as HEALTH_TTL_S
from shared.recorder_health import RecorderHealth, entries_after
from shared.schemas import parse_result
from shared.streams import REDIS_ERRORS, Backoff, decode_str, describe_redis_error

log = logging.getLogger(__name__)
READ_BLOCK_MS = 1000
PROGRESS_EVERY_S = 60.0
HEALTH_EVERY_S = 1.0  # the health figures in Redis (/metrics) are at most this old


class SchemaTooNew(Exception):
    """The database was upgraded by a newer maskwatch than this one."""


class RecorderService:
    """Writes the results stream to the history database while this replica holds the writer lease."""

    def __init__(self, client: redis.Redis, engine: Engine, url: URL, history: HistoryConfig, name: str) -> None:
        self.client, self.engine, self.url, self.history, self.name = client, engine, url, history, name
        self.writer = HistoryWriter(engine, name, history.lease_ttl_s, history.zone)
        self.pruner = Pruner(engine, history)
        self.lease: Lease | None = None
        self.cursor: str | None = None  # the stream position read up to (None: take the stored one)
        self.prepared = False
        self._renew_at = 0.0
        self._standing_by: str | None = None
        self.written = self.entries = 0
        self._progress_at = time.monotonic() + PROGRESS_EVERY_S
        self.health = RecorderHealth(name)
        self._caught_up = False  # the last read returned less than a batch: nothing was waiting
        self._health_at = 0.0
        self._health_refused = False

    def prepare(self) -> tuple[str | None, str | None]:
        """Upgrade the schema to this code's head; raises SchemaTooNew for a database ahead of the code."""
        try:
            before, after = upgrade(self.engine)
        except CommandError as exc:
            raise SchemaTooNew(f"history database {shown_url(self.url)}: {exc} (this maskwatch knows schema "
                               f"revisions up to {head_revision()}: upgrade maskwatch)") from None
        if before != after:
            log.info("history database %s: schema upgraded from %s to %s", shown_url(self.url), before or "nothing",
                     after)
        self.prepared = True
        return before, after

    def run(self, stop: threading.Event) -> int:
        """Record until `stop` is set; outages are retried, a database newer than the code ends the run."""
        log.info("recorder %s: history database %s", self.name, shown_url(self.url))
        backoff, failing = Backoff(base=0.5, cap=30.0), None
        while not stop.is_set():
            try:
                if not self.prepared:
                    self.prepare()
                self.step()
                if failing:
                    log.info("recorder %s: %s is back; catching up from %s", self.name, failing, self.cursor or START)
                failing = None
                backoff.reset()
                self._report_health()
                continue
            except SchemaTooNew as exc:
                log.error("%s", exc)
                return USAGE
            except DBAPIError as exc:
                failing, detail = "the history database", describe_db_error(exc, self.url)
                self.lease = None  # unknown whether the last transaction committed: read the position again
                self.health.failed("database")
            except REDIS_ERRORS as exc:
                failing, detail = "redis", describe_redis_error(exc)
                self.health.failed("redis")
            self._caught_up = False
            wait = backoff.delay()
            log.warning("recorder %s: %s unavailable (%s); retrying in %.1fs", self.name, failing, detail, wait)
            deadline = time.monotonic() + wait
            while not stop.is_set() and time.monotonic() < deadline:  # the figures stay fresh while waiting
                self._report_health(force=True)
                stop.wait(min(HEALTH_TTL_S / 3, deadline - time.monotonic()))
        self._release()
        log.info("recorder %s: stopped after %d entries (%d rows) written", self.name, self.entries, self.written)
        return 0

    def step(self, block_ms: int = READ_BLOCK_MS) -> int:
        """Hold the lease, read one batch after the position, write it; prune a little. Returns rows written."""
        now = time.monotonic()
        if self.lease is None or not self.lease.held or now >= self._renew_at:
            self._hold(now)
            if not self.lease.held:
                time.sleep(min(self.history.lease_ttl_s / 3, block_ms / 1000))
                return 0
        gap = self._gap()
        reply = self.client.xread({keys.RESULTS_STREAM: self.cursor or START}, count=self.history.batch,
                                  block=max(1, block_ms))
        written = 0
        entries = [(decode_str(i), fields) for _, stream in reply or [] for i, fields in stream]
        if entries:
            last_id = entries[-1][0]
            lease = self.writer.write([(i, _parse(i, f)) for i, f in entries], last_id, gap)
            self._took(lease, now)
            if lease.held:
                written = sum(lease.written.values())
                self.entries += len(entries)
                self.written += written
                self.health.wrote(lease.written)
        self._caught_up = len(entries) < self.history.batch
        if self.lease.held and self.pruner.due(time.time()):
            self.pruner.step()
        self._progress()
        return written

    def _hold(self, now: float) -> None:
        self._took(self.writer.hold(), now)

    def _took(self, lease: Lease, now: float) -> None:
        """Follow the lease: on taking it (or when another replica moved the position) read from the stored one."""
        was = self.lease
        self.lease = lease
        if not lease.held:
            self.cursor = None
            if self._standing_by != lease.owner:
                log.info("recorder %s: standing by (%s writes the history)", self.name, lease.owner)
                self._standing_by = lease.owner
            return
        if was is None or not was.held or self.cursor is None or \
                stream_id(lease.position or START) > stream_id(self.cursor):
            if was is None or not was.held:
                log.info("recorder %s: writing the history from results entry %s", self.name, lease.position or START)
            self.cursor = lease.position or START
        self._standing_by = None
        self._renew_at = now + self.history.lease_ttl_s / 3

    def _gap(self) -> tuple[str, str] | None:
        """(position, oldest entry) when the stream no longer holds the entry at our position: the entries after
        it up to the oldest one left were trimmed before we read them (trimming only removes the oldest)."""
        if self.lease is None or self.lease.position is None:
            return None  # a new database records what the stream still holds; nothing was recorded before
        oldest = self.client.xrange(keys.RESULTS_STREAM, count=1)
        position = stream_id(self.cursor or self.lease.position)
        if not oldest or stream_id(oldest[0][0]) <= position:
            return None
        first_id = decode_str(oldest[0][0])
        log.error("recorder %s: results entries after %s up to %s were trimmed before they were recorded (the "
                  "recorder was behind more than detector.results_maxlen entries); that stretch is missing from "
                  "the history", self.name, position, first_id)
        return str(position), first_id

    def _progress(self) -> None:
        if time.monotonic() >= self._progress_at:
            self._progress_at = time.monotonic() + PROGRESS_EVERY_S
            if self.lease is not None and self.lease.held:
                log.info("recorder %s: %d entries read, %d rows written; at results entry %s", self.name,
                         self.entries, self.written, self.cursor)

    def _report_health(self, force: bool = False) -> None:
        """Publish the health figures (at most every HEALTH_EVERY_S unless forced). An outage is left to the loop,
        which logs and retries it; a refusal (an ACL without the commands) is logged once."""
        now = time.monotonic()
        if not force and now < self._health_at:
            return
        self._health_at = now + HEALTH_EVERY_S
        self.health.writing = self.lease is not None and self.lease.held
        try:
            if self.cursor is None:  # standing by: the writer reports the lag
                self.health.lag = None
            elif self._caught_up:
                self.health.lag = 0
            else:
                self.health.lag = entries_after(self.client, self.cursor)
            self.health.publish(self.client)
        except REDIS_ERRORS:
            pass
        except redis.RedisError as exc:
            if not self._health_refused:
                log.warning("recorder %s: cannot publish its health figures for /metrics (%s)", self.name,
                            describe_redis_error(exc))
                self._health_refused = True

    def _release(self) -> None:
        try:
            self.health.remove(self.client)
        except redis.RedisError:
            pass  # the figures expire by themselves
        if self.lease is not None and self.lease.held:
            try:
                self.writer.release()
            except DBAPIError as exc:
                log.warning("recorder %s: could not release the lease (%s); it expires in %.0fs", self.name,
                            describe_db_error(exc, self.url), self.history.lease_ttl_s)


def _parse(entry_id: str, fields: dict) -> Message | None:
    raw = fields.get(b"data", fields.get("data"))
    try:
        if raw is None:
            raise ValueError("entry has no data field")
        return parse_result(raw)
    except ValueError as exc:
        log.warning("recorder: skipping results entry %s: %s", entry_id, exc)
        return None
