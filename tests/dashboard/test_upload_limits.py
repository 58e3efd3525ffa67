"""Upload cost is bounded: a pixel budget checked from the header, and a wait queue that answers 503 when full."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from services.dashboard.upload_queue import UploadBusy, UploadQueue
from tests.dashboard.conftest import Dashboard, start_dashboard, stop_process


def hostile_png(side: int = 7000) -> bytes:
    """A few KB that decode to side x side pixels (a 1-bit PNG of one colour)."""
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def guarded(tiny_store, redis_url_9: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """A dashboard with the default pixel budget and queue."""
    dash = start_dashboard(tiny_store.root, redis_url_9, tmp_path_factory.mktemp("limits") / "dashboard.log")
    yield dash
    stop_process(dash.process)


def test_a_burst_of_decompression_bombs_is_refused_from_the_header(guarded: Dashboard,
                                                                   scene_photos: list[Path]) -> None:
    bomb = hostile_png()
    assert len(bomb) < 10_000

    async def burst() -> tuple[list[int], int, float]:
        async with httpx.AsyncClient(base_url=guarded.url, timeout=30) as client:
            bombs = [asyncio.create_task(client.post("/api/v1/detect", files={"file": ("b.png", bomb, "image/png")}))
                     for _ in range(20)]
            await asyncio.sleep(0.05)
            started = time.monotonic()
            photo = await client.post("/api/v1/detect", files={
                "file": (scene_photos[0].name, scene_photos[0].read_bytes(), "image/jpeg")})
            took = time.monotonic() - started
            return [r.status_code for r in await asyncio.gather(*bombs)], photo.status_code, took

    statuses, photo_status, took = asyncio.run(burst())
    assert set(statuses) == {413}
    assert photo_status == 200 and took < 10  # generous on a shared machine: the benchmark measures the 2 s target
    with guarded.client() as client:
        detail = client.post("/api/v1/detect", files={"file": ("b.png", bomb, "image/png")}).json()["detail"]
    assert detail == "image too large: 7000x7000 pixels exceeds the limit of 12000000"


def test_the_wait_queue_is_bounded() -> None:
    async def scenario() -> tuple[str, dict[str, str]]:
        queue = UploadQueue(workers=1, waiting=1)
        release = asyncio.Event()

        async def hold() -> None:
            async with queue.turn():
                await release.wait()

        first = asyncio.create_task(hold())
        await asyncio.sleep(0)
        second = asyncio.create_task(hold())  # waits for the worker
        await asyncio.sleep(0)
        assert queue.waiting == 1
        with pytest.raises(UploadBusy) as busy:
            async with queue.turn():
                pass
        release.set()
        await asyncio.gather(first, second)
        assert queue.waiting == 0 and queue.limiter.available_tokens == 1
        return str(busy.value), busy.value.headers

    message, headers = asyncio.run(scenario())
    assert message.startswith("busy: 1 photo(s) already waiting") and headers == {"Retry-After": "2"}


def test_a_full_queue_answers_503_with_retry_after(tiny_store, redis_url_9: str, tmp_path: Path,
                                                   scene_photos: list[Path]) -> None:
    dash = start_dashboard(tiny_store.root, redis_url_9, tmp_path / "dashboard.log", "--upload-queue", "0")
    photo = scene_photos[0].read_bytes()
    try:
        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=dash.url, timeout=60) as client:
                return await asyncio.gather(*(client.post("/api/v1/detect", files={"file": ("p.jpg", photo,
                                                                                            "image/jpeg")})
                                              for _ in range(8)))

        responses = asyncio.run(burst())
    finally:
        stop_process(dash.process)
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 503} and 200 in statuses and 503 in statuses, statuses
    busy = next(r for r in responses if r.status_code == 503)
    assert busy.headers["retry-after"] == "2" and busy.json()["detail"].startswith("busy:")
