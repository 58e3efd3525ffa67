"""Every frame accounted for (real Redis, db 2): captured = processed + skipped + dropped, per camera."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
import redis

from services.detector import worker as worker_module
from services.detector.worker import DetectorWorker
from shared import keys
from shared.config import DetectorConfig
from shared.imaging import encode_jpeg
from shared.live_pipeline import LivePipeline
from shared.model_store import ModelStore
from shared.streams import ACKED, AckedTransaction, FrameMessage, add_frame_counted, ensure_group
from tests.stack.helpers import fields_text

CAMERA = "acct"


def accounting(client: redis.Redis, camera: str) -> dict[str, int]:
    """The camera's counters (0 when absent)."""
    state = fields_text(client, keys.camera_state(camera))
    return {name: int(state.get(name, 0)) for name in ("frames_captured", "frames_processed", "frames_skipped",
                                                        "frames_dropped", "frames_expired")}


def identity_holds(counts: dict[str, int]) -> bool:
    """captured = processed + skipped + dropped."""
    return counts["frames_captured"] == counts["frames_processed"] + counts["frames_skipped"] + counts["frames_dropped"]


@pytest.fixture
def jpeg() -> bytes:
    image = np.full((120, 160, 3), 90, np.uint8)
    cv2.circle(image, (80, 60), 30, (30, 160, 220), -1)
    return encode_jpeg(image)


@pytest.fixture
def worker(detector_db: redis.Redis, tiny_store: ModelStore) -> DetectorWorker:
    detector_db.sadd(keys.CAMERAS_SET, CAMERA)
    ensure_group(detector_db, keys.frames_stream(CAMERA))
    models = LivePipeline(tiny_store, threads=1)
    return DetectorWorker(detector_db, models, DetectorConfig(max_frame_age=30.0, claim_idle=0.05), name="alive")


def capture(client: redis.Redis, frames: int, jpeg: bytes, maxlen: int = 100) -> None:
    for i in range(frames):
        add_frame_counted(client, FrameMessage(CAMERA, i + 1, time.time(), 160, 120, jpeg), maxlen, 1, 0)


def test_frames_trimmed_before_any_worker_saw_them_are_dropped(detector_db: redis.Redis, jpeg: bytes) -> None:
    ensure_group(detector_db, keys.frames_stream(CAMERA))
    capture(detector_db, 8, jpeg, maxlen=3)
    assert detector_db.xlen(keys.frames_stream(CAMERA)) == 3
    counts = accounting(detector_db, CAMERA)
    assert counts["frames_captured"] == 8 and counts["frames_dropped"] == 5 == counts["frames_expired"]
    # frames a worker was given are not counted again when they are trimmed
    detector_db.xreadgroup(keys.DETECTOR_GROUP, "w", {keys.frames_stream(CAMERA): ">"}, count=3)
    capture(detector_db, 3, jpeg, maxlen=3)
    assert accounting(detector_db, CAMERA)["frames_dropped"] == 5


def test_claimed_frames_gone_from_the_stream_are_dropped_and_dead_consumers_leave(
        worker: DetectorWorker, detector_db: redis.Redis, jpeg: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = keys.frames_stream(CAMERA)
    capture(detector_db, 6, jpeg)
    detector_db.xreadgroup(keys.DETECTOR_GROUP, "crashed", {stream: ">"}, count=6)  # then it died holding them
    detector_db.xtrim(stream, maxlen=2)  # 4 of its frames are trimmed while pending
    detector_db.xgroup_createconsumer(stream, keys.DETECTOR_GROUP, "long-gone")
    monkeypatch.setattr(worker_module, "DEAD_CONSUMER_IDLE_MS", 0)
    worker.streams = [stream]
    time.sleep(0.4)  # idle past claim_idle, and past 6 x claim_idle (a dead consumer)
    assert worker._claim() == 2  # the two still in the stream are answered
    counts = accounting(detector_db, CAMERA)
    assert counts["frames_processed"] == 2 and counts["frames_dropped"] == 4 == counts["frames_expired"]
    assert identity_holds(counts), counts
    assert detector_db.xpending(stream, keys.DETECTOR_GROUP)["pending"] == 0
    names = {c["name"].decode() for c in detector_db.xinfo_consumers(stream, keys.DETECTOR_GROUP)}
    assert "crashed" not in names and "long-gone" not in names


def test_a_late_duplicate_transaction_changes_nothing(detector_db: redis.Redis, jpeg: bytes) -> None:
    stream = keys.frames_stream(CAMERA)
    ensure_group(detector_db, stream)
    capture(detector_db, 2, jpeg)
    [(_, entries)] = detector_db.xreadgroup(keys.DETECTOR_GROUP, "w", {stream: ">"}, count=2)
    ids = [entry_id for entry_id, _ in entries]

    def answer() -> int:
        tx = AckedTransaction(detector_db, stream, keys.DETECTOR_GROUP, ids)
        tx.xadd(keys.RESULTS_STREAM, {"data": "{}"}, maxlen=100)
        tx.hincrby(keys.camera_state(CAMERA), "frames_skipped", ACKED)
        return tx.execute()

    assert answer() == 2
    assert answer() == 0  # e.g. the same transaction sent again after a reply timeout, or by a claimer
    assert detector_db.xlen(keys.RESULTS_STREAM) == 1
    counts = accounting(detector_db, CAMERA)
    assert counts["frames_skipped"] == 2 and identity_holds(counts)


def test_worker_answers_everything_and_the_identity_holds(worker: DetectorWorker, detector_db: redis.Redis,
                                                          jpeg: bytes) -> None:
    capture(detector_db, 5, jpeg, maxlen=3)  # 2 trimmed unseen
    worker._refresh_streams()
    while worker.step(block_ms=100):
        pass
    counts = accounting(detector_db, CAMERA)
    assert counts["frames_processed"] == 1 and counts["frames_skipped"] == 2 and counts["frames_dropped"] == 2
    assert identity_holds(counts), counts
