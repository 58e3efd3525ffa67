"""The detector worker's tracking step: person records survive a failed publish (Redis database 12)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis

from services.detector.worker import DetectorWorker, Entry
from shared import keys
from shared.config import DetectorConfig
from shared.live_people import LivePeople
from shared.live_pipeline import LivePipeline
from shared.schemas import FrameResult
from shared.streams import ensure_group
from tests.conftest import flushed_redis
from tests.tracking.synthetic import face

DB = 12


@pytest.fixture
def db() -> Iterator[redis.Redis]:
    yield from flushed_redis(DB)


def camera_frame(index: int, t: float, faces) -> FrameResult:
    return FrameResult(source="door", camera="door", frame=index, width=640, height=360, faces=faces,
                       captured_at=t, model_version="test")


def test_person_records_are_kept_until_a_publish_succeeds(db, tiny_store) -> None:
    worker = DetectorWorker(db, LivePipeline(tiny_store), DetectorConfig(), name="t",
                            people=LivePeople({"door": 10.0}))
    stream = keys.frames_stream("door")
    ensure_group(db, stream)

    def entry() -> Entry:  # a frame delivered to this worker (a result is published only while it is pending)
        db.xadd(stream, {"frame": 1})
        [(_, [(entry_id, fields)])] = db.xreadgroup(keys.DETECTOR_GROUP, "t", {stream: ">"}, count=1)
        return Entry(stream, entry_id, fields)

    for i in range(5):
        worker.publish(entry(), camera_frame(i, 100 + i / 10, [face(100 + 5 * i, 80)]), b"jpeg")
    dead = redis.Redis(port=1, socket_connect_timeout=0.5)  # nothing listens on port 1
    worker.client = dead
    with pytest.raises(redis.ConnectionError):  # the frame that ends the track cannot be published
        worker.publish(entry(), camera_frame(5, 102.0, []), b"jpeg")
    worker.client = db
    worker.publish(entry(), camera_frame(6, 102.1, []), b"jpeg")
    worker.publish(entry(), camera_frame(7, 102.2, []), b"jpeg")
    data = [json.loads(f[b"data"]) for _id, f in db.xrange(keys.RESULTS_STREAM)]
    people = [d for d in data if d["type"] == "person"]
    assert [(p["camera"], p["frames"], p["first_seen"], p["last_seen"]) for p in people] == [("door", 5, 100.0, 100.4)]
    latest = FrameResult.model_validate_json(db.get(keys.latest_result("door")))
    assert latest.frame == 7
    first = FrameResult.model_validate(data[0])
    assert first.faces[0].track_id == 1 and first.faces[0].track_label == "with_mask"
