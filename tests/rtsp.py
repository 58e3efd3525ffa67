"""A real RTSP camera for tests: tests/rtsp_server.py (GStreamer's RTSP server) run by the system Python."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's python3-gi lives here, not in the virtualenv
SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
_PROBE = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
          "from gi.repository import Gst; Gst.init(None); "
          "missing = [e for e in ('x264enc', 'mp4mux', 'qtdemux', 'rtph264pay', 'decodebin') "
          "if Gst.ElementFactory.find(e) is None]; print(' '.join(missing))")


def require_gst_rtsp() -> None:
    """Skip the test unless the GStreamer RTSP server and the plug-ins it needs are installed (.ci/run does)."""
    if not Path(SYSTEM_PYTHON).exists():
        pytest.skip(f"{SYSTEM_PYTHON} is absent")
    probe = subprocess.run([SYSTEM_PYTHON, "-c", _PROBE], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip("GStreamer RTSP server is not installed (apt-get install gir1.2-gst-rtsp-server-1.0)")
    if probe.stdout.strip():
        pytest.skip(f"GStreamer elements missing: {probe.stdout.strip()} (gstreamer1.0-plugins-good/-ugly)")


def write_h264_clip(path: Path, frames: list[np.ndarray] | np.ndarray, count: int, fps: float = 10.0) -> Path:
    """An H.264 MP4 of `count` frames cycling through `frames` (re-encoded by GStreamer's x264enc)."""
    images = [frames] if isinstance(frames, np.ndarray) else frames
    h, w = images[0].shape[:2]
    raw = path.with_suffix(".avi")
    writer = cv2.VideoWriter(str(raw), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for i in range(count):
        writer.write(images[i % len(images)])
    writer.release()
    done = subprocess.run([SYSTEM_PYTHON, str(SERVER_SCRIPT), "encode", str(raw), str(path)],
                          capture_output=True, text=True, timeout=120)
    raw.unlink()
    assert done.returncode == 0 and path.stat().st_size > 0, done.stderr
    return path


def numbered_frames(count: int, size: tuple[int, int] = (160, 120)) -> list[np.ndarray]:
    """Frames whose gray level says their number (i*8 % 256), with a moving square."""
    w, h = size
    out = []
    for i in range(count):
        image = np.full((h, w, 3), (i * 8) % 256, np.uint8)
        cv2.rectangle(image, (i % (w - 20), 10), (i % (w - 20) + 20, 30), (0, 0, 255), -1)
        out.append(image)
    return out


class RtspServer:
    """rtsp://127.0.0.1:PORT/cam serving an H.264 clip; may be killed, restarted, frozen and thawed."""

    def __init__(self, clip: Path, port: int, log: Path, path: str = "/cam") -> None:
        self.clip, self.port, self.log_path, self.path = clip, port, log, path
        self.proc: subprocess.Popen | None = None
        self.url = f"rtsp://127.0.0.1:{port}{path}"

    def start(self, attempts: int = 20) -> RtspServer:
        """Start (or restart) the server and wait until it listens (retrying while the port is still taken)."""
        for _ in range(attempts):
            with self.log_path.open("ab") as log:
                self.proc = subprocess.Popen(
                    [SYSTEM_PYTHON, str(SERVER_SCRIPT), "serve", str(self.clip), "--port", str(self.port),
                     "--path", self.path], stdout=subprocess.PIPE, stderr=log)
            if self.proc.stdout.readline().decode().strip() == "ready":
                return self
            self.proc.wait(10)
            time.sleep(0.5)
        raise AssertionError(f"RTSP server did not start: {self.log_path.read_text(errors='replace')[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: the camera disappears (connections reset, the port refuses)."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)

    def freeze(self) -> None:
        """SIGSTOP: connections stay open but nothing is sent any more (a hung camera)."""
        assert self.proc and self.proc.poll() is None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after `freeze`."""
        assert self.proc
        os.kill(self.proc.pid, signal.SIGCONT)

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
