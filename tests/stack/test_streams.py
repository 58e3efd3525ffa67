"""Redis helpers: frame messages, consumer groups, retry with backoff."""

from __future__ import annotations

import logging
import threading
import time

import pytest
import redis

from shared import keys
from shared.streams import Backoff, FrameMessage, add_frame, connect, ensure_group, retry_redis
from tests.stack.helpers import PRIVATE_PORTS, free_port


def test_frame_message_round_trip(capture_db: redis.Redis) -> None:
    message = FrameMessage("cam-1", 7, 1700000000.123456, 640, 360, b"\xff\xd8jpeg\xff\xd9")
    for _ in range(250):
        add_frame(capture_db, message, maxlen=5)
    entries = capture_db.xrange(keys.frames_stream("cam-1"))
    assert FrameMessage.from_fields(entries[-1][1]) == message
    assert 5 <= len(entries) <= 150  # trimmed approximately (whole radix-tree nodes of 100 entries)


@pytest.mark.parametrize("fields, message", [
    ({b"camera": b"c", b"frame": b"1"}, "frame message lacks field b'ts'"),
    ({b"camera": b"c", b"frame": b"x", b"ts": b"1", b"width": b"1", b"height": b"1", b"jpeg": b""},
     "malformed frame message"),
])
def test_malformed_frame_message(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FrameMessage.from_fields(fields)


def test_ensure_group_is_idempotent(capture_db: redis.Redis) -> None:
    stream = keys.frames_stream("g")
    assert ensure_group(capture_db, stream) is True
    assert ensure_group(capture_db, stream) is False
    assert [g["name"] for g in capture_db.xinfo_groups(stream)] == [keys.DETECTOR_GROUP.encode()]


def test_backoff_grows_to_its_cap_and_resets() -> None:
    backoff = Backoff(base=0.1, cap=1.0)
    delays = [backoff.delay() for _ in range(8)]
    assert 0.08 <= delays[0] <= 0.1
    assert delays[3] > delays[0] * 4
    assert all(d <= 1.0 for d in delays) and delays[-1] >= 0.8
    backoff.reset()
    assert backoff.delay() <= 0.1


def test_retry_redis_waits_for_redis_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    dead = connect(f"redis://127.0.0.1:{free_port(PRIVATE_PORTS)}/0")
    stop = threading.Event()
    threading.Timer(0.6, stop.set).start()
    started = time.monotonic()
    assert retry_redis(dead.ping, "test", stop=stop, backoff=Backoff(base=0.05, cap=0.1)) is None
    assert time.monotonic() - started < 3
    assert "test: redis unavailable (Error 111 connecting to 127.0.0.1" in caplog.text
    calls = iter([redis.ConnectionError("down"), redis.TimeoutError("slow"), "ok"])

    def flaky() -> str:
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    assert retry_redis(flaky, "flaky", backoff=Backoff(base=0.01, cap=0.02)) == "ok"
    assert "flaky: redis is back" in caplog.text
