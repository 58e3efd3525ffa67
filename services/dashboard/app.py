"""The FastAPI application: pages, JSON API, live feed, photo upload and /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import redis
import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader, APIKeyQuery
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.dashboard import camera_api, review, zones_api
from services.dashboard.aggregator import Aggregator
from services.dashboard.api_models import Health, Labels
from services.dashboard.feed import Feed
from services.dashboard.history import api as history_api
from services.dashboard.history.database import HistoryDb
from services.dashboard.metrics import build_registry
from services.dashboard.phone import api as phone_api
from services.dashboard.photo import PhotoDetector, UploadRejected, check_image
from services.dashboard.results import ResultsReader
from services.dashboard.security import QUERY_KEY_ROUTES, SecurityHeaders, headers_for
from services.dashboard.settings import DashboardSettings
from services.dashboard.upload import read_upload
from services.dashboard.upload_queue import UploadQueue
from shared.drawing import LABEL_COLORS_BGR, label_color_hex
from shared.model_store import ModelError, ModelStore
from shared.redis_connection import client_kwargs
from shared.schemas import MASK_LABELS, FrameResult
from shared.streams import describe_redis_error

log = logging.getLogger(__name__)
READ_PACE_S = 0.1  # the live pages refresh at feed_fps (4/s): fewer, larger reads cost less, nobody sees it
REDIS_CONNECTIONS = 64
STATIC = Path(__file__).parent / "static"
PAGES = {"/": "index.html", "/upload": "upload.html", "/review": "review.html", "/history": "history.html",
         "/report": "report.html"}
UPLOAD_ERRORS: dict[int | str, dict] = {
    400: {"description": "empty, corrupt or truncated image, or no `file` field"},
    408: {"description": "the body did not arrive within the upload timeout"},
    413: {"description": "upload over the size limit (refused from Content-Length when it is declared), or an "
                         "image that cannot be decoded within the pixel budget (a larger JPEG is decoded at "
                         "1/2, 1/4 or 1/8 size; other formats are refused)"},
    415: {"description": "not multipart/form-data, or the file is not an image"},
    503: {"description": "no model can be loaded, or every photo worker is busy and the queue is full "
                       "(Retry-After says when to try again)"},
}


def create_app(settings: DashboardSettings | None = None) -> FastAPI:
    """Build the dashboard app; Redis clients, aggregator and feed start with the app's lifespan."""
    settings = settings or DashboardSettings()
    photos = PhotoDetector(ModelStore(settings.models_root), settings.max_pixels,
                           detect_pixels=settings.photo_pixels)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        options = client_kwargs(settings.redis_url, settings.redis_options, socket_timeout=settings.redis_timeout)
        options["socket_connect_timeout"] = min(options["socket_connect_timeout"], settings.redis_timeout)
        # a blocking pool connects outside its lock: while Redis hangs, each request times out on its own
        # instead of queueing behind every other request's connection attempt
        app.state.redis = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
            settings.redis_url, max_connections=REDIS_CONNECTIONS, timeout=settings.redis_timeout, **options))
        app.state.sync_redis = redis.Redis.from_url(settings.redis_url, **options)
        app.state.frames_redis = app.state.redis  # frame images: in the frames Redis when there is one
        app.state.sync_frames_redis = (redis.Redis.from_url(settings.frames_redis_url, **options)
                                       if settings.frames_redis_url else None)  # phone frames go there
        if settings.frames_redis_url:
            app.state.frames_redis = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
                settings.frames_redis_url, max_connections=REDIS_CONNECTIONS, timeout=settings.redis_timeout,
                **options))
        app.state.registry = build_registry(app.state.sync_redis, settings.cameras, settings.stale_after)
        app.state.feed = feed = Feed(app.state.redis, settings.cameras, settings.feed_fps, settings.stale_after)
        aggregator = Aggregator(app.state.redis) if settings.aggregate else None
        # one reader of the results stream per process feeds both the counts and the live pages
        app.state.reader = ResultsReader(app.state.redis, [c for c in (aggregator and aggregator.count,
                                                                       feed.consume) if c],
                                         start=aggregator.cursor if aggregator else None,
                                         on_error=feed.redis_state, pace_s=READ_PACE_S)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(feed.run(stop), name="feed"),
                 asyncio.create_task(app.state.reader.run(stop), name="results-reader"),
                 asyncio.create_task(phone_api.prune_loop(app.state.redis, stop), name="phone-prune")]
        try:
            yield
        finally:
            stop.set()
            await asyncio.wait(tasks, timeout=5.0)
            for task in tasks:
                task.cancel()
            await app.state.redis.aclose()
            if app.state.frames_redis is not app.state.redis:
                await app.state.frames_redis.aclose()
            app.state.sync_redis.close()
            if app.state.sync_frames_redis is not None:
                app.state.sync_frames_redis.close()
            app.state.history.close()

    # FastAPIOffline serves the Swagger UI and ReDoc assets itself: /docs works offline, like the pages
    app = FastAPIOffline(title="maskwatch dashboard", version="1", lifespan=lifespan,
                         description="Live face-mask compliance per camera, photo detection and Prometheus metrics.")
    app.state.photos = photos
    app.state.history = HistoryDb.open(settings.history, settings.history_base_dir)  # connects on first use
    app.state.uploads = UploadQueue(settings.upload_workers, settings.upload_queue)
    app.state.begin_shutdown = lambda: app.state.feed.close() if hasattr(app.state, "feed") else None
    app.add_middleware(SecurityHeaders)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["X-API-Key", "Content-Type"])

    @app.exception_handler(redis.RedisError)
    async def redis_down(request: Request, exc: redis.RedisError) -> JSONResponse:
        detail = describe_redis_error(exc)
        log.warning("redis error serving %s: %s", request.url.path, detail)
        return JSONResponse({"detail": f"redis unavailable: {detail}"}, status_code=503)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # Starlette answers unhandled errors outside every middleware: the security headers are added here
        return JSONResponse({"detail": "internal server error (logged)"}, status_code=500,
                            headers=headers_for(request.url.path))

    @app.exception_handler(UploadRejected)
    async def rejected(request: Request, exc: UploadRejected) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=getattr(exc, "headers", None))

    app.include_router(_open_api())
    app.include_router(_keyed_api(settings), dependencies=[Depends(_api_key_check(settings))])
    app.include_router(camera_api.router(settings), dependencies=[Depends(_api_key_check(settings))])
    app.include_router(review.router(settings), dependencies=[Depends(_api_key_check(settings))])
    app.include_router(zones_api.router(settings), dependencies=[Depends(_api_key_check(settings))])
    app.include_router(history_api.router(), dependencies=[Depends(_api_key_check(settings))])
    app.include_router(phone_api.keyed_router(settings), dependencies=[Depends(_api_key_check(settings))])
    app.include_router(phone_api.open_router(settings))
    app.include_router(phone_api.pages())

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        body = await anyio.to_thread.run_sync(generate_latest, request.app.state.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    for path, page in PAGES.items():
        app.add_api_route(path, _page(page), include_in_schema=False, methods=["GET"])
    app.add_api_route("/cameras/{camera}", _page("camera.html"), include_in_schema=False, methods=["GET"])
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _page(name: str):
    async def page() -> FileResponse:
        return FileResponse(STATIC / name, headers={"Cache-Control": "no-cache"})

    return page


def _api_key_check(settings: DashboardSettings):
    """The X-API-Key check; `?api_key=` counts only on routes a browser loads without headers (QUERY_KEY_ROUTES)."""
    header = APIKeyHeader(name="X-API-Key", auto_error=False)
    query = APIKeyQuery(name="api_key", auto_error=False)

    async def check(request: Request, from_header: str | None = Depends(header),
                    from_query: str | None = Depends(query)) -> None:
        if settings.api_key is None:
            return
        given = from_header or ""
        if not given and getattr(request.scope.get("route"), "name", None) in QUERY_KEY_ROUTES:
            given = from_query or ""
        if not secrets.compare_digest(given.encode(), settings.api_key.encode()):
            raise HTTPException(401, "missing or wrong API key (send it as the X-API-Key header)")

    return check


def _open_api() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["service"])

    @router.get("/health", response_model=Health)
    async def health(request: Request) -> dict:
        """Liveness plus Redis reachability (the photo API works without Redis)."""
        try:
            redis_ok = bool(await request.app.state.redis.ping())
        except (redis.RedisError, OSError):
            redis_ok = False
        return {"status": "ok" if redis_ok else "degraded", "redis": redis_ok}

    @router.get("/labels", response_model=Labels)
    async def labels() -> dict:
        """Mask labels and the colour each is drawn in."""
        return {"labels": list(MASK_LABELS), "colors": {label: label_color_hex(label) for label in LABEL_COLORS_BGR}}

    return router


def _keyed_api(settings: DashboardSettings) -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    @router.post("/detect", tags=["photos"], responses={200: {"model": FrameResult}, **UPLOAD_ERRORS},
                 openapi_extra={"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
            "file": {"type": "string", "format": "binary"}}}}}}})
    async def detect(request: Request) -> Response:
        """Faces in one uploaded image: the same JSON object as one line of `maskwatch detect --json`.

        The image is processed in memory and never stored or logged.
        """
        app = request.app
        declared = request.headers.get("content-length", "")
        declared_bytes = int(declared) if declared.isdigit() and len(declared) < 16 else None
        async with app.state.uploads.admit(declared_bytes) as place:  # full: 503 before the body is read
            with anyio.move_on_after(settings.upload_read_timeout) as reading:
                filename, data = await read_upload(request, settings.max_upload_bytes)
            if reading.cancelled_caught:
                raise UploadRejected(408, f"upload too slow: the body did not arrive within "
                                          f"{settings.upload_read_timeout:g} s")
            if not data:
                raise UploadRejected(400, "empty upload: the file field holds no bytes")
            header, pixels = check_image(data, settings.max_pixels, settings.photo_pixels)  # the header alone
            try:
                async with place.turn(pixels):
                    result = await anyio.to_thread.run_sync(app.state.photos.detect, data, filename, header)
            except ModelError as exc:
                raise HTTPException(503, f"no model available: {exc}") from None
        return Response(result.to_json(), media_type="application/json")

    return router
