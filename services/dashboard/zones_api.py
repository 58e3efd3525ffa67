"""Zones and counting lines of a camera: read from the config file, and saved back by the zone editor."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from services.dashboard import queries
from services.dashboard.settings import DashboardSettings
from services.dashboard.zones_file import CameraZones, ZonesFileError, read_zones, save_zones, writable_problem

MAX_ENTRIES = 100  # zones or lines in one save; the config loader checks each entry


class ZonesState(BaseModel):
    """A camera's zones and lines as the config file has them, and whether the editor can save them."""

    camera: str
    zones: list[dict[str, Any]] = Field(description="the camera's `zones:` entries (name, points 0..1, ignore)")
    lines: list[dict[str, Any]] = Field(description="the camera's `lines:` entries (name, two points 0..1, in)")
    version: str | None = Field(description="fingerprint of the config file read; send it back with a save")
    writable: bool = Field(description="a save can work: a config file the dashboard may write and an API key set")
    why_not: str | None = Field(description="why saving is off, when it is")
    problem: str | None = Field(None, description="the file's zones or lines of this camera do not validate "
                                "(the services run without them until fixed)")


class ZonesUpdate(BaseModel):
    """New zones and lines of one camera; they replace the camera's `zones:` and `lines:` in the config file."""

    zones: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_ENTRIES)
    lines: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_ENTRIES)
    version: str | None = Field(None, max_length=64, description="the `version` the editor loaded: a save over a "
                                "file changed since then is refused (409)")


ERRORS: dict[int | str, dict] = {
    403: {"description": "saving is off: the dashboard has no API key configured"},
    404: {"description": "unknown camera"},
    409: {"description": "no writable config file, the file changed since `version`, or it is unusable"},
    422: {"description": "the zones or lines do not validate (one line naming the camera and the entry)"},
}


def router(settings: DashboardSettings) -> APIRouter:
    """The zone routes; the app adds the API key dependency (the save also needs a key to be configured)."""
    api = APIRouter(prefix="/api/v1", tags=["zones"])

    def why_not_writable() -> str | None:
        if settings.api_key is None:
            return "saving needs an API key configured on the dashboard (MASKWATCH_API_KEY or --api-key-file)"
        return writable_problem(settings.config_path)

    def state(found: CameraZones | None, camera: str) -> dict:
        why_not = why_not_writable()
        if found is None:
            return {"camera": camera, "zones": [], "lines": [], "version": None, "writable": False,
                    "why_not": why_not or "the camera is not in the config file"}
        return {"camera": camera, "zones": found.zones, "lines": found.lines, "version": found.version,
                "writable": why_not is None, "why_not": why_not, "problem": found.problem}

    @api.get("/cameras/{camera}/zones/config", response_model=ZonesState, responses=ERRORS)
    async def camera_zones(request: Request, camera: str) -> dict:
        """The camera's zones and counting lines from the config file (empty lists when it has none)."""
        if settings.config_path is None:
            if camera not in await queries.camera_list(request.app.state.redis, settings.cameras()):
                raise HTTPException(404, f"unknown camera {camera!r}")
            return state(None, camera)
        try:
            found = await anyio.to_thread.run_sync(read_zones, settings.config_path, camera)
        except ZonesFileError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return state(found, camera)

    @api.put("/cameras/{camera}/zones/config", response_model=ZonesState, responses=ERRORS)
    async def save_camera_zones(camera: str, update: ZonesUpdate) -> dict:
        """Replace the camera's zones and lines in the config file; the rest of the file stays as it was.

        Needs an API key (configured and sent). The running services pick the edit up like any other edit
        of the file (hot reload).
        """
        if settings.api_key is None:
            raise HTTPException(403, why_not_writable())
        problem = writable_problem(settings.config_path)
        if problem:
            raise HTTPException(409, problem)
        try:
            saved = await anyio.to_thread.run_sync(save_zones, settings.config_path, camera, update.zones,
                                                   update.lines, update.version)
        except ZonesFileError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return state(saved, camera)

    return api
