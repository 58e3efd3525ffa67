"""Process lifecycle shared by the services: SIGTERM/SIGINT set a stop event so work drains cleanly.

The stop event doubles as the service's liveness signal: every service loop polls it (`is_set()` or
`wait(timeout)`; a thread parked in `wait()` polls every HEARTBEAT_EVERY_S), so each poll touches the file
named by $MASKWATCH_HEARTBEAT (at most every HEARTBEAT_EVERY_S) and `maskwatch-health` reads that file's
age (the container healthchecks). A loop that hangs stops polling, and the container turns unhealthy.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

HEARTBEAT_ENV = "MASKWATCH_HEARTBEAT"
HEARTBEAT_EVERY_S = 2.0


class HeartbeatEvent(threading.Event):
    """A threading.Event whose polls touch a heartbeat file (none when `path` is None)."""

    def __init__(self, path: str | Path | None) -> None:
        super().__init__()
        self.path = Path(path) if path else None
        self._next = 0.0

    def beat(self) -> None:
        """Touch the heartbeat file when due; a file that cannot be written is logged once."""
        now = time.monotonic()
        if self.path is None or now < self._next:
            return
        self._next = now + HEARTBEAT_EVERY_S
        try:
            self.path.touch()
        except OSError as exc:
            log.warning("heartbeat file %s not writable (%s); healthchecks will fail", self.path, exc)
            self.path = None

    def is_set(self) -> bool:
        self.beat()
        return super().is_set()

    def wait(self, timeout: float | None = None) -> bool:
        self.beat()
        if timeout is not None:
            return super().wait(timeout)
        while not super().wait(HEARTBEAT_EVERY_S):  # a thread parked on the event until the end beats too
            self.beat()
        return True


def stop_on_signals(stop: threading.Event | None = None) -> threading.Event:
    """Return an event that SIGTERM and SIGINT set (call from the main thread); its polls are heartbeats."""
    stop = stop or HeartbeatEvent(os.environ.get(HEARTBEAT_ENV))

    def handler(signum: int, _frame: object) -> None:
        if not stop.is_set():
            log.info("%s received: finishing in-flight work and stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def heartbeat_age(path: str | Path) -> float | None:
    """Seconds since the heartbeat file was last touched, or None when there is none."""
    try:
        return max(0.0, time.time() - Path(path).stat().st_mtime)
    except OSError:
        return None


def single_threaded_opencv() -> None:
    """OpenCV on the calling thread only, in a service that shares the cores with the others and with its own
    inference threads: OpenCV's pool spent about as much CPU waiting as working (a 640x480 frame converted from
    I420 and JPEG-encoded: 1.50 ms of CPU with the pool, 0.80 ms without; `python benchmarks/capture_cost.py`)."""
    import cv2

    cv2.setNumThreads(1)
