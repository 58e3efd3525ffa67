"""`maskwatch recorder` processes against Redis db 12 and real databases: exactly once through kill -9 mid-batch
and through a PostgreSQL crash and restart; clear lines for a bad URL or an unreachable database."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest
import redis

from shared.history.database import create_history_engine
from tests.history.checks import assert_matches, position
from tests.history.conftest import messages, publish, url_text
from tests.stack.helpers import redis_url, wait_for, write_config

SECRET = "s3cr3t-pass"


def recorder_config(tmp_path: Path, db: redis.Redis, url: str, **history) -> Path:
    return write_config(tmp_path / "cams.yaml", redis_url(db), [],
                        history={"database_url": url, "batch": 100, "lease_ttl_s": 3, **history})


@pytest.mark.slow
def test_kill_9_mid_batch_loses_and_duplicates_nothing(db, services, tmp_path: Path, history_url) -> None:
    config = recorder_config(tmp_path, db, url_text(history_url))
    published = publish(db, messages(6000, t0=time.time() - 86400))
    engine = create_history_engine(history_url)
    rng, stored = random.Random(7), None
    for round_ in range(3):
        proc = services.start("recorder", "--config", str(config), name=f"recorder-{round_}")
        wait_for(lambda previous=stored: position(engine) != previous, 90, "the recorder to write a batch")
        time.sleep(rng.uniform(0.0, 0.6))  # somewhere inside a later batch
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        stored = position(engine)
        assert_matches(engine, published)  # what is in the database is exactly what the stored position covers
        if stored == published.last_id:
            break
    assert stored is not None
    more = publish(db, messages(500, t0=time.time() - 3600, first_track=6000))
    proc = services.start("recorder", "--config", str(config), name="recorder-last")
    wait_for(lambda: position(engine) == more.last_id, 120, "the recorder to catch up")
    published.entries += more.entries
    assert_matches(engine, published, published.last_id)
    assert services.stop(proc) == 0
    engine.dispose()


@pytest.mark.slow
def test_a_database_crash_and_restart_is_retried_and_caught_up_exactly_once(db, services, tmp_path: Path,
                                                                              private_pg) -> None:
    url = private_pg.create_database()
    config = recorder_config(tmp_path, db, url_text(url))
    proc = services.start("recorder", "--config", str(config), name="recorder")
    first = publish(db, messages(800, t0=time.time() - 7200))
    engine = create_history_engine(url)
    wait_for(lambda: position(engine) == first.last_id, 90, "the first entries to be recorded")
    backlog = publish(db, messages(4000, t0=time.time() - 3600, first_track=800))
    wait_for(lambda: position(engine) != first.last_id, 30, "the recorder to start on the backlog")
    private_pg.stop("immediate")  # a crash in the middle of the backlog: in-flight transactions are lost
    engine.dispose()
    during = publish(db, messages(300, t0=time.time() - 60, first_track=4800))
    wait_for(lambda: "the history database unavailable" in services.log(proc), 30, "the retry line")
    time.sleep(2)
    private_pg.start()
    wait_for(lambda: position(engine) == during.last_id, 120, "the recorder to catch up after the restart")
    published = first
    published.entries += backlog.entries + during.entries
    assert_matches(engine, published, during.last_id)
    log = services.log(proc)
    assert "is back; catching up" in log and "Traceback" not in log
    assert proc.poll() is None
    assert services.stop(proc) == 0
    engine.dispose()


def test_a_bad_database_url_is_one_clear_line(db, services, tmp_path: Path) -> None:
    config = recorder_config(tmp_path, db, f"mysql://maskwatch:{SECRET}@db/maskwatch")
    proc = services.start("recorder", "--config", str(config), name="recorder")
    assert proc.wait(60) == 2
    out = services.log(proc).strip().splitlines()
    assert out == ["error: database URL 'mysql://maskwatch:***@db/maskwatch': unsupported database 'mysql' "
                   "(use sqlite or postgresql)"]


@pytest.mark.slow
def test_an_unreachable_database_is_retried_with_one_line_each_time(db, services, tmp_path: Path) -> None:
    config = recorder_config(tmp_path, db, f"postgresql://maskwatch:{SECRET}@127.0.0.1:9/maskwatch")
    proc = services.start("recorder", "--config", str(config), name="recorder")
    wait_for(lambda: services.log(proc).count("retrying in") >= 2, 60, "two retries")
    assert services.stop(proc) == 0
    log = services.log(proc)
    assert SECRET not in log and "Traceback" not in log
    retries = [line for line in log.splitlines() if "retrying in" in line]
    assert all("the history database unavailable (connection failed" in line for line in retries)


def test_entries_trimmed_while_the_recorder_was_away_are_recorded_as_a_gap(db, tmp_path: Path, caplog) -> None:
    from sqlalchemy import select
    from sqlalchemy.engine import URL

    from services.recorder.service import RecorderService
    from shared import keys
    from shared.detections import stream_id
    from shared.history.config import HistoryConfig
    from shared.history.schema import recorder_gaps

    url = URL.create("sqlite", database=str(tmp_path / "history.sqlite3"))
    engine = create_history_engine(url, writer=True)
    service = RecorderService(db, engine, url, HistoryConfig(batch=50), "gap-test")
    first = publish(db, messages(40, t0=time.time() - 600))
    service.prepare()
    while position(engine) != first.last_id:
        service.step(block_ms=10)
    more = publish(db, messages(300, t0=time.time() - 300, first_track=40))
    db.xtrim(keys.RESULTS_STREAM, maxlen=100)  # the recorder was away longer than the stream keeps
    oldest = stream_id(db.xrange(keys.RESULTS_STREAM, count=1)[0][0])
    kept = [(i, m) for i, m in more.entries if stream_id(i) >= oldest]
    while position(engine) != more.last_id:
        service.step(block_ms=10)
    with engine.connect() as conn:
        gaps = conn.execute(select(recorder_gaps.c.after, recorder_gaps.c.lost_before)).all()
    assert gaps == [(first.last_id, kept[0][0])]
    assert "were trimmed before they were recorded" in caplog.text
    first.entries += kept
    assert_matches(engine, first, more.last_id)  # everything still in the stream, once
    engine.dispose()


@pytest.mark.slow
def test_two_replicas_write_once_and_the_standby_takes_over_a_killed_writer(db, services, tmp_path: Path,
                                                                              history_url) -> None:
    config = recorder_config(tmp_path, db, url_text(history_url))
    engine = create_history_engine(history_url)
    first = services.start("recorder", "--config", str(config), "--name", "first", name="first")
    second = services.start("recorder", "--config", str(config), "--name", "second", name="second")
    published = publish(db, messages(1500, t0=time.time() - 7200))
    wait_for(lambda: position(engine) == published.last_id, 90, "the first entries to be recorded")
    logs = {"first": services.log(first), "second": services.log(second)}
    writer = next(name for name, log in logs.items() if "writing the history" in log)
    standby = "second" if writer == "first" else "first"
    wait_for(lambda: "standing by (first writes" in services.log(second) or
             "standing by (second writes" in services.log(first), 30, "the other replica to stand by")
    os.kill({"first": first, "second": second}[writer].pid, signal.SIGKILL)
    more = publish(db, messages(500, t0=time.time() - 600, first_track=1500))
    wait_for(lambda: position(engine) == more.last_id, 90, "the standby to take over and catch up")
    assert "writing the history" in services.log({"first": first, "second": second}[standby])
    published.entries += more.entries
    assert_matches(engine, published, more.last_id)
    engine.dispose()


def test_stack_up_runs_without_the_recorder_when_the_database_url_is_bad(capsys) -> None:
    from services.cli import _history_usable
    from shared.config import Config

    bad = Config.model_validate({"history": {"database_url": "oracle://u:p4ss@db/x"}})
    assert _history_usable(bad, "cams.yaml") is False
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["warning: database URL 'oracle://u:***@db/x': unsupported database 'oracle' (use sqlite or "
                   "postgresql); the stack runs without the recorder (no history is kept)"]
    assert _history_usable(Config(), "cams.yaml") is True
