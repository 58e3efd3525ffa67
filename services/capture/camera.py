"""One camera: a reader thread samples the source at the configured fps, a publisher thread pushes to Redis.

The two meet in a one-frame mailbox (latest frame wins), so a slow Redis never makes latency grow:
a frame that is replaced before it was published counts as dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import redis

from shared import keys
from shared.config import CameraConfig, CaptureConfig, is_file_source
from shared.imaging import ImageError, encode_jpeg
from shared.motion import MotionGate
from shared.redaction import redact_text
from shared.schemas import CameraStatus
from shared.sources import SourceError, open_video, redact_url, video_fps
from shared.streams import (
    REDIS_ERRORS,
    Backoff,
    FrameMessage,
    add_frame_counted,
    describe_redis_error,
    ensure_group,
)

log = logging.getLogger(__name__)



@dataclass
class Captured:
    """A sampled frame and the wall-clock time it was read."""

    image: np.ndarray
    ts: float


def fit_within(image: np.ndarray, max_side: int) -> np.ndarray:
    """The image scaled down (never up) so that its long side is at most `max_side` pixels."""
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return image
    return cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                      interpolation=cv2.INTER_AREA)


class Mailbox:
    """Holds at most one frame: `put` replaces an unpublished frame (and says so), `take` waits for one."""

    def __init__(self) -> None:
        self._item: Captured | None = None
        self._ready = threading.Condition()

    def put(self, item: Captured) -> bool:
        """Store `item`; True when it replaced a frame nobody took."""
        with self._ready:
            replaced = self._item is not None
            self._item = item
            self._ready.notify()
            return replaced

    def take(self, timeout: float) -> Captured | None:
        """The waiting frame, or None after `timeout` seconds."""
        with self._ready:
            if self._item is None:
                self._ready.wait(timeout)
            item, self._item = self._item, None
            return item


class CameraRunner:
    """Reads one camera into its Redis stream until stopped; its status is kept for `state_fields()`."""

    def __init__(self, camera: CameraConfig, client: redis.Redis, options: CaptureConfig) -> None:
        self.camera, self.client, self.options = camera, client, options
        self.is_file = is_file_source(camera.url)
        self.status, self.error = CameraStatus.RETRYING, ""
        self._state_lock = threading.Lock()  # memory and hash change together, never a stale write
        self._stop = threading.Event()
        self._mailbox = Mailbox()
        self._motion = MotionGate(camera.motion, [z.points for z in camera.zones if z.ignore])  # publisher thread
        self._dropped = 0  # not yet added to the state hash
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._read_loop, name=f"read-{camera.id}", daemon=True),
            threading.Thread(target=self._publish_loop, name=f"publish-{camera.id}", daemon=True),
        ]

    def start(self) -> None:
        """Start reading and publishing."""
        for thread in self._threads:
            thread.start()

    def request_stop(self) -> None:
        """Ask both threads to stop without waiting (see `stop`)."""
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop both threads (a network read may need up to its read timeout to notice)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._set_state(CameraStatus.STOPPED, "")

    @property
    def running(self) -> bool:
        """True while the reader thread is alive."""
        return self._threads[0].is_alive()

    def state_fields(self) -> dict[str, str]:
        """Fields of the camera state hash set here (counters and last_frame_time come with each frame)."""
        return {"status": self.status, "url": redact_url(self.camera.url), "fps": repr(self.camera.fps),
                "error": self.error}

    def write_state(self) -> None:
        """Write the state hash again (after a Redis restart it is gone); raises Redis errors."""
        with self._state_lock:
            self.client.hset(keys.camera_state(self.camera.id), mapping=self.state_fields())

    def _set_state(self, status: str, error: str) -> None:
        error = redact_text(error)  # messages name the source: never with its credentials
        with self._state_lock:
            if (status, error) == (self.status, self.error) or (
                    self._stop.is_set() and status != CameraStatus.STOPPED):
                return
            self.status, self.error = status, error
            try:
                self.client.hset(keys.camera_state(self.camera.id), mapping=self.state_fields())
            except REDIS_ERRORS:
                pass  # the capture service writes the state again every reload tick
        if error:
            log.warning("camera %s: %s: %s", self.camera.id, status, error)
        else:
            log.info("camera %s: %s", self.camera.id, status)

    # -- reader ---------------------------------------------------------------------------------

    def _read_loop(self) -> None:
        backoff = Backoff(base=0.5, cap=self.options.reconnect_max)
        name = redact_url(self.camera.url)
        while not self._stop.is_set():
            if self.is_file and not Path(self.camera.url).is_file():
                self._set_state(CameraStatus.FAILED, f"{name}: no such video file")
                self._stop.wait(backoff.delay())
                continue
            try:
                cap = open_video(self.camera.url, self.options.open_timeout, self.options.read_timeout)
            except SourceError as exc:
                self._set_state(CameraStatus.FAILED if self.is_file else CameraStatus.RETRYING, str(exc))
                self._stop.wait(backoff.delay())
                continue
            try:
                frames = self._read_frames(cap, backoff)
            finally:
                cap.release()
            if self._stop.is_set():
                return
            if frames == 0:
                self._set_state(CameraStatus.FAILED if self.is_file else CameraStatus.RETRYING,
                                f"{name}: no frame could be decoded")
            elif self.is_file and self.camera.loop:
                continue
            elif self.is_file:
                self._set_state(CameraStatus.STOPPED, "")
                return
            else:
                self._set_state(CameraStatus.RETRYING, f"{name}: stream ended or stopped answering")
            self._stop.wait(backoff.delay())

    def _read_frames(self, cap: cv2.VideoCapture, backoff: Backoff) -> int:
        """Read until the source ends or fails, sampling to the camera fps; returns the frames read."""
        native = video_fps(cap)
        period = 1.0 / self.camera.fps
        start, due, count = time.monotonic(), 0.0, 0
        while not self._stop.is_set():
            ok, image = cap.read()
            if not ok or image is None:
                return count
            if count == 0:
                self._set_state(CameraStatus.LIVE, "")
                backoff.reset()
            if self.is_file:  # play files in real time, as a camera would deliver them
                t = count / native
                self._stop.wait(max(0.0, start + t - time.monotonic()))
            else:
                t = time.monotonic() - start
            count += 1
            if t + 1e-6 >= due:
                due = max(due + period, t)
                if self._mailbox.put(Captured(image, time.time())):
                    with self._lock:
                        self._dropped += 1
        return count

    # -- publisher ------------------------------------------------------------------------------

    def _publish_loop(self) -> None:
        counter: int | None = None
        outage = False
        state_key, stream = keys.camera_state(self.camera.id), keys.frames_stream(self.camera.id)
        while not self._stop.is_set():
            item = self._mailbox.take(timeout=0.5)
            if item is None:
                continue
            image = fit_within(item.image, self.options.max_side)
            still = not self._motion.needs_detector(image, item.ts)
            try:
                jpeg = b"" if still else encode_jpeg(image, self.options.jpeg_quality)
            except ImageError as exc:
                log.warning("camera %s: %s", self.camera.id, exc)
                with self._lock:
                    self._dropped += 1
                continue
            with self._lock:
                dropped, self._dropped = self._dropped, 0
            try:
                if counter is None:
                    ensure_group(self.client, stream)
                    counter = int(self.client.hget(state_key, "frames_captured") or 0)
                height, width = image.shape[:2]
                # frames are numbered as sampled: the dropped ones count as captured (and dropped) too
                message = FrameMessage(self.camera.id, counter + dropped + 1, item.ts, width, height, jpeg, still)
                add_frame_counted(self.client, message, self.options.stream_maxlen, dropped + 1, dropped)
            except REDIS_ERRORS as exc:
                with self._lock:
                    self._dropped += dropped + 1
                if not outage:
                    log.warning("camera %s: redis unavailable (%s); dropping frames until it is back",
                                self.camera.id, describe_redis_error(exc))
                outage = True
                counter = None  # re-read the counter: Redis may have restarted empty
                self._stop.wait(0.5)
                continue
            if outage:
                log.info("camera %s: redis is back, publishing again", self.camera.id)
                outage = False
            counter = message.frame
