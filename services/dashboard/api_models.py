"""Response models of the dashboard's JSON endpoints (what /openapi.json documents)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from services.dashboard.stats import Window
from shared.schemas import CameraStatus

LabelCounts = dict[str, int]
PerWindow = dict[str, float | None]


class LatestSummary(BaseModel):
    """The camera's latest processed frame, in short."""

    frame: int | None
    captured_at: float | None
    processed_at: float | None
    counts: LabelCounts = Field(description="faces per label in that frame")
    faces: int


class CameraOverview(BaseModel):
    """What a tile shows: capture state, people and faces per label and window, compliance, chart."""

    id: str
    status: CameraStatus
    up: bool = Field(description="live and a frame within the stale limit")
    url: str = Field(description="the camera URL without credentials")
    error: str
    fps: float
    last_frame_time: float
    frames_captured: float
    frames_dropped: float
    frames_processed: float
    frames_skipped: float
    model_version: str | None
    latest: LatestSummary | None
    people: dict[str, LabelCounts] = Field(description="tracked people per label, per window (1m, 1h, 1d)")
    people_compliance: PerWindow = Field(description="share of people with_mask per window; null without people")
    faces: dict[str, LabelCounts] = Field(description="faces per label per window, one per face per frame")
    compliance: PerWindow = Field(description="share of observed faces with_mask per window")
    chart: list[LabelCounts] = Field(description="faces per label in each minute of the last hour, oldest first")


class SeriesPoint(BaseModel):
    """One bucket of a window."""

    start: int = Field(description="bucket start, unix seconds")
    frames: int
    faces: LabelCounts
    people: LabelCounts
    compliance: float | None
    people_compliance: float | None


class CameraStats(BaseModel):
    """Counts of one camera over one rolling window."""

    camera: str
    window: Window
    frames: int
    faces: LabelCounts
    people: LabelCounts
    compliance: float | None = Field(description="share of observed faces with_mask")
    people_compliance: float | None = Field(description="share of people with_mask")
    series: list[SeriesPoint]


class Event(BaseModel):
    """A camera event or an alert; `type` is change, person or alert (alerts: `kind` person, people or
    unmasked_share). Person events and alerts may carry `thumbnail` (base64 JPEG of the face), grouped
    people alerts `thumbnails`."""

    model_config = ConfigDict(extra="allow")

    type: str
    time: float | None = None
    camera: str | None = None
    kind: str | None = None
    id: str | None = None
    track_id: int | None = None
    label: str | None = None
    thumbnail: str | None = None
    thumbnails: list[str] | None = None


class Health(BaseModel):
    """Liveness plus Redis reachability."""

    status: str = Field(description="ok or degraded")
    redis: bool


class Labels(BaseModel):
    """Mask labels and their drawing colours."""

    labels: list[str]
    colors: dict[str, str]


class ModelInfo(BaseModel):
    """Promoted model versions (or why one cannot be loaded) and each camera's version in use."""

    promoted: dict[str, dict]
    cameras: dict[str, str]
