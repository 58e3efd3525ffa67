"""The camera read API under /api/v1: overviews, window stats and their CSV, events, alerts, frames, feed, models."""

from __future__ import annotations

import logging
import re
from typing import Annotated

import anyio
import cv2
import numpy as np
import redis
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse

from services.dashboard import export, queries, stats
from services.dashboard.api_models import (
    CameraEntries,
    CameraOverview,
    CameraStats,
    CameraZones,
    Event,
    ModelInfo,
    StaticFace,
)
from services.dashboard.history import api as history_api
from services.dashboard.settings import DashboardSettings
from shared import keys
from shared.config import is_camera_id
from shared.drawing import draw_faces
from shared.imaging import encode_jpeg
from shared.model_store import ModelError
from shared.schemas import FrameResult
from shared.streams import decode_str, describe_redis_error

log = logging.getLogger(__name__)
WINDOW_HELP = "1m, 1h or 1d (or minute, hour, day)"


def window_of(window: str = Query("1h", max_length=16, description=WINDOW_HELP)) -> stats.Window:
    """The `window` query parameter as a Window; 400 for an unknown one."""
    try:
        return stats.window_name(window)
    except stats.WindowError as exc:
        raise HTTPException(400, str(exc)) from None


WindowParam = Annotated[stats.Window, Depends(window_of)]
_DAYS_RE = re.compile(r"\s*(\d{1,4})\s*d\s*")


def stats_window_of(window: str = Query("1h", max_length=16, description=WINDOW_HELP + "; or 2d-3660d (from the "
                                        "history database)")) -> stats.Window | int:
    """A rolling window kept in Redis, or a number of days read from the history database; 400 otherwise."""
    days = _DAYS_RE.fullmatch(window.lower())
    if days and int(days.group(1)) in history_api.HISTORY_WINDOW_DAYS:
        return int(days.group(1))
    return window_of(window)


StatsWindowParam = Annotated[stats.Window | int, Depends(stats_window_of)]
PeriodParam = Annotated[str | None, Query(max_length=16, description="period length: seconds or 30s, 15m, 1h; a "
                                          "multiple of the window's bucket (10 s, 1 min, 1 h), which is the default")]


def _period(period: str | None, window: stats.Window) -> int:
    """The period in seconds; 400 when the window's buckets cannot be summed into it."""
    try:
        return export.period_seconds(period, window)
    except export.PeriodError as exc:
        raise HTTPException(400, str(exc)) from None


def _csv(body: str, filename: str) -> Response:
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


def router(settings: DashboardSettings) -> APIRouter:
    """The camera routes; every one needs the API key when one is set (the app adds that dependency)."""
    api = APIRouter(prefix="/api/v1")

    async def known(request: Request, camera: str) -> str:
        redis_ = request.app.state.redis
        if not is_camera_id(camera) or camera not in await queries.camera_list(redis_, settings.cameras()):
            raise HTTPException(404, f"unknown camera {camera!r}")
        return camera

    @api.get("/model", tags=["models"], response_model=ModelInfo)
    async def model(request: Request) -> dict:
        """The promoted classifier and detector, and the versions the cameras' latest results used."""
        store = request.app.state.photos.store
        promoted = {}
        for kind in ("classifier", "detector"):
            try:
                version = await anyio.to_thread.run_sync(store.load, kind)
            except ModelError as exc:
                promoted[kind] = {"error": str(exc)}
                continue
            meta = version.meta
            promoted[kind] = {"version": version.name, **{k: meta[k] for k in ("labels", "input_size", "metrics",
                                                                              "created", "architecture") if k in meta}}
        redis_, in_use = request.app.state.redis, {}
        try:
            for cam in await queries.camera_list(redis_, settings.cameras()):
                value = await redis_.hget(keys.stats_totals(cam), "model_version")
                if value:
                    in_use[cam] = decode_str(value)
        except (redis.RedisError, OSError) as exc:  # the promoted models are still worth answering with
            log.warning("model info without camera versions: %s", describe_redis_error(exc))
        return {"promoted": promoted, "cameras": in_use}

    @api.get("/cameras", tags=["cameras"], response_model=list[CameraOverview])
    async def cameras_(request: Request) -> list[dict]:
        """Every camera with its status, people and faces per label and compliance per window."""
        redis_ = request.app.state.redis
        ids = await queries.camera_list(redis_, settings.cameras())
        return [await queries.overview(redis_, cam, settings.stale_after) for cam in ids]

    @api.get("/cameras/{camera}", tags=["cameras"], response_model=CameraOverview)
    async def camera_(request: Request, camera: str = Depends(known)) -> dict:
        """One camera's overview."""
        return await queries.overview(request.app.state.redis, camera, settings.stale_after)

    @api.get("/cameras/{camera}/stats", tags=["cameras"], response_model=CameraStats)
    async def camera_stats(request: Request, window: WindowParam, camera: str = Depends(known)) -> dict:
        """People and faces per label, compliance of each and a per-bucket series over a rolling window."""
        return {"camera": camera, **(await queries.window_stats(request.app.state.redis, camera, window)).as_dict()}

    @api.get("/cameras/{camera}/stats.csv", tags=["cameras"], response_class=Response,
             responses={200: {"content": {"text/csv": {}}, "description": "one row per period"}})
    async def camera_stats_csv(request: Request, window: StatsWindowParam, camera: str = Depends(known),
                               period: PeriodParam = None) -> Response:
        """Per-period people and face counts as CSV: the columns of `maskwatch detect --stats`, then frames,
        faces per label and the face compliance rate. Periods are aligned to unix time. Windows longer than
        Redis keeps (2d to 3660d) come from the history database: people per 1h or 1d (the default) of the
        history time zone, face columns empty."""
        if isinstance(window, int):
            return await history_api.stats_csv(request, camera, window, period)
        period_s = _period(period, window)
        window_stats = await queries.window_stats(request.app.state.redis, camera, window)
        return _csv(export.to_csv(export.period_rows(camera, window_stats, period_s)),
                    f"{camera}-{window}-{period_s}s.csv")

    @api.get("/cameras/{camera}/entries", tags=["entrances"], response_model=CameraEntries)
    async def camera_entries(request: Request, window: WindowParam, camera: str = Depends(known)) -> dict:
        """Entries and exits per counting line, direction and label over a rolling window, with the share of
        entries wearing a mask correctly and a per-bucket series."""
        return await queries.entries(request.app.state.redis, camera, window)

    @api.get("/cameras/{camera}/entries.csv", tags=["entrances"], response_class=Response,
             responses={200: {"content": {"text/csv": {}}, "description": "one row per period, line and direction"}})
    async def camera_entries_csv(request: Request, window: WindowParam, camera: str = Depends(known),
                                 period: PeriodParam = None) -> Response:
        """Per-period entries (`in`) and exits (`out`) of each line as CSV: the people who crossed per label and
        the share with_mask. Periods are aligned to unix time."""
        period_s = _period(period, window)
        redis_ = request.app.state.redis
        window_stats = await queries.window_stats(redis_, camera, window)
        lines = await queries.line_names(redis_, camera)
        rows = export.entry_rows(camera, window_stats, period_s, lines)
        return _csv(export.to_csv(rows, export.ENTRY_EXPORT_COLUMNS), f"{camera}-entries-{window}-{period_s}s.csv")

    @api.get("/cameras/{camera}/zones", tags=["entrances"], response_model=CameraZones)
    async def camera_zones(request: Request, camera: str = Depends(known)) -> dict:
        """The zones and counting lines the tracker applies to the camera (what to draw over its frame), each
        zone's occupancy now and people per window, and the config problem that kept previous ones, if any."""
        return await queries.zones(request.app.state.redis, camera)

    @api.get("/cameras/{camera}/static-faces", tags=["entrances"], response_model=list[StaticFace])
    async def camera_static_faces(request: Request, camera: str = Depends(known)) -> list[dict]:
        """Faces that barely moved for longer than `tracker.static_after_s` (posters, screens): never counted;
        each with a suggested ignore zone to add to the camera's `zones`."""
        return await queries.static_faces(request.app.state.redis, camera)

    @api.get("/cameras/{camera}/events", tags=["cameras"], response_model=list[Event], response_model_exclude_none=True)
    async def camera_events(request: Request, camera: str = Depends(known),
                            limit: int = Query(50, ge=1, le=stats.EVENTS_KEPT)) -> list[dict]:
        """Recent events, newest first: changes in the labels seen, tracked people (with face thumbnails) and
        alerts."""
        return await queries.events(request.app.state.redis, camera, limit)

    @api.get("/alerts", tags=["cameras"], response_model=list[Event], response_model_exclude_none=True)
    async def alerts(request: Request, limit: int = Query(50, ge=1, le=200),
                     camera: str | None = Query(None, max_length=64, description="only this camera's alerts")
                     ) -> list[dict]:
        """Recent alerts (unmasked people, grouped people, unmasked share over threshold), newest first."""
        return await queries.alerts(request.app.state.redis, limit, camera)

    @api.get("/cameras/{camera}/frame.jpg", tags=["cameras"], response_class=Response,
             responses={200: {"content": {"image/jpeg": {}}}})
    async def camera_frame(request: Request, camera: str = Depends(known)) -> Response:
        """The latest processed frame with its faces drawn (boxes coloured by label)."""
        result, jpeg = await queries.latest_frame(request.app.state.redis, camera, request.app.state.frames_redis)
        if result is None or not jpeg:
            raise HTTPException(404, f"no processed frame yet for camera {camera!r}")
        body = await anyio.to_thread.run_sync(_annotate, jpeg, result)
        return Response(body, media_type="image/jpeg", headers={"Cache-Control": "no-store",
                                                                "X-Frame": str(result.frame)})

    @api.get("/feed", tags=["cameras"], response_class=StreamingResponse)
    async def feed(request: Request) -> StreamingResponse:
        """Server-sent events: `frame` (results, throttled per camera), `person`, `crossing` (line crossings),
        `cameras` (overviews), `alerts`."""
        return StreamingResponse(request.app.state.feed.subscribe(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    return api


def _annotate(jpeg: bytes, result: FrameResult) -> bytes:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise HTTPException(502, "the stored frame is not a readable JPEG")
    return encode_jpeg(draw_faces(image, result.faces), quality=80)
