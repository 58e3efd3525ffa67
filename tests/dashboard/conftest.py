"""Fixtures for the dashboard tests: Redis databases 7-9 (6 is the end-to-end stack's), a real
`maskwatch dashboard` process, and results written the way the detector writes them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from shared import keys
from shared.schemas import Face, FrameResult
from tests.conftest import TEST_REDIS_PORT

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
REDIS_HOST = f"127.0.0.1:{TEST_REDIS_PORT}"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_db(db: int) -> Iterator[str]:
    """Flush a reserved database before and after use; skip when Redis is not running."""
    url = f"redis://{REDIS_HOST}/{db}"
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip(f"no Redis at {REDIS_HOST}")
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def redis_url_7() -> Iterator[str]:
    """Redis database 7, empty."""
    yield from redis_db(7)


@pytest.fixture(scope="module")
def redis_url_8() -> Iterator[str]:
    """Redis database 8, empty at the start and end of a module (the API server's database)."""
    yield from redis_db(8)


@pytest.fixture(scope="module")
def redis_url_9() -> Iterator[str]:
    """Redis database 9, empty at the start and end of a module."""
    yield from redis_db(9)


@dataclass
class Dashboard:
    """A running `maskwatch dashboard` process."""

    url: str
    process: subprocess.Popen
    log: Path

    def client(self, **kwargs) -> httpx.Client:
        """An HTTP client for this server."""
        return httpx.Client(base_url=self.url, timeout=30.0, **kwargs)


def start_dashboard(store_root: Path, redis_url: str, log: Path, *extra: str, timeout: float = 60.0,
                    keep_api_key: bool = False) -> Dashboard:
    """Start `maskwatch dashboard` on a free port and wait until /api/v1/health answers."""
    port = free_port()
    env = {**os.environ, "MASKWATCH_MODELS": str(store_root), "OMP_NUM_THREADS": "1"}
    if not keep_api_key:
        env.pop("MASKWATCH_API_KEY", None)
        env.pop("MASKWATCH_API_KEY_FILE", None)
    cmd = [sys.executable, "-m", "maskwatch.cli", "dashboard", "--host", "127.0.0.1", "--port", str(port),
           "--redis", redis_url, *extra]
    fh = log.open("w")
    process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT)
    fh.close()
    server = Dashboard(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dashboard exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{server.url}/api/v1/health", timeout=2.0).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_process(process)
    raise RuntimeError(f"dashboard did not answer within {timeout}s:\n{log.read_text()}")


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture(scope="module")
def dashboard(tiny_store, redis_url_8: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """A dashboard process on Redis database 8 with the tiny model store."""
    server = start_dashboard(tiny_store.root, redis_url_8, tmp_path_factory.mktemp("dash") / "dashboard.log")
    yield server
    stop_process(server.process)


def frame_result(camera: str, frame: int, labels: list[str], captured_at: float | None = None,
                 latency: float = 0.08, model_version: str = "tiny-test+retinaface-stock") -> FrameResult:
    """A realistic detector result with one face per label, laid out left to right."""
    captured_at = time.time() if captured_at is None else captured_at
    faces = [
        Face(box=[20 + 90 * i, 40, 90 + 90 * i, 130], score=0.97, label=label, confidence=0.9,
             probs={name: (0.9 if name == label else 0.05) for name in ("with_mask", "without_mask",
                                                                         "mask_incorrect")})
        for i, label in enumerate(labels)
    ]
    return FrameResult(source=camera, camera=camera, frame=frame, width=640, height=360, faces=faces,
                       captured_at=captured_at, processed_at=captured_at + latency, model_version=model_version)


def publish(client: redis.Redis, result, jpeg: bytes | None = None) -> None:
    """What the detector does with a result: results stream entry, latest result and (optional) JPEG."""
    client.xadd(keys.RESULTS_STREAM, {"data": result.to_json()}, maxlen=10_000, approximate=True)
    if jpeg is not None and result.type == "frame":
        pipe = client.pipeline(transaction=True)
        pipe.set(keys.latest_result(result.camera), result.to_json())
        pipe.set(keys.latest_jpeg(result.camera), jpeg)
        pipe.execute()


def register_camera(client: redis.Redis, camera: str, status: str = "live", **counters: float) -> None:
    """What the capture service writes for a camera: cameras set membership and its state hash."""
    client.sadd(keys.CAMERAS_SET, camera)
    client.hset(keys.camera_state(camera), mapping={
        "status": status, "url": f"rtsp://cam/{camera}", "fps": 10, "last_frame_time": time.time(), "error": "",
        "frames_captured": 0, "frames_dropped": 0, **counters,
    })


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium driven by Playwright."""
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        yield chromium
        chromium.close()
