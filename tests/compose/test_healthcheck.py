"""The containers' liveness: the stop event's polls touch the heartbeat file, `maskwatch-health` reads it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from services.lifecycle import HEARTBEAT_ENV, HeartbeatEvent, heartbeat_age
from tests.conftest import REPO
from tests.stack.helpers import wait_for


def _health(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k != HEARTBEAT_ENV}
    return subprocess.run([sys.executable, "-m", "services.healthcheck", *args], cwd=REPO, env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


def test_polling_the_stop_event_is_the_heartbeat(tmp_path: Path) -> None:
    beat = tmp_path / "alive"
    stop = HeartbeatEvent(beat)
    assert heartbeat_age(beat) is None
    assert not stop.is_set()
    assert heartbeat_age(beat) < 5
    os.utime(beat, (time.time() - 100, time.time() - 100))
    stop.wait(0.01)  # within HEARTBEAT_EVERY_S of the last touch: not touched again
    assert heartbeat_age(beat) > 90
    stop._next = 0.0
    stop.set()
    assert stop.wait(0) and heartbeat_age(beat) < 5


def test_an_unwritable_heartbeat_is_logged_once_and_the_service_runs_on(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    stop = HeartbeatEvent(tmp_path / "missing-folder" / "alive")
    assert not stop.is_set()
    stop._next = 0.0
    assert not stop.wait(0)
    assert len([r for r in caplog.records if "heartbeat file" in r.message]) == 1


def test_health_reads_the_heartbeat_age(tmp_path: Path) -> None:
    beat = tmp_path / "alive"
    assert _health(env={}).returncode == 2
    missing = _health(env={HEARTBEAT_ENV: str(beat)})
    assert missing.returncode == 1 and missing.stderr.startswith("error: no heartbeat yet")
    beat.touch()
    assert _health(env={HEARTBEAT_ENV: str(beat)}).returncode == 0
    os.utime(beat, (time.time() - 45, time.time() - 45))
    stale = _health("--max-age", "30", env={HEARTBEAT_ENV: str(beat)})
    assert stale.returncode == 1 and re.match(r"error: last heartbeat 4\d s ago .*\(limit 30 s\)$", stale.stderr)


def test_health_checks_a_url() -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200 if self.path == "/ok" else 503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert _health("--url", f"{base}/ok", env={}).returncode == 0
        down = _health("--url", f"{base}/down", env={})
        assert down.returncode == 1 and "HTTP 503" in down.stderr
    finally:
        server.shutdown()
    refused = _health("--url", f"{base}/ok", env={})
    assert refused.returncode == 1 and refused.stderr.startswith("error: ") and "Traceback" not in refused.stderr


def test_a_thread_parked_on_the_stop_event_keeps_beating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("services.lifecycle.HEARTBEAT_EVERY_S", 0.05)
    beat = tmp_path / "alive"
    stop = HeartbeatEvent(beat)
    parked = threading.Thread(target=stop.wait)
    parked.start()
    time.sleep(0.2)
    os.utime(beat, (time.time() - 100, time.time() - 100))
    wait_for(lambda: heartbeat_age(beat) < 5, 5, "a heartbeat from the parked thread")
    stop.set()
    parked.join(5)
    assert not parked.is_alive()
