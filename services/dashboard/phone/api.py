"""Routes of phone cameras: make a pairing (QR code), pair, the stream WebSocket, the phone page and its app files."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import redis.asyncio as aioredis
from fastapi import APIRouter, HTTPException, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field

from services.dashboard.phone import pairing, stream
from services.dashboard.results import wait_or_stop
from services.dashboard.settings import DashboardSettings
from shared.streams import REDIS_ERRORS

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent.parent / "static"
PAGE_PATH = "/phone/"


class PairingOut(BaseModel):
    """A new pairing: open `url` on the phone (the QR code holds it) before `expires_at`."""

    url: str
    expires_at: float
    expires_in_s: int
    qr_svg: str = Field(description="the QR code of `url`, an SVG document")


class PairIn(BaseModel):
    """What the phone page sends to pair: the token from the link and the phone's name."""

    token: str = Field(max_length=100)
    name: str = Field(max_length=64)


class PairOut(BaseModel):
    """The phone's camera and the session secret its stream WebSocket presents (kept by the phone page)."""

    camera: str
    secret: str
    fps: float
    max_side: int
    jpeg_quality: int


def keyed_router(settings: DashboardSettings) -> APIRouter:
    """Routes behind the API key: making a pairing."""
    router = APIRouter(prefix="/api/v1/phone", tags=["phone cameras"])

    @router.post("/pairings", response_model=PairingOut, status_code=201,
                 responses={403: {"description": "phone cameras are turned off"}})
    async def create_pairing(request: Request) -> dict:
        """A single-use link (and its QR code) that pairs one phone as a camera; it expires soon."""
        options = settings.phone
        if not options.enabled:
            raise HTTPException(403, "phone cameras are turned off (dashboard.phone.enabled)")
        made = await pairing.create(request.app.state.redis, options)
        base = (options.public_url or str(request.base_url)).rstrip("/")
        url = f"{base}{PAGE_PATH}#t={made.token}"  # in the fragment: never sent to a server, never in a log
        return {"url": url, "expires_at": made.expires_at, "expires_in_s": options.pairing_ttl_s,
                "qr_svg": pairing.qr_svg(url)}

    return router


def open_router(settings: DashboardSettings) -> APIRouter:
    """Routes a phone uses without the API key: the pairing token or session secret is its credential."""
    router = APIRouter(prefix="/api/v1/phone", tags=["phone cameras"])

    @router.post("/pair", response_model=PairOut, responses={
        400: {"description": "unusable name"}, 401: {"description": "token unknown, expired or already used"},
        409: {"description": "the name is taken"}, 429: {"description": "too many phone cameras"}})
    async def pair(body: PairIn, request: Request) -> dict:
        """Spend a pairing token: the phone becomes camera `phone-<name>`."""
        try:
            camera, secret = await pairing.pair(request.app.state.redis, body.token, body.name,
                                                settings.cameras(), settings.phone)
        except pairing.PairingError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        options = settings.phone
        return {"camera": camera, "secret": secret, "fps": options.fps, "max_side": options.max_side,
                "jpeg_quality": options.jpeg_quality}

    @router.websocket("/stream")
    async def phone_stream(ws: WebSocket) -> None:
        await stream.serve(ws, settings.phone)

    return router


def pages() -> APIRouter:
    """The phone page, its web app manifest and service worker (scope /phone/)."""
    router = APIRouter(include_in_schema=False)
    files = {"": ("phone.html", None), "manifest.webmanifest": ("phone.webmanifest", "application/manifest+json"),
             "sw.js": ("phone-sw.js", "text/javascript")}
    for name, (file, media_type) in files.items():
        router.add_api_route(PAGE_PATH + name, _file(file, media_type), methods=["GET"])
    router.add_api_route("/phone", _redirect, methods=["GET"])
    return router


def _file(name: str, media_type: str | None):
    async def serve_file() -> FileResponse:
        return FileResponse(STATIC / name, media_type=media_type, headers={"Cache-Control": "no-cache"})

    return serve_file


async def _redirect() -> JSONResponse:
    return JSONResponse({"detail": "moved"}, status_code=308, headers={"Location": PAGE_PATH})


async def prune_loop(redis: aioredis.Redis, stop: asyncio.Event, every_s: float = 30.0) -> None:
    """Forget expired phone cameras now and then (their keys expired; the camera sets keep no expiry)."""
    while not stop.is_set():
        try:
            gone = await pairing.prune(redis)
            if gone:
                log.info("phone cameras gone after dashboard.phone.stopped_ttl_s: %s", ", ".join(gone))
        except REDIS_ERRORS:
            pass  # the results reader reports outages
        await wait_or_stop(stop, every_s)
