"""Fixtures of the MQTT bridge tests: Redis database 12, private Mosquitto brokers, subscribers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import flushed_redis
from tests.mqtt.broker import Broker, Subscriber

DB = 12


@pytest.fixture
def mqtt_db() -> Iterator[redis.Redis]:
    """Redis database 12, flushed."""
    yield from flushed_redis(DB)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A running anonymous mosquitto of our own."""
    server = Broker(tmp_path / "broker")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def subscribe() -> Iterator[Callable[..., Subscriber]]:
    """Opens subscribers (`subscribe(port, topics, ...)`); all are closed at the end."""
    opened: list[Subscriber] = []

    def open_one(port: int, topics: list[str], **kwargs) -> Subscriber:
        sub = Subscriber(port, topics, **kwargs)
        opened.append(sub)
        return sub

    yield open_one
    for sub in opened:
        sub.close()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator:
    """Launcher for `maskwatch` processes (no model store needed); all are killed at the end."""
    import os

    from tests.stack.helpers import Services

    env = {**os.environ, "MASKWATCH_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}
    env.pop("MASKWATCH_REDIS_URL", None)
    env.pop("MASKWATCH_MQTT_PASSWORD", None)
    runner = Services(tmp_path, env)
    yield runner
    runner.close()


@pytest.fixture
def password_broker(tmp_path: Path) -> Iterator[Broker]:
    """A running mosquitto of our own that accepts only USER with PASSWORD (tests/mqtt/broker.py)."""
    server = Broker(tmp_path / "broker", password=True)
    server.start()
    yield server
    server.stop()
