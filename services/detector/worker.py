"""A detector worker: reads frames through the consumer group, publishes one detection per frame, then acks.

Workers are stateless: each frame's faces are found, classified and published, untracked and with a
small crop of every face, to the camera's detections stream (`keys.detections_stream`); the tracker
service (services/tracker/) puts each camera's detections back in frame order and tracks people.
Any number of workers share the cameras' streams, and any worker takes any frame. Of the frames of one
camera waiting at a read, only the newest is answered and the rest are skipped (latest frame wins), so a
slow worker never falls behind; still frames (no motion, marked by capture) cost next to nothing and are all
answered as unchanged, without the detector. Frames another worker left pending (it crashed) are claimed with
XAUTOCLAIM. Publishing the detection and acknowledging the frame happen in one atomic step, so a frame is
either answered and acked or still pending for someone to claim - never acked without a result (the
tracker relies on this to know when every earlier frame of a camera is done).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import redis

from shared import keys
from shared.config import DetectorConfig
from shared.crops import face_crop_jpeg
from shared.detections import FRAME_JPEG_TTL_S, crops_of, publish_detection
from shared.imaging import ImageError, decode_image, encode_jpeg
from shared.live_pipeline import LivePipeline
from shared.overlap import OverlappedPipeline
from shared.pipeline import Pipeline
from shared.privacy import blur_faces
from shared.schemas import Face, FrameResult
from shared.settled import FrameHints, SettledTracks
from shared.streams import (
    ACKED,
    AckedTransaction,
    FrameMessage,
    claim_stale,
    decode_str,
    describe_redis_error,
    ensure_group,
    expires_in,
    remove_idle_consumers,
    retry_redis,
    run_steps,
)

log = logging.getLogger(__name__)

CAMERA_REFRESH_S = 2.0
READ_COUNT = 16  # frames per XREADGROUP call; a full batch means more wait and are drained too
WORKER_TTL_S = 60
DEAD_CONSUMER_IDLE_MS = 60_000  # a consumer idle this long that holds nothing is a dead worker's


@dataclass(frozen=True)
class Entry:
    """One frames-stream entry delivered to this worker."""

    stream: str
    id: bytes
    fields: dict[bytes, bytes]


class UnusableFrame(Exception):
    """A frame that is skipped without a result (malformed, too old, not decodable)."""

    def __init__(self, reason: str, warn: bool = False) -> None:
        super().__init__(reason)
        self.warn = warn


def default_worker_name() -> str:
    """A consumer name unique to this process."""
    return f"{socket.gethostname()}-{os.getpid()}"


class DetectorWorker:
    """Consumes every camera's frames stream in `keys.DETECTOR_GROUP` until stopped."""

    def __init__(self, client: redis.Redis, models: LivePipeline, options: DetectorConfig,
                 name: str | None = None, blur: bool = False, frames: redis.Redis | None = None) -> None:
        self.client, self.models, self.options = client, models, options
        self.frames = frames  # the frames Redis (frame images), None: they are in the stream entries
        self.blur = blur
        self.name = name or default_worker_name()
        self.streams: list[str] = []
        self.processed = self.skipped = 0
        self._next_refresh = self._next_claim = 0.0
        self._overlapped: OverlappedPipeline | None = None  # frames in detection, across reads

    def run(self, stop: threading.Event) -> int:
        """Work until `stop` is set; the frame in hand is finished and acked before returning."""
        log.info("detector %s: started with %s", self.name, self.models.pipeline.model_version)
        run_steps(self.step, stop, f"detector {self.name}", on_error=self._redis_failed)
        self._drain_on_stop()
        if self._overlapped is not None:
            self._overlapped.close()
        self._leave()
        log.info("detector %s: stopped after %d processed, %d skipped frames", self.name, self.processed,
                 self.skipped)
        return 0

    def _redis_failed(self, exc: redis.RedisError) -> bool:
        """After a Redis error: recreate the groups on the next step; a missing group is retried at once."""
        self._next_refresh = 0.0  # Redis may have come back empty
        if isinstance(exc, redis.ResponseError) and "NOGROUP" in str(exc):
            log.info("detector %s: consumer group missing (stream removed or Redis restarted); recreating", self.name)
            return True
        return False

    def _drain_on_stop(self) -> None:
        """Answer (or skip as too old) the frames already waiting, so a stopped stack leaves none unaccounted."""
        deadline = time.monotonic() + self.options.drain_timeout
        while time.monotonic() < deadline:
            try:
                if not self.step(block_ms=200):
                    return
            except redis.RedisError as exc:
                log.warning("detector %s: not draining the waiting frames: redis %s", self.name,
                            describe_redis_error(exc))
                return

    def step(self, block_ms: int = 1000) -> int:
        """Refresh cameras and models, claim abandoned frames, then handle one read; returns frames handled.

        The newest full frame read may still be in detection when it returns: the next step answers it."""
        now = time.monotonic()
        self.models.refresh()
        if now >= self._next_refresh:
            self._refresh_streams()
            self._next_refresh = now + CAMERA_REFRESH_S
        if not self.streams:
            time.sleep(block_ms / 1000)
            return 0
        handled = 0
        if now >= self._next_claim:
            handled += self._claim()
            self._next_claim = now + self.options.claim_idle / 2
        in_detection = self._overlapped is not None and self._overlapped.queued > 0
        reply = self.client.xreadgroup(keys.DETECTOR_GROUP, self.name, {s: ">" for s in self.streams},
                                       count=READ_COUNT, block=1 if in_detection else block_ms)
        newest = []
        for stream, entries in reply or []:
            batch = self._drain(decode_str(stream), entries)
            still = [entry for entry in batch[:-1] if entry.fields.get(b"still") == b"1"]  # cheap: all answered
            self._skip([entry for entry in batch[:-1] if entry.fields.get(b"still") != b"1"],
                       "superseded by a newer frame")
            newest += [*still, batch[-1]]
            handled += len(batch)
        self.handle_many(newest, keep_one=True)
        return handled

    def _drain(self, stream: str, entries: list) -> list[Entry]:
        """The entries read plus every other frame already waiting in the stream (so the newest is among them)."""
        batch = [Entry(stream, entry_id, fields) for entry_id, fields in entries]
        while len(entries) == READ_COUNT:
            reply = self.client.xreadgroup(keys.DETECTOR_GROUP, self.name, {stream: ">"}, count=READ_COUNT)
            entries = reply[0][1] if reply else []
            batch += [Entry(stream, entry_id, fields) for entry_id, fields in entries]
        return batch

    def flush(self) -> None:
        """Answer the frames still in detection now (the loop's next step would)."""
        if self._overlapped is not None:
            self._collect(self._overlapped, 0)

    def handle(self, entry: Entry) -> None:
        """Process one frame and publish its result, or skip it when it is malformed or too old."""
        self.handle_many([entry])

    def handle_many(self, entries: Sequence[Entry], keep_one: bool = False) -> None:
        """Process frames (the newest of each camera) and publish each result, or skip the unusable ones.

        A frame capture marked still (no motion) is answered as unchanged without decoding it. The others
        are detected and their faces classified in one batch, except faces that continue a settled track
        (`keys.settled_tracks`, read for every camera in one round trip); with `detector.overlap`, decoding
        and detecting the next frame on a second thread overlaps classifying this one (`shared.overlap`), and
        with `keep_one` (the worker's loop) the newest of these frames stays in detection while the worker
        reads its next batch, to be answered with that batch (or alone, when the read brings no full frame).
        """
        pipeline = self.models.pipeline
        entries = self._with_images(entries)
        full: list[Entry] = []
        unchanged: list[tuple[Entry, FrameResult]] = []
        for entry in entries:
            try:
                message = self._message(entry)
            except UnusableFrame as error:
                self._skip([entry], str(error), warn=error.warn)
                continue
            if message.still:
                unchanged.append((entry, self._unchanged(message, pipeline)))
            else:
                full.append(entry)
        self._publish_unchanged(unchanged)
        hints = self._settled(full)
        overlapped = self._overlap(pipeline)
        overlapped.submit(full, self._load, lambda entry: hints.get((entry.stream, entry.id)))
        self._collect(overlapped, 1 if keep_one and full and self.options.overlap else 0)

    def _overlap(self, pipeline: Pipeline) -> OverlappedPipeline:
        """The overlapped pipeline of the models in use (frames still in detection with older ones are answered
        first)."""
        current = self._overlapped
        if current is not None and current.pipeline is pipeline:
            return current
        if current is not None:
            self._collect(current, 0)
            current.close()
        self._overlapped = OverlappedPipeline(pipeline, inline=not self.options.overlap)
        return self._overlapped

    def _collect(self, overlapped: OverlappedPipeline, keep: int) -> None:
        """Classify and answer the frames in detection, all but the newest `keep`."""
        for done in overlapped.collect(keep):
            entry, error = done.item, done.error
            if isinstance(error, UnusableFrame):
                self._skip([entry], str(error), warn=error.warn)
            elif error is not None:
                reason = " ".join(str(error).split())
                frame = FrameMessage.from_fields(entry.fields).frame
                self._skip([entry], f"frame {frame}: the pipeline failed: {reason}", warn=True)
            else:
                self._answer(entry, FrameMessage.from_fields(entry.fields), done.image, done.faces,
                             overlapped.pipeline)

    def _settled(self, entries: Sequence[Entry]) -> dict[tuple[str, bytes], FrameHints]:
        """The settled tracks each frame's faces may take their labels from (one MGET for all cameras)."""
        if not entries:
            return {}
        messages = [FrameMessage.from_fields(entry.fields) for entry in entries]
        raw = self.client.mget([keys.settled_tracks(m.camera) for m in messages])
        hints = {}
        for entry, message, value in zip(entries, messages, raw):
            tracks = SettledTracks.parse(value)
            if tracks is not None:
                hints[(entry.stream, entry.id)] = FrameHints(tracks, message.frame)
        return hints

    def _with_images(self, entries: Sequence[Entry]) -> list[Entry]:
        """The entries with their JPEGs fetched from the frames Redis (in one round trip) where they hold a key."""
        keyed = [e for e in entries if b"jpeg" not in e.fields and b"jpeg_key" in e.fields]
        if not keyed or self.frames is None:
            return list(entries)
        images = dict(zip((e.id for e in keyed), self.frames.mget([e.fields[b"jpeg_key"] for e in keyed])))
        return [Entry(e.stream, e.id, {**e.fields, b"jpeg": images[e.id]}) if images.get(e.id) else e
                for e in entries]

    def _message(self, entry: Entry) -> FrameMessage:
        """The frame message; raises UnusableFrame when it is malformed or too old."""
        try:
            message = FrameMessage.from_fields(entry.fields)
        except ValueError as exc:
            raise UnusableFrame(str(exc), warn=True) from None
        age = time.time() - message.ts
        if age > self.options.max_frame_age:
            raise UnusableFrame(f"frame {message.frame} is {age:.1f}s old")
        return message

    def _load(self, entry: Entry) -> np.ndarray:
        """The frame's image; raises UnusableFrame when it is malformed, too old or not decodable."""
        message = self._message(entry)
        if not message.jpeg and message.jpeg_key:
            raise UnusableFrame(f"frame {message.frame}: its image is gone from the frames Redis "
                                "(expired, or that Redis restarted)")
        try:
            return decode_image(message.jpeg)
        except ImageError as exc:
            raise UnusableFrame(f"frame {message.frame}: {exc}", warn=True) from None

    def _unchanged(self, message: FrameMessage, pipeline: Pipeline) -> FrameResult:
        """The answer to a still frame: no detection; the tracker gives it the previous frame's faces."""
        return FrameResult(source=message.camera, camera=message.camera, frame=message.frame,
                           width=message.width, height=message.height, captured_at=message.ts,
                           processed_at=time.time(), model_version=pipeline.model_version, unchanged=True)

    def _answer(self, entry: Entry, message: FrameMessage, image: np.ndarray, faces: list[Face],
                pipeline: Pipeline) -> None:
        shown = blur_faces(image, [f.box for f in faces]) if self.blur else image
        faces = [face.model_copy(update={"crop": face_crop_jpeg(shown, face.box)}) for face in faces]
        result = FrameResult(source=message.camera, camera=message.camera, frame=message.frame,
                             width=image.shape[1], height=image.shape[0], faces=faces, captured_at=message.ts,
                             processed_at=time.time(), model_version=pipeline.model_version)
        self.publish(entry, result, encode_jpeg(shown) if self.blur else message.jpeg)

    def publish(self, entry: Entry, result: FrameResult, jpeg: bytes) -> None:
        """Publish the detection and the frame's JPEG, count it and ack the frame, all in one atomic step."""
        self._published(result, self._transaction(entry, result, jpeg).execute())

    def _publish_unchanged(self, answers: Sequence[tuple[Entry, FrameResult]]) -> None:
        """Publish the answers of still frames (no JPEG), each atomic with its ack, all in one round trip."""
        if not answers:
            return
        pipe = self.client.pipeline(transaction=False)
        for entry, result in answers:
            self._transaction(entry, result, b"").execute(pipe)
        for (_entry, result), acked in zip(answers, pipe.execute()):
            self._published(result, acked)

    def _transaction(self, entry: Entry, result: FrameResult, jpeg: bytes) -> AckedTransaction:
        """The atomic step that publishes one frame's detection and JPEG, counts it and acks the frame."""
        camera = result.camera or ""
        frame_id = decode_str(entry.id)
        if self.frames is not None:  # images go to the frames Redis, never to the main one's append-only file
            result = self._images_to_frames_redis(camera, frame_id, result, jpeg)
        pipe = AckedTransaction(self.client, entry.stream, keys.DETECTOR_GROUP, [entry.id])
        publish_detection(pipe, camera, frame_id, result, None if self.frames is not None else jpeg)
        pipe.hincrby(keys.camera_state(camera), "frames_processed", 1)
        self._count(pipe, "frames_processed", result.model_version)
        if result.unchanged:  # of the processed frames, those answered without the face detector
            pipe.hincrby(keys.camera_state(camera), "frames_unchanged", 1)
            pipe.hincrby(keys.detector_worker(self.name), "frames_unchanged", 1)
        return pipe

    def _published(self, result: FrameResult, acked: int | None) -> None:
        """Count a published frame; none acked: another worker answered it meanwhile (it was claimed from us)."""
        if not acked:
            log.info("detector %s: frame %s of %s was answered by another worker", self.name, result.frame,
                     result.camera)
            return
        self.processed += 1

    def _images_to_frames_redis(self, camera: str, frame_id: str, result: FrameResult, jpeg: bytes) -> FrameResult:
        """Put the frame's JPEG and its face crops in the frames Redis; returns the result without crops."""
        pipe = self.frames.pipeline(transaction=False)
        if jpeg:
            pipe.set(keys.frame_jpeg(camera, frame_id), jpeg, ex=FRAME_JPEG_TTL_S)
        crops = crops_of(result)
        if crops is not None:
            pipe.set(keys.frame_crops(camera, frame_id), crops, ex=FRAME_JPEG_TTL_S)
        pipe.execute()
        return result.without_crops()

    def _skip(self, entries: Sequence[Entry], why: str, warn: bool = False) -> None:
        """Ack frames of one stream without a result and count them as skipped."""
        if not entries:
            return
        stream = entries[0].stream
        (log.warning if warn else log.debug)("detector %s: skipped %d frame(s) of %s: %s", self.name, len(entries),
                                             stream, why)
        pipe = AckedTransaction(self.client, stream, keys.DETECTOR_GROUP, [entry.id for entry in entries])
        pipe.hincrby(keys.camera_state(stream.removeprefix(keys.frames_stream(""))), "frames_skipped", ACKED)
        self._count(pipe, "frames_skipped", amount=ACKED)
        self.skipped += pipe.execute()

    def _count(self, pipe: AckedTransaction, field: str, model_version: str | None = None,
               amount: int | object = 1) -> None:
        key = keys.detector_worker(self.name)
        pipe.hincrby(key, field, amount)
        pipe.hset(key, mapping={"last_seen": repr(time.time()),
                                "model_version": model_version or self.models.pipeline.model_version})
        pipe.expire(key, WORKER_TTL_S)

    def _refresh_streams(self) -> None:
        cameras = sorted(decode_str(c) for c in self.client.smembers(keys.CAMERAS_SET))
        streams = [keys.frames_stream(c) for c in cameras]
        for stream in streams:
            ensure_group(self.client, stream)
        if streams != self.streams:
            log.info("detector %s: watching %d camera(s): %s", self.name, len(cameras), ", ".join(cameras) or "-")
        self.streams = streams

    def _claim(self) -> int:
        """Take over frames that another (dead) worker has held longer than `claim_idle`.

        Claimed frames already trimmed from the stream are counted as dropped; consumers that hold
        nothing and have been idle for a while (dead workers) are removed from the group.
        """
        handled = 0
        idle_ms = int(self.options.claim_idle * 1000)
        for stream in self.streams:
            entries, gone = claim_stale(self.client, stream, self.name, idle_ms, READ_COUNT)
            if entries or gone:
                log.info("detector %s: claimed %d pending frame(s) of %s (%d more were gone from the stream: "
                         "counted as dropped)", self.name, len(entries), stream, gone)
            for entry_id, fields in entries:
                self.handle(Entry(stream, entry_id, fields))
                handled += 1
            removed = remove_idle_consumers(self.client, stream, max(DEAD_CONSUMER_IDLE_MS, 6 * idle_ms), self.name)
            if removed:
                log.info("detector %s: removed idle consumer(s) holding nothing from %s: %s", self.name, stream,
                         ", ".join(removed))
        return handled

    def _leave(self) -> None:
        """Remove this consumer from the groups where it holds nothing (keeps XINFO tidy)."""
        def leave() -> None:
            for stream in self.streams:
                for consumer in self.client.xinfo_consumers(stream, keys.DETECTOR_GROUP):
                    if decode_str(consumer["name"]) == self.name and consumer["pending"] == 0:
                        self.client.xgroup_delconsumer(stream, keys.DETECTOR_GROUP, self.name)
        try:
            retry_redis(leave, "detector shutdown", stop=expires_in(5.0))
        except redis.ResponseError:
            pass

