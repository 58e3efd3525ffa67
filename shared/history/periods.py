"""Hours, days, weeks and months in a time zone, as unix-second boundaries.

Public API:
- `Period` (hour, day, week, month); `period_start(ts, period, zone) -> int`; `next_start(start, period, zone)`;
  `period_starts(start, end, period, zone) -> list[int]` (every period overlapping [start, end));
  `period_name(start, period, zone) -> str` ("2026-12-01 09:00", "2026-12-01", "2026-W49", "2026-12").
- `parse_time(text, zone) -> float`: unix seconds from unix seconds or ISO 8601 (local to `zone` without offset).
Weeks start on Monday. Days and hours follow the zone's clock, so a DST day has 23 or 25 hours.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class Period(StrEnum):
    """A period length of the history API."""

    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def _local(ts: float, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ts, zone)


def _epoch(local: datetime, zone: ZoneInfo) -> int:
    """Unix seconds of a naive local wall-clock time (the earlier of two when the clock went back)."""
    return int(local.replace(tzinfo=zone, fold=0).timestamp())


def period_start(ts: float, period: Period, zone: ZoneInfo) -> int:
    """Start (unix s) of the period holding `ts`."""
    local = _local(ts, zone)
    if period is Period.HOUR:  # whole seconds first: a float subtraction may land a hair before the hour
        return math.floor(ts) - (local.minute * 60 + local.second)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    if period is Period.WEEK:
        day -= timedelta(days=day.weekday())
    elif period is Period.MONTH:
        day = day.replace(day=1)
    return _epoch(day, zone)


def next_start(start: int, period: Period, zone: ZoneInfo) -> int:
    """Start of the period after the one starting at `start`."""
    if period is Period.HOUR:
        return start + 3600
    local = _local(start, zone).replace(tzinfo=None)
    if period is Period.DAY:
        following = local + timedelta(days=1)
    elif period is Period.WEEK:
        following = local + timedelta(days=7)
    else:
        following = (local.replace(day=28) + timedelta(days=4)).replace(day=1)
    return _epoch(following.replace(hour=0, minute=0, second=0, microsecond=0), zone)


def period_starts(start: float, end: float, period: Period, zone: ZoneInfo, limit: int = 100_000) -> list[int]:
    """Starts of every period overlapping [start, end), oldest first (at most `limit`)."""
    out: list[int] = []
    current = period_start(start, period, zone)
    while current < end and len(out) < limit:
        out.append(current)
        current = next_start(current, period, zone)
    return out


def period_name(start: int, period: Period, zone: ZoneInfo) -> str:
    """A short human name of the period starting at `start`."""
    local = _local(start, zone)
    if period is Period.HOUR:
        return local.strftime("%Y-%m-%d %H:00")
    if period is Period.DAY:
        return local.strftime("%Y-%m-%d")
    if period is Period.WEEK:
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return local.strftime("%Y-%m")


def local_iso(ts: float, zone: ZoneInfo) -> str:
    """ISO 8601 local time with its UTC offset (seconds precision)."""
    return _local(ts, zone).isoformat(timespec="seconds")


def parse_time(text: str, zone: ZoneInfo) -> float:
    """Unix seconds from "1764547200", "2026-12-01" or "2026-12-01T09:00[+01:00]"; raises ValueError."""
    raw = text.strip()
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither unix seconds nor an ISO 8601 date or time") from None
    if parsed.tzinfo is None:
        return float(_epoch(parsed, zone))
    return parsed.timestamp()
