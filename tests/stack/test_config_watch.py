"""Capture and the tracker re-read the camera file through one watcher: an atomic replace is applied even with
the same size and mtime, and the moment the file is missing during the replace logs no error."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import redis

from services.capture.service import CaptureService
from services.tracker.service import TrackerService
from shared.config import load_config
from tests.stack.helpers import redis_url, write_config

DOOR = {"name": "door", "points": [[0.05, 0.5], [0.95, 0.5]], "in": "down"}
MOVED = {**DOOR, "points": [[0.05, 0.7], [0.95, 0.7]]}  # the same length in YAML


def _cameras(url: str, fps: int, line: dict) -> list[dict]:
    return [{"id": "a", "url": "a.mp4", "fps": fps, "lines": [line]}]


def _replace_alike(path: Path, url: str, fps: int, line: dict) -> None:
    """Replace the file atomically by one of the same size and mtime, as a fast editor on a coarse clock would."""
    old = path.stat()
    new = write_config(path.with_suffix(".tmp"), url, _cameras(url, fps, line))
    assert new.stat().st_size == old.st_size
    os.utime(new, ns=(old.st_atime_ns, old.st_mtime_ns))
    path.unlink()  # the moment an atomic save leaves no file


@pytest.mark.parametrize("service_kind", ["capture", "tracker"])
def test_missing_then_replaced_file_is_applied_without_an_error(tmp_path: Path, capture_db: redis.Redis,
                                                                caplog: pytest.LogCaptureFixture,
                                                                service_kind: str) -> None:
    url = redis_url(capture_db)
    path = write_config(tmp_path / "cams.yaml", url, _cameras(url, 5, DOOR))
    config = load_config(path)
    if service_kind == "capture":
        service = CaptureService(path, config, client=capture_db)
    else:
        service = TrackerService(capture_db, config, "t1", config_path=path)
    caplog.set_level(logging.INFO)

    _replace_alike(path, url, 6, MOVED)
    service.reload_if_changed()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], "a missing file is no error"
    assert service.config.cameras[0].fps == 5

    os.replace(path.with_suffix(".tmp"), path)
    service.reload_if_changed()
    camera = service.config.cameras[0]
    assert (camera.fps, camera.lines[0].points[0][1]) == (6, 0.7)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
