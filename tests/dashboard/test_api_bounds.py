"""Hostile query strings and ids: every parameter bounded (4xx, never 500), security headers on every answer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.dashboard.app import create_app
from services.dashboard.security import CONTENT_SECURITY_POLICY, HEADERS
from services.dashboard.settings import DashboardSettings
from shared import keys
from tests.dashboard.conftest import free_port, register_camera

HUGE_NUMBER = "9" * 4400  # over Python's 4,300-digit int() limit: the probe's 500 with a traceback


@pytest.fixture
def app(redis_url_7: str) -> FastAPI:
    """The dashboard app on Redis database 7 with one camera, and a route that fails like a bug would."""
    client = redis.Redis.from_url(redis_url_7)
    register_camera(client, "door")
    client.sadd(keys.CAMERAS_SET, "nl2\n")  # written by a capture that accepted the id before the fix
    client.close()
    app = create_app(DashboardSettings(redis_url=redis_url_7))

    @app.get("/api/v1/test-bug", include_in_schema=False)
    async def bug() -> None:
        raise RuntimeError("a bug")

    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def assert_security_headers(response) -> None:
    for name, value in {**HEADERS, "Content-Security-Policy": CONTENT_SECURITY_POLICY}.items():
        assert response.headers.get(name) == value, (response.status_code, name)


def query_parameters(app: FastAPI) -> list[tuple[str, str, dict]]:
    """(path, name, schema) of every query parameter of every GET operation."""
    out = []
    for path, operations in app.openapi()["paths"].items():
        for parameter in operations.get("get", {}).get("parameters", []):
            if parameter["in"] == "query":
                schema = parameter["schema"]
                schema = next((s for s in schema.get("anyOf", []) if s.get("type") != "null"), schema)
                out.append((path, parameter["name"], schema))
    return out


def test_every_query_parameter_declares_its_bounds(app: FastAPI) -> None:
    parameters = query_parameters(app)
    assert len(parameters) >= 5
    for path, name, schema in parameters:
        if schema.get("type") in ("integer", "number"):
            assert "maximum" in schema and ("minimum" in schema or "exclusiveMinimum" in schema), (path, name)
        elif schema.get("type") == "string" and "enum" not in schema:
            assert "maxLength" in schema, (path, name)


def test_huge_values_of_every_query_parameter_are_refused_not_crashed_on(app: FastAPI, client: TestClient) -> None:
    for path, name, _ in query_parameters(app):
        response = client.get(path.replace("{camera}", "door"), params={name: HUGE_NUMBER})
        assert response.status_code == 422, (path, name, response.status_code, response.text[:200])
        assert_security_headers(response)


def test_the_probes_stats_csv_period_is_422(client: TestClient) -> None:
    response = client.get("/api/v1/cameras/door/stats.csv", params={"period": HUGE_NUMBER})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "period"]
    response = client.get("/api/v1/cameras/door/stats.csv", params={"period": "00000001"})
    assert response.status_code == 400 and "multiple of 60 s" in response.json()["detail"]
    response = client.get("/api/v1/cameras/door/stats.csv", params={"period": "9" * 16})
    assert response.status_code == 400 and "not a duration" in response.json()["detail"]


def test_a_camera_id_with_a_trailing_newline_is_unknown(client: TestClient) -> None:
    assert [c["id"] for c in client.get("/api/v1/cameras").json()] == ["door"]
    for route in ("", "/stats", "/stats.csv", "/events", "/frame.jpg"):
        response = client.get(f"/api/v1/cameras/nl2%0A{route}")
        assert response.status_code == 404, route
        assert_security_headers(response)
    assert client.get("/api/v1/cameras/door/stats.csv").status_code == 200


def test_errors_carry_the_security_headers(client: TestClient) -> None:
    for url, status in (("/nope", 404), ("/api/v1/cameras/unknown", 404), ("/api/v1/alerts?limit=0", 422),
                        ("/api/v1/test-bug", 500)):
        response = client.get(url)
        assert response.status_code == status, url
        assert_security_headers(response)
    assert client.get("/api/v1/test-bug").json() == {"detail": "internal server error (logged)"}
    response = client.post("/api/v1/detect", content=b"x", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert_security_headers(response)


def test_redis_down_503_carries_the_security_headers() -> None:
    app = create_app(DashboardSettings(redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_timeout=0.5))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/v1/cameras")
    assert response.status_code == 503 and response.json()["detail"].startswith("redis unavailable")
    assert_security_headers(response)
