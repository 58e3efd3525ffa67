"""One phone's WebSocket: JPEG frames in (latest frame wins), the camera's live results and compliance out.

Protocol (docs/phone.md): the phone's first message is the JSON text {"camera", "secret"} it got when
pairing; then each binary message is a 4-byte big-endian sequence number followed by one JPEG frame. The
server answers with JSON text: {"type": "hello"} (limits), {"type": "result", "seq", "result"} (the
camera's latest tracked FrameResult, `seq` the phone's number of that frame when known) and
{"type": "compliance"} (the last minutes' counts). Refusals close the socket with a 44xx code and reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import struct
import time
from collections import OrderedDict
from dataclasses import replace

import anyio
import redis
from fastapi import WebSocket, WebSocketDisconnect

from services.dashboard import queries, stats
from services.dashboard.phone import pairing
from shared import keys
from shared.config import PhoneConfig
from shared.imaging import ImageError, image_size
from shared.schemas import CameraStatus
from shared.stats import compliance_rate
from shared.streams import REDIS_ERRORS, FrameMessage, add_frame_counted, decode_str, describe_redis_error, ensure_group

log = logging.getLogger(__name__)
HELLO_TIMEOUT_S = 10.0
KEEP_ALIVE_S = 2.0
RESULT_POLL_S = 0.05
COMPLIANCE_EVERY_S = 5.0
COMPLIANCE_MINUTES = 5
SEQS_KEPT = 64
HEADER = struct.Struct(">I")
IMAGE_TTL_MS = 10_000  # a frame image in the frames Redis, like capture's


class Refused(Exception):
    """The connection is closed with `code` and a one-line reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def frame_size(jpeg: bytes, max_side: int) -> tuple[int, int]:
    """Width and height from a JPEG's header (nothing decoded); ValueError for a non-JPEG or a too large one."""
    if not jpeg.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG frame")
    try:
        width, height = image_size(jpeg)
    except ImageError as exc:
        raise ValueError(f"unreadable JPEG frame: {exc}") from None
    if max(width, height) > max_side:
        raise ValueError(f"frame {width}x{height} is over dashboard.phone.max_side {max_side}")
    return width, height


class PhoneStream:
    """A paired phone streaming into its camera's frames stream, as a capture camera would."""

    def __init__(self, ws: WebSocket, camera: str, options: PhoneConfig) -> None:
        self.ws, self.camera, self.options = ws, camera, options
        self.redis = ws.app.state.redis
        self.sync_redis: redis.Redis = ws.app.state.sync_redis
        self.sync_frames: redis.Redis | None = getattr(ws.app.state, "sync_frames_redis", None)
        self.connection = secrets.token_hex(8)
        self._slot: tuple[int, bytes, float, int, int] | None = None  # the one frame waiting (latest wins)
        self._ready = asyncio.Event()
        self._dropped = 0  # replaced before publishing: counted as captured and dropped
        self._counter: int | None = None
        self._seqs: OrderedDict[int, int] = OrderedDict()  # frame number -> the phone's sequence number
        self._last_accepted = 0.0
        self._closed = asyncio.Event()

    async def run(self) -> None:
        """Stream until the phone goes, another connection takes the camera over or the server stops."""
        await self._register()
        log.info("phone camera %s: streaming", self.camera)
        await self.ws.send_text(json.dumps({"type": "hello", "camera": self.camera, "fps": self.options.fps,
                                            "max_side": self.options.max_side,
                                            "jpeg_quality": self.options.jpeg_quality}))
        tasks = [asyncio.create_task(coro) for coro in (self._receive(), self._publish(), self._results(),
                                                         self._keep_alive())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()
        finally:
            self._closed.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._stopped()

    async def _register(self) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.phone_session(self.camera), "connection", self.connection)
        self._refresh(pipe)
        await pipe.execute()

    def _refresh(self, pipe) -> None:
        ttl = self.options.stopped_ttl_s
        pipe.sadd(keys.CAMERAS_SET, self.camera)
        pipe.sadd(keys.PHONE_CAMERAS, self.camera)
        pipe.hset(keys.camera_state(self.camera), mapping={"status": CameraStatus.LIVE, "url": "phone",
                                                           "fps": repr(self.options.fps), "error": ""})
        for key in (keys.camera_state(self.camera), keys.frames_stream(self.camera),
                    keys.phone_session(self.camera)):
            pipe.expire(key, ttl)

    async def _stopped(self) -> None:
        """Mark the camera stopped (unless a newer connection has it); its keys expire after `stopped_ttl_s`."""
        try:
            current = decode_str(await self.redis.hget(keys.phone_session(self.camera), "connection"))
            if current == self.connection:
                pipe = self.redis.pipeline(transaction=True)
                pipe.hset(keys.camera_state(self.camera), mapping={"status": CameraStatus.STOPPED, "error": ""})
                for key in pairing.camera_keys(self.camera):
                    pipe.expire(key, self.options.stopped_ttl_s)
                await pipe.execute()
        except REDIS_ERRORS as exc:
            log.warning("phone camera %s: redis unavailable when it closed (%s); its keys expire by themselves",
                        self.camera, describe_redis_error(exc))
        log.info("phone camera %s: stopped", self.camera)

    async def _receive(self) -> None:
        period = 1.0 / self.options.fps
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is None:
                continue  # text from the phone (keep-alive): nothing to do
            if len(data) > self.options.max_frame_bytes + HEADER.size:
                raise Refused(1009, f"frame over dashboard.phone.max_frame_bytes ({self.options.max_frame_bytes})")
            if len(data) <= HEADER.size:
                continue
            now = time.time()
            if now - self._last_accepted < period * 0.8:
                continue  # faster than the configured rate: not sampled (as capture samples to fps)
            (seq,) = HEADER.unpack_from(data)
            jpeg = data[HEADER.size:]
            try:
                width, height = frame_size(jpeg, self.options.max_side)
            except ValueError as exc:
                await self.ws.send_text(json.dumps({"type": "warning", "detail": str(exc)}))
                continue
            self._last_accepted = now
            if self._slot is not None:
                self._dropped += 1
            self._slot = (seq, jpeg, now, width, height)
            self._ready.set()

    async def _publish(self) -> None:
        outage = False
        while True:
            await self._ready.wait()
            self._ready.clear()
            if self._slot is None:
                continue
            (seq, jpeg, ts, width, height), self._slot = self._slot, None
            dropped, self._dropped = self._dropped, 0
            try:
                number = await anyio.to_thread.run_sync(self._add, jpeg, ts, width, height, dropped)
            except REDIS_ERRORS as exc:
                self._dropped += dropped + 1
                self._counter = None  # Redis may come back empty: read the counter again
                if not outage:
                    log.warning("phone camera %s: redis unavailable (%s); dropping frames until it is back",
                                self.camera, describe_redis_error(exc))
                outage = True
                await asyncio.sleep(0.5)
                continue
            outage = False
            self._seqs[number] = seq
            while len(self._seqs) > SEQS_KEPT:
                self._seqs.popitem(last=False)

    def _add(self, jpeg: bytes, ts: float, width: int, height: int, dropped: int) -> int:
        """XADD one frame like capture does (counted, trimmed); returns its frame number."""
        client, stream = self.sync_redis, keys.frames_stream(self.camera)
        if self._counter is None:
            ensure_group(client, stream)
            self._counter = int(client.hget(keys.camera_state(self.camera), "frames_captured") or 0)
        number = self._counter + dropped + 1
        message = FrameMessage(self.camera, number, ts, width, height, jpeg)
        if self.sync_frames is not None:  # the image in the frames Redis, its key in the stream (as capture does)
            key = keys.frame_image(self.camera, number)
            self.sync_frames.set(key, jpeg, px=IMAGE_TTL_MS)
            message = replace(message, jpeg=b"", jpeg_key=key)
        add_frame_counted(client, message, self.options.stream_maxlen, dropped + 1, dropped,
                          ttl_s=self.options.stopped_ttl_s)
        self._counter = number
        return number

    async def _results(self) -> None:
        last, compliance_due = b"", 0.0
        while True:
            raw = await self.redis.get(keys.latest_result(self.camera))
            if raw and raw != last:
                last = raw
                try:
                    frame = json.loads(raw).get("frame")
                except ValueError:
                    frame = None
                seq = self._seqs.get(frame) if isinstance(frame, int) else None
                await self.ws.send_text(f'{{"type":"result","seq":{json.dumps(seq)},"result":{raw.decode()}}}')
            if time.monotonic() >= compliance_due:
                compliance_due = time.monotonic() + COMPLIANCE_EVERY_S
                await self.ws.send_text(json.dumps(await self._compliance()))
            await asyncio.sleep(RESULT_POLL_S)

    async def _compliance(self) -> dict:
        """Faces and people per label over the last COMPLIANCE_MINUTES minutes, with their compliance."""
        window = await queries.window_stats(self.redis, self.camera, stats.Window.HOUR)
        faces: dict[str, int] = {}
        people: dict[str, int] = {}
        for bucket in window.series[-COMPLIANCE_MINUTES:]:
            for into, counts in ((faces, bucket["faces"]), (people, bucket["people"])):
                for label, n in counts.items():
                    into[label] = into.get(label, 0) + n
        return {"type": "compliance", "minutes": COMPLIANCE_MINUTES, "faces": faces, "people": people,
                "compliance": compliance_rate(faces), "people_compliance": compliance_rate(people)}

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(KEEP_ALIVE_S)
            current = decode_str(await self.redis.hget(keys.phone_session(self.camera), "connection"))
            if current != self.connection:
                raise Refused(4409, "another connection took this phone camera over")
            pipe = self.redis.pipeline(transaction=True)
            self._refresh(pipe)
            await pipe.execute()


async def serve(ws: WebSocket, options: PhoneConfig) -> None:
    """Accept a phone's WebSocket, check its session, stream; refusals close with a 44xx code and reason."""
    await ws.accept()
    try:
        if not options.enabled:
            raise Refused(4403, "phone cameras are turned off (dashboard.phone.enabled)")
        try:
            hello = json.loads(await asyncio.wait_for(ws.receive_text(), HELLO_TIMEOUT_S))
            camera, secret = str(hello["camera"]), str(hello["secret"])
        except (asyncio.TimeoutError, ValueError, KeyError, TypeError):
            raise Refused(4400, "the first message must be {\"camera\", \"secret\"} from pairing") from None
        if not await pairing.check_session(ws.app.state.redis, camera, secret):
            raise Refused(4401, "unknown phone camera or wrong session key: pair again from the dashboard")
        await PhoneStream(ws, camera, options).run()
    except Refused as exc:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await ws.close(exc.code, str(exc))
    except WebSocketDisconnect:
        pass
    except REDIS_ERRORS as exc:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await ws.close(1011, f"redis unavailable: {describe_redis_error(exc)}")
    else:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await ws.close(1000)
