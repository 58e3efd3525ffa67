"""The MQTT bridge loop: results stream in, events and periodic retained state out (see services/mqtt/__init__)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import Sequence
from importlib import metadata
from typing import Any

import redis.asyncio as aioredis
from redis import Redis
from redis.exceptions import ResponseError

from services.dashboard import cameras as camera_state
from services.dashboard import queries, stats
from services.dashboard.results import ResultEntry, ResultsReader
from services.mqtt import discovery
from services.mqtt.counts import LastUnmasked, local_midnight
from services.mqtt.publisher import MqttPublisher
from services.mqtt.topics import Topics
from shared import keys
from shared.config import Config
from shared.overrides import SWITCHES, set_switch
from shared.schemas import MASK_LABELS, AlertRecord, LineCrossing, PersonRecord
from shared.stats import compliance_rate
from shared.streams import REDIS_ERRORS, describe_redis_error

log = logging.getLogger(__name__)
STALE_AFTER_S = 15.0
READ_PACE_S = 0.5  # events reach MQTT within about half a second; fewer, larger reads cost less CPU


def _version() -> str:
    try:
        return metadata.version("maskwatch")
    except metadata.PackageNotFoundError:
        return "dev"


def _labels(counts: dict[str, int]) -> dict[str, int]:
    """Counts of every mask label (zero when absent)."""
    return {label: int(counts.get(label, 0)) for label in MASK_LABELS}


def zone_state(camera: str, zone: str, windows: dict[str, stats.WindowStats]) -> dict[str, Any]:
    """The retained state of one zone: people per label over the last hour and today."""
    state: dict[str, Any] = {"camera": camera, "zone": zone}
    for window, counted in windows.items():
        people = _labels(counted.zones.get(zone, {}))
        state[f"people_{window}"] = people
        state[f"people_total_{window}"] = sum(people.values())
        state[f"masked_share_{window}"] = compliance_rate(people)
    return state


def line_state(camera: str, line: str, windows: dict[str, stats.WindowStats]) -> dict[str, Any]:
    """The retained state of one counting line: entries and exits per label over the last hour and today."""
    state: dict[str, Any] = {"camera": camera, "line": line}
    for window, counted in windows.items():
        directions = counted.lines.get(line, {})
        for direction, name in (("in", "entries"), ("out", "exits")):
            labels = _labels(directions.get(direction, {}))
            state[f"{name}_{window}"] = labels
            state[f"{name}_total_{window}"] = sum(labels.values())
        state[f"masked_share_entries_{window}"] = compliance_rate(state[f"entries_{window}"])
    return state


def _switch_changes(levels: list[str], payload: bytes) -> dict[str, bool]:
    """The switches a command sets: from `set` + a JSON object, or `<switch>`, `set` + ON/OFF."""
    text = payload.decode("utf-8", errors="replace").strip()
    if levels == ["set"]:
        try:
            body = json.loads(text)
        except ValueError:
            raise ValueError('expected JSON such as {"enabled": false} or {"alerts": true}') from None
        if not isinstance(body, dict) or not body or set(body) - set(SWITCHES) or \
                not all(isinstance(v, bool) for v in body.values()):
            raise ValueError(f"expected an object of {' and/or '.join(SWITCHES)} booleans")
        return body
    if len(levels) == 2 and levels[0] in SWITCHES and levels[1] == "set":
        words = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}
        if text.lower() not in words:
            raise ValueError("expected ON or OFF")
        return {levels[0]: words[text.lower()]}
    raise ValueError(f"unknown command topic (use set, {'/set, '.join(SWITCHES)}/set)")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class MqttBridge:
    """Publishes a stack's results on MQTT: `run(stop)` until SIGTERM."""

    def __init__(self, config: Config, redis: aioredis.Redis, publisher: MqttPublisher, topics: Topics,
                 commands: Redis | None = None) -> None:
        """`commands`: a Redis client for the camera switches, when `mqtt.commands` is on."""
        assert config.mqtt is not None
        self.config, self.mqtt, self.redis = config, config.mqtt, redis
        self.publisher, self.topics, self.commands = publisher, topics, commands
        if self.mqtt.commands and commands is not None:
            publisher.on_command, publisher.command_filters = self.handle_command, topics.command_filters()
        self._configured = {cam.id: cam for cam in config.cameras}
        self.unmasked = LastUnmasked()
        self.version = _version()
        self.events = 0
        self._published: dict[str, str] = {}  # retained topic -> payload without its time, to publish changes only
        self._discovered: dict[str, set[str]] = {}  # camera -> its discovery topics
        self._cameras: set[str] = set()
        self._redis_down = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    # -- running -------------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> int:
        """Bridge until `stop` is set; returns the exit code."""
        self.publisher.start()
        try:
            asyncio.run(self._main(stop))
        finally:
            self.publisher.close()
        log.info("mqtt: stopped after %d event(s); %d message(s) sent, %d dropped", self.events,
                 self.publisher.sent, self.publisher.dropped)
        return 0

    async def _main(self, stop: threading.Event) -> None:
        done, self._wake = asyncio.Event(), asyncio.Event()
        self._loop = loop = asyncio.get_running_loop()
        threading.Thread(target=lambda: (stop.wait(), loop.call_soon_threadsafe(done.set),
                                         loop.call_soon_threadsafe(self._wake.set)), daemon=True).start()
        reader = ResultsReader(self.redis, [self.consume], pace_s=READ_PACE_S)  # from the newest entry on
        log.info("mqtt: publishing %d configured camera(s) to %s under %s/", len(self._configured),
                 self.publisher.where, self.topics.prefix)
        await asyncio.gather(reader.run(done), self._state_loop(done))
        await self.redis.aclose()

    async def _state_loop(self, done: asyncio.Event) -> None:
        while not done.is_set():
            try:
                await self.publish_state()
                if self._redis_down:
                    log.info("mqtt: redis is back")
                self._redis_down = False
            except (*REDIS_ERRORS, OSError, ResponseError) as exc:
                if not self._redis_down:
                    log.warning("mqtt: redis unavailable (%s); state updates resume when it is back",
                                describe_redis_error(exc))
                self._redis_down = True
            try:  # a command wakes it early, so a switch shows its new state at once
                await asyncio.wait_for(self._wake.wait(), timeout=self.mqtt.state_interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()

    # -- events --------------------------------------------------------------------------------------------
    def consume(self, entries: Sequence[ResultEntry]) -> None:
        """Count and publish the person records, crossings and alerts of a batch (frames are not events)."""
        for entry in entries:
            result = entry.result
            if isinstance(result, PersonRecord) and not result.static:
                self.unmasked.add(result)
                self._publish_person(result)
            elif isinstance(result, (LineCrossing, AlertRecord)):
                self._event(result.camera, result.model_dump(mode="json"))

    def _publish_person(self, record: PersonRecord) -> None:
        self._event(record.camera, record.model_dump(mode="json", exclude={"thumbnail", "static"}))
        if self.mqtt.thumbnails and record.thumbnail:
            try:
                jpeg = base64.b64decode(record.thumbnail, validate=True)
            except (binascii.Error, ValueError):
                log.warning("mqtt: camera %s track %d: unreadable thumbnail skipped", record.camera, record.track_id)
                return
            self.publisher.publish_event(self.topics.thumbnail(record.camera), jpeg)

    def _event(self, camera: str, body: dict) -> None:
        self.events += 1
        self.publisher.publish_event(self.topics.events(camera), _dumps(body))

    # -- state ---------------------------------------------------------------------------------------------
    async def publish_state(self, now: float | None = None) -> None:
        """Publish every camera's (and zone's and line's) retained state that changed, and discovery configs."""
        now = time.time() if now is None else now
        cameras = await queries.camera_list(self.redis, list(self._configured))
        for camera in cameras:
            windows = {"1h": await queries.window_stats(self.redis, camera, stats.Window.HOUR, now),
                       "today": await self._since_midnight(camera, now)}
            zones, lines = self._geometry(camera, windows)
            self._retain(self.topics.state(camera), await self.camera_state(camera, windows, zones, lines, now))
            for zone in zones:
                self._retain(self.topics.zone_state(camera, zone), zone_state(camera, zone, windows))
            for line in lines:
                self._retain(self.topics.line_state(camera, line), line_state(camera, line, windows))
            if self.mqtt.home_assistant:
                self._discover(camera, zones, lines)
        for gone in self._cameras - set(cameras):
            self._forget(gone)
        self._cameras = set(cameras)

    async def camera_state(self, camera: str, windows: dict[str, stats.WindowStats], zones: list[str],
                           lines: list[str], now: float) -> dict[str, Any]:
        """The retained state of one camera."""
        raw = await self.redis.hgetall(keys.camera_state(camera))
        capture = camera_state.parse_state(camera, raw, now=now, stale_after=STALE_AFTER_S)
        state: dict[str, Any] = {"camera": camera, "status": str(capture.status), "up": capture.up}
        for window, counted in windows.items():
            people, entries = _labels(counted.people), _labels(counted.entries)
            state[f"people_{window}"] = people
            state[f"people_total_{window}"] = sum(people.values())
            state[f"masked_share_{window}"] = compliance_rate(people)
            state[f"entries_{window}"] = entries
            state[f"entries_total_{window}"] = sum(entries.values())
        state["unmasked_last_minute"] = self.unmasked.recently(camera, now)
        if self.mqtt.commands:
            switches = {k.decode(): v.decode() for k, v in
                        (await self.redis.hgetall(keys.camera_overrides(camera))).items()}
            configured = self._configured.get(camera)
            state["enabled"] = (configured is None or configured.enabled) and switches.get("enabled") != "0"
            state["alerts"] = switches.get("alerts") != "0"
        state["zones"], state["lines"] = zones, lines
        return state

    async def _since_midnight(self, camera: str, now: float) -> stats.WindowStats:
        """Counts in the dashboard's hourly buckets from local midnight to now."""
        since = local_midnight(now)
        keyed = [(start, key) for start, key in stats.window_keys(camera, stats.Window.DAY, now) if start >= since]
        pipe = self.redis.pipeline(transaction=False)
        for _, key in keyed:
            pipe.hgetall(key)
        replies = await pipe.execute() if keyed else []
        return stats.summarize(stats.Window.DAY, [(start, raw) for (start, _), raw in zip(keyed, replies)])

    def _geometry(self, camera: str, windows: dict[str, stats.WindowStats]) -> tuple[list[str], list[str]]:
        """The camera's zones (not ignore zones) and lines: configured, or counted today."""
        configured = self._configured.get(camera)
        zones = {zone.name for zone in configured.zones if not zone.ignore} if configured else set()
        lines = {line.name for line in configured.lines} if configured else set()
        for counted in windows.values():
            zones |= set(counted.zones)
            lines |= set(counted.lines)
        return sorted(zones), sorted(lines)

    # -- commands (paho's network thread) ------------------------------------------------------------------
    def handle_command(self, topic: str, payload: bytes) -> None:
        """Apply `<prefix>/<camera>/set` (JSON {"enabled": bool, "alerts": bool}) or `<camera>/<switch>/set`
        ("ON"/"OFF") to the camera's switches in Redis; anything else is one warning line."""
        levels = topic.removeprefix(self.topics.prefix + "/").split("/")
        camera = levels[0]
        if camera not in self._cameras and camera not in self._configured:
            log.warning("mqtt: command for unknown camera %r ignored", camera[:64])
            return
        try:
            changes = _switch_changes(levels[1:], payload)
        except ValueError as exc:
            log.warning("mqtt: command on %s ignored: %s", topic, exc)
            return
        try:
            for switch, on in changes.items():
                set_switch(self.commands, camera, switch, on)
        except REDIS_ERRORS as exc:
            log.warning("mqtt: command on %s not applied: redis unavailable (%s)", topic, describe_redis_error(exc))
            return
        log.info("mqtt: camera %s %s by command", camera,
                 ", ".join(f"{switch} {'on' if on else 'off'}" for switch, on in changes.items()))
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def _retain(self, topic: str, state: dict[str, Any]) -> None:
        """Publish a state when it differs from the last one published (its `updated` time aside)."""
        body = _dumps(state)
        if self._published.get(topic) == body:
            return
        self._published[topic] = body
        self.publisher.publish_retained(topic, _dumps({**state, "updated": round(time.time(), 3)}))

    def _discover(self, camera: str, zones: list[str], lines: list[str]) -> None:
        configs = discovery.camera_configs(self.topics, camera, self.version, commands=self.mqtt.commands,
                                           thumbnails=self.mqtt.thumbnails, lines=lines, zones=zones)
        for topic, payload in configs.items():
            body = _dumps(payload)
            if self._published.get(topic) != body:
                self._published[topic] = body
                self.publisher.publish_retained(topic, body)
        self._discovered[camera] = set(configs)

    def _forget(self, camera: str) -> None:
        """A camera that left the config: remove its Home Assistant entities and retained state."""
        for topic in self._discovered.pop(camera, set()) | {self.topics.state(camera)}:
            self._published.pop(topic, None)
            self.publisher.forget_retained(topic)
        log.info("mqtt: camera %s removed", camera)
