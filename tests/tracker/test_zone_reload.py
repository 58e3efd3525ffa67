"""Live zone and line edits in the tracker (Redis db 12): applied without a restart; a bad edit keeps the old ones."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from services.tracker.observers import CameraAlerts
from services.tracker.service import TrackerService
from shared import keys
from shared.alerts import AlertDispatcher
from shared.config import load_config
from shared.detections import publish_detection
from shared.schemas import FrameResult
from tests.conftest import flushed_redis
from tests.stack.helpers import redis_url, write_config
from tests.tracking.synthetic import face

CAMERA = "door-a"
DOOR = {"name": "door", "points": [[0.05, 0.5], [0.95, 0.5]], "in": "down"}


@pytest.fixture
def db() -> Iterator[redis.Redis]:
    yield from flushed_redis(12)


def write(path: Path, db: redis.Redis, **door_a) -> None:
    write_config(path, redis_url(db), [{"id": CAMERA, "url": "door.mp4", "fps": 10, **door_a}],
                 tracker={"lease_ttl_s": 1.0, "reorder_window_s": 0.1}, capture={"reload_interval": 0.1},
                 alerts={"unmasked_share": None, "confirm_frames": 100,
                         "rules": [{"name": "unmasked-entry", "line": "door", "direction": "in"}]})
    stamp = time.time() + len(door_a.get("lines", [])) + len(door_a.get("zones", []))
    os.utime(path, (stamp, stamp))  # a new mtime even within the file system's time resolution


def geometry(db: redis.Redis) -> dict:
    return json.loads(db.get(keys.camera_geometry(CAMERA)))


def step_until(service: TrackerService, condition, what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, what
        service.step(block_ms=20)


def test_edits_apply_live_and_a_bad_edit_keeps_the_previous_zones(db: redis.Redis, tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "cams.yaml"
    write(path, db, lines=[DOOR])
    config = load_config(path)
    alerts = AlertDispatcher(config.alerts)
    service = TrackerService(db, config, "t1", observers=lambda cam: [CameraAlerts(alerts, cam)], config_path=path)
    db.sadd(keys.CAMERAS_SET, CAMERA)
    step_until(service, lambda: db.exists(keys.camera_geometry(CAMERA)), "the camera taken with its line")
    assert geometry(db)["lines"] == [DOOR] and geometry(db)["problem"] is None

    moved = {**DOOR, "points": [[0.05, 0.7], [0.95, 0.7]]}
    write(path, db, lines=[moved], zones=[{"name": "hall", "points": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]]}])
    step_until(service, lambda: geometry(db)["lines"] == [moved], "the edit applied")
    assert [z["name"] for z in geometry(db)["zones"]] == ["hall"]

    caplog.set_level(logging.ERROR)
    write(path, db, lines=[{**moved, "in": "sideways"}])
    step_until(service, lambda: geometry(db)["problem"] is not None, "the problem published")
    assert geometry(db)["lines"] == [moved]  # still the previous line
    assert "lines[0] (door): in: 'sideways' is not up, down, left, right or a zone" in geometry(db)["problem"]
    assert any("keeping its previous zones and lines" in r.getMessage() for r in caplog.records)

    # the kept line still counts, and the rule limited to it alerts for an unmasked entry
    base = time.time()
    for i in range(30):
        result = FrameResult(source=CAMERA, camera=CAMERA, frame=i, width=640, height=360, captured_at=base + i / 10,
                             faces=[face(300, 40 + 11 * i, "without_mask", size=50)])
        frame_id = db.xadd(keys.frames_stream(CAMERA), {"frame": i}).decode()
        pipe = db.pipeline(transaction=True)
        publish_detection(pipe, CAMERA, frame_id, result, b"jpeg")
        pipe.execute()
    step_until(service, lambda: int(db.hget(keys.camera_state(CAMERA), "frames_tracked") or 0) >= 30, "tracked")
    service.shutdown()
    messages = [json.loads(f[b"data"]) for _id, f in db.xrange(keys.RESULTS_STREAM)]
    crossing = [m for m in messages if m["type"] == "crossing"]
    assert [(c["line"], c["direction"], c["label"]) for c in crossing] == [("door", "in", "without_mask")]
    assert [m["zones"] for m in messages if m["type"] == "person"] == [["hall"]]
    line_alerts = [json.loads(a) for a in db.lrange(keys.ALERTS_LIST, 0, -1) if b'"kind":"line"' in a]
    assert [(a["rule"], a["line"], a["label"], a["track_id"]) for a in line_alerts] == \
        [("unmasked-entry", "door", "without_mask", crossing[0]["track_id"])]
