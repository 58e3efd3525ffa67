"""Detector workers against real Redis (db 2): detections, skipping, model switching, sharing, claiming, SIGTERM."""

from __future__ import annotations

import base64
import json
import shutil
import signal
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import redis

from services.detector.worker import DetectorWorker
from shared import keys
from shared.config import DetectorConfig
from shared.imaging import encode_jpeg, image_size, read_image
from shared.live_pipeline import LivePipeline
from shared.model_store import ModelStore
from shared.schemas import FrameResult
from shared.streams import FrameMessage, add_frame, ensure_group
from tests.stack.helpers import fields_text, redis_url, wait_for, write_config


def push(client: redis.Redis, camera: str, frame: int, jpeg: bytes, ts: float | None = None) -> None:
    """Add one frame to a camera's stream the way the capture service does."""
    width, height = image_size(jpeg)
    add_frame(client, FrameMessage(camera, frame, ts or time.time(), width, height, jpeg), 1000)


def register(client: redis.Redis, *cameras: str) -> None:
    for camera in cameras:
        client.sadd(keys.CAMERAS_SET, camera)
        ensure_group(client, keys.frames_stream(camera))


def results(client: redis.Redis) -> list[FrameResult]:
    """The untracked results the workers published, camera by camera, in stream order."""
    cameras = sorted(c.decode() for c in client.smembers(keys.CAMERAS_SET))
    return [FrameResult.model_validate_json(f[b"data"]) for c in cameras
            for _id, f in client.xrange(keys.detections_stream(c))]


def pending(client: redis.Redis, camera: str) -> int:
    return client.xpending(keys.frames_stream(camera), keys.DETECTOR_GROUP)["pending"]


@pytest.fixture
def plain_jpeg() -> bytes:
    image = np.full((240, 320, 3), 90, np.uint8)
    cv2.rectangle(image, (100, 60), (220, 200), (30, 160, 220), -1)
    return encode_jpeg(image)


@pytest.fixture
def worker(detector_db: redis.Redis, tiny_store: ModelStore) -> DetectorWorker:
    models = LivePipeline(tiny_store, threads=1)
    return DetectorWorker(detector_db, models, DetectorConfig(max_frame_age=5.0), name="test-worker")


def test_result_matches_the_pipeline_and_latest_state(worker: DetectorWorker, detector_db: redis.Redis,
                                                      scene_photos: list[Path]) -> None:
    pipeline = worker.models.pipeline
    photo = next(p for p in scene_photos[:20] if len(pipeline.process(read_image(p))) >= 2)
    jpeg = photo.read_bytes()
    register(detector_db, "hall")
    push(detector_db, "hall", 41, jpeg)
    assert worker.step(block_ms=100) == 1
    assert results(detector_db) == []  # still in detection while the worker reads on: the next step answers it
    assert worker.step(block_ms=100) == 0
    [result] = results(detector_db)
    [(frame_id, _fields)] = detector_db.xrange(keys.frames_stream("hall"))
    [(_id, detection)] = detector_db.xrange(keys.detections_stream("hall"))
    assert detection[b"frame_id"] == frame_id  # the tracker orders a camera's detections by it
    expected = pipeline.process(read_image(photo))
    untracked = {"track_id", "track_label", "crop"}  # track ids are filled in by the tracker after the pipeline
    # the same face objects as `maskwatch detect --json`
    assert [f.model_dump(exclude=untracked) for f in result.faces] == [f.model_dump(exclude=untracked)
                                                                      for f in expected]
    assert (result.camera, result.source, result.frame) == ("hall", "hall", 41)
    assert result.model_version == f"tiny-test+{worker.models.store.current('detector')}"
    assert result.captured_at <= result.processed_at <= time.time()
    assert all(f.crop and f.track_id is None for f in result.faces)
    for face in result.faces:  # each crop shows its face: a small JPEG of the box and its margin
        crop = cv2.imdecode(np.frombuffer(base64.b64decode(face.crop), np.uint8), cv2.IMREAD_COLOR)
        side = min(128, round(max(face.box[2] - face.box[0], face.box[3] - face.box[1]) * 1.4))
        assert abs(max(crop.shape[:2]) - side) <= 2
    assert detector_db.get(keys.frame_jpeg("hall", frame_id.decode())) == jpeg  # for the tracker's latest state
    assert not detector_db.exists(keys.latest_result("hall"))  # the tracker's job
    assert pending(detector_db, "hall") == 0
    assert fields_text(detector_db, keys.camera_state("hall"))["frames_processed"] == "1"
    assert fields_text(detector_db, keys.detector_worker("test-worker"))["frames_processed"] == "1"


def test_old_superseded_and_broken_frames_are_skipped_and_counted(
        worker: DetectorWorker, detector_db: redis.Redis, plain_jpeg: bytes, caplog: pytest.LogCaptureFixture) -> None:
    register(detector_db, "gate")
    push(detector_db, "gate", 1, plain_jpeg, ts=time.time() - 60)
    assert worker.step(block_ms=100) == 1
    assert results(detector_db) == []
    for frame in range(2, 42):  # a backlog (longer than one read): only the newest is answered
        push(detector_db, "gate", frame, plain_jpeg)
    assert worker.step(block_ms=100) == 40
    worker.flush()
    assert [r.frame for r in results(detector_db)] == [41]
    detector_db.xadd(keys.frames_stream("gate"), {"camera": "gate", "frame": 99})
    assert worker.step(block_ms=100) == 1
    push(detector_db, "gate", 42, plain_jpeg[: len(plain_jpeg) // 2] + b"\x00" * 10)  # truncated JPEG
    assert worker.step(block_ms=100) == 1
    push(detector_db, "gate", 43, plain_jpeg)
    assert worker.step(block_ms=100) == 1
    worker.flush()
    assert [r.frame for r in results(detector_db)] == [41, 43]
    state = fields_text(detector_db, keys.camera_state("gate"))
    assert (state["frames_skipped"], state["frames_processed"]) == ("42", "2")  # 1 old + 39 superseded + 2 bad
    assert pending(detector_db, "gate") == 0
    assert "frame message lacks field b'ts'" in caplog.text
    assert "frame 42: corrupt or truncated image data" in caplog.text


def test_switches_model_when_a_new_version_is_promoted(tmp_path: Path, tiny_store: ModelStore,
                                                        detector_db: redis.Redis, plain_jpeg: bytes) -> None:
    store = ModelStore(tmp_path / "store")
    shutil.copytree(tiny_store.root, store.root)
    worker = DetectorWorker(detector_db, LivePipeline(store, interval=0.0, threads=1), DetectorConfig(),
                            name="switch")
    register(detector_db, "c")
    push(detector_db, "c", 1, plain_jpeg)
    worker.step(block_ms=100)
    worker.flush()
    folder = store.kind_dir("classifier") / "tiny-v2"
    shutil.copytree(store.kind_dir("classifier") / "tiny-test", folder)
    (folder / "meta.json").unlink()
    meta = json.loads((store.kind_dir("classifier") / "tiny-test" / "meta.json").read_text())
    store.finalize("classifier", folder, {k: v for k, v in meta.items() if k not in ("files", "version")})
    store.promote("classifier", "tiny-v2")
    push(detector_db, "c", 2, plain_jpeg)
    worker.step(block_ms=100)
    worker.flush()
    detector = store.current("detector")
    assert [r.model_version for r in results(detector_db)] == [f"tiny-test+{detector}", f"tiny-v2+{detector}"]
    # a broken promote keeps the running model
    (folder / "model.tflite").write_bytes(b"garbage")
    (store.kind_dir("classifier") / "CURRENT").write_text("tiny-test\n")
    (store.kind_dir("classifier") / "tiny-test" / "model.tflite").write_bytes(b"garbage")
    push(detector_db, "c", 3, plain_jpeg)
    worker.step(block_ms=100)
    worker.flush()
    assert results(detector_db)[-1].model_version == f"tiny-v2+{detector}"


def _detector_config(tmp_path: Path, client: redis.Redis, **options: object) -> Path:
    return write_config(tmp_path / "cams.yaml", redis_url(client), [],
                        detector={"max_frame_age": 60, **options})


def _reading(client: redis.Redis, *names: str) -> bool:
    """True when every named worker is blocked in XREADGROUP right now (waiting for frames)."""
    clients = client.client_list()
    return all(any(c["name"] == f"detector:{n}" and c["cmd"] == "xreadgroup" and "b" in c["flags"]
                   for c in clients) for n in names)


def _consumers(client: redis.Redis, camera: str) -> dict[str, int]:
    found = client.xinfo_consumers(keys.frames_stream(camera), keys.DETECTOR_GROUP)
    return {c["name"].decode(): c["pending"] for c in found}


def test_two_workers_share_one_stream(tmp_path: Path, detector_db: redis.Redis, services, plain_jpeg: bytes) -> None:
    register(detector_db, "shared")
    config = _detector_config(tmp_path, detector_db)
    workers = [services.start("detector", "--config", str(config), "--name", n, name=n) for n in ("w1", "w2")]
    wait_for(lambda: _reading(detector_db, "w1", "w2"), 60, "both workers to wait for frames")
    for frame in range(1, 41):
        push(detector_db, "shared", frame, plain_jpeg)
        time.sleep(0.05)

    def accounted() -> int:
        state = fields_text(detector_db, keys.camera_state("shared"))
        return int(state.get("frames_processed", 0)) + int(state.get("frames_skipped", 0))

    wait_for(lambda: accounted() == 40, 60, "all 40 frames to be answered or skipped")
    frames = [r.frame for r in results(detector_db)]
    assert len(frames) == len(set(frames)) >= 20  # no frame answered twice; most answered at 20 fps
    assert set(frames) <= set(range(1, 41))
    per_worker = {n: int(fields_text(detector_db, keys.detector_worker(n)).get("frames_processed", 0))
                  for n in ("w1", "w2")}
    assert sum(per_worker.values()) == len(frames) and min(per_worker.values()) >= 5, per_worker
    assert pending(detector_db, "shared") == 0
    for proc in workers:
        assert services.stop(proc) == 0


def test_frames_of_a_killed_worker_are_claimed(tmp_path: Path, detector_db: redis.Redis, services,
                                                plain_jpeg: bytes) -> None:
    register(detector_db, "cam")
    config = _detector_config(tmp_path, detector_db, claim_idle=1.0)
    doomed = services.start("detector", "--config", str(config), "--name", "doomed", name="doomed")
    for _attempt in range(10):  # freeze it inside a blocking XREADGROUP: Redis still hands it the next frame
        wait_for(lambda: _reading(detector_db, "doomed"), 60, "the first worker to wait for frames")
        doomed.send_signal(signal.SIGSTOP)
        if _reading(detector_db, "doomed"):
            break
        doomed.send_signal(signal.SIGCONT)  # frozen between two reads: try again
    push(detector_db, "cam", 7, plain_jpeg)
    wait_for(lambda: _consumers(detector_db, "cam")["doomed"] == 1, 10, "the frame to be pending at the frozen worker")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)
    assert results(detector_db) == []
    rescuer = services.start("detector", "--config", str(config), "--name", "rescuer", name="rescuer")
    wait_for(lambda: results(detector_db), 60, "the claimed frame's result")
    assert [r.frame for r in results(detector_db)] == [7]
    assert pending(detector_db, "cam") == 0
    assert "claimed 1 pending frame(s)" in services.log(rescuer)
    assert services.stop(rescuer) == 0


def test_sigterm_drains_and_leaves_nothing_pending(tmp_path: Path, detector_db: redis.Redis, services,
                                                   plain_jpeg: bytes) -> None:
    register(detector_db, "d")
    config = _detector_config(tmp_path, detector_db)
    proc = services.start("detector", "--config", str(config), "--name", "drain", name="drain")
    wait_for(lambda: _reading(detector_db, "drain"), 60, "the worker to wait for frames")
    for frame in range(1, 11):
        push(detector_db, "d", frame, plain_jpeg)
        time.sleep(0.03)
    wait_for(lambda: "drain" in _consumers(detector_db, "d"), 10, "the worker to take frames")
    proc.send_signal(signal.SIGTERM)
    assert services.stop(proc) == 0
    log = services.log(proc)
    assert "SIGTERM received" in log and "stopped after" in log and "Traceback" not in log
    assert pending(detector_db, "d") == 0  # what it took, it answered
    assert "drain" not in _consumers(detector_db, "d")  # and it left the group


def test_detector_without_models_is_one_line_error(tmp_path: Path, services) -> None:
    services.env["MASKWATCH_MODELS"] = str(tmp_path / "empty")
    proc = services.start("detector", name="nomodel")
    assert proc.wait(60) == 2  # cannot start as asked (shared/exit_codes.py)
    assert services.log(proc).strip().splitlines()[-1].startswith("error: no classifier model promoted in ")
