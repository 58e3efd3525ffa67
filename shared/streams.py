"""Redis plumbing shared by the services: connections that survive outages, frame messages, consumer groups."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import redis

from shared import keys
from shared.redaction import redact_text
from shared.redis_connection import RedisOptions, client_kwargs

log = logging.getLogger(__name__)
T = TypeVar("T")

REDIS_ERRORS: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)


class Backoff:
    """Exponential backoff with jitter: 'delay()' grows from `base` to `cap`, 'reset()' starts over."""

    def __init__(self, base: float = 0.2, cap: float = 10.0, factor: float = 2.0) -> None:
        self.base, self.cap, self.factor = base, cap, factor
        self.attempts = 0

    def delay(self) -> float:
        """The next wait in seconds (and count one more attempt)."""
        raw = min(self.cap, self.base * self.factor ** self.attempts)
        self.attempts += 1
        return raw * random.uniform(0.8, 1.0)

    def reset(self) -> None:
        """Back to the shortest wait after a success."""
        self.attempts = 0


def connect(url: str, name: str | None = None, options: RedisOptions | None = None) -> redis.Redis:
    """A Redis client (binary replies, CLIENT LIST name `name`) with bounded timeouts; reconnects on the next command.

    ACL user, password and TLS files come from `options` (the config's `redis:` section) and the
    environment (`shared.redis_connection`); raises `RedisSettingsError` when a file cannot be read.
    """
    return redis.Redis.from_url(url, decode_responses=False, client_name=name, **client_kwargs(url, options))


def describe_redis_error(exc: Exception) -> str:
    """One line for a Redis connection problem (URLs in it without credentials)."""
    return redact_text(" ".join(str(exc).split())) or type(exc).__name__


def retry_redis(
    call: Callable[[], T],
    what: str,
    stop: threading.Event | None = None,
    backoff: Backoff | None = None,
) -> T | None:
    """Run `call` until Redis answers, logging one line per failure and waiting with backoff.

    Returns None only when `stop` is set before a call succeeded.
    """
    backoff = backoff or Backoff()
    failed = False
    while stop is None or not stop.is_set():
        try:
            result = call()
        except REDIS_ERRORS as exc:
            wait = backoff.delay()
            log.warning("%s: redis unavailable (%s); retrying in %.1fs", what, describe_redis_error(exc), wait)
            failed = True
            if stop is not None:
                stop.wait(wait)
            else:
                time.sleep(wait)
            continue
        if failed:
            log.info("%s: redis is back", what)
        backoff.reset()
        return result
    return None


@dataclass(frozen=True)
class FrameMessage:
    """One captured frame as stored in a camera's frames stream."""

    camera: str
    frame: int
    ts: float
    width: int
    height: int
    jpeg: bytes

    def fields(self) -> dict[str, str | int | float | bytes]:
        """The XADD field mapping."""
        return {"camera": self.camera, "frame": self.frame, "ts": repr(self.ts),
                "width": self.width, "height": self.height, "jpeg": self.jpeg}

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes]) -> FrameMessage:
        """Parse an XREAD entry; raises ValueError (one line) for a malformed message."""
        try:
            return cls(
                camera=fields[b"camera"].decode(),
                frame=int(fields[b"frame"]),
                ts=float(fields[b"ts"]),
                width=int(fields[b"width"]),
                height=int(fields[b"height"]),
                jpeg=fields[b"jpeg"],
            )
        except KeyError as exc:
            raise ValueError(f"frame message lacks field {exc.args[0]!r}") from None
        except (TypeError, ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"malformed frame message: {exc}") from None


def add_frame(client: redis.Redis | redis.client.Pipeline, message: FrameMessage, maxlen: int) -> None:
    """XADD a frame to its camera's stream, trimmed approximately to `maxlen` entries."""
    client.xadd(keys.frames_stream(message.camera), message.fields(), maxlen=maxlen, approximate=True)


def ensure_group(client: redis.Redis, stream: str, group: str = keys.DETECTOR_GROUP) -> bool:
    """Create the consumer group (and the stream) unless it exists; True when it was created."""
    try:
        client.xgroup_create(stream, group, id="$", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" in str(exc):
            return False
        raise
    return True


def decode_str(value: bytes | str | None) -> str | None:
    """A Redis reply as text."""
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else value
