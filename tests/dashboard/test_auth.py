"""Optional API key and CORS, on a real dashboard process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.dashboard.conftest import Dashboard, start_dashboard, stop_process

KEY = "s3cret-key"


@pytest.fixture(scope="module")
def keyed(tiny_store, redis_url_9: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """A dashboard that requires an API key and allows one CORS origin."""
    folder = tmp_path_factory.mktemp("auth")
    key_file = folder / "api-key"
    key_file.write_text(KEY + "\n")  # as a mounted secret holds it: never on the command line
    dash = start_dashboard(tiny_store.root, redis_url_9, folder / "dashboard.log",
                           "--api-key-file", str(key_file), "--access-log", "--cors-origin", "http://grafana.local")
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
        # the query string counts only where a browser cannot send headers (live feed, frame images)
        assert client.get("/api/v1/cameras", params={"api_key": KEY}).status_code == 401
        assert client.post("/api/v1/detect", params={"api_key": KEY},
                           files={"file": ("a.jpg", b"x", "image/jpeg")}).status_code == 401
        assert client.get("/api/v1/cameras/nope/frame.jpg").status_code == 401
        assert client.get("/api/v1/cameras/nope/frame.jpg", params={"api_key": KEY}).status_code == 404
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


def test_the_key_in_a_query_string_is_never_logged(keyed: Dashboard) -> None:
    with httpx.Client(base_url=keyed.url, timeout=5.0) as client:
        with client.stream("GET", "/api/v1/feed", params={"api_key": KEY, "x": "1"}) as stream:
            assert stream.status_code == 200
        client.get("/api/v1/cameras", params={"api_key": KEY})
    log = keyed.log.read_text()
    assert "GET /api/v1/feed?api_key=***&x=1" in log, log[-2000:]
    assert KEY not in log


def test_pages_and_api_send_security_headers(keyed: Dashboard) -> None:
    with keyed.client() as client:
        for path in ("/", "/upload", "/cameras/x", "/static/app.css", "/api/v1/health"):
            headers = client.get(path).headers
            assert "script-src 'self'" in headers["content-security-policy"], path
            assert "frame-ancestors 'none'" in headers["content-security-policy"], path
            assert headers["x-frame-options"] == "DENY"
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["referrer-policy"] == "no-referrer"
        docs = client.get("/docs")  # Swagger UI starts with an inline script: framing rules, no CSP
        assert docs.status_code == 200 and docs.headers["x-frame-options"] == "DENY"


def test_the_key_from_the_environment(tiny_store, redis_url_9: str, tmp_path: Path) -> None:
    os.environ["MASKWATCH_API_KEY"] = "from-env"
    try:
        dash = start_dashboard(tiny_store.root, redis_url_9, tmp_path / "dashboard.log", keep_api_key=True)
    finally:
        del os.environ["MASKWATCH_API_KEY"]
    try:
        with dash.client() as client:
            assert client.get("/api/v1/cameras").status_code == 401
            assert client.get("/api/v1/cameras", headers={"X-API-Key": "from-env"}).status_code == 200
    finally:
        stop_process(dash.process)
