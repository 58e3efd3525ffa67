"""Retention: old people, thumbnails, crossings, alerts and counts deleted in small transactions.

`Pruner(engine, config).step(now) -> int` deletes at most `history.prune_batch` rows of one kind per call
(one short transaction), so the recorder interleaves pruning with its writes and never waits long for it.
`due(now)` says when a round should start (every `history.prune_interval_s`); a round ends when nothing is
left to delete. Every delete picks the oldest rows through a time index, so a batch costs the same whatever
the table's size.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine, delete, func, select

from shared.history.config import HistoryConfig
from shared.history.schema import alerts, counts, crossings, people, thumbnails

log = logging.getLogger(__name__)
DAY_S = 86400


class Pruner:
    """Deletes rows older than the retention settings, a small batch at a time."""

    def __init__(self, engine: Engine, config: HistoryConfig) -> None:
        self.engine, self.config = engine, config
        self.next_round = 0.0
        self.active = False
        self.deleted: dict[str, int] = {}

    def due(self, now: float) -> bool:
        """Whether a pruning round is running or should start now."""
        if not self.active and now >= self.next_round:
            self.active, self.deleted = True, {}
            self.next_round = now + self.config.prune_interval_s
        return self.active

    def step(self, now: float | None = None) -> int:
        """Delete one batch of the first kind that has old rows; ends the round when none has."""
        now = time.time() if now is None else now
        for name, job in self._jobs(now):
            with self.engine.begin() as conn:
                deleted = job(conn)
            if deleted:
                self.deleted[name] = self.deleted.get(name, 0) + deleted
                return deleted
        if self.active and self.deleted:
            log.info("history pruning: deleted %s", ", ".join(f"{n} {k}" for k, n in self.deleted.items()))
        self.active = False
        return 0

    def _jobs(self, now: float) -> list[tuple[str, Callable[[Connection], int]]]:
        c, n = self.config, self.config.prune_batch
        jobs: list[tuple[str, Callable[[Connection], int]]] = []
        if c.keep_people_days:
            cut = now - c.keep_people_days * DAY_S
            jobs += [("people", lambda conn: _delete_oldest(conn, people, people.c.first_seen, cut, n)),
                     ("crossings", lambda conn: _delete_oldest(conn, crossings, crossings.c.time, cut, n)),
                     ("alerts", lambda conn: _delete_oldest(conn, alerts, alerts.c.time, cut, n))]
        if c.keep_thumbnails_days:
            cut_t = now - c.keep_thumbnails_days * DAY_S
            jobs.append(("thumbnails", lambda conn: _delete_oldest(conn, thumbnails, thumbnails.c.first_seen, cut_t, n,
                                                                   thumbnails.c.person_id)))
        if c.keep_counts_days:
            cut_c = now - c.keep_counts_days * DAY_S
            jobs.append(("count rows", lambda conn: _delete_counts(conn, cut_c)))
        return jobs


def _delete_oldest(conn: Connection, table, column, cut: float, batch: int, key=None) -> int:
    """Delete up to `batch` rows whose `column` is before `cut`, oldest first (people take their thumbnails along)."""
    key = table.c.id if key is None else key
    ids = conn.execute(select(key).where(column < cut).order_by(column).limit(batch)).scalars().all()
    if ids:
        conn.execute(delete(table).where(key.in_(ids)))
    return len(ids)


def _delete_counts(conn: Connection, cut: float) -> int:
    """One day's worth of count rows at a time (a few hundred rows per camera)."""
    oldest = conn.execute(select(func.min(counts.c.start))).scalar()
    if oldest is None or oldest >= cut:
        return 0
    return conn.execute(delete(counts).where(counts.c.start < min(cut, oldest + DAY_S))).rowcount
