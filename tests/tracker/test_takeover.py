"""Tracker replicas against real Redis (db 13): leases, fencing, and a takeover that resumes exactly once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import numpy as np
import pytest
import redis

from services.tracker.camera import decode_checkpoint
from services.tracker.observers import CameraAlerts
from services.tracker.service import TrackerService
from shared import keys
from shared.alerts import AlertDispatcher, AlertsConfig
from shared.config import Config
from shared.crops import face_crop_jpeg
from shared.detections import publish_detection
from shared.schemas import AlertRecord, FrameResult, PersonRecord, parse_result
from tests.conftest import flushed_redis
from tests.tracking.synthetic import face

DB = 13
CAMERA = "door"
FRAMES = 60


@pytest.fixture
def db() -> Iterator[redis.Redis]:
    yield from flushed_redis(DB)


def script(base: float) -> list[FrameResult]:
    """60 frames at 10 fps: three people cross the view, overlapping in time."""
    crop = face_crop_jpeg(np.full((80, 80, 3), 128, np.uint8), [10, 10, 70, 70])
    frames = []
    for i in range(FRAMES):
        faces = []
        if i < 25:
            faces.append(face(20 + 6 * i, 40, "with_mask"))
        if 10 <= i < 45:
            faces.append(face(500 - 7 * (i - 10), 200, "without_mask", confidence=0.8))
        if 30 <= i:
            faces.append(face(100 + 5 * (i - 30), 120, "mask_incorrect" if i % 7 else "with_mask"))
        faces = [f.model_copy(update={"crop": crop}) for f in faces]
        frames.append(FrameResult(source=CAMERA, camera=CAMERA, frame=i, width=640, height=360, faces=faces,
                                  captured_at=base + i / 10, model_version="test"))
    return frames


def feed(db: redis.Redis, frames: list[FrameResult]) -> None:
    """Publish detections the way the workers do (their frames-stream ids give the order)."""
    for result in frames:
        frame_id = db.xadd(keys.frames_stream(CAMERA), {"frame": result.frame}).decode()
        pipe = db.pipeline(transaction=True)
        publish_detection(pipe, CAMERA, frame_id, result, b"jpeg-%d" % result.frame)
        pipe.execute()


def tracker(db: redis.Redis, name: str) -> TrackerService:
    config = Config.model_validate({"cameras": [{"id": CAMERA, "url": "x.mp4", "fps": 10}],
                                    "tracker": {"lease_ttl_s": 1.0, "reorder_window_s": 0.2}})
    alerts = AlertDispatcher(AlertsConfig(confirm_frames=4, unmasked_share=None))
    return TrackerService(db, config, name, observers=lambda camera: [CameraAlerts(alerts, camera)])


def results(db: redis.Redis) -> tuple[list[FrameResult], list[PersonRecord]]:
    frames, people = [], []
    for _id, fields in db.xrange(keys.RESULTS_STREAM):
        message = parse_result(fields[b"data"])
        if isinstance(message, PersonRecord):
            people.append(message)
        elif isinstance(message, FrameResult):
            frames.append(message)
    return frames, people


def alert_records(db: redis.Redis) -> list[AlertRecord]:
    """The alerts published on the results stream (for the recorder)."""
    return [m for _id, fields in db.xrange(keys.RESULTS_STREAM)
            if isinstance(m := parse_result(fields[b"data"]), AlertRecord)]


def run_until(service: TrackerService, db: redis.Redis, tracked: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while int(db.hget(keys.camera_state(CAMERA), "frames_tracked") or 0) < tracked:
        assert time.monotonic() < deadline, f"{service.name} did not track {tracked} frames"
        service.step(block_ms=50)


def summary(people: list[PersonRecord]) -> list[tuple]:
    return sorted((p.track_id, p.label, p.frames, p.first_seen, p.last_seen, tuple(p.best_box)) for p in people)


def test_a_takeover_resumes_from_the_checkpoint_exactly_once(db: redis.Redis) -> None:
    base = time.time()
    frames = script(base)
    db.sadd(keys.CAMERAS_SET, CAMERA)

    # Uninterrupted: one tracker sees all 60 frames.
    alone = tracker(db, "alone")
    feed(db, frames)
    run_until(alone, db, FRAMES)
    alone.shutdown()  # the only tracker: ends the open tracks
    ref_frames, ref_people = results(db)
    ref_alerts = [json.loads(a) for a in db.lrange(keys.ALERTS_LIST, 0, -1)]
    # every alert is on the results stream too, once, with the same body and its camera, kind and time
    assert [(r.camera, r.kind, r.time, r.event) for r in alert_records(db)] == \
        [(a["camera"], a["kind"], a["time"], a) for a in reversed(ref_alerts)] and ref_alerts
    assert [f.frame for f in ref_frames] == list(range(FRAMES)) and len(ref_people) == 3
    assert all(p.thumbnail for p in ref_people) and all(f.crop is None for r in ref_frames for f in r.faces)
    assert db.get(keys.latest_jpeg(CAMERA)) == b"jpeg-59"
    assert FrameResult.model_validate_json(db.get(keys.latest_result(CAMERA))).frame == 59
    db.flushdb()

    # Interrupted: the first tracker dies after 30 frames; the second takes over.
    db.sadd(keys.CAMERAS_SET, CAMERA)
    first, second = tracker(db, "first"), tracker(db, "second")
    feed(db, frames[:30])
    run_until(first, db, 30)
    assert db.get(keys.tracker_lease(CAMERA)) == b"first"
    state = decode_checkpoint(db.get(keys.tracker_checkpoint(CAMERA)))  # open tracks, no images (issue 29)
    assert state["people"]["tracks"] and "best_jpeg" not in json.dumps(state) and "/9j/" not in json.dumps(state)
    second.step(block_ms=50)
    assert not second.cameras  # the lease is held: no second owner
    feed(db, frames[30:40])
    time.sleep(1.2)  # `first` is dead (it renews no more): its lease and instance key expire
    second.step(block_ms=50)
    assert list(second.cameras) == [CAMERA] and db.get(keys.tracker_lease(CAMERA)) == b"second"

    # A zombie former owner cannot publish any more: its transaction WATCHes the lease.
    before = db.xlen(keys.RESULTS_STREAM)
    first._next_refresh = float("inf")  # it does not even notice the lease is gone
    feed(db, frames[40:45])
    first.step(block_ms=50)
    assert db.xlen(keys.RESULTS_STREAM) == before and not first.cameras

    feed(db, frames[45:])
    run_until(second, db, FRAMES)
    second.shutdown()
    got_frames, got_people = results(db)
    assert [f.frame for f in got_frames] == list(range(FRAMES))  # every frame once, in order
    assert [[(f.track_id, f.track_label) for f in r.faces] for r in got_frames] == \
        [[(f.track_id, f.track_label) for f in r.faces] for r in ref_frames]  # the same tracks as uninterrupted
    assert summary(got_people) == summary(ref_people)  # no person twice, none lost, the same records
    # the checkpoint has no images: a track seen again after the takeover gets its picture from a later face;
    # one already out of view at the takeover (person 1, frames 0-24) ends without one
    seen_after = [p for p in got_people if p.last_seen >= base + 3.0]
    assert len(seen_after) == 2 and all(p.thumbnail for p in seen_after)
    alerts = [json.loads(a) for a in db.lrange(keys.ALERTS_LIST, 0, -1)]
    assert sorted(a["id"] for a in alerts) == sorted(a["id"] for a in ref_alerts) and alerts
    assert sorted(r.event["id"] for r in alert_records(db)) == sorted(a["id"] for a in alerts)  # once each


def test_replicas_share_the_cameras(db: redis.Redis) -> None:
    cameras = ["a", "b", "c", "d"]
    db.sadd(keys.CAMERAS_SET, *cameras)
    one, two = tracker(db, "one"), tracker(db, "two")
    one.step(block_ms=10)
    assert sorted(one.cameras) == cameras  # alone, it takes every camera
    for _ in range(4):
        two.step(block_ms=10)
        one._next_refresh = 0.0
        one.step(block_ms=10)
        two._next_refresh = 0.0
    assert len(one.cameras) == len(two.cameras) == 2 and not set(one.cameras) & set(two.cameras)
    owners = {c: db.get(keys.tracker_lease(c)).decode() for c in cameras}
    assert owners == {**{c: "one" for c in one.cameras}, **{c: "two" for c in two.cameras}}
    two.shutdown()  # `one` is alive: the cameras are handed over, not flushed
    assert not any(db.exists(keys.tracker_lease(c)) for c in two.cameras)
    one._next_refresh = 0.0
    db.delete(keys.tracker_instance("two"))
    one.step(block_ms=10)
    assert sorted(one.cameras) == cameras


def test_unusable_checkpoint_starts_afresh(db: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    db.sadd(keys.CAMERAS_SET, CAMERA)
    db.set(keys.tracker_checkpoint(CAMERA), json.dumps({"version": 1, "released": "zz"}))
    service = tracker(db, "t")
    service.step(block_ms=10)
    assert list(service.cameras) == [CAMERA] and "checkpoint unusable" in caplog.text


def test_a_lease_that_expired_during_a_long_step_is_taken_back_only_while_unused(db: redis.Redis) -> None:
    frames = script(time.time())
    db.sadd(keys.CAMERAS_SET, CAMERA)
    slow = tracker(db, "slow")
    feed(db, frames[:20])
    run_until(slow, db, 10)
    slow._next_refresh = float("inf")  # no lease renewal in between: the commit is the first to see it gone
    db.delete(keys.tracker_lease(CAMERA))  # the lease expired while a step ran long; nobody took the camera
    feed(db, frames[20:40])
    run_until(slow, db, 30)  # published: the camera was taken back, not dropped
    assert CAMERA in slow.cameras and slow.leases.owner(CAMERA) == "slow"

    db.delete(keys.tracker_lease(CAMERA))  # expired again, and another replica published meanwhile
    db.set(keys.tracker_checkpoint(CAMERA), b"{}")
    published = db.xlen(keys.RESULTS_STREAM)
    feed(db, frames[40:])
    for _ in range(20):
        slow.step(block_ms=50)
        if CAMERA not in slow.cameras:
            break
    assert CAMERA not in slow.cameras  # dropped, to resume from the other replica's checkpoint
    assert db.xlen(keys.RESULTS_STREAM) == published


def test_cameras_publish_in_one_transaction_and_a_lost_lease_drops_only_its_camera(db: redis.Redis) -> None:
    base, cameras = time.time(), ["door", "hall"]
    config = Config.model_validate({"cameras": [{"id": c, "url": "x.mp4", "fps": 10} for c in cameras],
                                    "tracker": {"lease_ttl_s": 5.0, "reorder_window_s": 0.2}})
    service = TrackerService(db, config, "one")
    db.sadd(keys.CAMERAS_SET, *cameras)

    def feed_both(frames: list[FrameResult]) -> None:
        for result in frames:
            for camera in cameras:
                frame_id = db.xadd(keys.frames_stream(camera), {"frame": result.frame}).decode()
                pipe = db.pipeline(transaction=False)  # no EXEC: those counted below are the tracker's
                publish_detection(pipe, camera, frame_id, result.model_copy(update={"camera": camera,
                                                                                    "source": camera}), b"")
                pipe.execute()

    def tracked(camera: str) -> int:
        return int(db.hget(keys.camera_state(camera), "frames_tracked") or 0)

    def step_until(done, what: str) -> None:
        deadline = time.monotonic() + 20
        while not done():
            assert time.monotonic() < deadline, what
            service.step(block_ms=50)

    frames = script(base)
    feed_both(frames[:20])
    service.step(block_ms=50)  # takes both leases
    assert sorted(service.cameras) == cameras
    step_until(lambda: tracked("door") == tracked("hall") == 20, "both cameras tracked")
    execs = db.info("commandstats")["cmdstat_exec"]["calls"]
    for n in range(21, 31):  # a frame of each camera at a time: both go out in the step's one transaction
        feed_both(frames[n - 1:n])
        step_until(lambda n=n: tracked("door") == tracked("hall") == n, f"frame {n} tracked")
    assert db.info("commandstats")["cmdstat_exec"]["calls"] - execs <= 12  # not two a step
    db.set(keys.tracker_lease("hall"), "another-replica")  # taken over elsewhere
    feed_both(frames[30:])
    step_until(lambda: tracked("door") == FRAMES, "the door camera tracked to the end")
    assert sorted(service.cameras) == ["door"] and tracked("hall") == 30  # nothing published for hall since
