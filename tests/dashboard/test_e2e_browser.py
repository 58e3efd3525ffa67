"""End to end: the real stack (capture of a looped clip, detector, dashboard) seen in headless Chromium."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import TEST_REDIS_PORT
from tests.dashboard.conftest import REPO, free_port, stop_process
from tests.media import phone_photo, write_clip

OUTPUT = REPO / "test-output" / "dashboard"
PHOTO = "ilc2021_00323.jpg"  # a real scene with masked, unmasked and wrongly masked faces
CAMERA = "entrance"

pytestmark = pytest.mark.slow


def model_store_root(tiny_store) -> Path:
    """The repo's promoted default classifier when one exists (real labels), else the tiny test model."""
    if (REPO / "models" / "classifier" / "CURRENT").is_file():
        return REPO / "models"
    return tiny_store.root


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.fixture(scope="module")
def stack(tiny_store, scene_photos: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`maskwatch stack up` on Redis database 6 with one camera playing a looped clip; yields the dashboard URL."""
    import redis

    client = redis.Redis.from_url(f"redis://127.0.0.1:{TEST_REDIS_PORT}/6", socket_connect_timeout=2)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip(f"no Redis at 127.0.0.1:{TEST_REDIS_PORT}")
    client.flushdb()
    photo = next((p for p in scene_photos if p.name == PHOTO), scene_photos[0])
    folder = tmp_path_factory.mktemp("stack")
    clip = write_clip(folder / "entrance.mp4", cv2.resize(cv2.imread(str(photo)), (640, 360)), frames=40,
                      fps=10.0, shift=1)
    port = free_port()
    config = folder / "cameras.yaml"
    config.write_text(yaml.safe_dump({
        "redis_url": f"redis://127.0.0.1:{TEST_REDIS_PORT}/6",
        "cameras": [{"id": CAMERA, "url": str(clip), "fps": 4, "loop": True,
                     "zones": [{"name": "queue", "points": [[0.03, 0.5], [0.97, 0.5], [0.97, 0.97], [0.03, 0.97]]}],
                     "lines": [{"name": "door", "points": [[0.03, 0.45], [0.97, 0.45]], "in": "queue"}]}],
        "detector": {"threads": 1},
        "dashboard": {"host": "127.0.0.1", "port": port},
    }))
    env = {**os.environ, "MASKWATCH_MODELS": str(model_store_root(tiny_store)), "OMP_NUM_THREADS": "1"}
    log = (folder / "stack.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "maskwatch.cli", "stack", "up", "--config", str(config)],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            raise RuntimeError(f"stack did not serve the dashboard:\n{(folder / 'stack.log').read_text()}")
        yield url
    finally:
        children = _children(proc.pid)
        stop_process(proc, timeout=25)
        for pid in children:  # services run in their own sessions: make sure none outlives the test
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()
        shutil.copy(folder / "stack.log", _output() / "stack.log")
        client.flushdb()


def _output() -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT


def metric_value(url: str, name: str, **labels: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_dashboard_tile_shows_live_detections(stack: str, browser) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    outside: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda request: outside.append(request.url) if not request.url.startswith(stack) else None)
    page.goto(stack + "/")
    tile = page.locator(f'section.tile[data-camera="{CAMERA}"]')
    tile.wait_for(timeout=60_000)
    page.wait_for_function(
        """cam => {
            const tile = document.querySelector(`section.tile[data-camera="${cam}"]`);
            const img = tile && tile.querySelector("img.frame");
            const faces = [...tile.querySelectorAll(".face-counts .chip")]
                .reduce((n, c) => n + Number(c.dataset.count || 0), 0);
            return tile.querySelector(".status").textContent === "live" && img.naturalWidth > 0
                && Number(img.dataset.loaded || 0) >= 2 && faces > 0
                && tile.querySelector('.face-rates [data-window="1m"] b').textContent.endsWith("%");
        }""", arg=CAMERA, timeout=120_000)
    img = tile.locator("img.frame")
    # the frame's full size (waited for: the next frame may be replacing this one right now)
    page.wait_for_function("cam => { const i = document.querySelector(`section.tile[data-camera='${cam}'] img.frame`);"
                           " return i.naturalWidth === 640 && i.naturalHeight === 360; }", arg=CAMERA, timeout=10_000)
    loaded = int(img.get_attribute("data-loaded"))
    page.wait_for_function("([cam, n]) => Number(document.querySelector(`section.tile[data-camera='${cam}'] "
                           "img.frame`).dataset.loaded) > n", arg=[CAMERA, loaded], timeout=30_000)  # live refresh
    assert int(tile.locator("canvas.chart").get_attribute("data-points")) >= 1
    # the camera has a counting line: entries lead the tile, then people (per label over the last hour and the
    # share masked over the hour and the day)
    assert tile.locator(".entries").is_visible() and tile.locator(".entries .entries-counts .chip").count() == 3
    assert tile.locator(".entries").evaluate("(e) => e.compareDocumentPosition(e.parentNode.querySelector('.people'))"
                                             " & Node.DOCUMENT_POSITION_FOLLOWING") > 0
    assert tile.locator(".people .people-counts .chip").count() == 3
    people = httpx.get(f"{stack}/api/v1/cameras/{CAMERA}", timeout=10).json()
    page.wait_for_function(
        """([cam, n]) => [...document.querySelectorAll(`section.tile[data-camera="${cam}"] .people-counts .chip`)]
            .reduce((s, c) => s + Number(c.dataset.count), 0) >= n""",
        arg=[CAMERA, sum(people["people"]["1h"].values())], timeout=15_000)
    if people["people_compliance"]["1d"] is not None:  # someone was tracked: the share masked is shown
        page.wait_for_function("cam => document.querySelector(`section.tile[data-camera='${cam}'] "
                               ".people-rates [data-window='1d'] b`).textContent.endsWith('%')",
                               arg=CAMERA, timeout=15_000)
    page.wait_for_timeout(500)
    page.screenshot(path=str(_output() / "dashboard.png"))
    assert page.locator("#conn").text_content() == "live"
    assert metric_value(stack, "maskwatch_frames_processed_total", camera=CAMERA) > 0
    assert sum(metric_value(stack, "maskwatch_faces_total", camera=CAMERA, label=label)
               for label in ("with_mask", "without_mask", "mask_incorrect")) > 0
    assert metric_value(stack, "maskwatch_camera_up", camera=CAMERA) == 1
    assert not errors, errors
    assert not outside, outside  # no CDN: the page works offline
    page.close()


def _face_thumbnails(stack: str, photo: Path, count: int) -> list[tuple[str, str]]:
    """(label, thumbnail) of faces the stack finds in a real photo, unmasked first, cut as the tracker does."""
    from shared.crops import THUMBNAIL_LONG_SIDE, face_crop_jpeg

    found = httpx.post(f"{stack}/api/v1/detect", files={"file": (photo.name, photo.read_bytes(), "image/jpeg")},
                       timeout=60).json()
    image = cv2.imread(str(photo))
    faces = sorted(found["faces"], key=lambda face: face["label"] == "with_mask")[:count]
    return [(face["label"], face_crop_jpeg(image, face["box"], THUMBNAIL_LONG_SIDE)) for face in faces]


def test_camera_page_leads_with_people_and_shows_face_thumbnails(stack: str, browser, scene_photos: list[Path]
                                                                 ) -> None:
    import redis

    from shared.alert_log import redis_sink
    from shared.schemas import LineCrossing, PersonRecord
    from tests.dashboard.conftest import publish

    photo = next((p for p in scene_photos if p.name == PHOTO), scene_photos[0])
    thumbs = _face_thumbnails(stack, photo, 4)
    assert thumbs
    client = redis.Redis.from_url(f"redis://127.0.0.1:{TEST_REDIS_PORT}/6")
    now = time.time()
    for i, (label, thumb) in enumerate(thumbs):  # what the tracker publishes when tracks end
        publish(client, PersonRecord(camera=CAMERA, track_id=9000 + i, label=label, first_seen=now - 9 + i,
                                     last_seen=now - 5 + i, frames=20, best_box=[1, 2, 30, 40], thumbnail=thumb))
    crossings = [("in", "with_mask"), ("in", "without_mask"), ("in", "with_mask"), ("out", "mask_incorrect")]
    for i, (direction, label) in enumerate(crossings):  # what the tracker publishes after each person record
        publish(client, LineCrossing(camera=CAMERA, line="door", direction=direction, track_id=9100 + i, label=label,
                                     time=now - 8 + i))
    unmasked = [(9000 + i, label) for i, (label, _) in enumerate(thumbs) if label != "with_mask"]
    assert unmasked, "the photo has unmasked faces"
    labels: dict[str, int] = {}
    for _, label in unmasked:
        labels[label] = labels.get(label, 0) + 1
    sink = redis_sink(client)
    sink({"type": "alert", "id": "e2e-group", "kind": "people", "camera": CAMERA, "time": now, "since": now - 300,
          "window_s": 300, "people": len(unmasked), "labels": labels, "track_ids": [tid for tid, _ in unmasked]})

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: errors.append(f"dialog {dialog.message}"))
    page.goto(f"{stack}/cameras/{CAMERA}")
    page.wait_for_function("""n => document.getElementById("frame").naturalWidth > 0
        && document.querySelector('#rates [data-window="1h"] b').textContent.endsWith("%")
        && document.getElementById("meta").textContent.includes("processed")
        && Number(document.querySelector('#people tr.total td[data-window="1h"]').textContent) >= n
        && document.querySelectorAll('#events tr[data-type="person"] img.thumb').length >= n""",
                           arg=len(thumbs), timeout=60_000)
    assert page.locator("#status").text_content() == "live"
    # the camera's zone and counting line are drawn over the frame, and listed in the editor
    page.wait_for_function("() => document.getElementById('zone-editor').dataset.ready === '1'", timeout=15_000)
    overlay = page.locator("#overlay")
    assert (overlay.get_attribute("data-zones"), overlay.get_attribute("data-lines")) == ("1", "1")
    assert page.locator('#zones-table tr[data-name="door"] select').input_value() == "queue"
    # entries lead: per label over the last hour as the API counts them (at least the crossings published here)
    page.wait_for_function("() => !document.getElementById('entries-block').hidden && Number(document.querySelector("
                           "'#entries tr.total td[data-window=\"1h\"]').textContent) >= 3", timeout=30_000)
    entries = httpx.get(f"{stack}/api/v1/cameras/{CAMERA}/entries?window=1h", timeout=10).json()["entries"]
    shown = {label: int(page.locator(f'#entries tr[data-label="{label}"] td[data-window="1h"]').text_content())
             for label in entries}
    assert shown == entries and entries["with_mask"] >= 2 and entries["without_mask"] >= 1
    assert page.locator('#entries tr.share td[data-window="1h"]').text_content().endswith("%")
    assert page.locator('#events tr[data-type="crossing"]').count() >= 4
    share = page.locator('#people tr.share td[data-window="1h"]').text_content()
    assert share.endswith("%")
    sizes = page.locator('#events tr[data-type="person"] img.thumb').evaluate_all(
        "imgs => imgs.map(i => [i.naturalWidth, i.naturalHeight])")
    assert sizes and all(0 < max(size) <= 96 for size in sizes), sizes  # decoded JPEGs, long side <= 96
    group = page.locator('#events tr[data-kind="people"]')
    assert group.locator("img.thumb").count() == len(unmasked)  # filled in from the person events
    assert f"{len(unmasked)} unmasked people in 5 min" in group.text_content()
    csv = page.request.get(stack + page.locator("#csv-day").get_attribute("href"))
    assert csv.ok and csv.headers["content-type"].startswith("text/csv")
    assert csv.text().splitlines()[0].startswith("camera,period_start,period_end,people,with_mask")
    (_output() / f"{CAMERA}.csv").write_text(csv.text())
    page.wait_for_timeout(300)
    page.screenshot(path=str(_output() / "camera.png"))
    page.goto(stack + "/")
    page.wait_for_function("() => document.querySelectorAll('#alerts tr[data-kind=\"people\"] img.thumb').length > 0",
                           timeout=30_000)
    page.wait_for_timeout(500)
    page.screenshot(path=str(_output() / "dashboard-alerts.png"), full_page=True)

    # hostile values are shown as text; a thumbnail that is not base64 is not shown at all
    sink({"type": "alert", "id": "e2e-hostile", "kind": "person", "camera": CAMERA, "track_id": 1, "label": "<b>x</b>",
          "time": time.time(), "frames": 5, "box": [1, 2, 3, 4], "thumbnail": '"><img src=x onerror=alert(1)>'})
    client.close()
    page.goto(f"{stack}/cameras/{CAMERA}")
    hostile = page.locator('#events tr[data-kind="person"]').filter(has_text="<b>x</b>")
    hostile.wait_for(timeout=30_000)
    assert hostile.count() == 1 and hostile.locator("img").count() == 0
    page.wait_for_timeout(300)  # an injected onerror handler would have run by now
    assert not errors, errors
    page.close()


def test_upload_page_annotates_a_photo(stack: str, browser, scene_photos: list[Path]) -> None:
    photo = next((p for p in scene_photos if p.name == PHOTO), scene_photos[0])
    expected = httpx.post(f"{stack}/api/v1/detect", files={"file": (photo.name, photo.read_bytes(), "image/jpeg")},
                          timeout=60).json()
    assert expected["faces"]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(stack + "/upload")
    page.set_input_files("#files", str(photo))
    card = page.locator(f'section.upload[data-file="{photo.name}"]')
    page.wait_for_function("name => { const c = document.querySelector(`section.upload[data-file='${name}']`);"
                           " return c && (c.dataset.faces !== undefined || c.dataset.error !== undefined); }",
                           arg=photo.name, timeout=60_000)
    assert card.get_attribute("data-error") is None
    rows = card.locator("table.faces tbody tr")
    assert rows.count() == len(expected["faces"])
    assert [rows.nth(i).get_attribute("data-label") for i in range(rows.count())] == \
        [face["label"] for face in expected["faces"]]
    assert card.locator("canvas.annotated").evaluate("c => [c.width, c.height]") == [expected["width"],
                                                                                     expected["height"]]
    page.wait_for_timeout(300)
    page.screenshot(path=str(_output() / "upload.png"), full_page=True)

    page.set_input_files("#files", {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a photo"})
    bad = page.locator('section.upload[data-file="notes.txt"] .error')
    bad.wait_for(timeout=30_000)
    assert "415" in bad.text_content() and "not a readable image" in bad.text_content()

    # a phone's camera: the capture input (rear camera) takes a full-size 8000x6000 photo
    camera = page.locator("#camera")
    assert (camera.get_attribute("capture"), camera.get_attribute("accept")) == ("environment", "image/*")
    phone = phone_photo(cv2.imread(str(photo)))
    page.set_input_files("#camera", {"name": "phone.jpg", "mimeType": "image/jpeg", "buffer": phone.jpeg})
    page.wait_for_function("() => { const c = document.querySelector(`section.upload[data-file='phone.jpg']`);"
                           " return c && (c.dataset.faces !== undefined || c.dataset.error !== undefined); }",
                           timeout=60_000)
    card = page.locator('section.upload[data-file="phone.jpg"]')
    assert card.get_attribute("data-error") is None
    assert card.locator(".summary").text_content().startswith("8000×6000 · ")
    assert int(card.get_attribute("data-faces")) >= 0.8 * len(expected["faces"])
    assert card.locator("canvas.annotated").evaluate("c => [c.width, c.height]") == [2000, 1500]
    page.close()


def test_api_docs_render_offline(stack: str, browser) -> None:
    page = browser.new_page()
    outside: list[str] = []
    page.on("request", lambda request: outside.append(request.url) if not request.url.startswith(stack) else None)
    page.goto(stack + "/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".opblock").count() >= 10
    assert not outside, outside  # no CDN
    page.close()
