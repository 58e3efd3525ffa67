"""Phone cameras end to end: pairing, the phone page in Chromium with a fake camera over HTTPS, the stream."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import ssl
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import httpx
import pytest
import redis
import websockets
import yaml

from shared import keys
from tests.conftest import TEST_REDIS_PORT, flushed_redis
from tests.dashboard.conftest import CHROMIUM, CHROMIUM_ARGS, free_port
from tests.dashboard.test_e2e_browser import PHOTO, model_store_root
from tests.media import write_y4m
from tests.stack.helpers import Services, wait_for

pytestmark = pytest.mark.slow
API_KEY = "phone-test-key"
DB = 11


@dataclass
class PhoneStack:
    """Dashboard over HTTPS (self-signed), a detector worker and a tracker on one Redis database."""

    url: str
    redis: redis.Redis
    services: Services
    dashboard: subprocess.Popen
    clip: Path
    dashboard_args: tuple[str, ...]

    def restart_dashboard(self) -> None:
        """Stop the dashboard and start it again on the same port (phones see their connection drop)."""
        self.services.stop(self.dashboard)
        self.dashboard = self.services.start(*self.dashboard_args, name="dashboard")
        wait_for(lambda: _healthy(self.url) or self.dashboard.poll() is not None, 60, "the restarted dashboard")

    def client(self, key: str | None = API_KEY) -> httpx.Client:
        """An HTTPS client (the self-signed certificate accepted), with the API key unless `key` is None."""
        return httpx.Client(base_url=self.url, verify=False, timeout=30.0,
                            headers={"X-API-Key": key} if key else {})

    def pairing_token(self) -> str:
        """A new pairing token, made with the API key."""
        with self.client() as client:
            answer = client.post("/api/v1/phone/pairings")
        assert answer.status_code == 201, answer.text
        return answer.json()["url"].split("#t=", 1)[1]


@pytest.fixture(scope="module")
def phone_stack(tiny_store, scene_photos: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[PhoneStack]:
    """The stack a phone streams into; the fake camera's clip is made from a real scene photo."""
    client = next(flushed_redis(DB))
    folder = tmp_path_factory.mktemp("phone")
    photo = next((p for p in scene_photos if p.name == PHOTO), scene_photos[0])
    clip = write_y4m(folder / "phone.y4m", cv2.resize(cv2.imread(str(photo)), (640, 360)))
    config = folder / "cameras.yaml"
    config.write_text(yaml.safe_dump({
        "redis_url": f"redis://127.0.0.1:{TEST_REDIS_PORT}/{DB}", "cameras": [],
        "detector": {"threads": 1}, "dashboard": {"phone": {"fps": 4, "max_cameras": 2}}}))
    env = {**os.environ, "MASKWATCH_MODELS": str(model_store_root(tiny_store)), "OMP_NUM_THREADS": "1",
           "PYTHONUNBUFFERED": "1", "MASKWATCH_API_KEY": API_KEY}
    env.pop("MASKWATCH_REDIS_URL", None)
    services = Services(folder, env)
    port = free_port()
    try:
        services.start("detector", "--config", str(config), name="detector")
        services.start("tracker", "--config", str(config), name="tracker")
        dashboard_args = ("dashboard", "--config", str(config), "--port", str(port), "--tls-self-signed",
                          "--tls-dir", str(folder / "tls"))
        dashboard = services.start(*dashboard_args, name="dashboard")
        url = f"https://127.0.0.1:{port}"
        wait_for(lambda: _healthy(url) or dashboard.poll() is not None, 60, "the HTTPS dashboard")
        assert dashboard.poll() is None, services.log(dashboard)
        yield PhoneStack(url, client, services, dashboard, clip, dashboard_args)
    finally:
        services.close()
        client.flushdb()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/health", verify=False, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def phone_browser(phone_stack: PhoneStack):
    """Chromium whose camera is the generated clip."""
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), timeout=60_000, args=[
            *CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={phone_stack.clip}",
            "--ignore-certificate-errors"])  # as a phone that trusts the certificate: service workers need that
        yield browser
        browser.close()


def test_dashboard_prints_the_fingerprint_and_serves_https(phone_stack: PhoneStack) -> None:
    log = phone_stack.services.log(phone_stack.dashboard)
    assert "SHA-256 fingerprint" in log
    fingerprint = log.split("SHA-256 fingerprint ", 1)[1].split()[0]
    der = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(("127.0.0.1", int(phone_stack.url.rsplit(":", 1)[1]))))
    assert fingerprint == ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def test_pairing_needs_the_key_is_single_use_and_expires(phone_stack: PhoneStack) -> None:
    for key in (None, "wrong"):
        with phone_stack.client(key) as client:
            assert client.post("/api/v1/phone/pairings").status_code == 401
    with phone_stack.client() as client:
        made = client.post("/api/v1/phone/pairings").json()
    assert made["qr_svg"].startswith("<svg") and "<script" not in made["qr_svg"]
    assert made["url"].startswith(phone_stack.url + "/phone/#t=")
    token = made["url"].split("#t=", 1)[1]
    stored = keys.phone_pairing(hashlib.sha256(token.encode()).hexdigest())
    assert 0 < phone_stack.redis.ttl(stored) <= 300  # only the token's hash is stored, and it expires
    assert not any(token.encode() in k for k in phone_stack.redis.keys("*"))
    with phone_stack.client(None) as client:
        assert client.post("/api/v1/phone/pair", json={"token": token, "name": "Bad Name!"}).status_code == 400
        first = client.post("/api/v1/phone/pair", json={"token": token, "name": "once"})
        assert first.status_code == 200 and first.json()["camera"] == "phone-once"
        reused = client.post("/api/v1/phone/pair", json={"token": token, "name": "twice"})
        assert reused.status_code == 401 and "already used" in reused.json()["detail"]
        expiring = phone_stack.pairing_token()
        phone_stack.redis.pexpire(keys.phone_pairing(hashlib.sha256(expiring.encode()).hexdigest()), 1)
        time.sleep(0.05)
        assert client.post("/api/v1/phone/pair", json={"token": expiring, "name": "late"}).status_code == 401
        assert client.post("/api/v1/phone/pair", json={"token": "", "name": "none"}).status_code == 401
    assert token not in phone_stack.services.log(phone_stack.dashboard)


def _stream(url: str, hello: dict, frames: list[bytes] = ()) -> tuple[list[dict], int | None, str]:
    """Open the stream WebSocket, say hello, send frames; returns (messages, close code, close reason)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE

    async def run() -> tuple[list[dict], int | None, str]:
        messages = []
        async with websockets.connect(url.replace("https", "wss") + "/api/v1/phone/stream", ssl=context) as ws:
            await ws.send(json.dumps(hello))
            try:
                for seq, frame in enumerate(frames):
                    await ws.send(struct.pack(">I", seq) + frame)
                    await asyncio.sleep(0.3)
                messages.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            except websockets.ConnectionClosed:
                pass
            await ws.close()
            return messages, ws.close_code, ws.close_reason or ""

    return asyncio.run(run())


def test_stream_refuses_a_wrong_session_key_and_hostile_frames(phone_stack: PhoneStack) -> None:
    token = phone_stack.pairing_token()
    with phone_stack.client(None) as client:
        paired = client.post("/api/v1/phone/pair", json={"token": token, "name": "probe"}).json()
    _messages, code, reason = _stream(phone_stack.url, {"camera": paired["camera"], "secret": "wrong"})
    assert code == 4401 and "pair again" in reason
    _messages, code, _reason = _stream(phone_stack.url, {"camera": "entrance", "secret": paired["secret"]})
    assert code == 4401
    _messages, code, _reason = _stream(phone_stack.url, {"hello": 1})
    assert code == 4400
    # a non-JPEG frame is answered with a warning and never reaches the frames stream
    messages, _code, _reason = _stream(phone_stack.url, {"camera": paired["camera"], "secret": paired["secret"]},
                                       [b"GIF89a not a jpeg"])
    assert messages and messages[0]["type"] == "hello"
    assert phone_stack.redis.xlen(keys.frames_stream(paired["camera"])) == 0
    # too many phone cameras (max_cameras 2: phone-once and phone-probe are paired)
    with phone_stack.client(None) as client:
        full = client.post("/api/v1/phone/pair", json={"token": phone_stack.pairing_token(), "name": "third"})
    assert full.status_code == 429 and "max_cameras" in full.json()["detail"]
    for camera in ("phone-once", "phone-probe"):  # make room for the browser test
        phone_stack.redis.delete(keys.phone_session(camera))


def test_phone_page_streams_and_results_come_back(phone_stack: PhoneStack, phone_browser) -> None:
    context = phone_browser.new_context(ignore_https_errors=True, viewport={"width": 420, "height": 860})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # console errors, but not Chromium's own line for each refused reconnect while the dashboard restarts
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and "ERR_CONNECTION_REFUSED" not in msg.text else None)
    # the dashboard makes the pairing link (with the API key, as a signed-in user would)
    dash = context.new_page()
    dash.goto(f"{phone_stack.url}/?key={API_KEY}")
    dash.click("#phone-add")
    dash.wait_for_function("() => document.getElementById('phone-qr').naturalWidth > 100", timeout=15_000)
    link = dash.get_attribute("#phone-link", "href")
    assert link.startswith(phone_stack.url + "/phone/#t=")
    dash.close()

    page.goto(link)
    assert "#t=" not in page.url  # the token leaves the address bar
    page.fill("#name", "gate")
    page.click("#start")
    page.wait_for_function("() => document.getElementById('conn').dataset.state === 'live'", timeout=30_000)
    assert page.evaluate("() => isSecureContext")
    camera = "phone-gate"
    wait_for(lambda: phone_stack.redis.xlen(keys.frames_stream(camera)) > 0, 30, "frames from the phone")
    state = {k.decode(): v.decode() for k, v in phone_stack.redis.hgetall(keys.camera_state(camera)).items()}
    assert state["status"] == "live" and int(state["frames_captured"]) >= 1
    assert camera.encode() in phone_stack.redis.smembers(keys.CAMERAS_SET)
    # detector and tracker answer: annotated results and faces come back to the phone page
    page.wait_for_function("() => window.maskwatchPhone.results >= 3 && window.maskwatchPhone.latencies.length > 0 "
                           "&& document.querySelectorAll('#faces .chip').length > 0", timeout=120_000)
    with phone_stack.client() as client:
        overview = client.get(f"/api/v1/cameras/{camera}").json()
    assert overview["status"] == "live" and overview["up"], overview
    page.wait_for_function("() => document.getElementById('compliance').textContent.endsWith('%')", timeout=30_000)
    # installable: the manifest is linked and the service worker controls /phone/ (and nothing else)
    scope = page.evaluate("async () => (await navigator.serviceWorker.ready).scope")
    assert scope == f"{phone_stack.url}/phone/"
    manifest = page.evaluate("async () => (await fetch(document.querySelector('link[rel=manifest]').href)).json()")
    assert manifest["scope"] == "/phone/" and manifest["display"] == "fullscreen"
    sent = page.evaluate("() => window.maskwatchPhone")
    assert sent["framesSent"] > 0 and sent["bytesSent"] / sent["framesSent"] < 512 * 1024
    # the dashboard lists the phone camera like any other
    overview_page = context.new_page()
    overview_page.goto(f"{phone_stack.url}/?key={API_KEY}")
    overview_page.locator(f'section.tile[data-camera="{camera}"]').wait_for(timeout=30_000)
    overview_page.close()

    # the connection drops (dashboard restart): the page says so, reconnects and streams again as the same camera
    phone_stack.restart_dashboard()
    page.wait_for_function("() => window.maskwatchPhone.closes.length > 0", timeout=30_000)
    page.wait_for_function("() => document.getElementById('conn').dataset.state === 'live'", timeout=60_000)
    assert any(text.startswith("connection lost") for text in page.evaluate("() => window.maskwatchPhone.shown"))
    sent_before = page.evaluate("() => window.maskwatchPhone.framesSent")
    wait_for(lambda: phone_stack.redis.hget(keys.camera_state(camera), "status") == b"live", 20, "live again")
    page.wait_for_function(f"() => window.maskwatchPhone.framesSent > {sent_before}", timeout=30_000)

    page.close()  # closing the page marks the camera stopped; its keys expire after stopped_ttl_s
    # at once when the browser says goodbye; within uvicorn's WebSocket ping timeout (about 40 s) when it cannot
    wait_for(lambda: phone_stack.redis.hget(keys.camera_state(camera), "status") == b"stopped", 60,
             "the camera marked stopped")
    assert 0 < phone_stack.redis.ttl(keys.camera_state(camera)) <= 600
    assert not errors, errors
    context.close()
