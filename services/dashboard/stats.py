"""Rolling counts in Redis: which buckets a result increments and how windows are summed.

Counts live in time buckets at three resolutions so any replica (or a restarted dashboard) reads
the same numbers: 10 s buckets for the last minute, 1 min buckets for the last hour and 1 h
buckets for the last day. A window is the newest N buckets, the current (partial) one included.

Hash fields: `frames`, `faces:<label>` (faces of static tracks left out), `people:<label>` (static faces
left out; they count in `people_static`), `zone:<zone>:people:<label>` (people seen in a zone) and
`line:<line>:<in|out>:<label>` (line crossings, in the bucket of the time they crossed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from shared import keys
from shared.schemas import MASK_LABELS, FrameResult, LineCrossing, PersonRecord
from shared.stats import compliance_rate
from shared.streams import decode_str


@dataclass(frozen=True)
class Resolution:
    """One bucket size and how long its buckets are kept."""

    name: str
    seconds: int
    ttl: int


SECONDS_10 = Resolution("s10", 10, 15 * 60)
MINUTE = Resolution("m", 60, 3 * 3600)
HOUR = Resolution("h", 3600, 3 * 86400)
RESOLUTIONS: tuple[Resolution, ...] = (SECONDS_10, MINUTE, HOUR)

class Window(StrEnum):
    """The rolling windows counts are summed over."""

    MINUTE = "1m"
    HOUR = "1h"
    DAY = "1d"


# window -> (resolution, number of buckets)
WINDOWS: dict[Window, tuple[Resolution, int]] = {
    Window.MINUTE: (SECONDS_10, 6), Window.HOUR: (MINUTE, 60), Window.DAY: (HOUR, 24),
}
WINDOW_ALIASES: dict[str, Window] = {
    "minute": Window.MINUTE, "60s": Window.MINUTE, "hour": Window.HOUR, "60m": Window.HOUR,
    "day": Window.DAY, "24h": Window.DAY,
}
LATENCY_BUCKETS: tuple[float, ...] = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
EVENTS_KEPT = 200


class WindowError(ValueError):
    """An unknown window name."""


def window_name(raw: str) -> Window:
    """The window (1m, 1h, 1d) for a name or alias; raises WindowError."""
    name = raw.strip().lower()
    try:
        return WINDOW_ALIASES.get(name) or Window(name)
    except ValueError:
        raise WindowError(f"unknown window {raw!r} (use one of {', '.join(WINDOWS)})") from None


def bucket_start(ts: float, resolution: Resolution) -> int:
    """Unix second at which the bucket holding `ts` starts."""
    return int(ts // resolution.seconds) * resolution.seconds


def window_keys(camera: str, window: Window, now: float) -> list[tuple[int, str]]:
    """(bucket start, key) of every bucket in a window, oldest first."""
    resolution, count = WINDOWS[window]
    newest = bucket_start(now, resolution)
    starts = [newest - i * resolution.seconds for i in range(count - 1, -1, -1)]
    return [(start, keys.stats_bucket(camera, resolution.name, start)) for start in starts]


def today_keys(camera: str, now: float) -> list[tuple[int, str]]:
    """(bucket start, key) of the hour buckets since local midnight (from the hour holding it), oldest first."""
    midnight = datetime.fromtimestamp(now).astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    first, newest = bucket_start(midnight.timestamp(), HOUR), bucket_start(now, HOUR)
    return [(start, keys.stats_bucket(camera, HOUR.name, start)) for start in range(first, newest + 1, HOUR.seconds)]


def result_increments(result: FrameResult | PersonRecord | LineCrossing) -> dict[str, float]:
    """The hash fields one result adds to its camera's buckets and totals."""
    if isinstance(result, LineCrossing):
        return {f"line:{result.line}:{result.direction}:{result.label}": 1}
    if isinstance(result, PersonRecord):
        if result.static:
            return {"people_static": 1}
        return {f"people:{result.label}": 1, **{f"zone:{zone}:people:{result.label}": 1 for zone in result.zones}}
    counts: dict[str, float] = {"frames": 1}
    for face in result.faces:
        if face.static:
            continue
        field_name = f"faces:{face.track_label or face.label}"
        counts[field_name] = counts.get(field_name, 0) + 1
    return counts


def latency_increments(result: FrameResult) -> dict[str, float]:
    """Histogram fields (non-cumulative bucket counts, sum, count) for capture-to-result latency."""
    if result.captured_at is None or result.processed_at is None:
        return {}
    latency = max(0.0, result.processed_at - result.captured_at)
    bucket = next((f"{b:g}" for b in LATENCY_BUCKETS if latency <= b), "+Inf")
    return {f"latency:{bucket}": 1, "latency_sum": latency, "latency_count": 1}


def event_time(result: FrameResult | PersonRecord | LineCrossing, fallback: float) -> float:
    """When a result is counted: capture time for frames, first sighting for people (as shared.stats does),
    the crossing's time for crossings."""
    if isinstance(result, LineCrossing):
        return result.time
    if isinstance(result, PersonRecord):
        return result.first_seen
    return result.captured_at or result.processed_at or fallback


@dataclass
class WindowStats:
    """Counts over one window and the per-bucket series behind them."""

    window: Window
    frames: int = 0
    faces: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MASK_LABELS, 0))
    people: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MASK_LABELS, 0))
    static_people: int = 0
    lines: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)  # line -> in/out -> label -> n
    zones: dict[str, dict[str, int]] = field(default_factory=dict)  # zone -> label -> people
    series: list[dict] = field(default_factory=list)

    @property
    def entries(self) -> dict[str, int]:
        """Entries per label, over every line."""
        return _direction_total(self.lines, "in")

    @property
    def exits(self) -> dict[str, int]:
        """Exits per label, over every line."""
        return _direction_total(self.lines, "out")

    @property
    def entries_compliance(self) -> float | None:
        """Share of entries wearing a mask correctly; None without entries."""
        return compliance_rate(self.entries)

    @property
    def compliance(self) -> float | None:
        """Share of observed faces (one per face per frame) wearing a mask correctly; None without faces."""
        return compliance_rate(self.faces)

    @property
    def people_compliance(self) -> float | None:
        """Share of tracked people wearing a mask correctly; None without people."""
        return compliance_rate(self.people)

    def as_dict(self) -> dict:
        """JSON form for the API and the page."""
        return {
            "window": self.window,
            "frames": self.frames,
            "faces": self.faces,
            "people": self.people,
            "compliance": self.compliance,
            "people_compliance": self.people_compliance,
            "static_people": self.static_people,
            "series": self.series,
        }


def summarize(window: Window, buckets: list[tuple[int, Mapping]]) -> WindowStats:
    """Sum (bucket start, hash contents) pairs into a WindowStats; hash values may be bytes or str."""
    stats = WindowStats(window=window)
    for start, raw in buckets:
        values = {decode_str(k): int(float(decode_str(v))) for k, v in raw.items()}
        faces = {k.split(":", 1)[1]: v for k, v in values.items() if k.startswith("faces:")}
        people = {k.split(":", 1)[1]: v for k, v in values.items() if k.startswith("people:")}
        lines, zones = line_counts(values), zone_counts(values)
        stats.frames += values.get("frames", 0)
        stats.static_people += values.get("people_static", 0)
        for label, n in faces.items():
            stats.faces[label] = stats.faces.get(label, 0) + n
        for label, n in people.items():
            stats.people[label] = stats.people.get(label, 0) + n
        for line, directions in lines.items():
            for direction, labels in directions.items():
                _add(stats.lines.setdefault(line, {"in": {}, "out": {}})[direction], labels)
        for zone, labels in zones.items():
            _add(stats.zones.setdefault(zone, {}), labels)
        stats.series.append({"start": start, "frames": values.get("frames", 0), "faces": faces, "people": people,
                             "compliance": compliance_rate(faces), "people_compliance": compliance_rate(people),
                             "lines": lines})
    return stats


def line_counts(values: Mapping[str, int]) -> dict[str, dict[str, dict[str, int]]]:
    """line -> "in"/"out" -> label -> crossings, from hash fields `line:<line>:<direction>:<label>`."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for key, n in values.items():
        if key.startswith("line:"):
            line, direction, label = key[5:].rsplit(":", 2)
            if direction in ("in", "out"):
                labels = out.setdefault(line, {"in": {}, "out": {}})[direction]
                labels[label] = labels.get(label, 0) + int(n)
    return out


def zone_counts(values: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """zone -> label -> people, from hash fields `zone:<zone>:people:<label>`."""
    out: dict[str, dict[str, int]] = {}
    for key, n in values.items():
        if key.startswith("zone:") and ":people:" in key:
            zone, label = key[5:].rsplit(":people:", 1)
            out.setdefault(zone, {})[label] = out.get(zone, {}).get(label, 0) + int(n)
    return out


def _add(into: dict[str, int], counts: Mapping[str, int]) -> None:
    for label, n in counts.items():
        into[label] = into.get(label, 0) + n


def _direction_total(lines: Mapping[str, Mapping[str, Mapping[str, int]]], direction: str) -> dict[str, int]:
    total = dict.fromkeys(MASK_LABELS, 0)
    for directions in lines.values():
        _add(total, directions.get(direction, {}))
    return total

