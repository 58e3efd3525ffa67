"""The capture service: reads the cameras this process holds the leases of, kept in step with the config file.

Public API:
- `CaptureService(config_path, config, client=None, name=None, hooks=None)`: `.run(stop) -> int`, `.tick()`,
  `.reload_if_changed()`, `.owned` (camera id -> config of the cameras this process reads), `.readers`.

Any number of capture processes (replicas, pods) share the cameras of one config: each takes leases
(`keys.capture_lease`) up to its fair share and at most `capture.max_cameras`; a dead one's leases
expire after `capture.lease_ttl_s` and the others take its cameras. Each camera is read by its own
ffmpeg process (services/capture/reader.py), so no camera can delay another.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from pathlib import Path

import redis

from services.capture.publisher import HookFactory, Publisher, motion_hook
from services.capture.readers import ReaderLoop
from shared import keys
from shared.config import CameraConfig, Config, ConfigError, load_config
from shared.file_watch import FileWatch
from shared.leases import Leases
from shared.overrides import DISABLED_BY_COMMAND, switches_off
from shared.schemas import CameraStatus
from shared.sources import redact_url
from shared.streams import REDIS_ERRORS, connect, connect_frames, decode_str, describe_redis_error

log = logging.getLogger(__name__)

STATE_WRITE_S = 0.1  # a camera's status change reaches its state hash within this long
FULL_SYNC_S = 10.0  # the camera set and every state hash are written again this often (Redis may restart)
CHUNK = 1000  # keys per pipeline round trip
# Mark a camera as waiting for a capture process only while nobody holds its lease.
_MARK_WAITING = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[2], 'status', ARGV[1], 'error', ARGV[2], 'url', ARGV[3], 'fps', ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
"""


def default_capture_name() -> str:
    """A replica name unique to this process."""
    return f"capture-{socket.gethostname()}-{os.getpid()}"


class CaptureService:
    """Runs the cameras this replica owns; edits to the config file add, change or remove cameras live."""

    def __init__(self, config_path: str | Path, config: Config, client: redis.Redis | None = None,
                 name: str | None = None, hooks: HookFactory | None = None) -> None:
        self.config_path = Path(config_path)
        self.config = config
        self.name = name or default_capture_name()
        self.client = client or connect(config.redis_url, name=f"capture:{self.name}", options=config.redis)
        self.leases = Leases(self.client, self.name, config.capture.lease_ttl_s, key=keys.capture_lease)
        self.frames = connect_frames(config.frames_redis_url, name=f"capture:{self.name}", options=config.redis)
        # an image older than max_frame_age is skipped by the detectors: keep it a little longer, no more
        self.publisher = Publisher(self.client, config.capture, hooks or motion_hook, frames=self.frames,
                                   image_ttl_s=2 * config.detector.max_frame_age + 5)
        self.readers = ReaderLoop(self.publisher.put)
        self.owned: dict[str, CameraConfig] = {}
        self.switched_off: set[str] = set()  # cameras a command turned off (shared/overrides.py)
        self._running_options = config.capture
        self._watch = FileWatch(self.config_path)
        self._redis_down = False
        self._next_full = 0.0
        self._capacity_note: tuple[int, int] | None = None
        self._mark_waiting = self.client.register_script(_MARK_WAITING)

    @property
    def tick_s(self) -> float:
        """How often the config file, the leases and the state hashes are looked after."""
        return min(self.config.capture.reload_interval, self.config.capture.lease_ttl_s / 3)

    def run(self, stop: threading.Event) -> int:
        """Capture until `stop` is set, then kill every reader and hand the cameras back; returns the exit code."""
        self._report_problems(self.config)
        self.publisher.start()
        self.readers.start()
        self.tick()
        log.info("capture %s: reading %d of %d camera(s), watching %s for edits", self.name, len(self.owned),
                 len(self.config.enabled_cameras), self.config_path)
        next_tick = time.monotonic() + self.tick_s
        while not stop.wait(STATE_WRITE_S):
            if time.monotonic() >= next_tick:
                self.reload_if_changed()
                self.tick()
                next_tick = time.monotonic() + self.tick_s
            elif not self._redis_down:
                self._write_changed()
        log.info("capture %s: stopping %d camera(s)", self.name, len(self.owned))
        self.readers.stop()
        self.publisher.stop()
        self._hand_back()
        return 0

    def reload_if_changed(self) -> None:
        """Re-read the config file when it changed (see shared/file_watch.py)."""
        if not self._watch.changed():
            return
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            log.error("config reload failed, keeping the running cameras: %s", exc)
            return
        if (config.redis_url, config.frames_redis_url) != (self.config.redis_url, self.config.frames_redis_url):
            log.warning("config reload: redis_url and frames_redis_url changes need a restart; still using the old")
            config = config.model_copy(update={"redis_url": self.config.redis_url,
                                               "frames_redis_url": self.config.frames_redis_url})
        log.info("config reloaded from %s", self.config_path)
        self._report_problems(config)
        self.config = config
        self._next_full = 0.0  # the camera set follows the edit now

    def tick(self) -> None:
        """Renew and balance the leases, run the owned cameras, write changed states (logs Redis outages)."""
        try:
            self._balance()
            self._write_states()
        except REDIS_ERRORS as exc:
            if not self._redis_down:
                log.warning("capture %s: redis unavailable (%s); retrying", self.name, describe_redis_error(exc))
            self._redis_down = True
            self._next_full = 0.0
            return
        if self._redis_down:
            log.info("capture %s: redis is back", self.name)
        self._redis_down = False

    # -- ownership -----------------------------------------------------------------------------------------
    def _balance(self) -> None:
        """Keep the leases we hold, drop lost and removed cameras, take or give cameras to reach a fair share."""
        options = self.config.capture
        self._apply_switches()
        wanted = {cam.id: cam for cam in self.config.enabled_cameras if cam.id not in self.switched_off}
        held = self.leases.renew(list(self.owned)) if self.owned else set()
        lost = set(self.owned) - held
        if lost:
            log.warning("capture %s: lease of %d camera(s) lost (%s); another process reads them", self.name,
                        len(lost), _some(lost))
        owned = {cam_id: wanted[cam_id] for cam_id in held if cam_id in wanted}
        removed = sorted(held - set(owned))
        if removed:
            self.leases.release_many(removed)
            log.info("capture %s: %d camera(s) removed (%s)", self.name, len(removed), _some(set(removed)))
        live = self._register()
        share = min(options.max_cameras, math.ceil(len(wanted) / live))
        if len(owned) < share:
            free = self._free([cam_id for cam_id in wanted if cam_id not in owned], share - len(owned))
            owned.update({cam_id: wanted[cam_id] for cam_id in self.leases.acquire_many(free)})
        elif len(owned) > share:  # another replica joined: hand the excess over
            excess = sorted(owned)[share:]
            self.leases.release_many(excess)
            for cam_id in excess:
                del owned[cam_id]
            log.info("capture %s: handing %d camera(s) over to other replicas (fair share %d)", self.name,
                     len(excess), share)
        self._note_capacity(len(wanted), live, options.max_cameras)
        if owned != self.owned or options != self._running_options:
            self.publisher.set_cameras(owned, options)  # first: the publisher knows a camera before its frames
            self.readers.set_cameras(owned, options)
            self.owned, self._running_options = owned, options
            self.client.hset(keys.capture_instance(self.name), "cameras", len(owned))

    def _apply_switches(self) -> None:
        """Cameras turned off by a command are not read (and handed back); turned on again, they are."""
        off = switches_off(self.client, [cam.id for cam in self.config.enabled_cameras], "enabled")
        if off != self.switched_off:
            for cam_id in sorted(off ^ self.switched_off)[:20]:
                log.info("camera %s: %s by command", cam_id, "disabled" if cam_id in off else "enabled")
            self.switched_off = off
            self._next_full = 0.0  # their states say so at once

    def _register(self) -> int:
        """Mark this replica alive; returns how many capture replicas are alive."""
        ttl_ms = int(self.config.capture.lease_ttl_s * 1000)
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(keys.capture_instance(self.name),
                  mapping={"cameras": len(self.owned), "last_seen": repr(time.time())})
        pipe.pexpire(keys.capture_instance(self.name), ttl_ms)
        pipe.execute()
        return max(1, sum(1 for _ in self.client.scan_iter(match=keys.capture_instances_pattern(), count=1000)))

    def _free(self, candidates: list[str], limit: int) -> list[str]:
        """Up to `limit` of `candidates` whose capture lease nobody holds."""
        free: list[str] = []
        for start in range(0, len(candidates), CHUNK):
            chunk = candidates[start:start + CHUNK]
            owners = self.client.mget([keys.capture_lease(c) for c in chunk])
            free += [cam_id for cam_id, owner in zip(chunk, owners) if owner is None]
            if len(free) >= limit:
                break
        return free[:limit]

    def _note_capacity(self, wanted: int, live: int, per_process: int) -> None:
        """One log line whenever the config holds more cameras than the running capture processes read."""
        note = (wanted, live)
        if note == self._capacity_note:
            return
        self._capacity_note = note
        if wanted > live * per_process:
            log.error("capture: the config has %d enabled camera(s) but %d capture process(es) read at most %d "
                      "each (capture.max_cameras): %d camera(s) wait; run more capture replicas or raise "
                      "capture.max_cameras", wanted, live, per_process, wanted - live * per_process)

    # -- state hashes --------------------------------------------------------------------------------------
    def _write_changed(self) -> None:
        """Write the states that changed since the last write (a Redis outage is noticed by the next tick)."""
        try:
            self._write_statuses(only_changed=True)
        except REDIS_ERRORS:
            self._next_full = 0.0

    def _write_states(self) -> None:
        """Write the owned cameras' changed states; every FULL_SYNC_S, the camera set and every state."""
        now = time.monotonic()
        full = now >= self._next_full
        ttl_ms = int(self.config.capture.key_ttl_s * 1000)
        self._write_statuses(only_changed=not full)
        if full:
            self._sync_cameras(ttl_ms)
            self._next_full = now + FULL_SYNC_S

    def _write_statuses(self, only_changed: bool) -> None:
        ttl_ms = int(self.config.capture.key_ttl_s * 1000)
        statuses = self.readers.statuses(only_changed=only_changed)
        if not statuses:
            return
        pipe = self.client.pipeline(transaction=False)
        for cam_id, (status, error) in statuses.items():
            camera = self.owned.get(cam_id)
            if camera is None:
                continue
            pipe.hset(keys.camera_state(cam_id), mapping=_state(camera, status, error))
            pipe.pexpire(keys.camera_state(cam_id), ttl_ms)
        pipe.execute()

    def _sync_cameras(self, ttl_ms: int) -> None:
        """The camera set follows the config; removed cameras lose every key; unread ones say why."""
        config = self.config
        states: dict[str, dict[str, str]] = {}
        for cam in config.cameras:
            if not cam.enabled or cam.id in self.switched_off:
                why = "disabled" if not cam.enabled else DISABLED_BY_COMMAND
                states[cam.id] = _state(cam, CameraStatus.STOPPED, why)
        for cam_id, problem in config.invalid_cameras.items():
            states[cam_id] = {"status": CameraStatus.FAILED, "error": f"config: {problem}"}
        listed = {cam.id for cam in config.cameras} | set(states)
        known = {decode_str(v) for v in self.client.smembers(keys.CAMERAS_SET)}
        known -= {decode_str(v) for v in self.client.smembers(keys.PHONE_CAMERAS)}  # the dashboard's phones
        gone = sorted(known - listed)
        for start in range(0, len(gone), CHUNK):
            pipe = self.client.pipeline(transaction=False)
            chunk = gone[start:start + CHUNK]
            pipe.srem(keys.CAMERAS_SET, *chunk)
            for cam_id in chunk:
                pipe.delete(*keys.camera_keys(cam_id))
            pipe.execute()
            if self.frames is not None:  # its latest frame lives in the frames Redis
                self.frames.delete(*(keys.latest_jpeg(cam_id) for cam_id in chunk))
        if gone:
            log.info("capture: %d camera(s) left the config; their keys are removed", len(gone))
        added = sorted(listed - known)
        waiting = [cam for cam in config.enabled_cameras if cam.id not in self.owned and cam.id not in states]
        for start in range(0, max(len(added), len(states), len(waiting)), CHUNK):
            pipe = self.client.pipeline(transaction=False)
            if added[start:start + CHUNK]:
                pipe.sadd(keys.CAMERAS_SET, *added[start:start + CHUNK])
            for cam_id, fields in list(states.items())[start:start + CHUNK]:
                pipe.hset(keys.camera_state(cam_id), mapping=fields)
                pipe.pexpire(keys.camera_state(cam_id), ttl_ms)
            for cam in waiting[start:start + CHUNK]:
                self._mark_waiting(keys=[keys.capture_lease(cam.id), keys.camera_state(cam.id)],
                                   args=[CameraStatus.RETRYING, "waiting for a capture process with room "
                                         "(capture.max_cameras)", redact_url(cam.url), repr(cam.fps), ttl_ms],
                                   client=pipe)
            pipe.execute()

    def _hand_back(self) -> None:
        """At shutdown: say the cameras stopped, release their leases and leave the replica list."""
        try:
            pipe = self.client.pipeline(transaction=False)
            for cam_id, camera in self.owned.items():
                pipe.hset(keys.camera_state(cam_id), mapping=_state(camera, CameraStatus.STOPPED, ""))
            pipe.delete(keys.capture_instance(self.name))
            pipe.execute()
            owned = list(self.owned)
            for start in range(0, len(owned), CHUNK):
                self.leases.release_many(owned[start:start + CHUNK])
        except REDIS_ERRORS as exc:
            log.warning("capture %s: redis unavailable at shutdown (%s); the leases expire by themselves",
                        self.name, describe_redis_error(exc))

    def _report_problems(self, config: Config) -> None:
        for problem in config.problems:
            log.error("config %s: %s (camera left out, the others run)", self.config_path, problem)


def _state(camera: CameraConfig, status: str, error: str) -> dict[str, str]:
    return {"status": status, "url": redact_url(camera.url), "fps": repr(camera.fps), "error": error}


def _some(cameras: set[str], shown: int = 5) -> str:
    names = sorted(cameras)
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")
