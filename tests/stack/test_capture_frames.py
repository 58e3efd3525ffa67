"""Capture's frame plumbing without cameras: JPEG splitting, frame sizes, and the per-frame hook."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
import redis

from services.capture.frames import FrameTooLarge, JpegSplitter, SampledFrame, jpeg_size
from services.capture.publisher import Publisher
from shared import keys
from shared.config import CameraConfig, CaptureConfig
from tests.stack.conftest import frames, state
from tests.stack.helpers import wait_for


def _jpeg(width: int, height: int, level: int = 0) -> bytes:
    return cv2.imencode(".jpg", np.full((height, width, 3), level, np.uint8))[1].tobytes()


def test_splitter_finds_every_jpeg_whatever_the_chunking() -> None:
    images = [_jpeg(64, 48, i * 40) for i in range(4)]
    stream = b"".join(images)
    for size in (1, 7, 1000, len(stream)):
        splitter = JpegSplitter(1 << 20)
        found = [img for start in range(0, len(stream), size) for img in splitter.feed(stream[start:start + size])]
        assert found == images, size
    assert [jpeg_size(img) for img in images] == [(64, 48)] * 4
    assert jpeg_size(b"\xff\xd8garbage") == (0, 0)


def test_splitter_refuses_a_frame_that_never_ends() -> None:
    splitter = JpegSplitter(10_000)
    splitter.feed(b"\xff\xd8" + bytes(5000))
    with pytest.raises(FrameTooLarge):
        splitter.feed(bytes(6000))
    assert splitter.feed(_jpeg(8, 8)) == [_jpeg(8, 8)]  # and starts afresh


def test_hook_sees_every_frame_and_refused_frames_are_published_still(capture_db: redis.Redis) -> None:
    seen: list[SampledFrame] = []

    def bright_only(frame: SampledFrame) -> bool:
        seen.append(frame)
        return float(frame.image(reduce=8, gray=True).mean()) > 100  # the dark frames need no detector

    camera = CameraConfig(id="hooked", url="/nowhere.avi")
    publisher = Publisher(capture_db, CaptureConfig(), hooks=lambda cam: bright_only if cam.id == "hooked" else None)
    publisher.set_cameras({"hooked": camera}, CaptureConfig())
    publisher.start()
    try:
        for i, level in enumerate([0, 200, 0, 0, 220]):
            publisher.put(SampledFrame("hooked", _jpeg(160, 120, level), time.time(), 160, 120))
            wait_for(lambda n=i: len(frames(capture_db, "hooked")) > n, 10, f"frame {i + 1} published")
    finally:
        publisher.stop()
    published = frames(capture_db, "hooked")
    assert [m.frame for m in published] == [1, 2, 3, 4, 5]
    assert [m.still for m in published] == [True, False, True, True, False]
    assert [bool(m.jpeg) for m in published] == [False, True, False, False, True]  # still frames carry no JPEG
    assert state(capture_db, "hooked")["frames_captured"] == "5"
    assert seen[0].image().shape == (120, 160, 3) and seen[0].image(reduce=4, gray=True).shape == (30, 40)
    assert capture_db.pttl(keys.frames_stream("hooked")) > 0


def test_motion_hook_gates_a_still_scene(tmp_path) -> None:
    from services.capture.publisher import motion_hook

    hook = motion_hook(CameraConfig(id="hall", url="/nowhere.avi", motion={"keyframe_s": 60}))
    still = [hook(SampledFrame("hall", _jpeg(640, 360, 90), t, 640, 360)) for t in (0.0, 0.1, 0.2, 5.0)]
    assert still == [True, False, False, False]  # the first frame, then nothing moves
    moved = cv2.imencode(".jpg", cv2.rectangle(np.full((360, 640, 3), 90, np.uint8), (100, 100), (300, 300),
                                               (255, 255, 255), -1))[1].tobytes()
    assert hook(SampledFrame("hall", moved, 5.1, 640, 360))
    assert motion_hook(CameraConfig(id="hall", url="/nowhere.avi", motion={"enabled": False})) is None  # no decoding
