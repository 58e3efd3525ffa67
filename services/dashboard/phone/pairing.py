"""Pairing a phone: single-use, short-lived tokens (stored only as their SHA-256) and the phone's session secret."""

from __future__ import annotations

import hashlib
import io
import re
import secrets
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
import segno

from shared import keys
from shared.config import PhoneConfig
from shared.schemas import CameraStatus
from shared.streams import decode_str

PHONE_PREFIX = "phone-"
STREAMING_S = 10.0  # a live phone camera without a frame this long no longer holds its name
NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")  # phone-<name> stays a usable camera id


class PairingError(Exception):
    """A pairing that cannot be made; `status` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Pairing:
    """A new pairing token (shown once, in the QR code) and when it expires."""

    token: str
    expires_at: float


def digest(secret: str) -> str:
    """SHA-256 (hex) of a token or session secret: what Redis holds instead of the secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def camera_of(name: str) -> str:
    """The camera id of a phone named `name` (`phone-<name>`); PairingError 400 for an unusable name."""
    name = name.strip().lower().removeprefix(PHONE_PREFIX)
    if not NAME_RE.fullmatch(name):
        raise PairingError(400, "name: 1-32 lowercase letters, digits or '-', starting with a letter or digit")
    return PHONE_PREFIX + name


async def create(redis: aioredis.Redis, options: PhoneConfig) -> Pairing:
    """A new single-use pairing token, valid for `options.pairing_ttl_s`."""
    token = secrets.token_urlsafe(18)
    await redis.set(keys.phone_pairing(digest(token)), repr(time.time()), ex=options.pairing_ttl_s)
    return Pairing(token, time.time() + options.pairing_ttl_s)


def qr_svg(url: str) -> str:
    """The QR code of `url` as an SVG document (no scripts, no styles: fits the pages' CSP)."""
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=6, border=2, xmldecl=False, svgns=True)
    return out.getvalue().decode()


async def pair(redis: aioredis.Redis, token: str, name: str, configured: tuple[str, ...],
               options: PhoneConfig) -> tuple[str, str]:
    """Spend `token` on a phone camera named `name`; returns (camera id, session secret for its stream).

    Refuses an unknown, expired or already used token (401), a name another camera has (409) and more
    phone cameras than `options.max_cameras` (429). The token stays valid when the name is refused.
    """
    if not options.enabled:
        raise PairingError(403, "phone cameras are turned off (dashboard.phone.enabled)")
    camera = camera_of(name)
    key = keys.phone_pairing(digest(token or "-"))
    if not await redis.exists(key):
        raise PairingError(401, "pairing link unknown, expired or already used: make a new one on the dashboard")
    if camera in configured or (await redis.sismember(keys.CAMERAS_SET, camera)
                                and not await redis.sismember(keys.PHONE_CAMERAS, camera)):
        raise PairingError(409, f"{camera} is the name of a configured camera: choose another name")
    if await is_streaming(redis, camera):
        raise PairingError(409, f"{camera} is streaming from another phone now: choose another name")
    others = [c for c in await phone_cameras(redis) if c != camera]
    if len(others) >= options.max_cameras:
        raise PairingError(429, f"{len(others)} phone cameras already (dashboard.phone.max_cameras "
                                f"{options.max_cameras}); close one first")
    if await redis.getdel(key) is None:  # spent by someone else meanwhile
        raise PairingError(401, "pairing link unknown, expired or already used: make a new one on the dashboard")
    secret = secrets.token_urlsafe(24)
    pipe = redis.pipeline(transaction=True)
    pipe.delete(keys.phone_session(camera))
    pipe.hset(keys.phone_session(camera), mapping={"secret": digest(secret), "paired_at": repr(time.time())})
    pipe.expire(keys.phone_session(camera), options.stopped_ttl_s)
    pipe.sadd(keys.PHONE_CAMERAS, camera)
    await pipe.execute()
    return camera, secret


async def check_session(redis: aioredis.Redis, camera: str, secret: str) -> bool:
    """True when `secret` is the session secret of phone camera `camera` (compared in constant time)."""
    if not camera.startswith(PHONE_PREFIX):
        return False
    stored = decode_str(await redis.hget(keys.phone_session(camera), "secret")) or ""
    return bool(stored) and secrets.compare_digest(stored, digest(secret or "-"))


async def phone_cameras(redis: aioredis.Redis) -> list[str]:
    """Phone cameras whose session is still alive (streaming, or closed less than `stopped_ttl_s` ago)."""
    cameras = sorted(decode_str(c) for c in await redis.smembers(keys.PHONE_CAMERAS))
    if not cameras:
        return []
    pipe = redis.pipeline(transaction=False)
    for camera in cameras:
        pipe.exists(keys.phone_session(camera))
    return [c for c, alive in zip(cameras, await pipe.execute()) if alive]


async def is_streaming(redis: aioredis.Redis, camera: str) -> bool:
    """True while a phone streams as `camera` (live, with a frame in the last STREAMING_S seconds)."""
    status, last = await redis.hmget(keys.camera_state(camera), ["status", "last_frame_time"])
    try:
        recent = time.time() - float(decode_str(last) or 0) < STREAMING_S
    except ValueError:
        recent = False
    return decode_str(status) == CameraStatus.LIVE and recent


async def prune(redis: aioredis.Redis) -> list[str]:
    """Forget phone cameras whose session expired (closed longer than `stopped_ttl_s`); returns their ids."""
    listed = {decode_str(c) for c in await redis.smembers(keys.PHONE_CAMERAS)}
    gone = sorted(listed - set(await phone_cameras(redis)))
    if gone:
        pipe = redis.pipeline(transaction=True)
        pipe.srem(keys.PHONE_CAMERAS, *gone)
        pipe.srem(keys.CAMERAS_SET, *gone)
        for camera in gone:
            pipe.delete(*camera_keys(camera))
        await pipe.execute()
    return gone


def camera_keys(camera: str) -> list[str]:
    """The keys of one phone camera that go with it: a camera's (shared/keys.py) and the phone session."""
    return [*keys.camera_keys(camera), keys.phone_session(camera)]
