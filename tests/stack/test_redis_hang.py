"""A hung Redis (SIGSTOP) must not hang the dashboard: every endpoint answers, 503 at worst, within 2 s."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx

from tests.dashboard.conftest import register_camera, start_dashboard, stop_process
from tests.stack.helpers import PrivateRedis

# path -> the statuses acceptable while Redis does not answer
ENDPOINTS: dict[str, tuple[int, ...]] = {
    "/api/v1/cameras": (503,),
    "/api/v1/cameras/gate": (503,),
    "/api/v1/cameras/gate/stats?window=1h": (503,),
    "/api/v1/cameras/gate/events": (503,),
    "/api/v1/cameras/gate/frame.jpg": (503,),
    "/api/v1/alerts": (503,),
    "/api/v1/model": (200,),  # the promoted models are still worth answering with
    "/api/v1/health": (200,),
    "/metrics": (200,),
    "/": (200,),
}


def test_every_endpoint_answers_within_2_s_while_redis_hangs(private_redis: PrivateRedis, tiny_store,
                                                              tmp_path: Path) -> None:
    register_camera(private_redis.client(), "gate")
    dash = start_dashboard(tiny_store.root, private_redis.url, tmp_path / "dashboard.log")
    try:
        with httpx.Client(base_url=dash.url, timeout=10) as client:
            assert client.get("/api/v1/cameras").status_code == 200
            private_redis.proc.send_signal(signal.SIGSTOP)
            try:
                slow = {}
                for path, statuses in ENDPOINTS.items():
                    started = time.monotonic()
                    response = client.get(path)
                    took = time.monotonic() - started
                    assert response.status_code in statuses, (path, response.status_code, response.text[:200])
                    if took >= 2.0:
                        slow[path] = round(took, 2)
                    if response.status_code == 503:
                        assert response.json()["detail"].startswith("redis unavailable"), path
                assert not slow, f"answered after 2 s: {slow}"
                assert client.get("/api/v1/health").json() == {"status": "degraded", "redis": False}
                started = time.monotonic()
                with client.stream("GET", "/api/v1/feed") as feed:
                    assert feed.status_code == 200
                    next(feed.iter_lines())
                assert time.monotonic() - started < 2.0
            finally:
                private_redis.proc.send_signal(signal.SIGCONT)
            deadline = time.monotonic() + 20
            while client.get("/api/v1/cameras").status_code != 200:
                assert time.monotonic() < deadline, "the dashboard did not recover after Redis came back"
                time.sleep(0.3)
    finally:
        stop_process(dash.process)
    assert "Traceback" not in dash.log.read_text()
