"""The recorder's transaction: rows of a batch, the counts they add and the stream position, all or nothing.

Public API:
- `HistoryWriter(engine, owner, lease_ttl_s, zone)`: `.hold(now) -> Lease` takes or renews the writer lease
  (and reads the stored position); `.write(entries, last_id, gap=None) -> Lease` writes one batch. Both
  answer `Lease(held=False, ...)` when another live replica holds it. Entries at or before the stored
  position are skipped, so a batch read twice (a lease handed over mid-read) is written once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from services.recorder.rows import Message, Rows, build_rows
from shared.detections import stream_id
from shared.history.schema import RESULTS, alerts, counts, crossings, people, recorder_gaps, recorder_state, thumbnails

START = "0-0"


@dataclass(frozen=True)
class Lease:
    """Whether this replica may write, the stored stream position, and who holds the lease otherwise."""

    held: bool
    position: str | None
    owner: str | None = None
    written: dict[str, int] = field(default_factory=dict)  # rows written by this call, per kind


class HistoryWriter:
    """Writes batches of results-stream entries to the history database while holding the writer lease."""

    def __init__(self, engine: Engine, owner: str, lease_ttl_s: float, zone: ZoneInfo) -> None:
        self.engine, self.owner, self.lease_ttl_s, self.zone = engine, owner, lease_ttl_s, zone

    def hold(self, now: float | None = None) -> Lease:
        """Take the lease when it is free or expired, renew it when ours."""
        with self.engine.begin() as conn:
            return self._claim(conn, time.time() if now is None else now)

    def write(self, entries: Sequence[tuple[str, Message | None]], last_id: str,
              gap: tuple[str, str] | None = None) -> Lease:
        """Write the entries read up to `last_id` (malformed ones as None) and move the position there.

        `gap`: (stored position, first entry still in the stream) when entries between them were trimmed.
        """
        with self.engine.begin() as conn:
            lease = self._claim(conn, time.time())
            if not lease.held:
                return lease
            done = stream_id(lease.position or START)
            if stream_id(last_id) <= done:
                return lease  # another replica wrote this batch already
            fresh = [(i, m) for i, m in entries if m is not None and stream_id(i) > done]
            rows = build_rows(fresh, self.zone)
            self._insert(conn, rows)
            if gap is not None and stream_id(gap[0]) >= done:
                conn.execute(insert(recorder_gaps), {"after": gap[0], "lost_before": gap[1],
                                                     "noticed_at": time.time()})
            conn.execute(update(recorder_state).where(recorder_state.c.stream == RESULTS)
                         .values(position=last_id, updated_at=time.time()))
            return Lease(True, last_id, self.owner, rows.by_kind())

    def _claim(self, conn: Connection, now: float) -> Lease:
        row = conn.execute(select(recorder_state.c.position, recorder_state.c.owner, recorder_state.c.lease_until)
                           .where(recorder_state.c.stream == RESULTS).with_for_update()).first()
        until = now + self.lease_ttl_s
        if row is None:
            conn.execute(insert(recorder_state), {"stream": RESULTS, "position": None, "owner": self.owner,
                                                  "lease_until": until, "updated_at": now})
            return Lease(True, None, self.owner)
        if row.owner != self.owner and row.owner is not None and row.lease_until > now:
            return Lease(False, row.position, row.owner)
        conn.execute(update(recorder_state).where(recorder_state.c.stream == RESULTS)
                     .values(owner=self.owner, lease_until=until))
        return Lease(True, row.position, self.owner)

    def release(self) -> None:
        """Give the lease up (a clean stop): another replica takes over at once."""
        with self.engine.begin() as conn:
            conn.execute(update(recorder_state).where(recorder_state.c.stream == RESULTS,
                                                      recorder_state.c.owner == self.owner)
                         .values(owner=None, lease_until=0.0))

    def _insert(self, conn: Connection, rows: Rows) -> None:
        if rows.people:
            ids = conn.execute(insert(people).returning(people.c.id, sort_by_parameter_order=True),
                               rows.people).scalars().all()
            images = [{"person_id": pid, "first_seen": person["first_seen"], "jpeg": jpeg}
                      for pid, person, jpeg in zip(ids, rows.people, rows.thumbnails) if jpeg]
            if images:
                conn.execute(insert(thumbnails), images)
        if rows.crossings:
            conn.execute(insert(crossings), rows.crossings)
        if rows.alerts:
            conn.execute(_dialect_insert(conn, alerts).on_conflict_do_nothing(index_elements=["uid"]), rows.alerts)
        if rows.counts:
            stmt = _dialect_insert(conn, counts)
            stmt = stmt.on_conflict_do_update(
                index_elements=["resolution", "camera", "kind", "line", "start", "label"],
                set_={"n": counts.c.n + stmt.excluded.n})
            conn.execute(stmt, [{"resolution": r, "camera": c, "kind": k, "line": line, "start": s, "label": lab,
                                 "n": n} for (r, c, k, line, s, lab), n in sorted(rows.counts.items())])


def _dialect_insert(conn: Connection, table):
    """INSERT with ON CONFLICT for the connection's dialect (SQLite and PostgreSQL share the syntax)."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
