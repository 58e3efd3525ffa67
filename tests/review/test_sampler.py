"""The review sampler on FrameResult sequences, and the bounded Redis queue behind it."""

from __future__ import annotations

import base64
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import redis

from shared.config import Config, load_config
from shared.review.config import ReviewConfig
from shared.review.queue import ReviewError, ReviewItem, ReviewQueue
from shared.review.sampler import ReviewSampler
from shared.schemas import Face, FrameResult, PersonRecord
from tests.review.conftest import crop_b64


def _face(track: int, label: str, conf: float, crop: str | None, score: float = 0.9) -> Face:
    others = {k: (1 - conf) / 2 for k in ("with_mask", "without_mask", "mask_incorrect") if k != label}
    return Face(box=[10, 10, 50, 60], score=score, label=label, confidence=conf, probs={label: conf, **others},
                track_id=track, crop=crop)


def _run(sampler: ReviewSampler, tracks: dict[int, list[tuple[str, float, float]]]) -> None:
    """Feed each track's frames (label, confidence, detector score), then its person record."""
    length = max(len(v) for v in tracks.values())
    for i in range(length):
        faces = [_face(tid, *frames[i][:2], crop_b64(10 * tid + i), score=frames[i][2])
                 for tid, frames in tracks.items() if i < len(frames)]
        sampler.on_frame(FrameResult(source="cam", camera="cam", frame=i, time=i / 10, width=640, height=480,
                                     faces=faces, model_version="v1"))
    for tid, frames in tracks.items():
        label = max({f[0] for f in frames}, key=[f[0] for f in frames].count)
        sampler.on_person(PersonRecord(camera="cam", track_id=tid, label=label, first_seen=0, last_seen=1,
                                       frames=len(frames), best_box=[10, 10, 50, 60]))


def _pixel(crop: str) -> int:
    image = cv2.imdecode(np.frombuffer(base64.b64decode(crop), np.uint8), cv2.IMREAD_COLOR)
    return int(image[16, 16, 0])


def test_sampler_queues_unsure_tracks_once_with_their_least_confident_crop(review_redis: redis.Redis) -> None:
    sampler = ReviewSampler(ReviewConfig(enabled=True, sample_every=0), "cam", review_redis)
    _run(sampler, {
        1: [("with_mask", 0.99, 0.9)] * 6,                                     # sure: not queued
        2: [("with_mask", 0.6, 0.9), ("with_mask", 0.5, 0.95), ("with_mask", 0.7, 0.8)],  # low confidence
        3: [("with_mask", 0.95, 0.9)] * 3 + [("mask_incorrect", 0.9, 0.9)] * 2,  # split 3:2
        4: [("without_mask", 0.9, 0.9), ("mask_incorrect", 0.9, 0.9)] * 2 + [("without_mask", 0.95, 0.9)] * 6,
        5: [("without_mask", 0.3, 0.9)] * 2,                                    # too short
    })
    items = {i.track_id: i for i in ReviewQueue(review_redis).items()}
    assert sorted(items) == [2, 3, 4]
    assert items[2].reasons == ["low_confidence"] and _pixel(items[2].crop) == 21  # frame 1: confidence 0.5
    assert items[3].reasons == ["split_votes"] and items[3].model_label == "with_mask"
    assert items[4].reasons == ["label_flips"]  # 4 changes, but 8 of 10 frames agree
    assert items[2].confidence == 0.6 and items[2].model_version == "v1" and items[2].source == "cam"
    assert abs(sum(items[3].probs.values()) - 1) < 1e-3


def test_sampler_samples_every_nth_person_of_each_label_with_the_best_crop(review_redis: redis.Redis) -> None:
    sampler = ReviewSampler(ReviewConfig(enabled=True, sample_every=2), "cam", review_redis)
    sure = [("with_mask", 0.99, 0.7), ("with_mask", 0.99, 0.95), ("with_mask", 0.99, 0.8)]
    _run(sampler, {1: sure, 2: sure, 3: sure, 4: sure, 5: [("without_mask", 0.99, 0.9)] * 3})
    items = ReviewQueue(review_redis).items()
    assert sorted((i.track_id, tuple(i.reasons)) for i in items) == [(2, ("sample",)), (4, ("sample",))]
    assert all(_pixel(i.crop) == 10 * i.track_id + 1 for i in items)  # frame 1 has the best detector score


def test_sampler_is_off_by_default_and_its_state_survives_a_takeover(review_redis: redis.Redis) -> None:
    off = ReviewSampler(load_config_text(""), "cam", review_redis)
    _run(off, {1: [("with_mask", 0.4, 0.9)] * 4})
    assert ReviewQueue(review_redis).items() == []
    first = ReviewSampler(ReviewConfig(enabled=True, sample_every=0), "cam", review_redis, transactional=True)
    face = _face(7, "with_mask", 0.4, crop_b64(99))
    for i in range(3):
        first.on_frame(FrameResult(source="cam", frame=i, width=64, height=64, faces=[face]))
    second = ReviewSampler(ReviewConfig(enabled=True, sample_every=0), "cam", review_redis, transactional=True)
    second.restore(first.snapshot())
    second.on_person(PersonRecord(camera="cam", track_id=7, label="with_mask", first_seen=0, last_seen=1, frames=3,
                                  best_box=[0, 0, 9, 9]))
    assert ReviewQueue(review_redis).items() == []  # waits for the tracker's transaction
    pipe = review_redis.pipeline()
    second.queue_writes(pipe)
    pipe.execute()
    [item] = ReviewQueue(review_redis).items()
    assert item.track_id == 7 and _pixel(item.crop) == 99


def load_config_text(text: str) -> ReviewConfig:
    return load_config_from(text).review


def load_config_from(text: str) -> Config:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cameras.yaml"
        path.write_text(text)
        return load_config(path)


def test_review_section_of_the_camera_file() -> None:
    assert load_config_from("review: {enabled: true, max_items: 20}\n").review == \
        ReviewConfig(enabled=True, max_items=20)
    assert load_config_from("cameras: []\n").review.enabled is False


def _item(n: int, queued_at: float) -> ReviewItem:
    return ReviewItem(id=f"i{n}", source="cam", queued_at=queued_at, model_label="with_mask", confidence=0.5,
                      probs={"with_mask": 0.5}, reasons=["low_confidence"], crop=crop_b64(n))


def test_queue_is_bounded_by_size_and_age_and_keeps_labelled_items(review_redis: redis.Redis) -> None:
    queue = ReviewQueue(review_redis, ReviewConfig(max_items=3, max_age_s=100))
    now = time.time()
    queue.add(_item(0, now - 500))  # already too old: dropped by the next add's trim (and its own)
    for n in range(1, 5):
        queue.add(_item(n, now - 10 + n))
    assert [i.id for i in queue.items()] == ["i2", "i3", "i4"]
    queue.label("i2", "mask_incorrect")
    for n in range(5, 8):
        queue.add(_item(n, now + n))
    assert [i.id for i in queue.items()] == ["i5", "i6", "i7"]
    assert [(i.id, i.label) for i in queue.items(labelled=True)] == [("i2", "mask_incorrect")]
    assert queue.counts() == {"queued": 3, "labelled": 1}
    undone = queue.label("i2", None)
    assert undone.label is None and undone.labelled_at is None and queue.items()[0].id == "i2"
    with pytest.raises(ReviewError, match="label must be one of"):
        queue.label("i5", "maybe")
    with pytest.raises(ReviewError, match="no review item"):
        queue.label("nope", "with_mask")
    assert queue.remove(["i5", "i6", "missing"]) == 2 and queue.counts() == {"queued": 2, "labelled": 0}
