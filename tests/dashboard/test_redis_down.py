"""With Redis unreachable the dashboard keeps running: photos work, camera reads are 503, logs stay one-line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dashboard.conftest import Dashboard, free_port, start_dashboard, stop_process


@pytest.fixture(scope="module")
def orphan(tiny_store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """A dashboard pointed at a port where no Redis listens."""
    dash = start_dashboard(tiny_store.root, f"redis://127.0.0.1:{free_port()}/0",
                           tmp_path_factory.mktemp("orphan") / "dashboard.log")
    yield dash
    stop_process(dash.process)


def test_photo_api_works_and_camera_reads_fail_cleanly(orphan: Dashboard, scene_photos: list[Path]) -> None:
    photo = scene_photos[0]
    with orphan.client() as client:
        assert client.get("/api/v1/health").json() == {"status": "degraded", "redis": False}
        detect = client.post("/api/v1/detect", files={"file": (photo.name, photo.read_bytes(), "image/jpeg")})
        assert detect.status_code == 200 and detect.json()["faces"]
        cameras = client.get("/api/v1/cameras")
        assert cameras.status_code == 503 and cameras.json()["detail"].startswith("redis unavailable")
        metrics = client.get("/metrics")
        assert metrics.status_code == 200 and "maskwatch_redis_up 0.0" in metrics.text
        assert client.get("/").status_code == 200
    log = orphan.log.read_text()
    assert "redis unavailable" in log and "retrying" in log
    assert "Traceback" not in log
