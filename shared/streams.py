"""Redis plumbing shared by the services: connections that survive outages, frame messages, consumer groups."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

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


def connect_frames(url: str | None, name: str, options: RedisOptions | None = None) -> redis.Redis | None:
    """The client of the frames Redis (`frames_redis_url`), or None when frame images stay in the main Redis."""
    return connect(url, name=name, options=options) if url else None


def describe_redis_error(exc: Exception) -> str:
    """One line for a Redis connection problem (URLs in it without credentials)."""
    return redact_text(" ".join(str(exc).split())) or type(exc).__name__


def expires_in(seconds: float) -> threading.Event:
    """An event that sets itself after `seconds` (the `stop` that bounds a `retry_redis` loop)."""
    event = threading.Event()
    timer = threading.Timer(seconds, event.set)
    timer.daemon = True
    timer.start()
    return event


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


def failure_kind(exc: redis.RedisError) -> str:
    """"unavailable" for an outage (connection, timeout, loading), "error" for anything else Redis answered."""
    return "unavailable" if isinstance(exc, REDIS_ERRORS) else "error"


def run_steps(step: Callable[[], object], stop: threading.Event, who: str,
              on_error: Callable[[redis.RedisError], bool | None] | None = None, cap: float = 5.0) -> None:
    """A service's main loop: call `step` until `stop` is set. A Redis error is logged in one line
    (`<who>: redis unavailable (...); retrying in 0.2s`) and retried with backoff up to `cap` seconds;
    `on_error(exc)` runs first, and returning True retries at once without a line or a wait."""
    backoff = Backoff(cap=cap)
    while not stop.is_set():
        try:
            step()
            backoff.reset()
        except redis.RedisError as exc:
            if on_error is not None and on_error(exc):
                continue
            wait = backoff.delay()
            log.warning("%s: redis %s (%s); retrying in %.1fs", who, failure_kind(exc), describe_redis_error(exc),
                        wait)
            stop.wait(wait)


@dataclass(frozen=True)
class FrameMessage:
    """One captured frame as stored in a camera's frames stream.

    The JPEG is in the entry (`jpeg`), or, with a frames Redis, only its key there (`jpeg_key`; `jpeg` is
    then empty until the reader fetched it).
    """

    camera: str
    frame: int
    ts: float
    width: int
    height: int
    jpeg: bytes
    still: bool = False  # no motion since the last full frame: answered as "no change", `jpeg` is empty
    jpeg_key: str = ""  # with a frames Redis: the key of the JPEG there (`jpeg` is empty until fetched)

    def fields(self) -> dict[str, str | int | float | bytes]:
        """The XADD field mapping (`still` only when set, so older readers see an ordinary frame)."""
        image: dict[str, str | bytes] = {"jpeg_key": self.jpeg_key} if self.jpeg_key else {"jpeg": self.jpeg}
        fields: dict[str, str | int | float | bytes] = {"camera": self.camera, "frame": self.frame,
                                                         "ts": repr(self.ts), "width": self.width,
                                                         "height": self.height, **image}
        if self.still:
            fields["still"] = 1
        return fields

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
                jpeg=fields[b"jpeg"] if b"jpeg" in fields or b"jpeg_key" not in fields else b"",
                still=fields.get(b"still") == b"1",
                jpeg_key=fields.get(b"jpeg_key", b"").decode(),
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


ACKED: Any = object()  # placeholder for "how many entries this transaction acknowledged"

_ACKED_TOKEN = "\x00acked\x00"
# XACK the entries; only when at least one was still pending run the queued commands. A transaction the
# client gave up on (a reply timeout while Redis hung) may still run later: it then acknowledges, and the
# retry (or another worker that claimed the frame meanwhile) finds nothing to acknowledge and does nothing.
_ACKED_TRANSACTION_LUA = """
local count = tonumber(ARGV[2])
local ids = {}
for i = 1, count do ids[i] = ARGV[2 + i] end
local acked = redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
if acked == 0 then return 0 end
local i = 3 + count
while i <= #ARGV do
  local argc = tonumber(ARGV[i])
  local command = {}
  for j = 1, argc do
    local arg = ARGV[i + j]
    if arg == '\\0acked\\0' then arg = acked end
    command[j] = arg
  end
  redis.call(unpack(command))
  i = i + argc + 1
end
return acked
"""


class AckedTransaction:
    """Commands that run atomically together with XACK of stream entries, and only if one was still pending.

    Built like a pipeline (`xadd`, `set`, `hset`, `hincrby`, `expire`); `ACKED` as an amount stands for
    the number of entries acknowledged. `execute()` returns that number (0: someone else answered them).
    """

    def __init__(self, client: redis.Redis, stream: str, group: str, ids: Sequence[bytes | str]) -> None:
        self.client, self.stream, self.group, self.ids = client, stream, group, list(ids)
        self._args: list[Any] = []

    def _add(self, *args: Any) -> None:
        self._args += [len(args), *(_ACKED_TOKEN if arg is ACKED else arg for arg in args)]

    def xadd(self, name: str, fields: dict, maxlen: int | None = None, approximate: bool = True) -> None:
        """XADD name [MAXLEN [~] n] * field value ..."""
        trim = ["MAXLEN", "~" if approximate else "=", maxlen] if maxlen else []
        self._add("XADD", name, *trim, "*", *(item for pair in fields.items() for item in pair))

    def set(self, name: str, value: Any) -> None:
        """SET name value."""
        self._add("SET", name, value)

    def hset(self, name: str, key: str | None = None, value: Any = None, mapping: dict | None = None) -> None:
        """HSET name field value ..."""
        pairs = dict(mapping or {})
        if key is not None:
            pairs[key] = value
        self._add("HSET", name, *(item for pair in pairs.items() for item in pair))

    def hincrby(self, name: str, key: str, amount: Any = 1) -> None:
        """HINCRBY name field amount (amount may be `ACKED`)."""
        self._add("HINCRBY", name, key, amount)

    def expire(self, name: str, seconds: int) -> None:
        """EXPIRE name seconds."""
        self._add("EXPIRE", name, seconds)

    def execute(self, pipe: redis.client.Pipeline | None = None) -> int | None:
        """Run it all in one script call; returns the number of entries acknowledged. With `pipe` the call is
        queued there (its reply comes from `pipe.execute()`: many transactions, one round trip) and None is
        returned."""
        script = _script(self.client, _ACKED_TRANSACTION_LUA)
        reply = script(keys=[self.stream], args=[self.group, len(self.ids), *self.ids, *self._args], client=pipe)
        return None if pipe is not None else int(reply)


# XAUTOCLAIM, counting the claimed entries that were trimmed from the stream meanwhile as dropped (and
# expired) frames of the camera in the same atomic step, so a crash between the two cannot lose the count.
_CLAIM_LUA = """
local reply = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local deleted = reply[3] and #reply[3] or 0
if deleted > 0 then
  redis.call('HINCRBY', KEYS[2], 'frames_dropped', deleted)
  redis.call('HINCRBY', KEYS[2], 'frames_expired', deleted)
end
return {reply[1], reply[2], deleted}
"""


def claim_stale(client: redis.Redis, stream: str, consumer: str, idle_ms: int, count: int,
                group: str = keys.DETECTOR_GROUP) -> tuple[list[tuple[bytes, dict[bytes, bytes]]], int]:
    """Claim entries idle over `idle_ms` (a dead consumer's); returns (entries, entries gone from the stream).

    The gone ones (trimmed before anyone answered them) are counted as the camera's dropped frames.
    """
    camera = stream.removeprefix(keys.frames_stream(""))
    script = _script(client, _CLAIM_LUA)
    _next, raw, deleted = script(keys=[stream, keys.camera_state(camera)],
                                 args=[group, consumer, idle_ms, "0-0", count])
    entries = []
    for item in raw:
        if item and item[1]:
            flat = item[1]
            entries.append((item[0], dict(zip(flat[::2], flat[1::2]))))
    return entries, int(deleted)


def remove_idle_consumers(client: redis.Redis, stream: str, idle_ms: int, keep: str,
                          group: str = keys.DETECTOR_GROUP) -> list[str]:
    """Delete consumers that hold no frames and were idle over `idle_ms` (dead workers); returns their names."""
    removed = []
    for consumer in client.xinfo_consumers(stream, group):
        name = decode_str(consumer["name"])
        if name != keep and consumer["pending"] == 0 and consumer["idle"] > idle_ms:
            # a live worker removed by mistake is harmless: its next read creates it again
            client.xgroup_delconsumer(stream, group, name)
            removed.append(name)
    return removed


# Capture: XADD, then trim to `maxlen` exactly, counting trimmed entries no consumer was ever given as
# dropped (and expired) frames - the stream never loses a frame silently.
_ADD_FRAME_LUA = """
local fields = {}
for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
local id = redis.call('XADD', KEYS[1], '*', unpack(fields))
local excess = redis.call('XLEN', KEYS[1]) - tonumber(ARGV[1])
local undelivered = 0
if excess > 0 then
  local last = '0-0'
  local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
  if ok then
    for _, g in ipairs(groups) do
      for k = 1, #g, 2 do
        if g[k] == 'name' and g[k + 1] ~= ARGV[2] then break end
        if g[k] == 'last-delivered-id' then last = g[k + 1] end
      end
    end
  end
  local lms, lseq = string.match(last, '(%d+)-(%d+)')
  lms, lseq = tonumber(lms), tonumber(lseq)
  for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', excess)) do
    local ms, seq = string.match(entry[1], '(%d+)-(%d+)')
    ms, seq = tonumber(ms), tonumber(seq)
    if ms > lms or (ms == lms and seq > lseq) then undelivered = undelivered + 1 end
  end
  redis.call('XTRIM', KEYS[1], 'MAXLEN', ARGV[1])
end
redis.call('HINCRBY', KEYS[2], 'frames_captured', tonumber(ARGV[3]))
redis.call('HSET', KEYS[2], 'last_frame_time', ARGV[5])
local dropped = tonumber(ARGV[4]) + undelivered
if dropped > 0 then redis.call('HINCRBY', KEYS[2], 'frames_dropped', dropped) end
if undelivered > 0 then redis.call('HINCRBY', KEYS[2], 'frames_expired', undelivered) end
if tonumber(ARGV[6]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
end
return undelivered
"""


def add_frame_counted(client: redis.Redis, message: FrameMessage, maxlen: int, sampled: int, dropped: int,
                      group: str = keys.DETECTOR_GROUP, ttl_s: float = 0,
                      pipe: redis.client.Pipeline | None = None) -> int | None:
    """XADD a frame and count it atomically: `sampled` frames captured, of which `dropped` never published.

    Sets the camera's `last_frame_time`. The stream is trimmed to `maxlen`; trimmed frames no worker was
    given are counted dropped too (and returned), so captured = processed + skipped + dropped holds.
    `ttl_s` > 0: the stream and the state hash expire that long after the last frame. With `pipe` the
    call is queued there (its reply comes from `pipe.execute()`) and None is returned.
    """
    script = _script(client, _ADD_FRAME_LUA)
    fields = [item for pair in message.fields().items() for item in pair]
    reply = script(keys=[keys.frames_stream(message.camera), keys.camera_state(message.camera)],
                   args=[maxlen, group, sampled, dropped, repr(message.ts), int(ttl_s * 1000), *fields], client=pipe)
    return None if pipe is not None else int(reply)


def _script(client: redis.Redis, source: str) -> redis.commands.core.Script:
    """A registered script (EVALSHA, loaded again by redis-py after a Redis restart)."""
    cache = client.__dict__.setdefault("_maskwatch_scripts", {})
    if source not in cache:
        cache[source] = client.register_script(source)
    return cache[source]
