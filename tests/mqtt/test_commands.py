"""Commands (off by default, only on an authenticated connection): a `/set` message turns a camera or its
alerts off; capture stops the camera, the tracker raises no alerts, the state and the switch show it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import paho.mqtt.publish as mqtt_publish
import pytest
import redis

from services.tracker.observers import CameraAlerts
from shared import keys
from shared.alerts import AlertDispatcher, AlertsConfig
from shared.overrides import AlertSwitch, set_switch
from shared.schemas import Face, FrameResult
from tests.mqtt.broker import PASSWORD, USER, Broker
from tests.stack.helpers import fields_text, make_video, redis_url, wait_for, write_config

AUTH = {"username": USER, "password": PASSWORD}


def _send(broker: Broker, topic: str, payload: str) -> None:
    mqtt_publish.single(topic, payload, qos=1, hostname="127.0.0.1", port=broker.port, auth=AUTH)


@pytest.mark.slow
def test_set_topics_switch_capture_and_state(tmp_path: Path, mqtt_db: redis.Redis, password_broker: Broker,
                                             processes, subscribe) -> None:
    video = make_video(tmp_path / "v.avi", frames=40, fps=20)
    config = write_config(tmp_path / "cams.yaml", redis_url(mqtt_db),
                          [{"id": "gate", "url": str(video), "fps": 5, "loop": True}],
                          mqtt={"url": password_broker.url, "username": USER, "topic_prefix": "mw", "commands": True,
                                "state_interval": 5})
    processes.env["MASKWATCH_MQTT_PASSWORD"] = PASSWORD
    capture = processes.start("capture", "--config", str(config), name="capture")
    bridge = processes.start("mqtt", "--config", str(config), name="mqtt")
    sub = subscribe(password_broker.port, ["mw/gate/state"], **AUTH)
    wait_for(lambda: any(s["status"] == "live" and s["enabled"] and s["alerts"]
                         for s in sub.json_on("mw/gate/state")), 90, "the camera live, both switches on")

    _send(password_broker, "mw/gate/enabled/set", "OFF")
    wait_for(lambda: fields_text(mqtt_db, keys.camera_state("gate")).get("error") == "disabled by command", 30,
             "capture to stop the camera")
    assert fields_text(mqtt_db, keys.camera_state("gate"))["status"] == "stopped"
    wait_for(lambda: sub.json_on("mw/gate/state")[-1]["enabled"] is False, 10, "the state to show it")
    captured = int(fields_text(mqtt_db, keys.camera_state("gate")).get("frames_captured", 0))

    _send(password_broker, "mw/gate/set", json.dumps({"enabled": True, "alerts": False}))
    wait_for(lambda: int(fields_text(mqtt_db, keys.camera_state("gate")).get("frames_captured", 0)) > captured
             and fields_text(mqtt_db, keys.camera_state("gate"))["status"] == "live", 60, "the camera back")
    assert fields_text(mqtt_db, keys.camera_overrides("gate")) == {"enabled": "1", "alerts": "0"}
    wait_for(lambda: sub.json_on("mw/gate/state")[-1]["alerts"] is False, 10, "alerts off in the state")

    for topic, payload in (("mw/gate/alerts/set", "maybe"), ("mw/gate/set", '{"enabled": "no"}'),
                           ("mw/nosuch/enabled/set", "OFF"), ("mw/gate/colour/set", "ON")):
        _send(password_broker, topic, payload)
    wait_for(lambda: processes.log(bridge).count("ignored") >= 4, 15, "four ignored commands")
    assert fields_text(mqtt_db, keys.camera_overrides("gate")) == {"enabled": "1", "alerts": "0"}
    assert not mqtt_db.exists(keys.camera_overrides("nosuch"))
    for proc in (bridge, capture):
        assert processes.stop(proc) == 0
        assert "Traceback" not in processes.log(proc) and PASSWORD not in processes.log(proc)


def test_alerts_switched_off_raise_nothing(mqtt_db: redis.Redis) -> None:
    dispatcher = AlertDispatcher(AlertsConfig(confirm_frames=1, cooldown_s=0))
    alerts = CameraAlerts(dispatcher, "gate", AlertSwitch(mqtt_db, "gate", every_s=0))

    def unmasked(track: int) -> FrameResult:
        face = Face(box=[1, 2, 30, 40], score=0.9, label="without_mask", confidence=0.9, probs={}, track_id=track,
                    track_label="without_mask")
        return FrameResult(source="gate", camera="gate", width=64, height=64, faces=[face], captured_at=time.time())

    assert [e["kind"] for e in alerts.on_frame(unmasked(1))] == ["person"]
    set_switch(mqtt_db, "gate", "alerts", False)
    assert alerts.on_frame(unmasked(2)) == []
    set_switch(mqtt_db, "gate", "alerts", True)
    assert [e["track_id"] for e in alerts.on_frame(unmasked(3))] == [3]
