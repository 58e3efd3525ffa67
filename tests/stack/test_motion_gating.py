"""Motion gating and classify-once through the stack (real Redis): still frames are answered as unchanged and
accounted for, workers take settled labels from the tracker's state and classify when it is stale."""

from __future__ import annotations

import json
import time

import cv2
import pytest
import redis

from services.detector.worker import DetectorWorker
from shared import keys
from shared.config import DetectorConfig
from shared.detections import Detection
from shared.imaging import encode_jpeg
from shared.live_pipeline import LivePipeline
from shared.model_store import ModelStore
from shared.schemas import FrameResult, PersonRecord
from shared.settled import MAX_AGE_FRAMES, SettledTrack, SettledTracks
from shared.streams import FrameMessage, add_frame_counted, ensure_group
from tests.stack.helpers import fields_text, redis_url, wait_for, write_config
from tests.tracking.synthetic import Walker, write_clip

CAMERA = "gate"


@pytest.fixture
def photo(scene_photos) -> bytes:
    image = cv2.imread(str(scene_photos[4]))
    return encode_jpeg(image)


@pytest.fixture
def worker(detector_db: redis.Redis, tiny_store: ModelStore) -> DetectorWorker:
    detector_db.sadd(keys.CAMERAS_SET, CAMERA)
    ensure_group(detector_db, keys.frames_stream(CAMERA))
    worker = DetectorWorker(detector_db, LivePipeline(tiny_store, threads=1), DetectorConfig(max_frame_age=30.0))
    worker._refresh_streams()
    return worker


def send(client: redis.Redis, worker: DetectorWorker, frame: int, jpeg: bytes, still: bool = False) -> Detection:
    """Capture one frame, let the worker answer it, return its detection."""
    message = FrameMessage(CAMERA, frame, time.time(), 640, 480, b"" if still else jpeg, still)
    add_frame_counted(client, message, 100, 1, 0)
    assert worker.step(block_ms=2000) == 1
    worker.flush()
    entry_id, fields = client.xrevrange(keys.detections_stream(CAMERA), count=1)[0]
    return Detection.from_entry(entry_id, fields)


def counts(client: redis.Redis) -> dict[str, int]:
    state = fields_text(client, keys.camera_state(CAMERA))
    return {k: int(state.get(k, 0)) for k in ("frames_captured", "frames_processed", "frames_skipped",
                                              "frames_dropped", "frames_unchanged")}


def test_still_frames_are_answered_unchanged_and_accounted_for(worker: DetectorWorker, detector_db: redis.Redis,
                                                               photo: bytes) -> None:
    full = send(detector_db, worker, 1, photo)
    assert full.result.faces and not full.result.unchanged
    assert detector_db.exists(keys.frame_jpeg(CAMERA, str(full.frame_id)))
    for frame in (2, 3, 4):
        still = send(detector_db, worker, frame, photo, still=True)
        assert still.result.unchanged and still.result.faces == [] and still.result.frame == frame
        assert (still.result.width, still.result.height) == (640, 480)
        assert not detector_db.exists(keys.frame_jpeg(CAMERA, str(still.frame_id)))  # the tracker keeps the last
    c = counts(detector_db)
    assert c["frames_captured"] == 4 == c["frames_processed"] + c["frames_skipped"] + c["frames_dropped"]
    assert c["frames_unchanged"] == 3
    assert int(detector_db.hget(keys.detector_worker(worker.name), "frames_unchanged")) == 3


def test_workers_reuse_settled_labels_and_classify_on_stale_or_missing_state(
        worker: DetectorWorker, detector_db: redis.Redis, photo: bytes) -> None:
    faces = send(detector_db, worker, 1, photo).result.faces
    assert len(faces) >= 2 and not any(f.reused for f in faces)
    tracks = [SettledTrack(id=i, box=f.box, label="mask_incorrect", confidence=0.9, probs={"mask_incorrect": 0.9},
                           checked=1, area=(f.box[2] - f.box[0]) * (f.box[3] - f.box[1])) for i, f in enumerate(faces)]
    detector_db.set(keys.settled_tracks(CAMERA), SettledTracks(frame=1, tracks=tracks).to_json())
    reused = send(detector_db, worker, 2, photo).result.faces
    assert [f.box for f in reused] == [f.box for f in faces]
    assert all(f.reused and f.label == "mask_incorrect" for f in reused)
    stale = send(detector_db, worker, 2 + MAX_AGE_FRAMES, photo).result.faces  # the tracker fell behind
    assert not any(f.reused for f in stale) and [f.label for f in stale] == [f.label for f in faces]
    detector_db.set(keys.settled_tracks(CAMERA), b"garbage")
    assert not any(f.reused for f in send(detector_db, worker, 3 + MAX_AGE_FRAMES, photo).result.faces)


@pytest.mark.slow
def test_gated_stack_counts_each_person_once_and_every_frame(services, stack_db: redis.Redis, tmp_path,
                                                             shared_data) -> None:
    face = cv2.imread(str(shared_data / "faces/fm12k/without_mask/fm12k_without_mask_00002.jpg"))
    # a face walks across for 2 s, then the hall stays empty (and still) for 4 s
    clip = write_clip(tmp_path / "hall.mp4", [Walker(face, start=0, end=20, x=60, y=100, dx=15)], frames=60, fps=10)
    config = write_config(tmp_path / "cams.yaml", redis_url(stack_db),
                          [{"id": "hall", "url": str(clip), "fps": 10, "motion": {"keyframe_s": 1.0}}])
    stack_db.sadd(keys.CAMERAS_SET, "hall")  # the worker joins the group before the first frame
    ensure_group(stack_db, keys.frames_stream("hall"))
    procs = [services.start(name, "--config", str(config), "--name", name, name=name)
             for name in ("detector", "tracker")]

    def worker_waiting() -> bool:  # models loaded, reading: the walker's frames are not skipped as too old
        return any(c["name"] == "detector:detector" and c["cmd"] == "xreadgroup" for c in stack_db.client_list())

    wait_for(worker_waiting, 120, "the detector to wait for frames")
    capture = services.start("capture", "--config", str(config), name="capture")
    state = keys.camera_state("hall")
    wait_for(lambda: fields_text(stack_db, state).get("status") == "stopped", 90, "the clip to end")
    assert services.stop(capture) == 0

    def settled_counts() -> dict[str, int] | None:
        s = {k: int(v) for k, v in fields_text(stack_db, state).items() if k.startswith("frames_")}
        done = s.get("frames_processed", 0) + s.get("frames_skipped", 0) + s.get("frames_dropped", 0)
        return s if done == s.get("frames_captured") and s.get("frames_tracked", 0) >= s["frames_processed"] else None

    c = wait_for(settled_counts, 60, "every captured frame answered and tracked")
    for proc in procs:
        assert services.stop(proc) == 0
    assert c["frames_captured"] >= 50 and c["frames_unchanged"] >= 20, c  # the empty stretch is still
    messages = [json.loads(f[b"data"]) for _id, f in stack_db.xrange(keys.RESULTS_STREAM)]
    frames = [FrameResult.model_validate(m) for m in messages if m["type"] == "frame"]
    people = [PersonRecord.model_validate(m) for m in messages if m["type"] == "person"]
    assert len(frames) == c["frames_tracked"]
    assert sum(f.unchanged for f in frames) == c["frames_unchanged"]
    assert len({p.track_id for p in people}) == len(people) >= 1  # the walker, counted once
    assert all(not f.faces for f in frames[-10:])  # gone: nothing re-emitted at the end
    assert stack_db.get(keys.latest_jpeg("hall"))  # the dashboard keeps the last full frame
    logs = "".join(services.log(p) for p in procs)
    assert "Traceback" not in logs


def test_a_worker_that_fell_behind_skips_old_full_frames_but_answers_every_still_one(
        worker: DetectorWorker, detector_db: redis.Redis, photo: bytes) -> None:
    for frame, still in ((1, False), (2, True), (3, False), (4, True), (5, False)):
        message = FrameMessage(CAMERA, frame, time.time(), 640, 480, b"" if still else photo, still)
        add_frame_counted(detector_db, message, 100, 1, 0)
    assert worker.step(block_ms=2000) == 5
    worker.flush()
    answered = [Detection.from_entry(i, f).result for i, f in detector_db.xrange(keys.detections_stream(CAMERA))]
    assert sorted(r.frame for r in answered) == [2, 4, 5]  # frames 1 and 3 were superseded by frame 5
    assert [r.frame for r in answered if r.unchanged] == [2, 4]
    c = counts(detector_db)
    assert c["frames_skipped"] == 2 and c["frames_processed"] == 3 and c["frames_unchanged"] == 2
