"""Routes under /api/v1/history: status, counts, people (with thumbnails), alerts, entries, report, and CSV of each.

Times are unix seconds or ISO 8601 (local to `history.timezone` without an offset); `to` is exclusive.
Every read runs in a worker thread; a database that cannot answer gives 503 with one line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, TypeVar

import anyio
import redis
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import StringConstraints
from sqlalchemy import Connection, select

from services.dashboard.export import EXPORT_COLUMNS, to_csv
from services.dashboard.history import export, queries
from services.dashboard.history.database import HistoryDb, HistoryUnavailable
from services.dashboard.history.models import AlertsPage, Counts, Entries, PeoplePage, Report, Status
from services.dashboard.history.queries import PeopleFilter, RangeError, Scope
from services.dashboard.history.report import SPANS, build_report
from shared import keys
from shared.detections import stream_id
from shared.history.migrate import current_revision
from shared.history.periods import Period, parse_time
from shared.history.schema import RESULTS, recorder_state
from shared.schemas import MASK_LABELS
from shared.streams import decode_str

T = TypeVar("T")
DEFAULT_DAYS = 7
MAX_CAMERAS = 100
CSV_PEOPLE = 100_000
PREFIX = "/api/v1/history"
DAY_S = 86400

Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
CameraQuery = Annotated[list[Id], Query(max_length=MAX_CAMERAS, description="repeatable; none: every camera")]
LabelQuery = Annotated[list[Id], Query(max_length=3, description="repeatable: with_mask, without_mask or "
                                       "mask_incorrect")]
FromQuery = Annotated[str | None, Query(alias="from", max_length=40, description="unix seconds or ISO 8601; "
                                        f"default: `to` - {DEFAULT_DAYS} days")]
ToQuery = Annotated[str | None, Query(alias="to", max_length=40, description="unix seconds or ISO 8601, exclusive; "
                                      "default: now")]
PeriodQuery = Annotated[Period, Query(description="hour, day, week or month")]
LineQuery = Annotated[str | None, Query(max_length=64, description="count this line's crossings, not people")]
DirectionQuery = Annotated[str, Query(max_length=3, pattern="^(in|out)$", description="with `line`: in (entries) "
                                      "or out")]
StaticQuery = Annotated[bool, Query(description="list static faces (posters, screens) too")]
OrderQuery = Annotated[str, Query(max_length=4, pattern="^(asc|desc)$", description="by first sighting")]
KindQuery = Annotated[list[Id], Query(max_length=20, description="repeatable: person, people, unmasked_share...")]
LinesQuery = Annotated[list[Id], Query(max_length=MAX_CAMERAS, description="repeatable; none: every line")]
SpanQuery = Annotated[Period, Query(description="day, week or month")]
DateQuery = Annotated[str | None, Query(max_length=40, description="a day in the span (YYYY-MM-DD); default: today")]
UNAVAILABLE = {503: {"description": "the history database is unavailable, not configured or has no schema yet"}}


def _db(request: Request) -> HistoryDb:
    return request.app.state.history


async def _read(request: Request, query: Callable[[Connection], T]) -> T:
    try:
        return await anyio.to_thread.run_sync(_db(request).read, query)
    except HistoryUnavailable as exc:
        raise HTTPException(503, str(exc)) from None
    except RangeError as exc:
        raise HTTPException(400, str(exc)) from None


def _range(request: Request, start: str | None, end: str | None) -> tuple[float, float]:
    zone = _db(request).config.zone
    try:
        to = parse_time(end, zone) if end else time.time()
        frm = parse_time(start, zone) if start else to - DEFAULT_DAYS * DAY_S
    except ValueError as exc:
        raise HTTPException(400, f"from/to: {exc}") from None
    if to <= frm:
        raise HTTPException(400, "`to` must be after `from`")
    return frm, to


def _cameras(cameras: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(cameras))


def _labels(labels: list[str]) -> tuple[str, ...]:
    bad = [label for label in labels if label not in MASK_LABELS]
    if bad:
        raise HTTPException(400, f"label {bad[0][:40]!r}: use {', '.join(MASK_LABELS)}")
    return tuple(dict.fromkeys(labels))


def _csv(body: str, filename: str) -> Response:
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


def _thumbnail_url(person: dict) -> dict:
    url = f"{PREFIX}/people/{person['id']}/thumbnail.jpg" if person.pop("has_thumbnail") else None
    return {**person, "thumbnail_url": url}


def router() -> APIRouter:
    """The history routes; every one needs the API key when one is set (the app adds that dependency)."""
    api = APIRouter(prefix=PREFIX, tags=["history"], responses=UNAVAILABLE)

    async def counts_of(request: Request, period: Period, start: str | None, end: str | None, cameras: list[str],
                        line: str | None, direction: str) -> dict:
        frm, to = _range(request, start, end)
        scope = Scope(_cameras(cameras), line, direction)
        zone = _db(request).config.zone
        return await _read(request, lambda conn: queries.counts_series(conn, zone, period, frm, to, scope))


    @api.get("/counts", response_model=Counts)
    async def history_counts(request: Request, period: PeriodQuery = Period.DAY, start: FromQuery = None,
                             end: ToQuery = None, camera: CameraQuery = (), line: LineQuery = None,
                             direction: DirectionQuery = "in") -> dict:
        """People (static faces never) per period and label with the masked share, from the pre-aggregated
        hourly and daily rows; or, with `line`, the people who crossed it."""
        return await counts_of(request, period, start, end, list(camera), line, direction)

    @api.get("/counts.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
    async def history_counts_csv(request: Request, period: PeriodQuery = Period.DAY, start: FromQuery = None,
                                 end: ToQuery = None, camera: CameraQuery = (), line: LineQuery = None,
                                 direction: DirectionQuery = "in") -> Response:
        """The counts as CSV, one row per period."""
        found = await counts_of(request, period, start, end, list(camera), line, direction)
        rows = export.count_rows(found, _db(request).config.zone)
        return _csv(to_csv(rows, export.COUNT_COLUMNS), f"history-counts-{period.value}.csv")

    async def people_of(request: Request, start, end, camera, label, include_static, limit, offset, order,
                        with_total: bool = True) -> tuple[int | None, list[dict]]:
        frm, to = _range(request, start, end)
        where = PeopleFilter(frm, to, _cameras(list(camera)), _labels(list(label)), include_static)
        return await _read(request, lambda conn: queries.people_page(conn, where, limit, offset, order == "desc",
                                                                     with_total))


    @api.get("/people", response_model=PeoplePage)
    async def history_people(request: Request, start: FromQuery = None, end: ToQuery = None,
                             camera: CameraQuery = (), label: LabelQuery = (), include_static: StaticQuery = False,
                             limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=10_000_000),
                             order: OrderQuery = "desc") -> dict:
        """Recorded people (first sighting in the range), one page, with their face thumbnail's URL."""
        total, items = await people_of(request, start, end, camera, label, include_static, limit, offset, order)
        return {"total": total, "offset": offset, "limit": limit, "items": [_thumbnail_url(p) for p in items]}

    @api.get("/people.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
    async def history_people_csv(request: Request, start: FromQuery = None, end: ToQuery = None,
                                 camera: CameraQuery = (), label: LabelQuery = (),
                                 include_static: StaticQuery = False, order: OrderQuery = "desc") -> Response:
        """The people as CSV (no thumbnails), at most 100,000 rows."""
        _total, items = await people_of(request, start, end, camera, label, include_static, CSV_PEOPLE, 0, order,
                                        with_total=False)
        rows = export.people_rows(items, _db(request).config.zone)
        return _csv(to_csv(rows, export.PEOPLE_COLUMNS), "history-people.csv")

    @api.get("/people/{person_id}/thumbnail.jpg", response_class=Response,
             responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "pruned, or never had one"}})
    async def history_thumbnail(request: Request, person_id: int) -> Response:
        """A recorded person's face (blurred when privacy blur was on)."""
        jpeg = await _read(request, lambda conn: queries.thumbnail(conn, person_id))
        if not jpeg:
            raise HTTPException(404, f"no thumbnail for person {person_id}")
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


    async def alerts_of(request: Request, start, end, camera, kind, limit, offset) -> tuple[int, list[dict]]:
        frm, to = _range(request, start, end)
        cams, kinds = _cameras(list(camera)), tuple(kind)
        return await _read(request, lambda conn: queries.alerts_page(conn, frm, to, cams, kinds, limit, offset))

    @api.get("/alerts", response_model=AlertsPage)
    async def history_alerts(request: Request, start: FromQuery = None, end: ToQuery = None,
                             camera: CameraQuery = (), kind: KindQuery = (), limit: int = Query(50, ge=1, le=500),
                             offset: int = Query(0, ge=0, le=10_000_000)) -> dict:
        """Recorded alerts, newest first."""
        total, items = await alerts_of(request, start, end, camera, kind, limit, offset)
        return {"total": total, "offset": offset, "limit": limit, "items": items}

    @api.get("/alerts.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
    async def history_alerts_csv(request: Request, start: FromQuery = None, end: ToQuery = None,
                                 camera: CameraQuery = (), kind: KindQuery = ()) -> Response:
        """The alerts as CSV, their bodies as JSON."""
        _total, items = await alerts_of(request, start, end, camera, kind, CSV_PEOPLE, 0)
        rows = export.alert_rows(items, _db(request).config.zone)
        return _csv(to_csv(rows, export.ALERT_COLUMNS), "history-alerts.csv")


    async def entries_of(request: Request, period, start, end, camera, line) -> dict:
        frm, to = _range(request, start, end)
        cams, lines, zone = _cameras(list(camera)), tuple(line), _db(request).config.zone
        return await _read(request, lambda conn: queries.entries(conn, zone, period, frm, to, cams, lines))

    @api.get("/entries", response_model=Entries)
    async def history_entries(request: Request, period: PeriodQuery = Period.DAY, start: FromQuery = None,
                              end: ToQuery = None, camera: CameraQuery = (), line: LinesQuery = ()) -> dict:
        """Entries (in) and exits (out) per counting line, period and label."""
        return await entries_of(request, period, start, end, camera, line)

    @api.get("/entries.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
    async def history_entries_csv(request: Request, period: PeriodQuery = Period.DAY, start: FromQuery = None,
                                  end: ToQuery = None, camera: CameraQuery = (), line: LinesQuery = ()) -> Response:
        """The entries as CSV, one row per line and period."""
        found = await entries_of(request, period, start, end, camera, line)
        rows = export.entry_rows(found, _db(request).config.zone)
        return _csv(to_csv(rows, export.ENTRY_COLUMNS), f"history-entries-{period.value}.csv")

    @api.get("/report", response_model=Report)
    async def history_report(request: Request, span: SpanQuery = Period.DAY, date: DateQuery = None,
                             camera: CameraQuery = ()) -> dict:
        """The printable report: totals, the span before, per camera, series, hourly profile, worst hours,
        alerts, entries per line and any gaps in the record."""
        if span not in SPANS:
            raise HTTPException(400, "span: use day, week or month")
        zone = _db(request).config.zone
        try:
            day = parse_time(date, zone) if date else time.time()
        except ValueError as exc:
            raise HTTPException(400, f"date: {exc}") from None
        cams = _cameras(list(camera))
        return await _read(request, lambda conn: build_report(conn, zone, span, day, cams))

    @api.get("/status", response_model=Status)
    async def history_status(request: Request) -> dict:
        """The database (password masked), its schema, the recorder's position and lag, cameras and lines kept,
        retention and gaps."""
        db = _db(request)
        found = await _read(request, _status)
        newest = await _newest_result(request)
        position = found["recorder"]["position"]
        lag = None
        if newest == "0-0" or (newest and position and stream_id(position) >= stream_id(newest)):
            lag = 0.0
        elif newest and position:
            lag = round((stream_id(newest).ms - stream_id(position).ms) / 1000, 3)
        found["recorder"]["lag_s"] = lag
        retention = {k: getattr(db.config, k) for k in ("keep_people_days", "keep_thumbnails_days", "keep_counts_days")}
        return {"backend": db.url.get_backend_name(), "database": db.shown, "timezone": db.config.timezone,
                **found, "retention": retention}

    return api


HISTORY_WINDOW_DAYS = range(2, 3661)
_PERIODS = {"": Period.DAY, "1d": Period.DAY, "24h": Period.DAY, "86400": Period.DAY, "86400s": Period.DAY,
            "1h": Period.HOUR, "60m": Period.HOUR, "3600": Period.HOUR, "3600s": Period.HOUR}


async def stats_csv(request: Request, camera: str, days: int, period: str | None) -> Response:
    """A camera's stats.csv over the last `days` days, from the history database (hours or days of its time zone)."""
    unit = _PERIODS.get((period or "").strip().lower())
    if unit is None:
        raise HTTPException(400, f"period {period[:20]!r}: a history window ({days}d) is summed per 1h or 1d")
    to = time.time()
    zone = _db(request).config.zone
    found = await _read(request, lambda conn: queries.counts_series(conn, zone, unit, to - days * DAY_S, to,
                                                                    Scope((camera,))))
    rows = export.stats_rows(camera, found)
    return _csv(to_csv(rows, EXPORT_COLUMNS), f"{camera}-{days}d-1{unit.value[0]}.csv")


def _status(conn: Connection) -> dict:
    revision = current_revision(conn)
    if revision is None:
        raise HistoryUnavailable("history database has no schema yet (start `maskwatch recorder` or run "
                                 "`maskwatch db upgrade`)")
    state = conn.execute(select(recorder_state).where(recorder_state.c.stream == RESULTS)).first()
    cameras, lines = queries.cameras_and_lines(conn)
    oldest, newest = queries.time_range(conn)
    return {"schema_revision": revision,
            "recorder": {"position": state.position if state else None, "owner": state.owner if state else None,
                         "updated_at": state.updated_at if state else None},
            "cameras": cameras, "lines": lines, "oldest": oldest, "newest": newest, "gaps": queries.gaps(conn)}


async def _newest_result(request: Request) -> str | None:
    """The newest results-stream entry id ("0-0" when empty), or None when Redis does not answer."""
    try:
        newest = await request.app.state.redis.xrevrange(keys.RESULTS_STREAM, count=1)
    except (redis.RedisError, OSError):
        return None
    return decode_str(newest[0][0]) if newest else "0-0"
