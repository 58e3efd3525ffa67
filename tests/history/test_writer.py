"""The recorder's transaction on SQLite and PostgreSQL: rows, counts, position, duplicates, the writer lease, gaps."""

from __future__ import annotations

import time
from zoneinfo import ZoneInfo

from sqlalchemy import select

from services.recorder.writer import HistoryWriter
from shared.history.schema import DAY, HOUR, PEOPLE, counts, recorder_gaps
from shared.schemas import PersonRecord
from tests.history.checks import assert_matches, position
from tests.history.conftest import Published, messages

UTC = ZoneInfo("UTC")


def fake_ids(items: list, first_ms: int = 1_000) -> Published:
    return Published([(f"{first_ms + k}-0", m) for k, m in enumerate(items)])


def test_a_batch_is_written_once_with_its_counts_and_position(engine) -> None:
    published = fake_ids(messages(300, t0=time.time() - 3600))
    writer = HistoryWriter(engine, "one", 10.0, UTC)
    half = published.entries[150][0]
    assert writer.write(published.entries[:151], half).held
    assert position(engine) == half
    assert_matches(engine, published, half)
    # the same entries again (a replica that read them before the lease moved): nothing twice
    writer.write(published.entries[:151], half)
    lease = writer.write(published.entries, published.last_id)  # overlapping batch: only the new half is written
    assert lease.held and lease.position == published.last_id
    assert_matches(engine, published)
    statics = [p for p in published.people() if p.static]
    assert statics  # kept as people rows (checked above), never counted


def test_counts_are_local_hours_and_days_of_the_configured_zone(engine) -> None:
    zone = ZoneInfo("Asia/Kolkata")  # UTC+05:30: local hours are not UTC hours
    writer = HistoryWriter(engine, "one", 10.0, zone)
    t = 1_764_547_200.0 + 1800  # 2025-12-01 00:30 UTC = 06:00 in Kolkata
    record = PersonRecord(camera="door", track_id=1, label="with_mask", first_seen=t + 120, last_seen=t + 130,
                          frames=3, best_box=[0, 0, 1, 1])
    writer.write([("5-0", record)], "5-0")
    with engine.connect() as conn:
        rows = {(r.resolution, r.start, r.n) for r in conn.execute(select(counts).where(counts.c.kind == PEOPLE))}
    assert rows == {(HOUR, int(t), 1), (DAY, int(t) - 6 * 3600, 1)}  # 06:00 and midnight in Kolkata


def test_one_writer_at_a_time_and_a_takeover_when_the_lease_expires(engine) -> None:
    published = fake_ids(messages(100, t0=time.time() - 600))
    first, second = HistoryWriter(engine, "first", 2.0, UTC), HistoryWriter(engine, "second", 2.0, UTC)
    assert first.hold().held
    standby = second.hold()
    assert not standby.held and standby.owner == "first"
    assert not second.write(published.entries[:50], published.entries[49][0]).held  # fenced: nothing written
    assert position(engine) is None
    first.write(published.entries[:50], published.entries[49][0])
    assert not second.hold(time.time() + 1.0).held
    taken = second.hold(time.time() + 2.5)  # `first` stopped renewing
    assert taken.held and taken.position == published.entries[49][0]
    assert not first.write(published.entries[50:], published.last_id).held  # a zombie writes nothing
    second.write(published.entries, published.last_id)
    assert_matches(engine, published)
    second.release()
    assert first.hold().held  # a released lease is free at once


def test_a_gap_is_recorded_with_the_batch_after_it(engine) -> None:
    published = fake_ids(messages(20, t0=time.time() - 60))
    writer = HistoryWriter(engine, "one", 10.0, UTC)
    writer.write(published.entries[:5], published.entries[4][0])
    writer.write(published.entries[12:], published.last_id, gap=(published.entries[4][0], published.entries[12][0]))
    with engine.connect() as conn:
        gaps = conn.execute(select(recorder_gaps.c.after, recorder_gaps.c.lost_before)).all()
    assert gaps == [(published.entries[4][0], published.entries[12][0])]
