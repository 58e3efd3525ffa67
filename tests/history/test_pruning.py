"""Retention on SQLite and PostgreSQL: old people, thumbnails, crossings, alerts and counts go in small batches."""

from __future__ import annotations

import time
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from services.recorder.pruning import DAY_S, Pruner
from services.recorder.writer import HistoryWriter
from shared.history.config import HistoryConfig
from shared.history.schema import alerts, counts, crossings, people, thumbnails
from tests.history.conftest import Published, messages


def fill(engine, now: float) -> None:
    """People etc. spread over 120 days, one entry every 7 s of each of 10 slices of 12 days."""
    writer = HistoryWriter(engine, "one", 10.0, ZoneInfo("UTC"))
    entries = []
    for day in range(0, 120, 12):
        entries += messages(100, t0=now - (day + 0.5) * DAY_S, first_track=day * 1000)
    published = Published([(f"{1000 + k}-0", m) for k, m in enumerate(entries)])
    writer.write(published.entries, published.last_id)


def oldest(engine, column) -> float:
    with engine.connect() as conn:
        return conn.execute(select(func.min(column))).scalar()


def total(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def test_pruning_keeps_the_configured_days_and_deletes_in_small_batches(engine) -> None:
    now = time.time()
    fill(engine, now)
    before = {t.name: total(engine, t) for t in (people, thumbnails, crossings, alerts, counts)}
    config = HistoryConfig(keep_people_days=90, keep_thumbnails_days=30, keep_counts_days=100, prune_batch=7)
    pruner = Pruner(engine, config)
    assert pruner.due(now)
    steps = []
    while pruner.active:
        steps.append(pruner.step(now))
    assert max(steps) <= 7 or max(steps) == steps[-2]  # rows go 7 at a time (count rows: one day per step)
    assert not pruner.due(now + 10) and pruner.due(now + config.prune_interval_s)
    assert oldest(engine, people.c.first_seen) >= now - 90 * DAY_S
    assert oldest(engine, crossings.c.time) >= now - 90 * DAY_S and oldest(engine, alerts.c.time) >= now - 90 * DAY_S
    assert oldest(engine, counts.c.start) >= now - 100 * DAY_S - DAY_S
    with engine.connect() as conn:
        with_thumbnail = conn.execute(select(func.min(people.c.first_seen))
                                      .join_from(people, thumbnails, people.c.id == thumbnails.c.person_id)).scalar()
        without = conn.execute(select(func.count()).select_from(people).outerjoin(
            thumbnails, people.c.id == thumbnails.c.person_id).where(thumbnails.c.person_id.is_(None))).scalar()
    assert with_thumbnail >= now - 30 * DAY_S
    assert without > 0  # people between 30 and 90 days old are kept without their thumbnails
    after = {t.name: total(engine, t) for t in (people, thumbnails, crossings, alerts, counts)}
    assert 0 < after["people"] < before["people"] and after["thumbnails"] < after["people"]
    assert after["counts"] < before["counts"]


def test_zero_keeps_forever(engine) -> None:
    now = time.time()
    fill(engine, now)
    before = {t.name: total(engine, t) for t in (people, thumbnails, crossings, alerts, counts)}
    pruner = Pruner(engine, HistoryConfig(keep_people_days=0, keep_thumbnails_days=0, keep_counts_days=0))
    assert pruner.due(now) and pruner.step(now) == 0 and not pruner.active
    assert {t.name: total(engine, t) for t in (people, thumbnails, crossings, alerts, counts)} == before
