"""`stack up` with an `mqtt:` section: a file camera's people reach a password-protected Mosquitto; the password
stays out of every log, every process's command line and the dashboard's API."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import cv2
import httpx
import pytest
import redis

from services.stack import stack_services
from tests.mqtt.broker import PASSWORD, USER, Broker
from tests.stack.helpers import free_port, redis_url, wait_for, write_config
from tests.tracking.synthetic import Walker, write_clip

FPS = 5


@pytest.fixture(scope="module")
def faces_clip(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """6 s at 5 fps: two faces cross the view one after the other."""
    root = shared_data / "faces/fm12k"
    masked = cv2.imread(str(root / "with_mask/fm12k_with_mask_00001.jpg"))
    bare = cv2.imread(str(root / "without_mask/fm12k_without_mask_00006.jpg"))
    walkers = [Walker(masked, start=1, end=12, x=10, y=40, dx=30), Walker(bare, start=15, end=27, x=500, y=150, dx=-30)]
    return write_clip(tmp_path_factory.mktemp("mqtt-clip") / "two.mp4", walkers, frames=30, fps=FPS)


def test_stack_runs_the_bridge_only_when_configured() -> None:
    assert [s.name for s in stack_services("c.yaml", "h", 1)][-1] == "dashboard"
    assert stack_services("c.yaml", "h", 1, mqtt=True)[-1].args == ("mqtt", "--config", "c.yaml")


@pytest.mark.slow
def test_stack_up_publishes_people_and_keeps_the_password_secret(tmp_path: Path, mqtt_db: redis.Redis,
                                                                 password_broker: Broker, services, subscribe,
                                                                 faces_clip: Path) -> None:
    port = free_port(range(18900, 18950))
    config = write_config(tmp_path / "cams.yaml", redis_url(mqtt_db),
                          [{"id": "hall", "url": str(faces_clip), "fps": FPS, "loop": True}],
                          detector={"max_frame_age": 30},
                          mqtt={"url": password_broker.url, "username": USER, "topic_prefix": "mwstack",
                                "state_interval": 1})
    services.env["MASKWATCH_MQTT_PASSWORD"] = PASSWORD
    sub = subscribe(password_broker.port, ["mwstack/#", "homeassistant/+/maskwatch_hall/#"], username=USER,
                    password=PASSWORD)
    stack = services.start("stack", "up", "--config", str(config), "--port", str(port), name="stack")
    wait_for(lambda: any(e["type"] == "person" for e in sub.json_on("mwstack/hall/events")), 180,
             "a person event from the stack")
    wait_for(lambda: any(s["status"] == "live" and s["people_total_1h"] >= 1
                         for s in sub.json_on("mwstack/hall/state")), 60, "the state with a person counted")
    assert any(t.endswith("/unmasked_last_minute/config") for t in sub.topics())
    pids = [int(p) for p in re.findall(r"started \S+ \(pid (\d+)\)", services.log(stack))]
    services.extra_pids.update(pids)
    ps = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True, timeout=30).stdout
    assert "maskwatch.cli mqtt --config" in ps and PASSWORD not in ps
    api = [httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5).text
           for path in ("/api/v1/cameras", "/api/v1/cameras/hall", "/api/v1/health", "/metrics")]
    assert "hall" in api[0] and not any(PASSWORD in body for body in api)
    assert services.stop(stack, timeout=60) == 0
    log = services.log(stack)
    assert "started mqtt" in log and PASSWORD not in log and "Traceback" not in log
