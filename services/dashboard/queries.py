"""Async reads the API and the live feed share: camera overviews, window stats, events, frames."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

import redis.asyncio as aioredis

from services.dashboard import cameras, stats
from shared import keys
from shared.alert_log import ALERTS_LIST, MAX_ALERTS
from shared.alerts import MAX_GROUP_THUMBNAILS
from shared.schemas import FrameResult
from shared.streams import decode_str


async def camera_list(redis: aioredis.Redis, configured: Iterable[str]) -> list[str]:
    """Ids of every configured or registered camera."""
    return cameras.camera_ids(configured, await redis.smembers(keys.CAMERAS_SET))


async def window_stats(redis: aioredis.Redis, camera: str, window: stats.Window, now: float | None = None
                       ) -> stats.WindowStats:
    """Counts of one camera over one window (canonical window name)."""
    return await _summed(redis, window, stats.window_keys(camera, window, time.time() if now is None else now))


async def today_stats(redis: aioredis.Redis, camera: str, now: float | None = None) -> stats.WindowStats:
    """Counts of one camera since local midnight (hour buckets; the day window's series)."""
    return await _summed(redis, stats.Window.DAY, stats.today_keys(camera, time.time() if now is None else now))


async def _summed(redis: aioredis.Redis, window: stats.Window, keyed: list[tuple[int, str]]) -> stats.WindowStats:
    pipe = redis.pipeline(transaction=False)
    for _, key in keyed:
        pipe.hgetall(key)
    replies = await pipe.execute()
    return stats.summarize(window, [(start, raw) for (start, _), raw in zip(keyed, replies)])


async def overview(redis: aioredis.Redis, camera: str, stale_after: float) -> dict:
    """A camera's state, people and faces per label and compliance over each window (what a tile shows)."""
    pipe = redis.pipeline(transaction=False)
    pipe.hgetall(keys.camera_state(camera))
    pipe.get(keys.latest_result(camera))
    pipe.hget(keys.stats_totals(camera), "model_version")
    pipe.get(keys.camera_geometry(camera))
    pipe.get(keys.zone_occupancy(camera))
    state_raw, latest_raw, model, geometry_raw, occupancy_raw = await pipe.execute()
    geometry = _json_value(geometry_raw, dict)
    state = cameras.parse_state(camera, state_raw, stale_after=stale_after)
    latest = cameras.parse_latest(latest_raw)
    windows = {w: await window_stats(redis, camera, w) for w in stats.WINDOWS}
    entry_windows = {**windows, "today": await today_stats(redis, camera)}
    return {
        **state.as_dict(),
        "model_version": decode_str(model) if model else None,
        "latest": _latest_summary(latest),
        "people": {w: s.people for w, s in windows.items()},
        "people_compliance": {w: s.people_compliance for w, s in windows.items()},
        "compliance": {w: s.compliance for w, s in windows.items()},
        "faces": {w: s.faces for w, s in windows.items()},
        "chart": [point["faces"] for point in windows[stats.Window.HOUR].series],  # faces per label per minute
        "has_lines": bool(geometry.get("lines")),
        "entries": {w: s.entries for w, s in entry_windows.items()},
        "exits": {w: s.exits for w, s in entry_windows.items()},
        "entries_compliance": {w: s.entries_compliance for w, s in entry_windows.items()},
        "occupancy": occupancy_of(occupancy_raw),
    }


async def entries(redis: aioredis.Redis, camera: str, window: stats.Window) -> dict:
    """Entries and exits per line, direction and label over one window, with the per-bucket series."""
    summary = await window_stats(redis, camera, window)
    return {"camera": camera, "window": window, "entries": summary.entries, "exits": summary.exits,
            "entries_compliance": summary.entries_compliance, "lines": summary.lines,
            "series": [{"start": point["start"], "lines": point["lines"]} for point in summary.series]}


async def zones(redis: aioredis.Redis, camera: str) -> dict:
    """The zones and lines the tracker applies to a camera, each zone with its occupancy and people per window."""
    pipe = redis.pipeline(transaction=False)
    pipe.get(keys.camera_geometry(camera))
    pipe.get(keys.zone_occupancy(camera))
    geometry_raw, occupancy_raw = await pipe.execute()
    geometry, occupancy = _json_value(geometry_raw, dict), _json_value(occupancy_raw, dict)
    present = occupancy_of(occupancy_raw)
    windows = {w: await window_stats(redis, camera, w) for w in stats.WINDOWS}
    zone_list = [z for z in geometry.get("zones", []) if isinstance(z, dict) and isinstance(z.get("name"), str)]
    return {
        "camera": camera,
        "zones": [{**z, "occupancy": None if z.get("ignore") else present.get(z["name"], 0),
                   "people": {w: s.zones.get(z["name"], {}) for w, s in windows.items()}} for z in zone_list],
        "lines": _lines(geometry),
        "problem": geometry.get("problem"),
        "applied_at": geometry.get("applied_at"),
        "occupancy_time": occupancy.get("time"),
    }


async def line_names(redis: aioredis.Redis, camera: str) -> list[str]:
    """The names of the counting lines the tracker applies to a camera."""
    geometry = _json_value(await redis.get(keys.camera_geometry(camera)), dict)
    return [line["name"] for line in _lines(geometry) if isinstance(line.get("name"), str)]


def _lines(geometry: dict) -> list[dict]:
    lines = geometry.get("lines")
    return [line for line in lines if isinstance(line, dict)] if isinstance(lines, list) else []


async def static_faces(redis: aioredis.Redis, camera: str) -> list[dict]:
    """The camera's static face spots (posters, screens), each with a suggested ignore zone."""
    found = _json_value(await redis.get(keys.static_faces(camera)), list)
    return [spot for spot in found if isinstance(spot, dict)]


def _json_value(raw: bytes | str | None, kind: type) -> dict | list:
    """A JSON value stored by the tracker, or an empty one of `kind` when absent or unreadable."""
    try:
        value = json.loads(raw) if raw else kind()
    except ValueError:
        return kind()
    return value if isinstance(value, kind) else kind()


def occupancy_of(raw: bytes | str | None) -> dict[str, int]:
    """zone -> people in it now, from the tracker's occupancy key (empty when absent or unreadable)."""
    zones = _json_value(raw, dict).get("zones")
    return {str(k): int(v) for k, v in zones.items() if isinstance(v, int)} if isinstance(zones, dict) else {}


async def alerts(redis: aioredis.Redis, limit: int = 50, camera: str | None = None) -> list[dict]:
    """The newest alert events (of one camera, or all), newest first, with their people's face thumbnails."""
    found = await _json_list(redis, ALERTS_LIST, MAX_ALERTS if camera else limit)
    found = [event for event in found if camera is None or event.get("camera") == camera][:limit]
    wanting = {event.get("camera") for event in found if _wants_thumbnails(event)}
    thumbnails: dict[tuple[str, int], str] = {}
    for cam in sorted(c for c in wanting if isinstance(c, str)):
        thumbnails.update(_thumbnails(cam, await _json_list(redis, keys.camera_events(cam), stats.EVENTS_KEPT)))
    return [_with_thumbnails(event, thumbnails) for event in found]


async def events(redis: aioredis.Redis, camera: str, limit: int = 50) -> list[dict]:
    """A camera's newest events and alerts together, newest first."""
    merged = await _json_list(redis, keys.camera_events(camera), limit) + await alerts(redis, limit, camera)
    return sorted(merged, key=lambda event: event.get("time") or 0, reverse=True)[:limit]


def _wants_thumbnails(event: dict) -> bool:
    return (event.get("kind") == "person" and not event.get("thumbnail")) or \
        (event.get("kind") == "people" and not event.get("thumbnails"))


def _thumbnails(camera: str, camera_events: list[dict]) -> dict[tuple[str, int], str]:
    """(camera, track id) -> face thumbnail of the person events that have one."""
    return {(camera, e["track_id"]): e["thumbnail"] for e in camera_events
            if e.get("type") == "person" and isinstance(e.get("track_id"), int) and isinstance(e.get("thumbnail"), str)}


def _with_thumbnails(event: dict, thumbnails: dict[tuple[str, int], str]) -> dict:
    """An alert with the thumbnails of its people filled in from their person events (alerts raised from
    frames come before the person's record, which brings the thumbnail)."""
    if not _wants_thumbnails(event):
        return event
    camera = event.get("camera")
    if event.get("kind") == "person":
        found = thumbnails.get((camera, event.get("track_id")))
        return {**event, "thumbnail": found} if found else event
    ids = event.get("track_ids") if isinstance(event.get("track_ids"), list) else []
    found = [thumbnails[(camera, tid)] for tid in ids if (camera, tid) in thumbnails][:MAX_GROUP_THUMBNAILS]
    return {**event, "thumbnails": found} if found else event


async def _json_list(redis: aioredis.Redis, key: str, limit: int) -> list[dict]:
    out = []
    for item in await redis.lrange(key, 0, max(0, limit - 1)):
        try:
            value = json.loads(item)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


async def latest_frame(redis: aioredis.Redis, camera: str,
                       frames: aioredis.Redis | None = None) -> tuple[FrameResult | None, bytes | None]:
    """The latest result and the JPEG of exactly that frame, read together in one transaction.

    With a separate frames Redis (`frames`) the JPEG is read from there just after: rarely, the newer frame's.
    """
    if frames is not None and frames is not redis:
        result_raw = await redis.get(keys.latest_result(camera))
        return cameras.parse_latest(result_raw), await frames.get(keys.latest_jpeg(camera))
    pipe = redis.pipeline(transaction=True)
    pipe.get(keys.latest_result(camera))
    pipe.get(keys.latest_jpeg(camera))
    result_raw, jpeg = await pipe.execute()
    return cameras.parse_latest(result_raw), jpeg


def _latest_summary(result: FrameResult | None) -> dict | None:
    if result is None:
        return None
    return {"frame": result.frame, "captured_at": result.captured_at, "processed_at": result.processed_at,
            "counts": cameras.label_counts(result), "faces": len(result.faces)}
