"""Fixtures for the streaming stack: Redis databases 1-5, private redis-servers, service processes."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from services.capture.service import CaptureService
from shared import keys
from shared.config import load_config
from shared.streams import FrameMessage
from tests.conftest import flushed_redis
from tests.stack.helpers import PRIVATE_PORTS, REDIS_SERVER, PrivateRedis, Services, fields_text, free_port

RunCapture = Callable[[Path], CaptureService]


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
def run_capture() -> Iterator[RunCapture]:
    """Runs CaptureService in a thread of this process; stopped (and joined) at teardown."""
    running: list[tuple[threading.Event, threading.Thread, CaptureService]] = []

    def start(config_path: Path) -> CaptureService:
        service = CaptureService(config_path, load_config(config_path))
        stop = threading.Event()
        thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
        thread.start()
        running.append((stop, thread, service))
        return service

    yield start
    for stop, thread, _service in running:
        stop.set()
        thread.join(20)
        assert not thread.is_alive(), "capture service did not stop within 20s"


def frames(client: redis.Redis, camera: str) -> list[FrameMessage]:
    """Every frame message in a camera's stream, oldest first."""
    return [FrameMessage.from_fields(f) for _id, f in client.xrange(keys.frames_stream(camera))]


def state(client: redis.Redis, camera: str) -> dict[str, str]:
    """A camera's state hash as str -> str."""
    return fields_text(client, keys.camera_state(camera))


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Services]:
    """Launcher for `maskwatch` service processes that need no models (capture); all killed at the end."""
    env = {**os.environ, "MASKWATCH_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}
    env.pop("MASKWATCH_REDIS_URL", None)
    launcher = Services(tmp_path, env)
    yield launcher
    launcher.close()
