"""The Redis list of recent alert events, newest first, that the dashboard shows.

Public API:
- `ALERTS_LIST` (`maskwatch:alerts`), `MAX_ALERTS`.
- `redis_sink(client, cap=MAX_ALERTS)`: an `AlertDispatcher` sink that LPUSHes each event as JSON and
  LTRIMs the list to `cap` entries.
- `recent_alerts(client, count=50) -> list[dict]`: the newest events (unreadable entries skipped).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import redis

from shared.keys import ALERTS_LIST

__all__ = ["ALERTS_LIST", "MAX_ALERTS", "recent_alerts", "redis_sink"]
MAX_ALERTS = 200


def redis_sink(client: redis.Redis, cap: int = MAX_ALERTS) -> Callable[[dict[str, Any]], None]:
    """A sink that keeps the last `cap` alert events in `ALERTS_LIST`."""

    def push_alert(event: dict[str, Any]) -> None:
        pipe = client.pipeline(transaction=False)
        pipe.lpush(ALERTS_LIST, json.dumps(event, separators=(",", ":")))
        pipe.ltrim(ALERTS_LIST, 0, cap - 1)
        pipe.execute()

    return push_alert


def recent_alerts(client: redis.Redis, count: int = 50) -> list[dict[str, Any]]:
    """The newest `count` alert events, newest first."""
    events = []
    for raw in client.lrange(ALERTS_LIST, 0, max(0, count - 1)):
        try:
            event = json.loads(raw)
        except (TypeError, ValueError):
            continue
        if isinstance(event, dict):
            events.append(event)
    return events
