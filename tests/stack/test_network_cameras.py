"""Capture from network cameras for real: a GStreamer RTSP server with an H.264 clip, and an MJPEG-over-HTTP one.

Each camera goes live, turns `retrying` when the server dies, is live again within the backoff when it
comes back, and a camera that keeps the connection open but stops sending is caught by the read timeout.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import redis

from shared.imaging import decode_image
from tests.media import MjpegServer
from tests.rtsp import RtspServer, numbered_frames, require_gst_rtsp, write_h264_clip
from tests.stack.conftest import RunCapture, frames, state
from tests.stack.helpers import free_port, redis_url, wait_for, write_config

# short timeouts so that the outages are noticed quickly; reconnect_max bounds the backoff
CAPTURE = {"reconnect_max": 1, "open_timeout": 2, "read_timeout": 1}
BACKOFF_BOUND_S = 10  # reconnect_max + the open handshake + a frame, with room for a busy machine


@pytest.fixture(scope="module")
def h264_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 s of 160x120 numbered frames at 10 fps as H.264 (every RTSP client gets it from the start)."""
    require_gst_rtsp()
    return write_h264_clip(tmp_path_factory.mktemp("rtsp") / "clip.mp4", numbered_frames(50), count=600)


def _status(client: redis.Redis, camera: str, status: str, timeout: float, what: str) -> dict[str, str]:
    return wait_for(lambda: (s := state(client, camera)).get("status") == status and s, timeout, what)


def _live_again(client: redis.Redis, camera: str, before: int) -> float:
    """Seconds until the camera is live again and sending new frames."""
    started = time.monotonic()
    _status(client, camera, "live", BACKOFF_BOUND_S, "the camera to be live again within the backoff")
    wait_for(lambda: len(frames(client, camera)) >= before + 3, BACKOFF_BOUND_S, "new frames after reconnecting")
    return time.monotonic() - started


@pytest.mark.slow
def test_rtsp_camera_killed_and_restarted(tmp_path: Path, h264_clip: Path, capture_db: redis.Redis,
                                          run_capture: RunCapture) -> None:
    server = RtspServer(h264_clip, free_port(range(18554, 18654)), tmp_path / "rtsp.log").start()
    url = server.url.replace("rtsp://", "rtsp://admin:hunter2@")  # the server ignores credentials
    config = write_config(tmp_path / "cams.yaml", redis_url(capture_db),
                          [{"id": "gate", "url": url, "fps": 5}], capture=CAPTURE)
    try:
        run_capture(config)
        wait_for(lambda: len(frames(capture_db, "gate")) >= 5, 30, "frames from the RTSP camera")
        live = state(capture_db, "gate")
        assert live["status"] == "live" and live["error"] == ""
        assert live["url"] == server.url.replace("rtsp://", "rtsp://***@")
        image = decode_image([m for m in frames(capture_db, "gate") if not m.still][-1].jpeg)
        assert image.shape == (120, 160, 3)
        band = image[12:28].astype(int)
        assert (band[:, :, 2] - band[:, :, 0]).max() > 100  # the clip's red square, decoded from H.264

        server.kill()
        down = _status(capture_db, "gate", "retrying", 15, "the dead server to be noticed")
        assert "hunter2" not in down["error"] and "\n" not in down["error"]
        cut_at = len(frames(capture_db, "gate"))
        time.sleep(2)  # reconnect attempts against a refused port
        assert len(frames(capture_db, "gate")) <= cut_at + 1
        assert state(capture_db, "gate")["status"] == "retrying"

        server.start()
        assert _live_again(capture_db, "gate", cut_at) < BACKOFF_BOUND_S
        got = frames(capture_db, "gate")
        numbers = [m.frame for m in got]  # numbering continues after the outage; frames of a burst (the
        assert numbers == sorted(set(numbers))  # stream's buffered start) replaced before publishing count dropped
        counts = state(capture_db, "gate")
        assert int(counts["frames_captured"]) >= numbers[-1]
        assert int(counts["frames_captured"]) - int(counts.get("frames_dropped", 0)) >= len(got)
    finally:
        server.kill()


@pytest.mark.slow
def test_rtsp_camera_that_stops_sending_is_reconnected(tmp_path: Path, h264_clip: Path, capture_db: redis.Redis,
                                                       run_capture: RunCapture) -> None:
    server = RtspServer(h264_clip, free_port(range(18554, 18654)), tmp_path / "rtsp.log").start()
    config = write_config(tmp_path / "cams.yaml", redis_url(capture_db),
                          [{"id": "hall", "url": server.url, "fps": 5}], capture=CAPTURE)
    try:
        run_capture(config)
        wait_for(lambda: len(frames(capture_db, "hall")) >= 3, 30, "frames from the RTSP camera")
        server.freeze()  # the TCP connection stays open, nothing more arrives
        frozen_at = time.monotonic()
        down = _status(capture_db, "hall", "retrying", 20, "the read timeout to notice the silent camera")
        assert time.monotonic() - frozen_at < 15
        assert "stopped answering" in down["error"] or "cannot open" in down["error"]
        stalled = len(frames(capture_db, "hall"))
        server.thaw()
        assert _live_again(capture_db, "hall", stalled) < BACKOFF_BOUND_S
    finally:
        server.kill()


@pytest.mark.slow
def test_mjpeg_camera_that_stops_sending_is_reconnected(tmp_path: Path, capture_db: redis.Redis,
                                                        run_capture: RunCapture) -> None:
    image = np.zeros((96, 128, 3), np.uint8)
    image[20:70, 30:100] = (0, 200, 255)
    with MjpegServer(image, fps=15) as server:
        config = write_config(tmp_path / "cams.yaml", redis_url(capture_db),
                              [{"id": "ipcam", "url": server.url, "fps": 5}], capture=CAPTURE)
        run_capture(config)
        wait_for(lambda: len(frames(capture_db, "ipcam")) >= 3, 20, "frames from the MJPEG camera")
        assert state(capture_db, "ipcam")["status"] == "live"
        server.stall.set()  # connection open, headers sent, no more parts
        stalled_at = time.monotonic()
        down = _status(capture_db, "ipcam", "retrying", 20, "the read timeout to notice the silent camera")
        assert time.monotonic() - stalled_at < 15
        assert "stopped answering" in down["error"] or "cannot open" in down["error"]
        stalled = len(frames(capture_db, "ipcam"))
        server.stall.clear()
        assert _live_again(capture_db, "ipcam", stalled) < BACKOFF_BOUND_S
        full = [m for m in frames(capture_db, "ipcam") if not m.still]  # a still picture: keyframes carry JPEGs
        assert decode_image(full[-1].jpeg).shape == (96, 128, 3)
