"""Capture's frame plumbing without cameras: splitting ffmpeg's raw frames, JPEGs, and the per-frame hook."""

from __future__ import annotations

import subprocess
import time

import cv2
import numpy as np
import pytest
import redis

from services.capture.ffmpeg import FFMPEG, reader_command
from services.capture.frames import BadStream, FrameTooLarge, SampledFrame, Y4mSplitter
from services.capture.publisher import Publisher
from shared import keys
from shared.config import CameraConfig, CaptureConfig
from tests.stack.conftest import frames, state
from tests.stack.helpers import wait_for


def _frame(camera: str, image: np.ndarray, t: float) -> SampledFrame:
    return SampledFrame(camera, cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), t)


def _flat(camera: str, width: int, height: int, level: int = 0, t: float | None = None) -> SampledFrame:
    return _frame(camera, np.full((height, width, 3), level, np.uint8), time.time() if t is None else t)


def test_splitter_takes_ffmpegs_frames_whatever_the_chunking(tmp_path) -> None:
    clip = tmp_path / "bars.avi"
    subprocess.run([FFMPEG, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=322x182:rate=25:duration=2", "-c:v",
                    "mjpeg", str(clip)], check=True)
    camera = CameraConfig(id="bars", url=str(clip), fps=5, loop=False)
    command = reader_command(camera, CaptureConfig())
    command[command.index("-vf") + 1] = command[command.index("-vf") + 1].removeprefix("realtime,")  # no pacing
    stream = subprocess.run(command, check=True, capture_output=True).stdout
    for size in (1, 4099, 65536, len(stream)):
        splitter = Y4mSplitter(1 << 20)
        found = [f for start in range(0, len(stream), size) for f in splitter.feed(stream[start:start + size])]
        assert len(found) == 10, size  # 2 s at 5 fps
        assert all(f.shape == (182 * 3 // 2, 322) for f in found)
    frame = SampledFrame("bars", found[0], 0.0)
    assert (frame.width, frame.height) == (322, 182) and frame.gray().shape == (182, 322)
    decoded = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (182, 322, 3)
    assert float(np.abs(decoded.astype(int) - frame.image().astype(int)).mean()) < 4  # the same picture
    assert frame.jpeg is frame.jpeg  # encoded once


def test_splitter_refuses_what_is_not_a_stream_of_small_420_frames() -> None:
    with pytest.raises(BadStream, match="not a YUV4MPEG2"):
        Y4mSplitter(1 << 20).feed(b"\xff\xd8\xff\xe0 a JPEG\n")
    with pytest.raises(BadStream, match="no YUV4MPEG2 stream header"):
        Y4mSplitter(1 << 20).feed(bytes(5000))
    with pytest.raises(FrameTooLarge):
        Y4mSplitter(10_000).feed(b"YUV4MPEG2 W1920 H1080 F25:1 C420jpeg\n")
    with pytest.raises(BadStream, match="4:2:0 expected"):
        Y4mSplitter(1 << 20).feed(b"YUV4MPEG2 W64 H48 F25:1 C444\n")
    with pytest.raises(BadStream, match="even sizes"):
        Y4mSplitter(1 << 20).feed(b"YUV4MPEG2 W63 H48\n")
    splitter = Y4mSplitter(1 << 20)
    assert splitter.feed(b"YUV4MPEG2 W4 H2\nFRAME\n" + bytes(12) + b"FRAME") != []
    with pytest.raises(BadStream, match="FRAME line"):
        splitter.feed(b"\n" + bytes(5) + b"garbage" + bytes(2000))


def test_hook_sees_every_frame_and_refused_frames_are_published_still(capture_db: redis.Redis) -> None:
    seen: list[SampledFrame] = []

    def bright_only(frame: SampledFrame) -> bool:
        seen.append(frame)
        return float(frame.gray().mean()) > 100  # the dark frames need no detector

    camera = CameraConfig(id="hooked", url="/nowhere.avi")
    publisher = Publisher(capture_db, CaptureConfig(), hooks=lambda cam: bright_only if cam.id == "hooked" else None)
    publisher.set_cameras({"hooked": camera}, CaptureConfig())
    publisher.start()
    try:
        for i, level in enumerate([0, 200, 0, 0, 220]):
            publisher.put(_flat("hooked", 160, 120, level))
            wait_for(lambda n=i: len(frames(capture_db, "hooked")) > n, 10, f"frame {i + 1} published")
    finally:
        publisher.stop()
    published = frames(capture_db, "hooked")
    assert [m.frame for m in published] == [1, 2, 3, 4, 5]
    assert [m.still for m in published] == [True, False, True, True, False]
    assert [bool(m.jpeg) for m in published] == [False, True, False, False, True]  # still frames carry no JPEG
    picture = cv2.imdecode(np.frombuffer(published[1].jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == (120, 160, 3) and abs(float(picture.mean()) - 200) < 3
    assert [("jpeg" in f.__dict__) for f in seen] == [False, True, False, False, True]  # only those encoded
    assert state(capture_db, "hooked")["frames_captured"] == "5"
    assert seen[0].image().shape == (120, 160, 3) and seen[0].gray().shape == (120, 160)
    assert capture_db.pttl(keys.frames_stream("hooked")) > 0


def test_motion_hook_gates_a_still_scene(tmp_path) -> None:
    from services.capture.publisher import motion_hook

    hook = motion_hook(CameraConfig(id="hall", url="/nowhere.avi", motion={"keyframe_s": 60}))
    still = [hook(_flat("hall", 640, 360, 90, t)) for t in (0.0, 0.1, 0.2, 5.0)]
    assert still == [True, False, False, False]  # the first frame, then nothing moves
    moved = cv2.rectangle(np.full((360, 640, 3), 90, np.uint8), (100, 100), (300, 300), (255, 255, 255), -1)
    assert hook(_frame("hall", moved, 5.1))
    assert motion_hook(CameraConfig(id="hall", url="/nowhere.avi", motion={"enabled": False})) is None  # no decoding
