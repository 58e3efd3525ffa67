"""Optional API key and CORS, on a real dashboard process."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.dashboard.conftest import Dashboard, start_dashboard, stop_process

KEY = "s3cret-key"


@pytest.fixture(scope="module")
def keyed(tiny_store, redis_url_9: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """A dashboard that requires an API key and allows one CORS origin."""
    dash = start_dashboard(tiny_store.root, redis_url_9, tmp_path_factory.mktemp("auth") / "dashboard.log",
                           "--api-key", KEY, "--cors-origin", "http://grafana.local")
    yield dash
    stop_process(dash.process)


def test_api_needs_the_key(keyed: Dashboard) -> None:
    with keyed.client() as client:
        for path in ("/api/v1/cameras", "/api/v1/model", "/api/v1/feed"):
            response = client.get(path)
            assert response.status_code == 401 and "API key" in response.json()["detail"], path
        assert client.get("/api/v1/cameras", headers={"X-API-Key": "wrong"}).status_code == 401
        assert client.post("/api/v1/detect", files={"file": ("a.jpg", b"x", "image/jpeg")}).status_code == 401
        assert client.get("/api/v1/cameras", headers={"X-API-Key": KEY}).status_code == 200
        assert client.get("/api/v1/cameras", params={"api_key": KEY}).status_code == 200
        # probes, scrapes and the pages themselves stay open
        assert client.get("/api/v1/health").status_code == 200
        assert client.get("/metrics").status_code == 200
        assert client.get("/").status_code == 200


def test_feed_accepts_the_key_as_a_query_parameter(keyed: Dashboard) -> None:
    with httpx.Client(base_url=keyed.url, timeout=5.0) as client:
        with client.stream("GET", "/api/v1/feed", params={"api_key": KEY}) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")


def test_cors_only_for_the_configured_origin(keyed: Dashboard) -> None:
    with keyed.client(headers={"X-API-Key": KEY}) as client:
        allowed = client.get("/api/v1/cameras", headers={"Origin": "http://grafana.local"})
        assert allowed.headers["access-control-allow-origin"] == "http://grafana.local"
        other = client.get("/api/v1/cameras", headers={"Origin": "http://evil.test"})
        assert "access-control-allow-origin" not in other.headers
