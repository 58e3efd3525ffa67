"""Fixtures for the streaming stack: Redis databases 1-5, private redis-servers, service processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import flushed_redis
from tests.stack.helpers import PRIVATE_PORTS, REDIS_SERVER, PrivateRedis, free_port


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

