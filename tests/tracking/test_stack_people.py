"""Capture, detector and tracker publish person records, alerts and blurred frames end to end (Redis db 11)."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import redis

from shared import keys
from shared.alert_log import recent_alerts
from shared.imaging import decode_image
from shared.review.queue import ReviewQueue
from shared.schemas import AlertRecord, FrameResult, PersonRecord, parse_result
from tests.conftest import flushed_redis
from tests.stack.helpers import redis_url, wait_for, write_config
from tests.tracking.synthetic import Walker, write_clip
from tests.tracking.webhook_server import webhook_server

DB = 11
pytestmark = pytest.mark.slow


@pytest.fixture
def db() -> Iterator[redis.Redis]:
    yield from flushed_redis(DB)


def results(db: redis.Redis) -> list[FrameResult | PersonRecord | AlertRecord]:
    return [parse_result(fields[b"data"]) for _id, fields in db.xrange(keys.RESULTS_STREAM)]


def recorded_thumbnail(database: Path, track_id: int) -> bytes | None:
    """The face thumbnail the recorder stored for a track (None until it is recorded)."""
    try:
        with sqlite3.connect(database) as conn:
            row = conn.execute("SELECT t.jpeg FROM people p JOIN thumbnails t ON t.person_id = p.id "
                               "WHERE p.camera = 'hall' AND p.track_id = ?", (track_id,)).fetchone()
    except sqlite3.Error:  # no file or no schema yet
        return None
    return row[0] if row else None


def _detail(image: np.ndarray) -> float:
    return float(np.abs(np.diff(image.astype(int), axis=1)).mean())


def test_stack_publishes_people_alerts_and_blurred_frames(db, services, tmp_path, shared_data) -> None:
    face = cv2.imread(str(shared_data / "faces/fm12k/without_mask/fm12k_without_mask_00002.jpg"))
    # 4 s at 10 fps, looped: a face walks across for 2 s, then the hall is empty for 2 s (the track ends).
    clip = write_clip(tmp_path / "hall.mp4", [Walker(face, start=0, end=20, x=60, y=100, dx=15)], frames=40, fps=10)
    with webhook_server() as hook:
        config = write_config(
            tmp_path / "cams.yaml", redis_url(db), [{"id": "hall", "url": str(clip), "fps": 5, "loop": True}],
            alerts={"webhooks": [{"url": hook.url + "/hall", "cameras": ["hall"]}],
                    "labels": ["with_mask", "without_mask", "mask_incorrect"],  # the tiny model's label is arbitrary
                    "confirm_frames": 2, "unmasked_share": None},
            privacy={"blur_faces": True}, review={"enabled": True, "sample_every": 1},
        )
        capture = services.start("capture", "--config", str(config), name="capture")
        detector = services.start("detector", "--config", str(config), name="detector")
        tracker = services.start("tracker", "--config", str(config), name="tracker")
        recorder = services.start("recorder", "--config", str(config), name="recorder")  # history: SQLite in data/

        def people() -> list[PersonRecord]:
            return [m for m in results(db) if isinstance(m, PersonRecord)]

        (person, *_) = wait_for(people, 90, "a person record on the results stream")
        assert person.camera == "hall" and person.label in ("with_mask", "without_mask", "mask_incorrect")
        assert person.frames >= 3 and 0 < person.last_seen - person.first_seen <= 2.5
        frames = [m for m in results(db) if isinstance(m, FrameResult)]
        faces = [f for m in frames for f in m.faces]
        assert faces and all(f.track_id is not None and f.track_label for f in faces)
        assert all(f.crop is None for f in faces)  # crops stay off the results stream ...
        assert person.track_id in {f.track_id for f in faces}
        assert person.thumbnail  # ... the person keeps its best face, blurred (privacy is on)
        thumb = cv2.imdecode(np.frombuffer(base64.b64decode(person.thumbnail), np.uint8), cv2.IMREAD_COLOR)
        assert max(thumb.shape[:2]) <= 96 and _detail(thumb) < 3.0  # this face unblurred: about 5.3
        # the recorder keeps it in the history database as published: blurred
        stored = wait_for(lambda: recorded_thumbnail(tmp_path / "data" / "history.sqlite3", person.track_id), 60,
                          "the person in the history database")
        assert stored == base64.b64decode(person.thumbnail)

        # the review queue (a tracker observer) got the person's crop in the same transaction
        (item, *_) = wait_for(lambda: ReviewQueue(db).items(), 10, "a review item")
        assert item.track_id in {p.track_id for p in people()} and item.crop

        (event, *_) = hook.wait_for(1, timeout_s=10)
        assert event["kind"] == "person" and event["camera"] == "hall" and event["type"] == "alert"
        assert event["id"] in {e["id"] for e in recent_alerts(db)}
        assert event["id"] in {m.event["id"] for m in results(db) if isinstance(m, AlertRecord)}  # for the recorder

        # The dashboard's frame is blurred where the faces are; the frames stream keeps the original.
        def latest_with_face() -> tuple[FrameResult, bytes] | None:
            raw, jpeg = db.get(keys.latest_result("hall")), db.get(keys.latest_jpeg("hall"))
            result = FrameResult.model_validate_json(raw) if raw else None
            return (result, jpeg) if result and result.faces and result.faces[0].track_id else None

        latest, jpeg = wait_for(latest_with_face, 30, "a latest result with a tracked face")
        original = next((decode_image(f[b"jpeg"]) for _id, f in db.xrange(keys.frames_stream("hall"))
                         if int(f[b"frame"]) == latest.frame), None)
        assert original is not None
        x1, y1, x2, y2 = latest.faces[0].box
        inner = (slice(y1 + 6, y2 - 6), slice(x1 + 6, x2 - 6))
        assert _detail(decode_image(jpeg)[inner]) < 0.5 * _detail(original[inner])

        # A person still in view when the stack stops is published at shutdown, not lost.
        def open_track() -> int | None:
            messages = results(db)
            ended = {m.track_id for m in messages if isinstance(m, PersonRecord)}
            last = next((m for m in reversed(messages) if isinstance(m, FrameResult)), None)
            if last is None or not last.faces:
                return None
            track_id = last.faces[0].track_id
            seen = sum(f.track_id == track_id for m in messages if isinstance(m, FrameResult) for f in m.faces)
            return track_id if seen >= 3 and track_id not in ended else None

        track_id = wait_for(open_track, 30, "a person in view for 3 frames")
        services.stop(capture)
        assert services.stop(detector) == 0
        assert services.stop(tracker) == 0
        assert services.stop(recorder) == 0
    assert track_id in {p.track_id for p in people()}
    records = [(p.camera, p.track_id) for p in people()]
    assert len(records) == len(set(records))
    assert "Traceback" not in services.log(detector) + services.log(tracker) + services.log(recorder)
