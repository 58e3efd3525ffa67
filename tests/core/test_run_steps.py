"""The services' shared main loop: steps until stopped, one line and a backoff wait per Redis error."""

from __future__ import annotations

import logging
import threading

import pytest
import redis

from shared.streams import failure_kind, run_steps


def test_errors_are_logged_retried_and_a_handled_one_skips_the_wait(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "shared.streams")
    stop = threading.Event()
    script = [redis.ConnectionError("refused"), redis.ResponseError("NOGROUP gone"), redis.ResponseError("WRONGTYPE"),
              None, None]
    seen: list[str] = []

    def step() -> None:
        outcome = script.pop(0)
        if not script:
            stop.set()
        if outcome is not None:
            raise outcome

    def on_error(exc: redis.RedisError) -> bool:
        seen.append(failure_kind(exc))
        return "NOGROUP" in str(exc)

    run_steps(step, stop, "worker w1", on_error=on_error, cap=0.01)
    assert not script and seen == ["unavailable", "error", "error"]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2  # the NOGROUP one was handled: no line, no wait
    assert lines[0].startswith("worker w1: redis unavailable (refused); retrying in")
    assert lines[1].startswith("worker w1: redis error (WRONGTYPE); retrying in")


def test_a_set_stop_runs_no_step() -> None:
    stop = threading.Event()
    stop.set()
    run_steps(lambda: pytest.fail("stepped"), stop, "x")
