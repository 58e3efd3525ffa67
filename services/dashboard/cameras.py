"""What the dashboard knows about cameras: ids, capture state and latest result, read from Redis."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shared.config import is_camera_id
from shared.schemas import MASK_LABELS, CameraStatus, FrameResult
from shared.streams import decode_str

NUMERIC_STATE_FIELDS: tuple[str, ...] = (
    "fps", "last_frame_time", "frames_captured", "frames_dropped", "frames_expired", "frames_processed",
    "frames_skipped", "frames_unchanged",
)


@dataclass
class CameraState:
    """One camera's capture state hash, parsed; `up` means live with a recent frame."""

    id: str
    status: CameraStatus
    url: str
    error: str
    counters: dict[str, float]
    up: bool

    def as_dict(self) -> dict:
        """JSON form for the API."""
        return {"id": self.id, "status": self.status, "up": self.up, "url": self.url, "error": self.error,
                **self.counters}


def camera_ids(configured: Iterable[str], from_redis: Iterable[bytes | str]) -> list[str]:
    """Sorted union of the cameras in the config file and in the Redis cameras set (usable ids only)."""
    return sorted(cam for cam in {*configured, *(decode_str(c) for c in from_redis)} if is_camera_id(cam))


def parse_state(camera: str, raw: Mapping, now: float | None = None, stale_after: float = 15.0) -> CameraState:
    """Parse a camera state hash (bytes or str values); missing hash -> status "unknown"."""
    values = {decode_str(k): decode_str(v) for k, v in raw.items()}
    counters: dict[str, float] = {}
    for name in NUMERIC_STATE_FIELDS:
        try:
            counters[name] = float(values[name])
        except (KeyError, ValueError):
            counters[name] = 0.0
    try:
        status = CameraStatus(values.get("status") or CameraStatus.UNKNOWN)
    except ValueError:
        status = CameraStatus.UNKNOWN
    now = time.time() if now is None else now
    up = status == CameraStatus.LIVE and now - counters["last_frame_time"] <= stale_after
    return CameraState(id=camera, status=status, url=values.get("url", ""), error=values.get("error", ""),
                       counters=counters, up=up)


def parse_latest(raw: bytes | str | None) -> FrameResult | None:
    """The latest FrameResult of a camera, None when absent or unreadable."""
    if not raw:
        return None
    try:
        return FrameResult.model_validate_json(raw)
    except ValueError:
        return None


def label_counts(result: FrameResult | None) -> dict[str, int]:
    """Faces per label in one result (all mask labels present, zero when absent)."""
    counts = dict.fromkeys(MASK_LABELS, 0)
    for face in result.faces if result else []:
        label = face.track_label or face.label
        counts[label] = counts.get(label, 0) + 1
    return counts

