"""Dashboard settings from the command line, the stack config file and the environment."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from services.dashboard.photo import DEFAULT_DETECT_PIXELS
from shared.config import (
    DEFAULT_REDIS_URL,
    FRAMES_REDIS_URL_ENV,
    REDIS_URL_ENV,
    ConfigError,
    PhoneConfig,
    load_config,
)
from shared.file_watch import FileWatch
from shared.history.config import HistoryConfig
from shared.redis_connection import RedisOptions

log = logging.getLogger(__name__)
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
DEFAULT_UPLOAD_PIXELS = 12_000_000  # a 12-megapixel photo decodes in about 100 ms (benchmarks/upload_abuse.py)
REDIS_REPLY_TIMEOUT_S = 1.5  # every endpoint answers (503 at worst) within 2 s when Redis hangs


@dataclass
class DashboardSettings:
    """Everything the dashboard app needs; defaults suit a local run."""

    redis_url: str = field(default_factory=lambda: os.environ.get(REDIS_URL_ENV, DEFAULT_REDIS_URL))
    frames_redis_url: str | None = field(default_factory=lambda: os.environ.get(FRAMES_REDIS_URL_ENV) or None)
    config_path: Path | None = None
    api_key: str | None = field(default_factory=lambda: os.environ.get("MASKWATCH_API_KEY") or None)
    cors_origins: tuple[str, ...] = ()
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_pixels: int = DEFAULT_UPLOAD_PIXELS
    upload_workers: int = 2  # photos decoded and detected at once
    upload_queue: int = 4  # photos waiting for a worker; more are answered 503 with Retry-After
    upload_read_timeout: float = 60.0  # a body that takes longer (a stalled client) is answered 408
    photo_pixels: int = DEFAULT_DETECT_PIXELS  # photos are detected with at most this many pixels (0: as decoded)
    redis_options: RedisOptions = field(default_factory=RedisOptions)
    redis_timeout: float = REDIS_REPLY_TIMEOUT_S
    models_root: Path | None = None
    stale_after: float = 15.0
    feed_fps: float = 4.0
    aggregate: bool = True
    history: HistoryConfig = field(default_factory=HistoryConfig)  # the recorder's database (history API)
    history_base_dir: Path | None = None  # the camera file's folder: where a relative data_dir lies
    phone: PhoneConfig = field(default_factory=PhoneConfig)  # phone cameras (services/dashboard/phone/)
    _cameras: tuple[str, ...] = field(default=(), init=False, repr=False)
    _config_watch: FileWatch | None = field(default=None, init=False, repr=False)

    def cameras(self) -> tuple[str, ...]:
        """Camera ids in the config file, re-read when it changes (capture applies edits live, so do we)."""
        if self.config_path is None:
            return ()
        if self._config_watch is None or self._config_watch.path != self.config_path:
            self._config_watch = FileWatch(self.config_path, seen=False)
        if self._config_watch.changed():
            try:
                self._cameras = tuple(cam.id for cam in load_config(self.config_path).cameras)
            except ConfigError as exc:
                log.warning("%s; keeping the previous camera list", exc)
        return self._cameras
