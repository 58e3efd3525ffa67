"""The zone editor in real Chromium: zones and a line clicked on the live frame give YAML that loads, and the
save endpoint writes a config file that loads (only with the API key)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from services.dashboard.app import create_app
from services.dashboard.settings import DashboardSettings
from shared import keys
from shared.config import load_config, parse_config
from shared.zones import Zone, zone_around
from tests.conftest import TEST_REDIS_PORT, flushed_redis
from tests.dashboard.conftest import (
    REPO,
    Dashboard,
    frame_result,
    publish,
    register_camera,
    start_dashboard,
    stop_process,
)

DB = 4
KEY = "zone-editor-key"
OUTPUT = REPO / "test-output" / "dashboard"
CONFIG = """\
# cameras of the test shop
cameras:
  - id: door-a          # the front door
    url: rtsp://door-a/stream1
    fps: 4
  - id: lobby
    url: rtsp://lobby/stream1
    enabled: false

dashboard:
  port: 8000            # overridden on the command line
"""


def _frame_jpeg() -> bytes:
    image = np.full((360, 640, 3), 110, np.uint8)
    cv2.rectangle(image, (0, 200), (640, 360), (60, 70, 80), -1)
    return cv2.imencode(".jpg", image)[1].tobytes()


@pytest.fixture(scope="module")
def zone_dashboard(tiny_store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Dashboard, Path]]:
    """A dashboard with a writable config file, an API key and one camera's frame in Redis."""
    client = next(flushed_redis(DB))
    register_camera(client, "door-a")
    publish(client, frame_result("door-a", 1, ["with_mask"]), _frame_jpeg())
    now = time.time()  # a poster the tracker found: a static face spot with its suggested ignore zone
    client.set(keys.static_faces("door-a"), json.dumps([{
        "box": list(POSTER_BOX), "first_seen": now - 4000, "last_seen": now, "track_id": 77,
        "suggestion": zone_around(list(POSTER_BOX), "static-1").model_dump(mode="json")}]))
    folder = tmp_path_factory.mktemp("zones")
    config = folder / "cameras.yaml"
    config.write_text(CONFIG)
    (folder / "key").write_text(KEY + "\n")
    server = start_dashboard(tiny_store.root, f"redis://127.0.0.1:{TEST_REDIS_PORT}/{DB}", folder / "dashboard.log",
                             "--config", str(config), "--api-key-file", str(folder / "key"))
    yield server, config
    stop_process(server.process)
    client.flushdb()


def _click(page, fractions: list[tuple[float, float]]) -> None:
    box = page.locator("#overlay").bounding_box()
    for x, y in fractions:
        page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])


def _draw(page, button: str, name: str, fractions: list[tuple[float, float]]) -> None:
    page.click(button)
    page.fill("#draw-name", name)
    _click(page, fractions)
    page.click("#draw-done")


INSIDE = [(0.1, 0.5), (0.9, 0.5), (0.9, 0.95), (0.1, 0.95)]
POSTER = [(0.7, 0.05), (0.95, 0.05), (0.95, 0.3), (0.7, 0.3)]
DOOR = [(0.05, 0.45), (0.95, 0.45)]
POSTER_BOX = (0.02, 0.05, 0.1, 0.2)


def _close(points, expected) -> bool:
    return len(points) == len(expected) and all(abs(a - c) < 0.01 and abs(b - d) < 0.01
                                                for (a, b), (c, d) in zip(points, expected))


@pytest.mark.slow
def test_zones_clicked_on_the_frame_give_yaml_that_loads_and_save_writes_the_file(zone_dashboard, browser) -> None:
    server, config = zone_dashboard
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{server.url}/cameras/door-a?key={KEY}")
    page.wait_for_function("() => document.getElementById('zone-editor').dataset.ready === '1'"
                           " && document.getElementById('frame').naturalWidth === 640", timeout=30_000)
    _draw(page, "#add-zone", "inside", INSIDE)
    _draw(page, "#add-ignore", "poster", POSTER)
    _draw(page, "#add-line", "door", DOOR)
    page.select_option('#zones-table tr[data-name="door"] select', "inside")
    overlay = page.locator("#overlay")
    assert overlay.get_attribute("data-zones") == "2" and overlay.get_attribute("data-lines") == "1"
    assert overlay.locator("polygon.zone.ignore").count() == 1 and overlay.locator("line.line").count() >= 1

    snippet = page.locator("#zones-yaml").input_value()
    loaded = parse_config("cameras:\n  - id: door-a\n    url: rtsp://door-a/1\n" + snippet)
    assert not loaded.problems and not loaded.geometry_problems, (loaded.problems, loaded.geometry_problems)
    door = loaded.cameras[0]
    assert [(z.name, z.ignore) for z in door.zones] == [("inside", False), ("poster", True)]
    assert _close(door.zones[0].points, INSIDE) and _close(door.zones[1].points, POSTER)
    assert [(line.name, line.in_) for line in door.lines] == [("door", "inside")]
    assert _close(door.lines[0].points, DOOR)

    # the static face is listed, cut from the frame; one click adds an ignore zone around it to the editor
    static = page.locator('#static-faces tr[data-track="77"]')
    static.wait_for(timeout=15_000)
    assert static.locator("canvas.thumb").evaluate("c => c.width > 0 && c.height === 48")
    static.locator("button").click()
    suggested = Zone(name="static-1", points=zone_around(list(POSTER_BOX), "static-1").points, ignore=True)
    assert page.locator('#zones-table tr[data-kind="ignore"][data-name="static-1"]').count() == 1
    assert "name: static-1" in page.locator("#zones-yaml").input_value()

    page.click("#zones-save")
    page.wait_for_function("() => document.getElementById('zone-editor').dataset.saved === '1'", timeout=15_000)
    saved = load_config(config)
    assert not saved.problems and not saved.geometry_problems
    cameras = {cam.id: cam for cam in saved.cameras}
    assert cameras["door-a"].zones == [*door.zones, suggested] and cameras["door-a"].lines == door.lines
    assert cameras["lobby"].zones == [] and cameras["lobby"].enabled is False
    text = config.read_text()
    assert text.startswith("# cameras of the test shop\n") and "  - id: door-a          # the front door\n" in text
    assert text.endswith("dashboard:\n  port: 8000            # overridden on the command line\n")
    assert page.locator("#zones-save").is_disabled()  # nothing left to save
    entries_csv = page.request.get(server.url + page.locator("#csv-entries").get_attribute("href"))
    assert entries_csv.ok and entries_csv.text().startswith("camera,period_start")  # the link carries the key
    page.wait_for_timeout(300)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / "zone-editor.png"), full_page=True)
    assert not errors, errors
    page.close()


def test_save_needs_the_key_and_valid_geometry(zone_dashboard) -> None:
    server, config = zone_dashboard
    body = {"zones": [{"name": "hall", "points": [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]]}], "lines": []}
    before = config.read_text()
    with server.client() as http:
        assert http.put("/api/v1/cameras/door-a/zones/config", json=body).status_code == 401
        assert http.put("/api/v1/cameras/door-a/zones/config", json=body,
                        headers={"X-API-Key": "wrong"}).status_code == 401
        assert http.put(f"/api/v1/cameras/door-a/zones/config?api_key={KEY}", json=body).status_code == 401
        keyed = {"X-API-Key": KEY}
        bad = http.put("/api/v1/cameras/door-a/zones/config", headers=keyed, json={
            "zones": [{"name": "hall", "points": [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]}]})
        assert bad.status_code == 422 and "door-a" in bad.json()["detail"] and "crosses itself" in bad.json()["detail"]
        assert http.put("/api/v1/cameras/garage/zones/config", headers=keyed, json=body).status_code == 404
        assert http.put("/api/v1/cameras/door-a/zones/config", headers=keyed,
                        json={**body, "version": "0" * 16}).status_code == 409
        assert http.put("/api/v1/cameras/door-a/zones/config", headers=keyed,
                        json={"zones": "nope"}).status_code == 422
        assert config.read_text() == before
        state = http.get("/api/v1/cameras/door-a/zones/config", headers=keyed).json()
        assert state["writable"] is True and state["why_not"] is None
        ok = http.put("/api/v1/cameras/door-a/zones/config", headers=keyed, json={**body, "version": state["version"]})
        assert ok.status_code == 200 and ok.json()["zones"] == body["zones"]
    assert [z.name for z in next(c for c in load_config(config).cameras if c.id == "door-a").zones] == ["hall"]


def test_saving_is_off_without_a_configured_key(tmp_path: Path) -> None:
    config = tmp_path / "cameras.yaml"
    config.write_text(CONFIG)
    app = create_app(DashboardSettings(config_path=config, api_key=None,
                                       redis_url=f"redis://127.0.0.1:{TEST_REDIS_PORT}/{DB}"))
    http = TestClient(app)  # no lifespan: these routes read the file, not Redis
    state = http.get("/api/v1/cameras/door-a/zones/config").json()
    assert state["writable"] is False and "API key" in state["why_not"]
    refused = http.put("/api/v1/cameras/door-a/zones/config", json={"zones": [], "lines": []})
    assert refused.status_code == 403 and "API key" in refused.json()["detail"]
    assert config.read_text() == CONFIG


def test_a_missing_config_file_is_reported(tmp_path: Path) -> None:
    app = create_app(DashboardSettings(config_path=tmp_path / "gone.yaml", api_key=KEY,
                                       redis_url=f"redis://127.0.0.1:{TEST_REDIS_PORT}/{DB}"))
    http = TestClient(app, headers={"X-API-Key": KEY})
    missing = http.get("/api/v1/cameras/door-a/zones/config")
    assert missing.status_code == 409 and "cannot read config" in missing.json()["detail"]
    refused = http.put("/api/v1/cameras/door-a/zones/config", json={"zones": []})
    assert refused.status_code == 409 and "does not exist" in refused.json()["detail"]
