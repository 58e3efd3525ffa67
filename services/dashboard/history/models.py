"""Response models of /api/v1/history (what /openapi.json documents). LabelCounts always has the three labels."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, create_model

from shared.schemas import PersonRecord

LabelCounts = dict[str, int]


class Summary(BaseModel):
    """People per label, their total and the share wearing a mask correctly."""

    counts: LabelCounts
    total: int
    masked_share: float | None = Field(description="with_mask / total; null without people")


class CountPoint(Summary):
    """One period of a series."""

    start: int = Field(description="period start, unix seconds")
    end: int
    name: str = Field(description='"2026-12-01 09:00", "2026-12-01", "2026-W49" or "2026-12" (history timezone)')


class CameraSummary(Summary):
    """One camera's totals."""

    camera: str


class Counts(BaseModel):
    """People (or crossings of one line) per period and label."""

    period: str
    timezone: str
    from_: int = Field(alias="from", description="start of the first period")
    to: int = Field(description="end of the last period")
    cameras: list[str] | None = Field(description="null: every camera")
    line: str | None
    direction: str | None
    series: list[CountPoint]
    totals: Summary
    by_camera: list[CameraSummary]


class CrossingSummary(BaseModel):
    """Entries (in) and exits (out) per label; masked_share of the entries."""

    in_: LabelCounts = Field(alias="in")
    out: LabelCounts
    in_total: int
    out_total: int
    masked_share: float | None


class CrossingPoint(CrossingSummary):
    """One period of a line's series."""

    start: int
    end: int
    name: str


class LineSeries(BaseModel):
    """One counting line of one camera."""

    camera: str
    line: str
    series: list[CrossingPoint]
    totals: CrossingSummary


class Entries(BaseModel):
    """Crossings per line and period."""

    period: str
    timezone: str
    from_: int = Field(alias="from")
    to: int
    lines: list[LineSeries]


# One recorded person: the PersonRecord the tracker published (less its type and inline thumbnail), with its row
# id and the URL of its face thumbnail. Derived from the record, so the two never drift apart.
Person = create_model(
    "Person", __doc__="One recorded person.",
    id=(int, ...),
    **{name: (field.annotation, field) for name, field in PersonRecord.model_fields.items()
       if name not in ("type", "thumbnail", "static")},
    static=(bool, Field(description="a face that barely moved (poster, screen): never counted")),
    thumbnail_url=(str | None, Field(description="the face JPEG; null once pruned or when there was none")),
)


class PeoplePage(BaseModel):
    """One page of people, newest first by default."""

    total: int
    offset: int
    limit: int
    items: list[Person]


class Alert(BaseModel):
    """One recorded alert."""

    id: int
    camera: str
    kind: str
    time: float
    event: dict[str, Any] = Field(description="the alert body as in /api/v1/alerts")


class AlertsPage(BaseModel):
    """One page of alerts, newest first."""

    total: int
    offset: int
    limit: int
    items: list[Alert]


class Gap(BaseModel):
    """A stretch of the results stream trimmed before the recorder read it (its people are missing)."""

    after: str
    lost_before: str
    from_: float = Field(alias="from")
    to: float
    noticed_at: float


class RecorderState(BaseModel):
    """Where the recorder stands."""

    position: str | None = Field(description="the last results-stream entry recorded")
    owner: str | None = Field(description="the recorder replica holding the writer lease")
    updated_at: float | None
    lag_s: float | None = Field(description="time between the newest results entry and the last one recorded "
                                "(0: caught up; null: unknown, e.g. Redis not reachable)")


class Line(BaseModel):
    """A counting line with recorded crossings."""

    camera: str
    line: str


class Status(BaseModel):
    """The history database and the recorder."""

    backend: str
    database: str = Field(description="the URL, password masked")
    timezone: str
    schema_revision: str | None
    recorder: RecorderState
    cameras: list[str]
    lines: list[Line]
    oldest: float | None
    newest: float | None
    retention: dict[str, int]
    gaps: list[Gap]


class PreviousSummary(Summary):
    """The span before, for comparison."""

    from_: int = Field(alias="from")
    to: int


class HourOfDay(Summary):
    """People in one hour of the day, summed over the span."""

    hour: int


class WorstHour(CountPoint):
    """An hour with many unmasked people."""

    unmasked: int


class ReportAlerts(BaseModel):
    """Alerts of the span."""

    total: int
    by_kind: dict[str, int]
    items: list[Alert]


class LineTotals(CrossingSummary):
    """One line's totals over the span."""

    camera: str
    line: str


class Report(BaseModel):
    """The printable report of a day, week or month."""

    span: str
    timezone: str
    from_: int = Field(alias="from")
    to: int
    name: str
    cameras: list[str] | None
    generated_at: float
    totals: Summary
    previous: PreviousSummary
    by_camera: list[CameraSummary]
    series: list[CountPoint] = Field(description="hours of a day, days of a week or month")
    hourly_profile: list[HourOfDay]
    worst_hours: list[WorstHour]
    alerts: ReportAlerts
    entries: list[LineTotals]
    gaps: list[Gap]
