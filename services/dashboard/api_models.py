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
    has_lines: bool = Field(False, description="the camera has counting lines (tiles lead with entries)")
    entries: dict[str, LabelCounts] = Field(default_factory=dict, description="entries per label per window "
                                            "(1m, 1h, 1d, and today: since local midnight), over every line")
    exits: dict[str, LabelCounts] = Field(default_factory=dict, description="exits per label per window")
    entries_compliance: PerWindow = Field(default_factory=dict, description="share of entries with_mask per "
                                          "window; null without entries")
    occupancy: LabelCounts = Field(default_factory=dict, description="people in each zone now (static faces "
                                   "left out)")


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
    static_people: int = Field(0, description="static faces (posters, screens) whose tracks ended: not people")
    series: list[SeriesPoint]


Directions = dict[str, LabelCounts]  # "in" / "out" -> label -> crossings


class EntriesPoint(BaseModel):
    """Crossings of one bucket."""

    start: int = Field(description="bucket start, unix seconds")
    lines: dict[str, Directions] = Field(description="line -> in/out -> label -> crossings")


class CameraEntries(BaseModel):
    """Entries and exits of one camera over one rolling window."""

    camera: str
    window: Window
    entries: LabelCounts = Field(description="entries per label, over every line")
    exits: LabelCounts = Field(description="exits per label, over every line")
    entries_compliance: float | None = Field(description="share of entries with_mask; null without entries")
    lines: dict[str, Directions] = Field(description="line -> in/out -> label -> crossings")
    series: list[EntriesPoint]


class ZoneInfo(BaseModel):
    """One zone as the tracker applies it, with its occupancy and people per window."""

    model_config = ConfigDict(populate_by_name=True)

    name: str
    points: list[list[float]] = Field(description="polygon, frame fractions 0..1")
    ignore: bool
    occupancy: int | None = Field(description="people in it now; null for an ignore zone")
    people: dict[str, LabelCounts] = Field(description="people seen in it per label, per window (1m, 1h, 1d)")


class LineInfo(BaseModel):
    """One counting line as the tracker applies it."""

    model_config = ConfigDict(populate_by_name=True)

    name: str
    points: list[list[float]] = Field(description="two points, frame fractions 0..1")
    in_: str = Field(alias="in", description="the entry side: up, down, left, right or a zone name")


class CameraZones(BaseModel):
    """A camera's zones and lines as its tracker applies them."""

    camera: str
    zones: list[ZoneInfo]
    lines: list[LineInfo]
    problem: str | None = Field(description="why the config's zones and lines are not applied (the previous "
                                "ones are), or null")
    applied_at: float | None = Field(description="when the tracker applied them (unix s); null before a tracker "
                                     "has the camera")
    occupancy_time: float | None = Field(description="time of the frame the occupancy is from")


class SuggestedZone(BaseModel):
    """An ignore zone around a static face, ready to append to the camera's `zones`."""

    name: str
    points: list[list[float]]
    ignore: bool


class StaticFace(BaseModel):
    """A spot where a face barely moved for longer than `tracker.static_after_s` (a poster, a screen)."""

    box: list[float] = Field(description="[x1, y1, x2, y2], frame fractions 0..1")
    first_seen: float
    last_seen: float
    track_id: int
    suggestion: SuggestedZone


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
