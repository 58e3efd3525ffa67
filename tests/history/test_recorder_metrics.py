"""The recorder's health on a dashboard's /metrics: a real `maskwatch recorder` writing a SQLite file, a real
`maskwatch dashboard` reading its figures from Redis db 12; a locked database shows as errors and lag."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared import keys
from shared.recorder_health import RecorderHealth, entries_after, read_recorders
from shared.schemas import AlertRecord, LineCrossing, PersonRecord
from tests.dashboard.conftest import Dashboard, start_dashboard, stop_process
from tests.history.conftest import messages, publish
from tests.stack.helpers import redis_url, wait_for, write_config

NAME = "recorder-metrics"


def scrape(server: Dashboard) -> dict[tuple[str, tuple], float]:
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def figure(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted({"recorder": NAME, **labels}.items()))))


@pytest.mark.slow
def test_recorder_figures_reach_metrics_and_a_locked_database_shows_as_errors_and_lag(
        db, services, tiny_store, tmp_path: Path) -> None:
    sqlite_file = tmp_path / "history.sqlite3"
    config = write_config(tmp_path / "cams.yaml", redis_url(db), [],
                          history={"database_url": f"sqlite:///{sqlite_file}", "batch": 100, "lease_ttl_s": 3})
    published = publish(db, messages(600, t0=time.time() - 3600))
    expected = {"people": len(published.of(PersonRecord)), "crossings": len(published.of(LineCrossing)),
                "alerts": len(published.of(AlertRecord))}
    assert all(expected.values())
    recorder = services.start("recorder", "--config", str(config), "--name", NAME, name="recorder")
    dashboard = start_dashboard(tiny_store.root, redis_url(db), tmp_path / "dashboard.log")
    try:
        def written() -> bool:
            samples = scrape(dashboard)
            return all(figure(samples, "maskwatch_recorder_rows_total", kind=k) == n for k, n in expected.items()) \
                and figure(samples, "maskwatch_recorder_lag_entries") == 0

        wait_for(written, 60, "the rows written and no lag on /metrics")
        samples = scrape(dashboard)
        assert figure(samples, "maskwatch_recorder_writing") == 1
        assert time.time() - 60 < figure(samples, "maskwatch_recorder_last_write_timestamp_seconds") <= time.time()
        assert figure(samples, "maskwatch_recorder_errors_total", source="database") == 0
        assert figure(samples, "maskwatch_recorder_errors_total", source="redis") == 0

        # another process holds the SQLite write lock: the recorder's batch fails (after its busy timeout) and
        # is retried; /metrics shows the error and the entries waiting
        lock = sqlite3.connect(sqlite_file, isolation_level=None, timeout=30)
        lock.execute("BEGIN EXCLUSIVE")
        more = publish(db, messages(250, t0=time.time() - 60, first_track=600))
        try:
            wait_for(lambda: (figure(scrape(dashboard), "maskwatch_recorder_errors_total", source="database") or 0)
                     >= 1, 60, "a database error on /metrics")
            wait_for(lambda: figure(scrape(dashboard), "maskwatch_recorder_lag_entries") == 250, 30,
                     "the 250 waiting entries as lag")
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        people = expected["people"] + len(more.of(PersonRecord))
        wait_for(lambda: figure(scrape(dashboard), "maskwatch_recorder_lag_entries") == 0
                 and figure(scrape(dashboard), "maskwatch_recorder_rows_total", kind="people") == people,
                 90, "the recorder to catch up after the lock")
        assert "Traceback" not in services.log(recorder)
        assert services.stop(recorder) == 0
        wait_for(lambda: figure(scrape(dashboard), "maskwatch_recorder_writing") is None, 10,
                 "a stopped recorder's figures to go")
    finally:
        stop_process(dashboard.process)


def test_entries_after_counts_past_a_page_and_figures_expire(db) -> None:
    ids = [i.decode() for i in (db.xadd(keys.RESULTS_STREAM, {"data": "{}"}) for _ in range(2345))]
    assert entries_after(db, "0-0") == 2345
    assert entries_after(db, ids[344]) == 2000 and entries_after(db, ids[-1]) == 0
    health = RecorderHealth("r1")
    health.wrote({"people": 3, "alerts": 1}, when=1000.0)
    health.failed("database")
    health.publish(db, now=time.time())
    figures = read_recorders(db)["r1"]
    assert figures.rows == {"people": 3, "crossings": 0, "alerts": 1} and figures.errors["database"] == 1
    assert figures.last_write == 1000.0 and figures.lag is None and not figures.writing
    assert read_recorders(db, now=time.time() + 60) == {}  # gone once its hash would have expired
    health.remove(db)
    assert read_recorders(db) == {} and not db.exists(keys.recorder_health("r1"))
