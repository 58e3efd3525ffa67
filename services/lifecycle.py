"""Process lifecycle shared by the services: SIGTERM/SIGINT set a stop event so work drains cleanly."""

from __future__ import annotations

import logging
import signal
import threading

log = logging.getLogger(__name__)


def stop_on_signals(stop: threading.Event | None = None) -> threading.Event:
    """Return an event that SIGTERM and SIGINT set (call from the main thread)."""
    stop = stop or threading.Event()

    def handler(signum: int, _frame: object) -> None:
        if not stop.is_set():
            log.info("%s received: finishing in-flight work and stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop
