"""The recorder's health figures in Redis, where the dashboard's /metrics reads them (as it reads the other services').

Each recorder process keeps one hash (`keys.recorder_health(name)`, expiring `TTL_S` after its last update) and
its name in `keys.RECORDERS` (a sorted set scored by that expiry, so readers need no SCAN).

Public API:
- `RecorderHealth(name)`: `.wrote(rows_by_kind)`, `.failed(source)`, `.lag`, `.writing`; `.publish(client)`
  writes the hash; `.remove(client)` at a clean stop.
- `entries_after(client, position) -> int`: results-stream entries after a position (the recorder's lag).
- `read_recorders(client, now) -> dict[name, RecorderFigures]`: every live recorder's figures.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import redis

from shared import keys
from shared.streams import decode_str

KINDS = ("people", "crossings", "alerts")  # rows written, per history table
SOURCES = ("database", "redis")  # what an error (each followed by a retry) came from
TTL_S = 15.0  # a recorder that stops updating its hash this long is gone

# Entries after ARGV[1] (exclusive), counted in Redis in pages of 1000: the stream holds results_maxlen at most.
_COUNT_AFTER = """
local n, last = 0, '(' .. ARGV[1]
while true do
  local page = redis.call('XRANGE', KEYS[1], last, '+', 'COUNT', 1000)
  n = n + #page
  if #page < 1000 then return n end
  last = '(' .. page[#page][1]
end
"""


@dataclass(frozen=True)
class RecorderFigures:
    """One recorder's figures as read back from Redis."""

    rows: dict[str, int]
    errors: dict[str, int]
    writing: bool
    lag: int | None  # None: it is not writing (standing by) or has not counted yet
    last_write: float | None  # unix time of its last committed batch


@dataclass
class RecorderHealth:
    """The running totals of one recorder process."""

    name: str
    rows: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    writing: bool = False
    lag: int | None = None
    last_write: float | None = None

    def wrote(self, rows_by_kind: Mapping[str, int], when: float | None = None) -> None:
        """A batch committed with these rows per kind."""
        self.rows.update(rows_by_kind)
        self.last_write = time.time() if when is None else when

    def failed(self, source: str) -> None:
        """An error of `source` ("database" or "redis"), about to be retried."""
        self.errors[source] += 1

    def publish(self, client: redis.Redis, now: float | None = None) -> None:
        """Write the figures to Redis (raises the client's errors)."""
        now = time.time() if now is None else now
        key = keys.recorder_health(self.name)
        fields = {f"rows:{k}": self.rows[k] for k in KINDS} | {f"errors:{s}": self.errors[s] for s in SOURCES}
        fields["writing"] = int(self.writing)
        pipe = client.pipeline(transaction=True)
        pipe.hset(key, mapping=fields)
        for name, value in (("lag", self.lag), ("last_write", self.last_write)):
            if value is None:
                pipe.hdel(key, name)
            else:
                pipe.hset(key, name, repr(value))
        pipe.pexpire(key, int(TTL_S * 1000))
        pipe.zadd(keys.RECORDERS, {self.name: now + TTL_S})
        pipe.zremrangebyscore(keys.RECORDERS, "-inf", now)
        pipe.execute()

    def remove(self, client: redis.Redis) -> None:
        """Take the figures away (a clean stop)."""
        pipe = client.pipeline(transaction=True)
        pipe.delete(keys.recorder_health(self.name))
        pipe.zrem(keys.RECORDERS, self.name)
        pipe.execute()


def entries_after(client: redis.Redis, position: str) -> int:
    """How many results-stream entries come after `position` (all of them for "0-0")."""
    return int(client.eval(_COUNT_AFTER, 1, keys.RESULTS_STREAM, position))


def read_recorders(client: redis.Redis, now: float | None = None) -> dict[str, RecorderFigures]:
    """The figures of every recorder whose hash has not expired, by name."""
    now = time.time() if now is None else now
    names = sorted(decode_str(n) for n in client.zrangebyscore(keys.RECORDERS, now, "+inf"))
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(keys.recorder_health(name))
    found = {}
    for name, raw in zip(names, pipe.execute()):
        if not raw:
            continue
        fields = {decode_str(k): decode_str(v) for k, v in raw.items()}
        found[name] = RecorderFigures(
            rows={k: int(fields.get(f"rows:{k}", 0)) for k in KINDS},
            errors={s: int(fields.get(f"errors:{s}", 0)) for s in SOURCES},
            writing=fields.get("writing") == "1",
            lag=int(fields["lag"]) if "lag" in fields else None,
            last_write=float(fields["last_write"]) if "last_write" in fields else None)
    return found
