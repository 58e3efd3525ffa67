"""The tracker service loop: owns cameras through leases, reads their detections, publishes tracked results.

Public API:
- `TrackerService(client, config, name=None, observers=None, config_path=None)`: `.run(stop) -> int`,
  `.step(block_ms)`. `observers(camera) -> list[Observer]` builds the observers of a camera when the tracker
  takes it. With `config_path`, edits of the cameras' zones and lines in that file are applied live (checked
  every `capture.reload_interval`); a camera whose new zones or lines are bad keeps those it had.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis

from services.tracker.camera import CameraTracker, Observer, Outcome, decode_checkpoint, encode_checkpoint
from shared import keys, settled
from shared.alert_log import MAX_ALERTS
from shared.config import Config, ConfigError, load_config
from shared.detections import Detection, StreamId, stream_id, with_crops
from shared.entrances import EntranceCounter
from shared.file_watch import FileWatch
from shared.leases import Leases
from shared.people import PeopleTracker
from shared.schemas import AlertRecord
from shared.streams import (
    REDIS_ERRORS,
    decode_str,
    describe_redis_error,
    expires_in,
    failure_kind,
    retry_redis,
    run_steps,
)

log = logging.getLogger(__name__)
READ_COUNT = 500
LEASE_REFRESH_S = 1.0
DRAIN_S = 5.0  # at shutdown, wait this long at most for frames the detector workers are still finishing
READ_PACE_S = 0.05  # reads at most this often: a few frames a round trip, not one (results stay within 50 ms)


class LeaseLost(Exception):
    """Another tracker owns the camera now."""


class TrackerService:
    """Tracks the cameras this replica holds the leases of; shares the cameras fairly with other replicas."""

    def __init__(self, client: redis.Redis, config: Config, name: str,
                 observers: Callable[[str], list[Observer]] | None = None, config_path: Path | None = None,
                 frames: redis.Redis | None = None) -> None:
        self.client, self.config, self.name = client, config, name
        self.frames = frames  # the frames Redis (frame images), None: they are in the main Redis
        self.options = config.tracker
        self.observers = observers or (lambda camera: [])
        self.leases = Leases(client, name, self.options.lease_ttl_s)
        self.cameras: dict[str, CameraTracker] = {}
        self._fps = {cam.id: cam.fps for cam in config.cameras}
        self._next_refresh = self._next_read = 0.0
        self.tracked = self.late = 0
        self.config_path = config_path
        self._watch = FileWatch(config_path) if config_path is not None else None
        self._next_reload = 0.0

    # -- main loop -----------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> int:
        """Track until `stop` is set; then finish the buffered frames and hand over (or flush) the cameras."""
        log.info("tracker %s: started", self.name)
        run_steps(self.step, stop, f"tracker {self.name}",
                  on_error=lambda exc: self._drop_all(f"redis {failure_kind(exc)}"))
        retry_redis(self._drain, "tracker shutdown", stop=expires_in(DRAIN_S))
        retry_redis(self.shutdown, "tracker shutdown", stop=expires_in(10.0))
        log.info("tracker %s: stopped after %d tracked and %d late frames", self.name, self.tracked, self.late)
        return 0

    def step(self, block_ms: int = 200) -> None:
        """Refresh leases when due, read new detections, track what is ready and publish it."""
        now = time.monotonic()
        if now >= self._next_refresh:
            self._refresh_leases()
            self._next_refresh = now + LEASE_REFRESH_S
        if self.config_path is not None and now >= self._next_reload:
            self._next_reload = now + self.config.capture.reload_interval
            self.reload_if_changed()
        if not self.cameras:
            time.sleep(block_ms / 1000)
            return
        # Block until something arrives, then take a consistent look: the oldest frame each camera's detector
        # workers still hold, and everything published before that (a frame acked earlier is in the stream).
        time.sleep(max(0.0, self._next_read - time.monotonic()))
        self._read(self.cameras, block_ms)
        self._next_read = time.monotonic() + READ_PACE_S
        cameras = list(self.cameras)
        pipe = self.client.pipeline(transaction=False)
        for camera in cameras:
            self._queue_watermark(pipe, camera)
        pipe.xread({keys.detections_stream(c): str(self.cameras[c].read_from) for c in cameras}, count=READ_COUNT)
        *pending, reply = pipe.execute(raise_on_error=False)
        full = self._take(reply)
        wall = time.time()
        outcomes = []
        for camera, held in zip(cameras, pending):
            watermark = _watermark(held)
            if camera in full:  # more entries than one read: the watermark may not cover them yet
                watermark = StreamId(0, 0)
            outcomes.append((camera, self.cameras[camera].step(watermark, wall)))
        self._commit_all(outcomes)

    def _drain(self) -> None:
        """Keep tracking while the workers still hold frames of our cameras (they drain on SIGTERM too)."""
        deadline = time.monotonic() + DRAIN_S
        while self.cameras and time.monotonic() < deadline:
            pipe = self.client.pipeline(transaction=False)
            for camera in self.cameras:
                pipe.xpending(keys.frames_stream(camera), keys.DETECTOR_GROUP)
            held = [r for r in pipe.execute(raise_on_error=False) if not isinstance(r, Exception)]
            if not any(r["pending"] for r in held):
                break
            self.step(block_ms=100)
        self.step(block_ms=1)

    def shutdown(self) -> None:
        """Publish what is buffered; hand the cameras over to another live tracker, or end their tracks."""
        others = [n for n in self._live_trackers() if n != self.name]
        for camera in list(self.cameras):
            tracker = self.cameras[camera]
            outcome = tracker.step(None, float("inf"), everything=True) if others else tracker.flush()
            try:
                self._commit(camera, outcome)
            except LeaseLost:
                continue
            self.leases.release(camera)
            log.info("tracker %s: camera %s %s", self.name, camera,
                     "handed over" if others else "stopped (open tracks published)")
        self.cameras.clear()
        self.client.delete(keys.tracker_instance(self.name))

    # -- reading -------------------------------------------------------------------------------------------
    def _read(self, trackers: dict[str, CameraTracker], block_ms: int) -> None:
        streams = {keys.detections_stream(c): str(t.read_from) for c, t in trackers.items()}
        self._take(self.client.xread(streams, count=READ_COUNT, block=max(1, block_ms)))  # 0 would block forever

    def _take(self, reply) -> set[str]:
        """Hand entries to their cameras; returns the cameras whose read was cut at READ_COUNT."""
        if isinstance(reply, Exception):
            raise reply
        full, now = set(), time.time()
        prefix = keys.detections_stream("")
        for stream, entries in reply or []:
            camera = decode_str(stream).removeprefix(prefix)
            tracker = self.cameras.get(camera)
            if tracker is None:
                continue
            detections = []
            for entry_id, fields in entries:
                try:
                    detections.append(Detection.from_entry(entry_id, fields))
                except ValueError as exc:
                    log.warning("tracker %s: camera %s: skipped detection %s: %s", self.name, camera,
                                decode_str(entry_id), exc)
            for detection in self._with_crops(camera, detections):
                tracker.add(detection, now)
            if len(entries) >= READ_COUNT:
                full.add(camera)
        return full

    def _with_crops(self, camera: str, detections: list[Detection]) -> list[Detection]:
        """With a frames Redis, the face crops come from there (one MGET); a lost one only costs a thumbnail."""
        faced = [d for d in detections if d.result.faces and all(f.crop is None for f in d.result.faces)]
        if self.frames is None or not faced:
            return detections
        try:
            stored = self.frames.mget([keys.frame_crops(camera, str(d.frame_id)) for d in faced])
        except REDIS_ERRORS as exc:
            log.debug("tracker %s: camera %s: face crops not read: %s", self.name, camera, describe_redis_error(exc))
            return detections
        found = {d.entry_id: with_crops(d, raw) for d, raw in zip(faced, stored)}
        return [found.get(d.entry_id, d) for d in detections]

    def _queue_watermark(self, pipe: redis.client.Pipeline, camera: str) -> None:
        released = self.cameras[camera].buffer.released
        low = f"({released}" if released is not None else "-"
        pipe.xpending_range(keys.frames_stream(camera), keys.DETECTOR_GROUP, min=low, max="+", count=1)

    # -- publishing ----------------------------------------------------------------------------------------
    def _commit_all(self, outcomes: list[tuple[str, Outcome]]) -> None:
        """Publish the step of every camera and their checkpoints in one transaction, while all the leases are
        ours (three round trips, not three a camera); a lease in doubt sends each camera through `_commit`."""
        ready = [(camera, outcome) for camera, outcome in outcomes if outcome]
        if len(ready) > 1:
            try:
                with self.client.pipeline(transaction=True) as pipe:
                    if self.leases.watch_owned(pipe, *(camera for camera, _outcome in ready)):
                        pipe.multi()
                        saved = [self._queue(pipe, camera, outcome) for camera, outcome in ready]
                        pipe.execute()
                        for (camera, outcome), checkpoint in zip(ready, saved):
                            self._committed(camera, outcome, checkpoint)
                        return
            except redis.WatchError:  # a lease changed meanwhile: nothing was written
                log.warning("tracker %s: a lease changed while publishing; cameras %s resume from their "
                            "checkpoints", self.name, ", ".join(camera for camera, _outcome in ready))
                for camera, _outcome in ready:
                    del self.cameras[camera]
                return
            except redis.RedisError:  # unknown whether the transaction ran: resumed from their checkpoints
                for camera, _outcome in ready:
                    del self.cameras[camera]
                raise
        for camera, outcome in ready:  # one camera, or a lease that is not ours (taken back or dropped there)
            try:
                self._commit(camera, outcome)
            except LeaseLost:
                continue

    def _commit(self, camera: str, outcome: Outcome) -> None:
        """Publish one camera's step and its checkpoint in one transaction, only while the lease is ours."""
        tracker = self.cameras[camera]
        if not outcome:
            return
        try:
            with self.client.pipeline(transaction=True) as pipe:
                if not self.leases.watch_owned(pipe, camera) and not self._reclaim(camera, tracker, pipe):
                    raise LeaseLost
                pipe.multi()
                checkpoint = self._queue(pipe, camera, outcome)
                pipe.execute()
        except (LeaseLost, redis.WatchError):
            log.warning("tracker %s: camera %s was taken over by %s; dropping it", self.name, camera,
                        self.leases.owner(camera) or "nobody")
            del self.cameras[camera]
            raise LeaseLost from None
        except redis.RedisError:
            # Unknown whether the transaction ran: drop the camera, it is resumed from its checkpoint.
            del self.cameras[camera]
            raise
        self._committed(camera, outcome, checkpoint)

    def _queue(self, pipe: redis.client.Pipeline, camera: str, outcome: Outcome) -> bytes:
        """Queue one camera's writes on a transaction (after MULTI); returns the checkpoint it writes."""
        tracker = self.cameras[camera]
        maxlen = self.config.detector.results_maxlen
        for message in outcome.messages:
            pipe.xadd(keys.RESULTS_STREAM, {"data": message.to_json()}, maxlen=maxlen, approximate=True)
        for key, value in outcome.keys.items():
            pipe.set(key, value)
        if outcome.latest is not None:
            frame_id, latest = outcome.latest
            pipe.set(keys.latest_result(camera), latest.without_crops().to_json())
            if self.frames is None:
                pipe.copy(keys.frame_jpeg(camera, str(frame_id)), keys.latest_jpeg(camera), replace=True)
        if outcome.tracked:  # what the detector workers need not classify again (shared/settled.py)
            pipe.set(keys.settled_tracks(camera), tracker.people.settled().to_json(), px=settled.TTL_MS)
        for event in outcome.events:
            pipe.lpush(keys.ALERTS_LIST, json.dumps(event, separators=(",", ":")))
            pipe.xadd(keys.RESULTS_STREAM, {"data": alert_record(camera, event).to_json()}, maxlen=maxlen,
                      approximate=True)  # for the recorder (history), in the same transaction
        if outcome.events:
            pipe.ltrim(keys.ALERTS_LIST, 0, MAX_ALERTS - 1)
        state = keys.camera_state(camera)
        if outcome.tracked:
            pipe.hincrby(state, "frames_tracked", outcome.tracked)
        if outcome.late:
            pipe.hincrby(state, "frames_late", outcome.late)
        for observer in tracker.observers:
            queue = getattr(observer, "queue_writes", None)
            if queue is not None:
                queue(pipe)
        checkpoint = encode_checkpoint(tracker.checkpoint())
        if checkpoint != tracker.saved_checkpoint:
            pipe.set(keys.tracker_checkpoint(camera), checkpoint)
        return checkpoint

    def _committed(self, camera: str, outcome: Outcome, checkpoint: bytes) -> None:
        """After a camera's transaction ran: its checkpoint is the saved one, its frames are counted."""
        self.cameras[camera].saved_checkpoint = checkpoint
        self.tracked += outcome.tracked
        self.late += outcome.late
        if self.frames is not None and outcome.latest is not None:
            self._copy_latest_jpeg(camera, str(outcome.latest[0]))

    def _reclaim(self, camera: str, tracker: CameraTracker, pipe: redis.client.Pipeline) -> bool:
        """Take back a lease that expired during a long step (a loaded machine), if nobody used it meanwhile.

        Safe only when no replica took the camera in between: its lease must be free and the camera's
        checkpoint still the one this tracker wrote last (a replica that published would have moved it).
        Leaves `pipe` watching the lease again when it returns True.
        """
        if not tracker.saved_checkpoint or not self.leases.acquire(camera):
            return False
        if self.client.get(keys.tracker_checkpoint(camera)) != tracker.saved_checkpoint:
            self.leases.release(camera)
            return False
        pipe.unwatch()
        if not self.leases.watch_owned(pipe, camera):
            return False
        log.warning("tracker %s: camera %s: lease expired during a long step; taken back (checkpoint unchanged)",
                    self.name, camera)
        return True

    def _copy_latest_jpeg(self, camera: str, frame_id: str) -> None:
        """In the frames Redis, the published frame's JPEG becomes the camera's latest (a lost copy is harmless)."""
        try:
            self.frames.copy(keys.frame_jpeg(camera, frame_id), keys.latest_jpeg(camera), replace=True)
        except REDIS_ERRORS as exc:
            log.debug("tracker %s: camera %s: latest frame not copied: %s", self.name, camera,
                      describe_redis_error(exc))

    # -- ownership -----------------------------------------------------------------------------------------
    def _refresh_leases(self) -> None:
        """Renew our leases, drop lost ones, and take or give cameras so each live tracker has a fair share."""
        held = self.leases.renew(list(self.cameras))
        for camera in set(self.cameras) - held:
            log.warning("tracker %s: lease of camera %s lost; dropping it", self.name, camera)
            del self.cameras[camera]
        cameras = sorted(decode_str(c) for c in self.client.smembers(keys.CAMERAS_SET))
        for camera in set(self.cameras) - set(cameras):
            log.info("tracker %s: camera %s removed", self.name, camera)
            self.leases.release(camera)
            self.client.delete(keys.tracker_checkpoint(camera))  # capture removed its other keys
            del self.cameras[camera]
        ttl_ms = int(self.options.lease_ttl_s * 1000)
        self.client.hset(keys.tracker_instance(self.name),
                         mapping={"cameras": ",".join(sorted(self.cameras)), "last_seen": repr(time.time())})
        self.client.pexpire(keys.tracker_instance(self.name), ttl_ms)
        share = math.ceil(len(cameras) / max(1, len(self._live_trackers())))
        for camera in cameras:
            if len(self.cameras) >= share:
                break
            if camera not in self.cameras and self.leases.acquire(camera):
                self._take_over(camera)
        if len(self.cameras) > share:  # another replica joined: give one camera back per refresh
            camera = max(self.cameras)
            log.info("tracker %s: handing camera %s over (fair share %d)", self.name, camera, share)
            del self.cameras[camera]
            self.leases.release(camera)

    def _take_over(self, camera: str) -> None:
        """Start tracking a camera, from its checkpoint when there is one."""
        tracker = self._camera_tracker(camera)
        raw = self.client.get(keys.tracker_checkpoint(camera))
        resumed = "from the start of its detections"
        if raw:
            try:
                tracker.restore(decode_checkpoint(raw))
                resumed = (f"from its checkpoint (frame {tracker.buffer.released}, {tracker.people.active_tracks} "
                           "open tracks)")
            except ValueError as exc:
                log.error("tracker %s: camera %s: checkpoint unusable (%s); starting afresh", self.name, camera, exc)
                tracker = self._camera_tracker(camera)
        self.cameras[camera] = tracker
        log.info("tracker %s: took camera %s, resuming %s", self.name, camera, resumed)
        if tracker.geometry_problem:
            log.error("tracker %s: %s; keeping its previous zones and lines", self.name, tracker.geometry_problem)

    def _camera_tracker(self, camera: str) -> CameraTracker:
        """A fresh tracker of one camera, with the camera's zones and lines."""
        people = PeopleTracker(camera, self._fps.get(camera, 10.0), **self.options.people_options())
        quiet = self.options.lost_after_s + self.config.detector.max_frame_age
        found = next((cam for cam in self.config.cameras if cam.id == camera), None)
        entrances = EntranceCounter(camera, found.geometry if found else None, **self.options.entrance_options())
        return CameraTracker(camera, people, self.observers(camera), self.options.reorder_window_s, quiet,
                             entrances=entrances, geometry_problem=self.config.geometry_problems.get(camera))

    # -- live zone and line edits --------------------------------------------------------------------------
    def reload_if_changed(self) -> None:
        """Re-read the config file when it changed and apply the cameras' new zones and lines."""
        if self._watch is None or not self._watch.changed():
            return
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            log.error("tracker %s: config reload failed, keeping the zones and lines applied: %s", self.name, exc)
            return
        self.config = self.config.model_copy(update={"cameras": config.cameras,
                                                     "geometry_problems": config.geometry_problems})
        self._fps.update({cam.id: cam.fps for cam in config.cameras})
        for cam in config.cameras:
            tracker = self.cameras.get(cam.id)
            if tracker is None:
                continue
            problem = config.geometry_problems.get(cam.id)
            if problem:
                log.error("tracker %s: %s; keeping its previous zones and lines", self.name, problem)
            elif tracker.entrances is not None and tracker.entrances.geometry.config != cam.geometry:
                log.info("tracker %s: camera %s: %d zone(s) and %d line(s) applied", self.name, cam.id,
                         len(cam.zones), len(cam.lines))
            tracker.set_geometry(cam.geometry, problem)

    def _live_trackers(self) -> list[str]:
        prefix = keys.tracker_instance("")
        return [decode_str(k).removeprefix(prefix)
                for k in self.client.scan_iter(match=keys.tracker_instances_pattern(), count=100)]

    def _drop_all(self, why: str) -> None:
        if self.cameras:
            log.info("tracker %s: %s; %d camera(s) will resume from their checkpoints", self.name, why,
                     len(self.cameras))
        self.cameras.clear()


def alert_record(camera: str, event: dict) -> AlertRecord:
    """An alert event as a results-stream message (the event body unchanged)."""
    when = event.get("time")
    return AlertRecord(camera=event.get("camera") or camera, kind=str(event.get("kind") or "alert"),
                       time=when if isinstance(when, (int, float)) else time.time(), event=event)


def _watermark(reply) -> StreamId | None:
    """The oldest frame still held by a detector worker (after the last released), or None."""
    if isinstance(reply, redis.ResponseError) and "NOGROUP" in str(reply):
        return None
    if isinstance(reply, Exception):
        raise reply
    if not reply:
        return None
    return stream_id(reply[0]["message_id"])

