"""CSV export of a camera's per-period people and face counts (the columns of `maskwatch detect --stats`)."""

from __future__ import annotations

import csv
import io
import re

from services.dashboard.stats import WINDOWS, Window, WindowStats
from shared.schemas import MASK_LABELS
from shared.stats import CSV_COLUMNS, compliance_rate

FACE_COLUMNS: tuple[str, ...] = ("frames", *(f"faces_{label}" for label in MASK_LABELS), "face_compliance_rate")
EXPORT_COLUMNS: tuple[str, ...] = (*CSV_COLUMNS, *FACE_COLUMNS)
ENTRY_EXPORT_COLUMNS: tuple[str, ...] = ("camera", "period_start", "period_end", "line", "direction", "people",
                                         *MASK_LABELS, "compliance_rate")
_DURATION_RE = re.compile(r"\s*(\d{1,9})\s*([smh]?)\s*")  # fullmatch; 9 digits: int() stays cheap
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600}


class PeriodError(ValueError):
    """A period that the window's buckets cannot be summed into."""


def period_seconds(raw: str | None, window: Window) -> int:
    """The period in seconds ("15m", "1h", "600"); default and smallest: the window's bucket size.

    Raises PeriodError unless it is a multiple of the bucket size no longer than the window.
    """
    resolution, count = WINDOWS[window]
    if raw is None or not raw.strip():
        return resolution.seconds
    match = _DURATION_RE.fullmatch(raw.lower())
    if not match:
        raise PeriodError(f"period {raw!r} is not a duration (use seconds, or e.g. 30s, 15m, 1h)")
    seconds = int(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds <= 0 or seconds % resolution.seconds or seconds > resolution.seconds * count:
        raise PeriodError(f"period {raw!r} must be a multiple of {resolution.seconds} s up to "
                          f"{resolution.seconds * count} s for window {window}")
    return seconds


def period_rows(camera: str, stats: WindowStats, period_s: int) -> list[dict]:
    """One row per period (aligned to multiples of `period_s` in unix time), oldest first, empty ones included."""
    rows: dict[int, dict] = {}
    for point in stats.series:
        start = point["start"] - point["start"] % period_s
        row = rows.setdefault(start, {"people": dict.fromkeys(MASK_LABELS, 0), "faces": dict.fromkeys(MASK_LABELS, 0),
                                      "frames": 0})
        row["frames"] += point["frames"]
        for kind in ("people", "faces"):
            for label, n in point[kind].items():
                row[kind][label] = row[kind].get(label, 0) + n
    out = []
    for start in sorted(rows):
        people, faces = rows[start]["people"], rows[start]["faces"]
        rate, face_rate = compliance_rate(people), compliance_rate(faces)
        out.append({
            "camera": camera, "period_start": start, "period_end": start + period_s,
            "people": sum(people.values()), **{label: people.get(label, 0) for label in MASK_LABELS},
            "compliance_rate": "" if rate is None else round(rate, 4),
            "frames": rows[start]["frames"], **{f"faces_{label}": faces.get(label, 0) for label in MASK_LABELS},
            "face_compliance_rate": "" if face_rate is None else round(face_rate, 4),
        })
    return out


def entry_rows(camera: str, stats: WindowStats, period_s: int, lines: list[str]) -> list[dict]:
    """One row per period, line and direction (in, out), oldest first, empty periods included: the people who
    crossed, per label, and the share with_mask. `lines` are the camera's lines (more appear if counted)."""
    periods: dict[int, dict[tuple[str, str], dict[str, int]]] = {}
    names = list(dict.fromkeys([*lines, *sorted(n for p in stats.series for n in p["lines"])]))
    for point in stats.series:
        row = periods.setdefault(point["start"] - point["start"] % period_s, {})
        for line, directions in point["lines"].items():
            for direction, labels in directions.items():
                counts = row.setdefault((line, direction), {})
                for label, n in labels.items():
                    counts[label] = counts.get(label, 0) + n
    out = []
    for start in sorted(periods):
        for line in names:
            for direction in ("in", "out"):
                counts = periods[start].get((line, direction), {})
                rate = compliance_rate(counts)
                out.append({"camera": camera, "period_start": start, "period_end": start + period_s, "line": line,
                            "direction": direction, "people": sum(counts.values()),
                            **{label: counts.get(label, 0) for label in MASK_LABELS},
                            "compliance_rate": "" if rate is None else round(rate, 4)})
    return out


def to_csv(rows: list[dict], columns: tuple[str, ...] = EXPORT_COLUMNS) -> str:
    """The rows as CSV text with a header line."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
