"""Upload cost is bounded: a pixel budget checked from the header, and a wait queue that answers 503 when full."""

from __future__ import annotations

import asyncio
import io
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import pytest
from PIL import Image

from services.dashboard.upload_queue import UploadBusy, UploadQueue
from tests.dashboard.conftest import Dashboard, start_dashboard, stop_process
from tests.media import PHONE_SCENE, assert_same_faces, phone_photo


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


def test_the_wait_queue_is_bounded_and_cheap_small_photos_have_an_express_lane() -> None:
    async def scenario() -> tuple[str, dict[str, str], list[str]]:
        queue = UploadQueue(workers=1, waiting=1, express=1, small_bytes=1000, express_pixels=100)
        release, order = asyncio.Event(), []

        async def hold(name: str, size: int, pixels: int) -> None:
            async with queue.admit(size) as place, place.turn(pixels):
                order.append(name)
                await release.wait()

        first = asyncio.create_task(hold("big-1", 10**7, 10**6))
        await asyncio.sleep(0)
        second = asyncio.create_task(hold("big-2", 10**7, 10**6))  # admitted, waits for the worker
        await asyncio.sleep(0)
        assert queue.waiting == 1 and queue.admitted == 2
        with pytest.raises(UploadBusy) as busy:  # refused before its body is read
            async with queue.admit(10**7):
                pass
        with pytest.raises(UploadBusy):  # small but costly to decode (a dense PNG): needs a regular place
            async with queue.admit(500) as place, place.turn(10**6):
                pass
        cheap = asyncio.create_task(hold("cheap", 500, 50))  # the queue is full, yet a normal photo goes at once
        await asyncio.sleep(0.01)
        assert order == ["big-1", "cheap"]
        with pytest.raises(UploadBusy):  # the express lane is bounded too
            async with queue.admit(500) as place, place.turn(50):
                pass
        release.set()
        await asyncio.gather(first, second, cheap)
        assert queue.waiting == 0 and queue.admitted == queue.express_admitted == queue.reading_bytes == 0
        assert queue.limiter.available_tokens == 1
        return str(busy.value), busy.value.headers, order

    message, headers, order = asyncio.run(scenario())
    assert message.startswith("busy: 1 photo(s) already waiting") and headers == {"Retry-After": "2"}
    assert order == ["big-1", "cheap", "big-2"]


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


def test_an_8000x6000_phone_jpeg_is_answered_with_faces_in_its_pixels(guarded: Dashboard,
                                                                     scene_photos: list[Path]) -> None:
    scene = scene_photos[PHONE_SCENE]
    phone = phone_photo(cv2.imread(str(scene)))
    with guarded.client() as client:
        got = client.post("/api/v1/detect", files={"file": ("phone.jpg", phone.jpeg, "image/jpeg")})
        own = client.post("/api/v1/detect", files={"file": (scene.name, scene.read_bytes(), "image/jpeg")})
    assert got.status_code == 200, got.text  # 413 before: the 12-megapixel budget refused it
    result = got.json()
    assert (result["width"], result["height"]) == (8000, 6000)
    expected = [[f["box"][0] * phone.scale, f["box"][1] * phone.scale + phone.top, f["box"][2] * phone.scale,
                 f["box"][3] * phone.scale + phone.top] for f in own.json()["faces"]]
    assert_same_faces([f["box"] for f in result["faces"]], expected)


def _stalled_upload(url: str, declared: int = 10 * 2**20, sent: bytes = b"") -> socket.socket:
    """A raw connection that declares a `declared`-byte multipart upload and sends only `sent` of it."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(f"POST /api/v1/detect HTTP/1.1\r\nHost: {host}\r\nContent-Length: {declared}\r\n"
                 "Content-Type: multipart/form-data; boundary=xyz\r\n\r\n".encode() + sent)
    return sock


def _status(sock: socket.socket) -> int:
    head = sock.recv(4096).decode(errors="replace")
    return int(head.split(" ", 2)[1]) if head.startswith("HTTP/1.1 ") else -1


def test_a_full_queue_answers_503_before_reading_the_body_and_stalled_bodies_time_out(
        tiny_store, redis_url_9: str, tmp_path: Path) -> None:
    config = tmp_path / "cams.yaml"
    config.write_text("dashboard: {upload_timeout: 4}\n")
    dash = start_dashboard(tiny_store.root, redis_url_9, tmp_path / "dashboard.log", "--upload-queue", "0",
                           "--config", str(config))
    part = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n' + b"\xff" * 1000
    try:
        holders = [_stalled_upload(dash.url, sent=part) for _ in range(2)]  # both workers' places, bodies unfinished
        time.sleep(1.0)
        late = _stalled_upload(dash.url)  # not one byte of its 10 MB body sent
        started = time.monotonic()
        assert _status(late) == 503  # answered at once: it was never going to be read
        assert time.monotonic() - started < 3.5  # before the holders' timeout frees a place
        assert [_status(sock) for sock in holders] == [408, 408]  # the stalled bodies were cut off
        with dash.client() as client:  # and their places are free again
            response = client.post("/api/v1/detect", files={"file": ("x.txt", b"not an image", "text/plain")})
        assert response.status_code == 415
    finally:
        for sock in [*holders, late]:
            sock.close()
        stop_process(dash.process)
