"""Camera switches set at run time by commands (the MQTT bridge's `/set` topics), read by capture and the tracker.

One Redis hash per camera (`keys.camera_overrides`): `enabled` and `alerts`, "1" or "0". An absent field
means the config file decides. Capture stops a camera whose `enabled` is "0" (state "stopped", error
"disabled by command") and starts it again when the field is "1" or removed; the tracker raises no alerts
(and posts no webhooks) for a camera whose `alerts` is "0". Both see a change within about a second.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import redis

from shared import keys
from shared.streams import REDIS_ERRORS, decode_str

log = logging.getLogger(__name__)
SWITCHES: tuple[str, ...] = ("enabled", "alerts")
DISABLED_BY_COMMAND = "disabled by command"


def set_switch(client: redis.Redis, camera: str, switch: str, on: bool) -> None:
    """Turn one switch of a camera on or off."""
    if switch not in SWITCHES:
        raise ValueError(f"unknown switch {switch!r} (use {', '.join(SWITCHES)})")
    client.hset(keys.camera_overrides(camera), switch, "1" if on else "0")


def switches_off(client: redis.Redis, cameras: Iterable[str], switch: str) -> set[str]:
    """The cameras among `cameras` whose `switch` was turned off by a command (one round trip)."""
    cameras = list(cameras)
    if not cameras:
        return set()
    pipe = client.pipeline(transaction=False)
    for camera in cameras:
        pipe.hget(keys.camera_overrides(camera), switch)
    return {camera for camera, value in zip(cameras, pipe.execute()) if decode_str(value) == "0"}


class AlertSwitch:
    """Whether a camera's alerts are on, read from Redis at most once per `every_s` (the last value on errors)."""

    def __init__(self, client: redis.Redis, camera: str, every_s: float = 1.0) -> None:
        self.client, self.camera, self.every_s = client, camera, every_s
        self._on, self._next = True, 0.0

    @property
    def on(self) -> bool:
        """True unless a command turned this camera's alerts off."""
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.every_s
            try:
                on = self.camera not in switches_off(self.client, [self.camera], "alerts")
            except REDIS_ERRORS:
                return self._on  # the tracker notices the outage itself
            if on != self._on:
                log.info("camera %s: alerts %s by command", self.camera, "on" if on else "off")
            self._on = on
        return self._on
