"""Dashboard settings from the command line, the stack config file and the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from shared.imaging import DEFAULT_MAX_PIXELS

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024


@dataclass
class DashboardSettings:
    """Everything the dashboard app needs; defaults suit a local run."""

    redis_url: str = field(default_factory=lambda: os.environ.get("MASKWATCH_REDIS_URL", DEFAULT_REDIS_URL))
    cameras: tuple[str, ...] = ()
    api_key: str | None = field(default_factory=lambda: os.environ.get("MASKWATCH_API_KEY") or None)
    cors_origins: tuple[str, ...] = ()
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    models_root: Path | None = None
    stale_after: float = 15.0
    feed_fps: float = 4.0
    aggregate: bool = True
