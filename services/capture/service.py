"""The capture service: one `CameraRunner` per configured camera, kept in step with the config file."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import redis

from services.capture.camera import CameraRunner
from shared import keys
from shared.config import CameraConfig, Config, ConfigError, load_config
from shared.overrides import DISABLED_BY_COMMAND, switches_off
from shared.schemas import CameraStatus
from shared.sources import redact_url
from shared.streams import REDIS_ERRORS, connect, decode_str, describe_redis_error

log = logging.getLogger(__name__)


class CaptureService:
    """Runs the cameras of a config file; edits to the file add, change or remove cameras live."""

    def __init__(self, config_path: str | Path, config: Config, client: redis.Redis | None = None) -> None:
        self.config_path = Path(config_path)
        self.config = config
        self.client = client or connect(config.redis_url, name="capture", options=config.redis)
        self.runners: dict[str, CameraRunner] = {}
        self._stamp = self._file_stamp()
        self._redis_down = False
        self.switched_off: set[str] = set()  # cameras a command turned off (shared/overrides.py)

    def run(self, stop: threading.Event) -> int:
        """Capture until `stop` is set, then stop every camera; returns the exit code."""
        self._report_problems(self.config)
        self.reconcile(self.config)
        log.info("capture: %d camera(s) running, watching %s for edits", len(self.runners), self.config_path)
        while not stop.wait(self.config.capture.reload_interval):
            self.reload_if_changed()
            self.apply_switches()
            self.sync_redis()
        log.info("capture: stopping %d camera(s)", len(self.runners))
        for runner in self.runners.values():
            runner.request_stop()
        for runner in self.runners.values():
            runner.stop()
        self.sync_redis()
        return 0

    def reload_if_changed(self) -> None:
        """Re-read the config file when its size or modification time changed."""
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            log.error("config reload failed, keeping the running cameras: %s", exc)
            return
        if config.redis_url != self.config.redis_url:
            log.warning("config reload: redis_url changes need a restart; still using the old one")
            config = config.model_copy(update={"redis_url": self.config.redis_url})
        log.info("config reloaded from %s", self.config_path)
        self._report_problems(config)
        self.reconcile(config)

    def reconcile(self, config: Config) -> None:
        """Start, restart and stop runners so they match `config`, then publish the camera list."""
        wanted: dict[str, CameraConfig] = {cam.id: cam for cam in config.enabled_cameras
                                           if cam.id not in self.switched_off}
        for cam_id in list(self.runners):
            runner = self.runners[cam_id]
            if _capture_view(wanted.get(cam_id)) != _capture_view(runner.camera) or runner.options != config.capture:
                runner.stop()
                del self.runners[cam_id]
                log.info("camera %s: %s", cam_id, "changed, restarting" if cam_id in wanted else "removed")
        for cam_id, camera in wanted.items():
            if cam_id not in self.runners:
                self.runners[cam_id] = runner = CameraRunner(camera, self.client, config.capture)
                runner.start()
        self.config = config
        self.sync_redis()

    def sync_redis(self) -> None:
        """Write the camera set and every camera's state (again: Redis may have restarted empty)."""
        config = self.config
        states: dict[str, dict[str, str]] = {}  # cameras without a runner
        for cam in config.cameras:
            if not cam.enabled or cam.id in self.switched_off:
                states[cam.id] = {"status": CameraStatus.STOPPED, "url": redact_url(cam.url), "fps": repr(cam.fps),
                                  "error": "disabled" if not cam.enabled else DISABLED_BY_COMMAND}
        for cam_id, problem in config.invalid_cameras.items():
            states[cam_id] = {"status": CameraStatus.FAILED, "error": f"config: {problem}"}
        try:
            listed = set(states) | set(self.runners)
            known = {decode_str(v) for v in self.client.smembers(keys.CAMERAS_SET)}
            pipe = self.client.pipeline(transaction=True)
            for gone in known - listed:
                pipe.srem(keys.CAMERAS_SET, gone)
                pipe.delete(keys.camera_state(gone), keys.frames_stream(gone))
            if listed:
                pipe.sadd(keys.CAMERAS_SET, *listed)
            for cam_id, fields in states.items():
                pipe.hset(keys.camera_state(cam_id), mapping=fields)
            pipe.execute()
            for runner in self.runners.values():
                runner.write_state()
        except REDIS_ERRORS as exc:
            if not self._redis_down:
                log.warning("capture: redis unavailable (%s); retrying", describe_redis_error(exc))
            self._redis_down = True
            return
        if self._redis_down:
            log.info("capture: redis is back")
        self._redis_down = False

    def apply_switches(self) -> None:
        """Stop the cameras a command turned off and start again those turned back on."""
        try:
            off = switches_off(self.client, [cam.id for cam in self.config.enabled_cameras], "enabled")
        except REDIS_ERRORS:
            return  # sync_redis reports the outage
        if off != self.switched_off:
            for cam_id in sorted(off ^ self.switched_off):
                log.info("camera %s: %s by command", cam_id, "disabled" if cam_id in off else "enabled")
            self.switched_off = off
            self.reconcile(self.config)

    def _report_problems(self, config: Config) -> None:
        for problem in config.problems:
            log.error("config %s: %s (camera left out, the others run)", self.config_path, problem)

    def _file_stamp(self) -> tuple[float, int] | None:
        try:
            stat = self.config_path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size


def _capture_view(camera: CameraConfig | None) -> CameraConfig | None:
    """What capture depends on: a camera without its zones and lines (editing those restarts nothing)."""
    return camera.without_geometry() if camera is not None else None
