"""Every MQTT topic the bridge publishes or listens on, in one place."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def level(name: str) -> str:
    """A zone or line name as one safe topic level and object id (other characters become '_')."""
    return _UNSAFE.sub("_", name) or "_"


@dataclass(frozen=True)
class Topics:
    """Topic names under one prefix (`mqtt.topic_prefix`) and Home Assistant's discovery prefix."""

    prefix: str
    discovery_prefix: str = "homeassistant"

    @property
    def availability(self) -> str:
        """"online" while the bridge is connected, "offline" (its last will) otherwise; retained."""
        return f"{self.prefix}/status"

    def state(self, camera: str) -> str:
        """A camera's retained state (JSON)."""
        return f"{self.prefix}/{camera}/state"

    def zone_state(self, camera: str, zone: str) -> str:
        """One zone's retained state (JSON)."""
        return f"{self.prefix}/{camera}/zone/{level(zone)}/state"

    def line_state(self, camera: str, line: str) -> str:
        """One counting line's retained state (JSON)."""
        return f"{self.prefix}/{camera}/line/{level(line)}/state"

    def events(self, camera: str) -> str:
        """A camera's events: person records, crossings and alerts (JSON, not retained)."""
        return f"{self.prefix}/{camera}/events"

    def thumbnail(self, camera: str) -> str:
        """JPEG bytes of each person's face thumbnail (not retained)."""
        return f"{self.prefix}/{camera}/thumbnail"

    def command(self, camera: str, setting: str | None = None) -> str:
        """Where commands arrive: `<camera>/set` (JSON) or `<camera>/<setting>/set` ("ON"/"OFF")."""
        return f"{self.prefix}/{camera}/{setting}/set" if setting else f"{self.prefix}/{camera}/set"

    def command_filters(self) -> list[str]:
        """Subscriptions that receive every command topic."""
        return [f"{self.prefix}/+/set", f"{self.prefix}/+/+/set"]

    def discovery(self, component: str, camera: str, object_id: str) -> str:
        """Home Assistant's discovery topic of one entity of a camera's device."""
        return f"{self.discovery_prefix}/{component}/maskwatch_{camera}/{object_id}/config"
