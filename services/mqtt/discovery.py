"""Home Assistant MQTT discovery: each camera a device with sensors and a binary sensor, no YAML needed.

Payloads follow Home Assistant's MQTT sensor / binary_sensor / switch / camera schemas (full key names,
a device with `identifiers`, a `unique_id` per entity, availability on the bridge's status topic).
Values are read from the camera's retained state JSON with `value_template`s; a null renders as "None",
which Home Assistant shows as unknown.
"""

from __future__ import annotations

from typing import Any

from services.mqtt.topics import Topics, level
from shared.schemas import MASK_LABELS

ORIGIN = {"name": "maskwatch"}
WINDOWS = {"1h": "last hour", "today": "today"}
LABEL_NAMES = {"with_mask": "with mask", "without_mask": "without mask", "mask_incorrect": "mask worn wrongly"}


def device(camera: str, version: str) -> dict[str, Any]:
    """The Home Assistant device of one camera."""
    return {"identifiers": [f"maskwatch_{camera}"], "name": f"maskwatch {camera}", "manufacturer": "maskwatch",
            "model": "mask compliance camera", "sw_version": version}


def camera_configs(topics: Topics, camera: str, version: str, commands: bool = False, thumbnails: bool = False,
                   lines: list[str] | None = None, zones: list[str] | None = None
                   ) -> dict[str, dict[str, Any]]:
    """Discovery topic -> config payload of every entity of one camera."""
    state = topics.state(camera)
    dev = device(camera, version)
    configs: dict[str, dict[str, Any]] = {}

    def add(component: str, object_id: str, name: str, topic: str, **extra: Any) -> None:
        payload = {"name": name, "unique_id": f"maskwatch_{camera}_{object_id}", "device": dev, "origin": ORIGIN,
                   "availability_topic": topics.availability, **extra}
        if component == "camera":
            payload["topic"] = topic
        elif topic:
            payload["state_topic"] = topic
        configs[topics.discovery(component, camera, object_id)] = payload

    add("sensor", "status", "Status", state, value_template="{{ value_json.status }}", icon="mdi:cctv",
        json_attributes_topic=state, json_attributes_template="{{ {'up': value_json.up} | tojson }}")
    for window, words in WINDOWS.items():
        add("sensor", f"masked_share_{window}", f"Masked share {words}", state, unit_of_measurement="%",
            state_class="measurement", icon="mdi:face-mask", suggested_display_precision=0,
            value_template=_percent(f"masked_share_{window}"))
        add("sensor", f"people_{window}", f"People {words}", state, state_class="measurement",
            icon="mdi:account-group", value_template=f"{{{{ value_json.people_total_{window} }}}}")
        add("sensor", f"entries_{window}", f"Entries {words}", state, state_class="measurement",
            icon="mdi:door-open", value_template=f"{{{{ value_json.entries_total_{window} }}}}",
            json_attributes_topic=state, json_attributes_template=f"{{{{ value_json.entries_{window} | tojson }}}}")
        for label in MASK_LABELS:
            add("sensor", f"people_{window}_{label}", f"People {LABEL_NAMES[label]} {words}", state,
                state_class="measurement", icon="mdi:account",
                value_template=f"{{{{ value_json.people_{window}.{label} }}}}")
    add("binary_sensor", "unmasked_last_minute", "Unmasked person in the last minute", state,
        device_class="occupancy", payload_on="ON", payload_off="OFF",
        value_template="{{ 'ON' if value_json.unmasked_last_minute else 'OFF' }}")
    for line in lines or []:
        topic = topics.line_state(camera, line)
        for direction in ("entries", "exits"):
            add("sensor", f"line_{level(line)}_{direction}_today", f"{line} {direction} today", topic,
                state_class="measurement", icon="mdi:counter",
                value_template=f"{{{{ value_json.{direction}_total_today }}}}")
    for zone in zones or []:
        add("sensor", f"zone_{level(zone)}_people_today", f"{zone} people today", topics.zone_state(camera, zone),
            state_class="measurement", icon="mdi:account-group",
            value_template="{{ value_json.people_total_today }}")
    if commands:
        for setting, name in (("enabled", "Camera enabled"), ("alerts", "Alerts enabled")):
            add("switch", setting, name, state, command_topic=topics.command(camera, setting), payload_on="ON",
                payload_off="OFF", state_on="ON", state_off="OFF",
                value_template=f"{{{{ 'ON' if value_json.{setting} else 'OFF' }}}}")
    if thumbnails:
        add("camera", "thumbnail", "Last face", topics.thumbnail(camera))
    return configs


def _percent(field: str) -> str:
    return (f"{{{{ (value_json.{field} * 100) | round(1) if value_json.{field} is not none "
            f"else None }}}}")
