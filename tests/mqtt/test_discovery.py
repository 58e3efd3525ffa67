"""Home Assistant discovery: every config the bridge publishes passes HA's documented schema, and its value
templates, rendered against the state the bridge publishes, give what the entity expects."""

from __future__ import annotations

import json
import time

import jinja2
import jsonschema
import pytest
import redis

from services.mqtt.discovery import camera_configs
from services.mqtt.topics import Topics
from shared import keys
from shared.config import parse_config
from shared.schemas import LineCrossing, PersonRecord
from tests.mqtt.broker import Broker
from tests.mqtt.ha_schema import DISCOVERY_TOPIC, SCHEMAS
from tests.mqtt.inprocess import connected_publisher, feed_and_publish
from tests.stack.helpers import redis_url, wait_for

JINJA = jinja2.Environment()


def _person(track: int, label: str, t: float, **extra) -> PersonRecord:
    return PersonRecord(camera="door", track_id=track, label=label, first_seen=t - 3, last_seen=t, frames=9,
                        best_box=[1, 2, 30, 40], **extra)


def _render(template: str, state: dict) -> str:
    return JINJA.from_string(template).render(value_json=state)


@pytest.mark.parametrize("commands", [False, True])
def test_discovery_configs_follow_home_assistants_schema(mqtt_db: redis.Redis, broker: Broker, subscribe,
                                                         commands: bool) -> None:
    config = parse_config(f"""
redis_url: {redis_url(mqtt_db)}
cameras: [{{id: door, url: /v.avi}}]
mqtt: {{url: '{broker.url}', topic_prefix: mw, thumbnails: true, commands: {str(commands).lower()}}}
""")
    mqtt_db.hset(keys.camera_state("door"), mapping={"status": "live", "last_frame_time": repr(time.time())})
    now = time.time()
    publisher = connected_publisher(config)
    sub = subscribe(broker.port, ["homeassistant/#", "mw/#"])
    try:
        feed_and_publish(mqtt_db, config, publisher, [
            _person(1, "with_mask", now, zones=["queue"]), _person(2, "without_mask", now),
            _person(3, "with_mask", now), _person(4, "without_mask", now, static=True),
            LineCrossing(camera="door", line="front door", direction="in", track_id=1, label="with_mask", time=now),
        ], now=now)
        wait_for(lambda: sub.on("mw/door/state") and sub.on("mw/door/line/front_door/state"), 15, "state")
        expected = len(camera_configs(Topics("mw"), "door", "v", commands, True, ["front door"], ["queue"]))
        wait_for(lambda: len([t for t in sub.topics() if t.startswith("homeassistant/")]) >= expected, 15,
                 "discovery")
        time.sleep(0.5)
    finally:
        publisher.close()
    [state] = sub.json_on("mw/door/state")
    assert state["people_1h"] == {"with_mask": 2, "without_mask": 1, "mask_incorrect": 0}  # no static face
    assert state["entries_today"] == {"with_mask": 1, "without_mask": 0, "mask_incorrect": 0}
    assert state["unmasked_last_minute"] is True and state["status"] == "live" and state["up"] is True

    configs = {t: json.loads(p) for t in sub.topics() if t.startswith("homeassistant/") for p in sub.on(t)[-1:]}
    components = {topic.split("/")[1] for topic in configs}
    assert components == {"sensor", "binary_sensor", "camera"} | ({"switch"} if commands else set())
    unique_ids = [c["unique_id"] for c in configs.values()]
    assert len(unique_ids) == len(set(unique_ids))
    states = {"mw/door/state": state, "mw/door/line/front_door/state": sub.json_on("mw/door/line/front_door/state")[-1],
              "mw/door/zone/queue/state": sub.json_on("mw/door/zone/queue/state")[-1]}
    for topic, payload in configs.items():
        assert DISCOVERY_TOPIC.match(topic), topic
        component = topic.split("/")[1]
        jsonschema.validate(payload, SCHEMAS[component])
        assert payload["availability_topic"] == "mw/status"
        assert payload["device"]["identifiers"] == ["maskwatch_door"]
        if component == "camera":
            assert payload["topic"] == "mw/door/thumbnail"
            continue
        value = _render(payload["value_template"], states[payload["state_topic"]])
        if component == "binary_sensor":
            assert value == "ON"
        elif component == "switch":
            assert value in ("ON", "OFF") and payload["command_topic"].startswith("mw/door/")
        elif payload.get("state_class") == "measurement":
            assert value == "None" or float(value) >= 0, (topic, value)  # "None" is HA's unknown
        if "json_attributes_template" in payload:
            assert isinstance(json.loads(_render(payload["json_attributes_template"], state)), dict)
    masked = next(p for t, p in configs.items() if t.endswith("/masked_share_1h/config"))
    assert float(_render(masked["value_template"], state)) == pytest.approx(100 * state["masked_share_1h"], abs=0.1)
    people = next(p for t, p in configs.items() if t.endswith("/people_1h_without_mask/config"))
    assert int(_render(people["value_template"], state)) == state["people_1h"]["without_mask"]
    assert _render(masked["value_template"], {**state, "masked_share_1h": None}) == "None"


def test_the_schema_check_catches_mistakes() -> None:
    good = {"name": "x", "unique_id": "u", "state_topic": "a/b", "device": {"identifiers": ["d"]}}
    jsonschema.validate(good, SCHEMAS["sensor"])
    for bad in ({**good, "state_topic": "a/#"}, {k: v for k, v in good.items() if k != "state_topic"},
                {**good, "device": {"name": "no identifiers"}}, {**good, "stat_class": "measurement"},
                {**good, "state_class": "average"}, {**good, "icon": "face-mask"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, SCHEMAS["sensor"])
    assert not DISCOVERY_TOPIC.match("homeassistant/sensor/maskwatch door/x/config")
