"""Line crossings through real tracker processes (Redis db 12): published once, also across a `kill -9` takeover.

Detections are fed straight into the camera's detections stream at the camera's pace (no capture, no
models), so the crossings an uninterrupted tracker publishes are known exactly: they are computed in this
process with the same code and settings. Two tracker replicas run; the owner is killed with SIGKILL while
people are in view and in the middle of crossing; the other takes the camera over from its checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from shared import keys
from shared.config import load_config
from shared.detections import publish_detection
from shared.entrances import EntranceCounter, end_tracks, track_frame
from shared.people import PeopleTracker
from shared.schemas import FrameResult, LineCrossing, PersonRecord, parse_result
from tests.conftest import flushed_redis
from tests.stack.helpers import Services, redis_url, wait_for, write_config
from tests.tracking.synthetic import face

DB = 12
CAMERA = "door-a"
FPS = 10.0
FRAMES = 110
DOOR = {"name": "door", "points": [[0.05, 0.5], [0.95, 0.5]], "in": "down"}
POSTER = {"name": "poster", "points": [[0.0, 0.0], [0.15, 0.0], [0.15, 0.3], [0.0, 0.3]], "ignore": True}
pytestmark = pytest.mark.slow


@pytest.fixture
def db() -> Iterator[redis.Redis]:
    yield from flushed_redis(DB)


def script(base: float) -> list[FrameResult]:
    """11 s: six people cross the door line (four down, two up, one of them back), a poster face in the corner."""
    people = [  # (first frame, x, y0, dy per frame, label)
        (0, 100, 40, 7, "with_mask"), (10, 250, 300, -6, "without_mask"), (25, 400, 30, 5, "mask_incorrect"),
        (45, 520, 40, 8, "with_mask"), (50, 160, 310, -7, "without_mask"), (70, 330, 40, 6, "with_mask"),
    ]
    frames = []
    for i in range(FRAMES):
        faces = [face(20, 20, "without_mask", size=40)]  # inside the ignore zone
        for start, x, y0, dy, label in people:
            y = y0 + dy * (i - start)
            if start <= i < start + 45 and 0 <= y <= 300:
                faces.append(face(x, y, label, size=50))
        if 60 <= i < 90:  # the third walker's way back up
            faces.append(face(400, 300 - 7 * (i - 60), "mask_incorrect", size=50))
        frames.append(FrameResult(source=CAMERA, camera=CAMERA, frame=i, width=640, height=360, faces=faces,
                                  captured_at=base + i / FPS))
    return frames


def reference(frames: list[FrameResult], config_path: Path) -> list[PersonRecord | LineCrossing]:
    """What one uninterrupted tracker publishes (records and crossings), computed here."""
    config = load_config(config_path)
    camera = config.cameras[0]
    people = PeopleTracker(CAMERA, camera.fps, **config.tracker.people_options())
    counter = EntranceCounter(CAMERA, camera.geometry, **config.tracker.entrance_options())
    out: list[PersonRecord | LineCrossing] = []
    for result in frames:
        out += track_frame(people, counter, result, result.captured_at)[1]
    return out + end_tracks(people, counter, people.flush())


def published(db: redis.Redis) -> list[PersonRecord | LineCrossing]:
    messages = [parse_result(fields[b"data"]) for _id, fields in db.xrange(keys.RESULTS_STREAM)]
    return [m for m in messages if isinstance(m, PersonRecord | LineCrossing)]


def test_crossings_are_published_once_across_a_killed_tracker(db: redis.Redis, tmp_path: Path) -> None:
    config = write_config(tmp_path / "cams.yaml", redis_url(db),
                          [{"id": CAMERA, "url": "door.mp4", "fps": FPS, "zones": [POSTER], "lines": [DOOR]}],
                          tracker={"lease_ttl_s": 1.5})
    env = {**os.environ, "MASKWATCH_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}
    env.pop("MASKWATCH_REDIS_URL", None)
    services = Services(tmp_path, env)
    try:
        db.sadd(keys.CAMERAS_SET, CAMERA)
        trackers = {n: services.start("tracker", "--config", str(config), "--name", n, name=n) for n in ("t1", "t2")}
        wait_for(lambda: db.exists(keys.tracker_lease(CAMERA)), 60, "a tracker to own the camera")
        owner = db.get(keys.tracker_lease(CAMERA)).decode()
        base = time.time() + 0.5
        frames = script(base)
        killed = False
        for result in frames:
            time.sleep(max(0.0, result.captured_at - time.time()))  # the camera's pace
            frame_id = db.xadd(keys.frames_stream(CAMERA), {"frame": result.frame}).decode()
            pipe = db.pipeline(transaction=True)
            publish_detection(pipe, CAMERA, frame_id, result, b"jpeg")
            pipe.execute()
            if result.frame == 55:  # two people in view, one just past the line, crossings pending
                wait_for(lambda: int(db.hget(keys.camera_state(CAMERA), "frames_tracked") or 0) >= 40, 30,
                         "the owner to track 40 frames")
                os.kill(trackers[owner].pid, signal.SIGKILL)
                killed = True
        assert killed
        survivor = next(n for n in trackers if n != owner)
        wait_for(lambda: db.get(keys.tracker_lease(CAMERA)) == survivor.encode(), 30, "the takeover")
        wait_for(lambda: int(db.hget(keys.camera_state(CAMERA), "frames_tracked") or 0) >= FRAMES, 60,
                 "every frame tracked")
        assert services.stop(trackers[survivor]) == 0  # the last tracker: ends the open tracks
        log = services.log(trackers[survivor])
        assert "resuming from its checkpoint" in log and "Traceback" not in log
    finally:
        services.close()

    expected = reference(frames, config)
    got = published(db)
    crossings = [m for m in got if isinstance(m, LineCrossing)]
    assert len({(c.track_id, c.line, c.time) for c in crossings}) == len(crossings), "a crossing published twice"
    assert got == expected  # the same records and crossings, in the same order, none lost
    assert sorted((c.direction, c.label) for c in crossings) == sorted([
        ("in", "with_mask"), ("in", "with_mask"), ("in", "with_mask"), ("in", "mask_incorrect"),
        ("out", "mask_incorrect"), ("out", "without_mask"), ("out", "without_mask")])
    assert [20, 20, 60, 60] not in [r.best_box for r in got if isinstance(r, PersonRecord)]  # the ignored poster
    geometry = json.loads(db.get(keys.camera_geometry(CAMERA)))
    assert geometry["lines"] == [DOOR] and geometry["problem"] is None
    assert json.loads(db.get(keys.zone_occupancy(CAMERA)))["zones"] == {}
