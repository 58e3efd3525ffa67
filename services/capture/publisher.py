"""Publishes the cameras' sampled frames to their Redis streams, a batch of cameras per round trip.

Public API:
- `Publisher(client, options, hooks=None, frames=None, image_ttl_s=10)`: `.put(frame)` (never waits for
  Redis: the camera's one-frame mailbox keeps the newest, a replaced frame counts as dropped),
  `.set_cameras(cameras, options)`,
  `.start()`, `.stop(timeout)`.
- `HookFactory`: `factory(camera) -> FrameHook | None`, called when a camera's first frame arrives (and
  again after its config changed).
- `motion_hook(camera) -> FrameHook | None`: motion gating (shared/motion.py), the hook capture runs by default
  (None for a camera whose gating is off).

The frame hook runs on a publisher thread, once per frame, never concurrently for one camera; a frame it
answers False for is published as still (no JPEG: the detectors answer it as unchanged).
With a frames Redis (`frames`), the JPEGs go there first (expiring after `image_ttl_s`) and the stream
entries carry their keys: the main Redis, with its append-only file, never sees an image.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace

import redis

from services.capture.frames import FrameHook, SampledFrame
from shared import keys
from shared.config import CameraConfig, CaptureConfig
from shared.streams import REDIS_ERRORS, FrameMessage, add_frame_counted, describe_redis_error

log = logging.getLogger(__name__)

BATCH = 64  # cameras published per round trip
IN_FLIGHT_WAIT_S = 5.0  # longest wait, when cameras are removed, for a publish round trip holding their frames
HookFactory = Callable[[CameraConfig], FrameHook | None]


def motion_hook(camera: CameraConfig) -> FrameHook | None:
    """The camera's motion gate (its ignore zones masked) as a frame hook: False for a frame without motion.

    None when the camera's motion gating is off.
    """
    if not camera.motion.enabled:
        return None
    gate = camera.motion_gate()

    def needs_detector(frame: SampledFrame) -> bool:
        return gate.needs_detector(frame.gray(), frame.ts)

    return needs_detector


class Publisher:
    """Mailboxes of the cameras' newest frames and the threads that publish them."""

    def __init__(self, client: redis.Redis, options: CaptureConfig, hooks: HookFactory | None = None,
                 frames: redis.Redis | None = None, image_ttl_s: float = 10.0) -> None:
        self.client, self.options, self.hook_factory = client, options, hooks
        self.frames, self.image_ttl_ms = frames, int(image_ttl_s * 1000)
        self._slots: OrderedDict[str, SampledFrame] = OrderedDict()  # oldest waiting first
        self._dropped: dict[str, int] = {}  # replaced or lost frames not yet counted in Redis
        self._busy: set[str] = set()  # cameras a thread is publishing now (one thread per camera at a time)
        self._cameras: dict[str, CameraConfig] = {}
        self._hooks: dict[str, FrameHook | None] = {}
        self._counters: dict[str, int] = {}  # last frame number per camera, as in the state hash
        self._last: dict[str, float] = {}
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._outage = False
        self._threads = [threading.Thread(target=self._run, name=f"capture-publish-{i}", daemon=True)
                         for i in range(options.publish_threads)]

    def start(self) -> None:
        """Start the publisher threads."""
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the threads (a batch in flight finishes or times out with Redis's socket timeout)."""
        self._stop.set()
        with self._ready:
            self._ready.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def set_cameras(self, cameras: dict[str, CameraConfig], options: CaptureConfig) -> None:
        """The cameras whose frames are published; the others' waiting frames and hooks are forgotten."""
        with self._ready:
            self.options = options
            removed = set(self._cameras) - set(cameras)
            for cam_id in removed:
                for table in (self._slots, self._dropped, self._hooks, self._counters, self._last):
                    table.pop(cam_id, None)
            for cam_id, camera in cameras.items():
                if self._cameras.get(cam_id) != camera:
                    self._hooks.pop(cam_id, None)  # a changed camera gets a fresh hook
            self._cameras = dict(cameras)
            # a batch in flight may still write a removed camera's frame: let it finish, so the keys capture
            # removes next stay removed
            self._ready.wait_for(lambda: not self._busy & removed, timeout=IN_FLIGHT_WAIT_S)

    def put(self, frame: SampledFrame) -> None:
        """Offer a camera's newest frame; an unpublished older one is replaced and counted as dropped."""
        with self._ready:
            if frame.camera not in self._cameras:
                return
            if frame.camera in self._slots:
                self._dropped[frame.camera] = self._dropped.get(frame.camera, 0) + 1
            self._slots[frame.camera] = frame  # a replaced frame keeps its camera's place in the queue: fair
            self._ready.notify()

    # -- publisher threads -----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self._take()
            if not batch:
                continue
            try:
                self._publish(batch)
            finally:
                with self._ready:
                    self._busy.difference_update(f.camera for f, _d in batch)
                    self._ready.notify_all()

    def _take(self) -> list[tuple[SampledFrame, int]]:
        with self._ready:
            ready = [cam for cam in self._slots if cam not in self._busy]
            if not ready:
                self._ready.wait(0.5)
                ready = [cam for cam in self._slots if cam not in self._busy]
            batch = []
            for cam in ready[:BATCH]:
                batch.append((self._slots.pop(cam), self._dropped.pop(cam, 0)))
                self._busy.add(cam)
                if cam not in self._hooks:
                    factory, camera = self.hook_factory, self._cameras[cam]
                    self._hooks[cam] = factory(camera) if factory is not None else None
            return batch

    def _publish(self, batch: list[tuple[SampledFrame, int]]) -> None:
        options = self.options
        now = time.monotonic()
        still = set()
        for frame, _dropped in batch:
            hook = self._hooks.get(frame.camera)
            if hook is not None and not hook(frame):
                still.add(frame.camera)
        try:
            fresh = [f.camera for f, _d in batch if f.camera not in self._counters
                     or now - self._last.get(f.camera, 0.0) > options.key_ttl_s / 2]  # the keys may have expired
            if fresh:
                self._prepare(fresh)
            messages = []
            for frame, dropped in batch:
                number = self._counters[frame.camera] + dropped + 1
                is_still = frame.camera in still  # no JPEG: answered as unchanged (shared/motion.py)
                messages.append(FrameMessage(frame.camera, number, frame.ts, frame.width, frame.height,
                                             b"" if is_still else frame.jpeg, is_still))
            if self.frames is not None:
                messages = self._store_images(messages)
            pipe = self.client.pipeline(transaction=False)
            for (_frame, dropped), message in zip(batch, messages):
                add_frame_counted(self.client, message, options.stream_maxlen, dropped + 1, dropped,
                                  ttl_s=options.key_ttl_s, pipe=pipe)
            pipe.execute()
        except REDIS_ERRORS as exc:
            self._lost(batch, exc)
            return
        if self._outage:
            log.info("capture: redis is back, publishing again")
            self._outage = False
        for frame, dropped in batch:
            if frame.camera in self._counters:
                self._counters[frame.camera] += dropped + 1
                self._last[frame.camera] = now

    def _store_images(self, messages: list[FrameMessage]) -> list[FrameMessage]:
        """Put the JPEGs in the frames Redis (they expire); the stream entries then carry only their keys."""
        pipe = self.frames.pipeline(transaction=False)
        stored = []
        for message in messages:
            if message.still:
                stored.append(message)
                continue
            key = keys.frame_image(message.camera, message.frame)
            pipe.set(key, message.jpeg, px=self.image_ttl_ms)
            stored.append(replace(message, jpeg=b"", jpeg_key=key))
        pipe.execute()
        return stored

    def _prepare(self, cameras: list[str]) -> None:
        """Create the cameras' consumer groups and read their frame counters (numbering continues)."""
        pipe = self.client.pipeline(transaction=False)
        for cam in cameras:
            pipe.xgroup_create(keys.frames_stream(cam), keys.DETECTOR_GROUP, id="$", mkstream=True)
            pipe.hget(keys.camera_state(cam), "frames_captured")
        replies = pipe.execute(raise_on_error=False)
        for cam, created, counter in zip(cameras, replies[::2], replies[1::2]):
            for reply in (created, counter):
                if isinstance(reply, Exception) and "BUSYGROUP" not in str(reply):
                    raise reply
            self._counters[cam] = int(counter or 0)

    def _lost(self, batch: list[tuple[SampledFrame, int]], exc: Exception) -> None:
        """Redis failed: count the batch as dropped and re-read the counters (Redis may restart empty)."""
        with self._ready:
            for frame, dropped in batch:
                if frame.camera in self._cameras:
                    self._dropped[frame.camera] = self._dropped.get(frame.camera, 0) + dropped + 1
                self._counters.pop(frame.camera, None)
        if not self._outage:
            log.warning("capture: redis unavailable (%s); dropping frames until it is back", describe_redis_error(exc))
        self._outage = True
        self._stop.wait(0.5)
