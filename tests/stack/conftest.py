"""Fixtures for the streaming stack: Redis databases 1-5, private redis-servers, service processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import flushed_redis
from tests.stack.helpers import PRIVATE_PORTS, REDIS_SERVER, PrivateRedis, Services, free_port


def _db(number: int) -> Iterator[redis.Redis]:
    yield from flushed_redis(number)


@pytest.fixture
def capture_db() -> Iterator[redis.Redis]:
    """Redis database 1, flushed (capture tests)."""
    yield from _db(1)


@pytest.fixture
def detector_db() -> Iterator[redis.Redis]:
    """Redis database 2, flushed (detector tests)."""
    yield from _db(2)


@pytest.fixture
def stack_db() -> Iterator[redis.Redis]:
    """Redis database 3, flushed (launcher tests)."""
    yield from _db(3)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A running private redis-server on a port in 6390-6399, killed at the end."""
    if not Path(REDIS_SERVER).exists():
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(free_port(PRIVATE_PORTS), tmp_path / "redis")
    server.folder.mkdir()
    server.start()
    yield server
    server.kill()


@pytest.fixture
def services(tmp_path: Path, tiny_store) -> Iterator[Services]:
    """Launcher for `maskwatch` service processes using the tiny model store; all are killed at the end."""
    env = {**os.environ, "MASKWATCH_MODELS": str(tiny_store.root), "MASKWATCH_LOG_LEVEL": "INFO",
           "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("MASKWATCH_REDIS_URL", None)
    runner = Services(tmp_path, env)
    yield runner
    runner.close()
