"""Home Assistant's MQTT discovery schemas as JSON Schema, written from its documentation.

Sources: https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery (topic format, device and origin
maps), .../sensor.mqtt/, .../binary_sensor.mqtt/, .../switch.mqtt/, .../camera.mqtt/ (configuration
variables, which are required, their types), and homeassistant/components/mqtt/schemas.py (a device needs
at least one of `identifiers` / `connections`; `origin` needs `name`). Unknown keys are refused here, so a
misspelt option fails the test instead of being silently dropped by Home Assistant.
"""

from __future__ import annotations

import re
from typing import Any

DISCOVERY_TOPIC = re.compile(r"^homeassistant/(sensor|binary_sensor|switch|camera)/"
                             r"(?:[a-zA-Z0-9_-]+/)?[a-zA-Z0-9_-]+/config$")
STATE_CLASSES = ["measurement", "measurement_angle", "total", "total_increasing"]
BINARY_SENSOR_CLASSES = [
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door", "garage_door", "gas", "heat",
    "light", "lock", "moisture", "motion", "moving", "occupancy", "opening", "plug", "power", "presence",
    "problem", "running", "safety", "smoke", "sound", "tamper", "update", "vibration", "window",
]
_TOPIC = {"type": "string", "minLength": 1, "maxLength": 65535, "pattern": r"^[^#+\u0000]+$"}
_STR = {"type": "string"}
_TEMPLATE = {"type": "string", "minLength": 1}

DEVICE = {
    "type": "object",
    "properties": {
        "configuration_url": _STR, "connections": {"type": "array", "items": {
            "type": "array", "items": _STR, "minItems": 2, "maxItems": 2}},
        "hw_version": _STR, "identifiers": {"anyOf": [_STR, {"type": "array", "items": _STR}]},
        "manufacturer": _STR, "model": _STR, "model_id": _STR, "name": _STR, "serial_number": _STR,
        "suggested_area": _STR, "sw_version": _STR, "via_device": _STR,
    },
    "additionalProperties": False,
    "anyOf": [{"required": ["identifiers"], "properties": {"identifiers": {"minLength": 1, "minItems": 1}}},
              {"required": ["connections"], "properties": {"connections": {"minItems": 1}}}],
}
ORIGIN = {"type": "object", "properties": {"name": _STR, "sw_version": _STR, "support_url": _STR},
          "required": ["name"], "additionalProperties": False}
# options every MQTT entity has (availability, device, identity, attributes)
COMMON: dict[str, Any] = {
    "availability_topic": _TOPIC, "availability_mode": {"enum": ["all", "any", "latest"]},
    "availability_template": _TEMPLATE, "payload_available": _STR, "payload_not_available": _STR,
    "availability": {"type": "array", "items": {"type": "object", "required": ["topic"]}},
    "device": DEVICE, "origin": ORIGIN, "enabled_by_default": {"type": "boolean"}, "encoding": _STR,
    "entity_category": {"enum": ["config", "diagnostic"]}, "entity_picture": _STR,
    "icon": {"type": "string", "pattern": r"^[a-z0-9-]+:[a-z0-9-]+$"},
    "json_attributes_template": _TEMPLATE, "json_attributes_topic": _TOPIC, "name": {"type": ["string", "null"]},
    "default_entity_id": _STR, "qos": {"enum": [0, 1, 2]}, "unique_id": {"type": "string", "minLength": 1},
}


def _entity(required: list[str], **options: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {**COMMON, **options}, "required": [*required, "unique_id", "device"],
            "additionalProperties": False}


SCHEMAS: dict[str, dict[str, Any]] = {
    "sensor": _entity(["state_topic"], state_topic=_TOPIC, value_template=_TEMPLATE, device_class=_STR,
                      state_class={"enum": STATE_CLASSES}, unit_of_measurement=_STR, expire_after={
                          "type": "integer", "minimum": 0}, force_update={"type": "boolean"},
                      last_reset_value_template=_TEMPLATE, suggested_display_precision={
                          "type": "integer", "minimum": 0}, options={"type": "array"}),
    "binary_sensor": _entity(["state_topic"], state_topic=_TOPIC, value_template=_TEMPLATE,
                             device_class={"enum": BINARY_SENSOR_CLASSES}, payload_on=_STR, payload_off=_STR,
                             off_delay={"type": "integer", "minimum": 0}, expire_after={
                                 "type": "integer", "minimum": 0}, force_update={"type": "boolean"}),
    "switch": _entity(["command_topic"], command_topic=_TOPIC, command_template=_TEMPLATE, state_topic=_TOPIC,
                      value_template=_TEMPLATE, payload_on=_STR, payload_off=_STR, state_on=_STR, state_off=_STR,
                      optimistic={"type": "boolean"}, retain={"type": "boolean"},
                      device_class={"enum": ["outlet", "switch"]}),
    "camera": _entity(["topic"], topic=_TOPIC, image_encoding={"enum": ["b64"]}),
}
