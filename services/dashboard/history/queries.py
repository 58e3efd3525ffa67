"""SQL reads of the history database: counts per period (from the pre-aggregated rows), people, alerts, entries.

Every function takes an open Connection and plain values and returns JSON-able dicts. Ranges are widened to
whole periods: a series has one point for every period overlapping [start, end), empty ones included.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, case, func, select

from shared.history.periods import Period, next_start, period_name, period_start, period_starts
from shared.history.schema import DAY, HOUR, IN, OUT, PEOPLE, alerts, counts, people, recorder_gaps, thumbnails
from shared.schemas import MASK_LABELS
from shared.stats import compliance_rate

MAX_PERIODS = 5000  # points of one series at most (e.g. 208 days of hours)
# one column per mask label: a period comes back as one row, not three
_LABEL_SUMS = [func.sum(case((counts.c.label == label, counts.c.n), else_=0)).label(label) for label in MASK_LABELS]


class RangeError(ValueError):
    """A range or period the API refuses (answered 400)."""


@dataclass(frozen=True)
class Scope:
    """What to count: people (line None) or the crossings of `line` in `direction`, of some cameras or all."""

    cameras: tuple[str, ...] = ()
    line: str | None = None
    direction: str = IN

    @property
    def kind(self) -> str:
        """The counts row kind."""
        return PEOPLE if self.line is None else self.direction


def label_counts(values: dict[str, int] | None = None) -> dict[str, int]:
    """Counts of the three mask labels (others left out), zeros included."""
    values = values or {}
    return {label: int(values.get(label, 0)) for label in MASK_LABELS}


def masked_share(counts: dict[str, int]) -> float | None:
    """with_mask / total of label counts (as `label_counts` gives them), 4 decimals; None without people."""
    rate = compliance_rate(counts)
    return None if rate is None else round(rate, 4)


def summary(values: dict[str, int]) -> dict:
    """{counts, total, masked_share} of label counts."""
    clean = label_counts(values)
    return {"counts": clean, "total": sum(clean.values()), "masked_share": masked_share(clean)}


def _in_cameras(column, cameras: Sequence[str]):
    return column.in_(cameras) if cameras else True


def _count_filter(resolution: str, scope: Scope, start: float, end: float, kinds: tuple[str, ...]) -> list:
    clauses = [counts.c.resolution == resolution, counts.c.kind.in_(kinds), counts.c.start >= int(start),
               counts.c.start < int(end), _in_cameras(counts.c.camera, scope.cameras)]
    if scope.line is not None:
        clauses.append(counts.c.line == scope.line)
    return clauses


def count_rows(conn: Connection, resolution: str, scope: Scope, start: float, end: float,
               kinds: Iterable[str] | None = None) -> list:
    """Raw counts rows (camera, kind, line, start, label, n) of a resolution in [start, end)."""
    where = _count_filter(resolution, scope, start, end, tuple(kinds or (scope.kind,)))
    return conn.execute(select(counts.c.camera, counts.c.kind, counts.c.line, counts.c.start, counts.c.label,
                               counts.c.n).where(*where)).all()


def label_sums(conn: Connection, resolution: str, scope: Scope, start: float, end: float) -> list[tuple[int, dict]]:
    """(bucket start, {label: n}) of every hour or day bucket with counts in [start, end), summed over cameras."""
    where = _count_filter(resolution, scope, start, end, (scope.kind,))
    return [(row_start, dict(zip(MASK_LABELS, (int(n or 0) for n in values)))) for row_start, *values in
            conn.execute(select(counts.c.start, *_LABEL_SUMS).where(*where).group_by(counts.c.start)).tuples()]


def span(start: float, end: float, period: Period, zone: ZoneInfo) -> list[int]:
    """Period starts covering [start, end); raises RangeError for an empty or too long range."""
    if end <= start:
        raise RangeError("`to` must be after `from`")
    starts = period_starts(start, end, period, zone, limit=MAX_PERIODS + 1)
    if len(starts) > MAX_PERIODS:
        raise RangeError(f"more than {MAX_PERIODS} {period}s: use a longer period or a shorter range")
    return starts


def counts_series(conn: Connection, zone: ZoneInfo, period: Period, start: float, end: float, scope: Scope) -> dict:
    """People (or crossings) per period and label, totals, and totals per camera (summed in SQL)."""
    starts = span(start, end, period, zone)
    lo, hi = starts[0], next_start(starts[-1], period, zone)
    resolution = HOUR if period is Period.HOUR else DAY
    per_period: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(MASK_LABELS, 0))
    for row_start, values in label_sums(conn, resolution, scope, lo, hi):
        key = row_start if period in (Period.HOUR, Period.DAY) else period_start(row_start, period, zone)
        for label, n in values.items():
            per_period[key][label] += n
    where = _count_filter(resolution, scope, lo, hi, (scope.kind,))
    per_camera = {camera: dict(zip(MASK_LABELS, (int(n or 0) for n in values))) for camera, *values in
                  conn.execute(select(counts.c.camera, *_LABEL_SUMS).where(*where).group_by(counts.c.camera)).tuples()}
    series = [{"start": s, "end": next_start(s, period, zone), "name": period_name(s, period, zone),
               **summary(per_period.get(s, {}))} for s in starts]
    totals: dict[str, int] = defaultdict(int)
    for values in per_period.values():
        for label, n in values.items():
            totals[label] += n
    return {"period": period.value, "timezone": zone.key, "from": lo, "to": hi,
            "cameras": list(scope.cameras) or None, "line": scope.line,
            "direction": scope.direction if scope.line is not None else None,
            "series": series, "totals": summary(totals),
            "by_camera": [{"camera": cam, **summary(values)} for cam, values in sorted(per_camera.items())]}


def entries(conn: Connection, zone: ZoneInfo, period: Period, start: float, end: float, cameras: Sequence[str],
            lines: Sequence[str]) -> dict:
    """In and out crossings per camera, line, period and label."""
    starts = span(start, end, period, zone)
    lo, hi = starts[0], next_start(starts[-1], period, zone)
    resolution = HOUR if period is Period.HOUR else DAY
    found: dict[tuple[str, str], dict[int, dict[str, dict[str, int]]]] = defaultdict(
        lambda: defaultdict(lambda: {IN: defaultdict(int), OUT: defaultdict(int)}))
    for row in count_rows(conn, resolution, Scope(tuple(cameras)), lo, hi, kinds=(IN, OUT)):
        if lines and row.line not in lines:
            continue
        key = row.start if period in (Period.HOUR, Period.DAY) else period_start(row.start, period, zone)
        found[(row.camera, row.line)][key][row.kind][row.label] += row.n
    out = []
    for (camera, line), by_start in sorted(found.items()):
        series, total_in, total_out = [], defaultdict(int), defaultdict(int)
        for s in starts:
            values = by_start.get(s, {IN: {}, OUT: {}})
            series.append({"start": s, "end": next_start(s, period, zone), "name": period_name(s, period, zone),
                           **crossing_summary(values[IN], values[OUT])})
            for label, n in values[IN].items():
                total_in[label] += n
            for label, n in values[OUT].items():
                total_out[label] += n
        out.append({"camera": camera, "line": line, "series": series, "totals": crossing_summary(total_in, total_out)})
    return {"period": period.value, "timezone": zone.key, "from": lo, "to": hi, "lines": out}


def crossing_summary(ins: dict[str, int], outs: dict[str, int]) -> dict:
    """{in, out, in_total, out_total, masked_share (of the entries)} of label counts."""
    in_counts, out_counts = label_counts(ins), label_counts(outs)
    return {"in": in_counts, "out": out_counts, "in_total": sum(in_counts.values()),
            "out_total": sum(out_counts.values()), "masked_share": masked_share(in_counts)}


@dataclass(frozen=True)
class PeopleFilter:
    """Which person rows to list."""

    start: float
    end: float
    cameras: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    include_static: bool = False

    def where(self):
        """The WHERE clause."""
        clause = and_(people.c.first_seen >= self.start, people.c.first_seen < self.end,
                      _in_cameras(people.c.camera, self.cameras))
        if self.labels:
            clause = and_(clause, people.c.label.in_(self.labels))
        if not self.include_static:
            clause = and_(clause, people.c.static.is_(False))
        return clause


def people_page(conn: Connection, where: PeopleFilter, limit: int, offset: int, newest_first: bool = True,
                with_total: bool = True) -> tuple[int | None, list[dict]]:
    """(total matching, one page of person rows with whether each has a thumbnail)."""
    order = people.c.first_seen.desc() if newest_first else people.c.first_seen.asc()
    rows = conn.execute(
        select(people, thumbnails.c.person_id.is_not(None).label("has_thumbnail"))
        .join_from(people, thumbnails, people.c.id == thumbnails.c.person_id, isouter=True)
        .where(where.where()).order_by(order).limit(limit).offset(offset)).all()  # index order: no sort of the range
    total = conn.execute(select(func.count()).select_from(people).where(where.where())).scalar() \
        if with_total else None
    return total, [_person(row) for row in rows]


def _person(row) -> dict:
    return {"id": row.id, "camera": row.camera, "track_id": row.track_id, "label": row.label,
            "first_seen": row.first_seen, "last_seen": row.last_seen, "frames": row.frames,
            "best_box": list(row.best_box), "zones": list(row.zones), "static": bool(row.static),
            "has_thumbnail": bool(row.has_thumbnail)}


def thumbnail(conn: Connection, person_id: int) -> bytes | None:
    """A person's face JPEG, or None."""
    return conn.execute(select(thumbnails.c.jpeg).where(thumbnails.c.person_id == person_id)).scalar()


def alerts_page(conn: Connection, start: float, end: float, cameras: Sequence[str], kinds: Sequence[str],
                limit: int, offset: int) -> tuple[int, list[dict]]:
    """(total matching, one page of alerts, newest first)."""
    clause = and_(alerts.c.time >= start, alerts.c.time < end, _in_cameras(alerts.c.camera, cameras))
    if kinds:
        clause = and_(clause, alerts.c.kind.in_(kinds))
    rows = conn.execute(select(alerts.c.id, alerts.c.camera, alerts.c.kind, alerts.c.time, alerts.c.event)
                        .where(clause).order_by(alerts.c.time.desc(), alerts.c.id.desc()).limit(limit).offset(offset))
    total = conn.execute(select(func.count()).select_from(alerts).where(clause)).scalar()
    return total, [dict(row._mapping) for row in rows]


def alerts_by_kind(conn: Connection, start: float, end: float, cameras: Sequence[str]) -> dict[str, int]:
    """Alert counts per kind in a range."""
    rows = conn.execute(select(alerts.c.kind, func.count()).where(
        alerts.c.time >= start, alerts.c.time < end, _in_cameras(alerts.c.camera, cameras)).group_by(alerts.c.kind))
    return {kind: n for kind, n in rows}


def cameras_and_lines(conn: Connection) -> tuple[list[str], list[dict]]:
    """Cameras with counts, and the (camera, line) pairs with crossings."""
    cams = conn.execute(select(counts.c.camera).where(counts.c.resolution == DAY).distinct()).scalars().all()
    lines = conn.execute(select(counts.c.camera, counts.c.line).where(counts.c.resolution == DAY,
                                                                      counts.c.kind.in_((IN, OUT))).distinct()).all()
    return sorted(cams), [{"camera": c, "line": line} for c, line in sorted(lines)]


def time_range(conn: Connection) -> tuple[float | None, float | None]:
    """First sighting of the oldest and the newest person kept."""
    oldest = conn.execute(select(people.c.first_seen).order_by(people.c.first_seen).limit(1)).scalar()
    newest = conn.execute(select(people.c.first_seen).order_by(people.c.first_seen.desc()).limit(1)).scalar()
    return oldest, newest


def gaps(conn: Connection, start: float | None = None, end: float | None = None) -> list[dict]:
    """Stretches of the results stream the recorder lost (optionally those overlapping [start, end))."""
    out = []
    for row in conn.execute(select(recorder_gaps).order_by(recorder_gaps.c.id)):
        lost_from, lost_to = _id_time(row.after), _id_time(row.lost_before)
        if start is not None and (lost_to < start or lost_from >= end):
            continue
        out.append({"after": row.after, "lost_before": row.lost_before, "from": lost_from, "to": lost_to,
                    "noticed_at": row.noticed_at})
    return out


def _id_time(entry_id: str) -> float:
    """The time a stream id was made (its milliseconds part), in unix seconds."""
    return int(entry_id.partition("-")[0]) / 1000
