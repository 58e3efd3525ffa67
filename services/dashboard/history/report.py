"""The printable report of a day, week or month, for the whole site or some cameras."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from services.dashboard.history import queries
from services.dashboard.history.queries import Scope, summary
from shared.history.periods import Period, next_start, period_name, period_start
from shared.history.schema import HOUR
from shared.schemas import COMPLIANT_LABELS, MASK_LABELS

WORST_HOURS = 5
REPORT_ALERTS = 50
SPANS = (Period.DAY, Period.WEEK, Period.MONTH)


def previous_start(start: int, span: Period, zone: ZoneInfo) -> int:
    """Start of the span before the one starting at `start`."""
    return period_start(start - 1, span, zone)


def span_name(start: int, end: int, span: Period, zone: ZoneInfo) -> str:
    """"2026-12-01", "2026-W49 (2026-11-30 to 2026-12-06)" or "2026-12"."""
    name = period_name(start, span, zone)
    if span is Period.WEEK:
        last = period_name(end - 1, Period.DAY, zone)
        name += f" ({period_name(start, Period.DAY, zone)} to {last})"
    return name


def build_report(conn: Connection, zone: ZoneInfo, span: Period, day: float, cameras: tuple[str, ...]) -> dict:
    """Totals, the span before, per camera, series, hourly profile, worst hours, alerts, entries and gaps."""
    start = period_start(day, span, zone)
    end = next_start(start, span, zone)
    scope = Scope(cameras)
    series = queries.counts_series(conn, zone, Period.HOUR if span is Period.DAY else Period.DAY, start, end, scope)
    before = previous_start(start, span, zone)
    previous = queries.counts_series(conn, zone, Period.DAY, before, start, scope)["totals"]
    hourly = queries.label_sums(conn, HOUR, scope, start, end)
    total, items = queries.alerts_page(conn, start, end, cameras, (), REPORT_ALERTS, 0)
    lines = queries.entries(conn, zone, Period.DAY, start, end, cameras, ())["lines"]
    return {
        "span": span.value, "timezone": zone.key, "from": start, "to": end,
        "name": span_name(start, end, span, zone), "cameras": list(cameras) or None, "generated_at": time.time(),
        "totals": series["totals"], "previous": {**previous, "from": before, "to": start},
        "by_camera": series["by_camera"], "series": series["series"],
        "hourly_profile": hourly_profile(hourly, zone), "worst_hours": worst_hours(hourly, zone),
        "alerts": {"total": total, "by_kind": queries.alerts_by_kind(conn, start, end, cameras), "items": items},
        "entries": [{"camera": e["camera"], "line": e["line"], **e["totals"]} for e in lines],
        "gaps": queries.gaps(conn, start, end),
    }


def hourly_profile(hours: list[tuple[int, dict]], zone: ZoneInfo) -> list[dict]:
    """People per local hour of the day (0-23), summed over the span."""
    by_hour: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for start, values in hours:
        for label, n in values.items():
            by_hour[datetime.fromtimestamp(start, zone).hour][label] += n
    return [{"hour": hour, **summary(by_hour.get(hour, {}))} for hour in range(24)]


def worst_hours(hours: list[tuple[int, dict]], zone: ZoneInfo, top: int = WORST_HOURS) -> list[dict]:
    """The hours with the most unmasked people (ties: the lower masked share first)."""
    ranked = []
    for start, values in hours:
        unmasked = sum(values.get(label, 0) for label in MASK_LABELS if label not in COMPLIANT_LABELS)
        if unmasked:
            point = summary(values)
            ranked.append({"start": start, "end": start + 3600, "name": period_name(start, Period.HOUR, zone),
                           "unmasked": unmasked, **point})
    ranked.sort(key=lambda p: (-p["unmasked"], p["masked_share"] if p["masked_share"] is not None else 1, p["start"]))
    return ranked[:top]


