"""CSV rows of every history view: counts, people, alerts, entries (written by services.dashboard.export.to_csv)."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

from shared.history.periods import local_iso
from shared.schemas import MASK_LABELS

COUNT_COLUMNS = ("period_start", "period_end", "period", "cameras", "line", "direction", "total", *MASK_LABELS,
                 "masked_share")
PEOPLE_COLUMNS = ("id", "camera", "track_id", "label", "first_seen", "last_seen", "first_seen_iso", "frames", "zones",
                  "static")
ALERT_COLUMNS = ("id", "camera", "kind", "time", "time_iso", "event")
ENTRY_COLUMNS = ("camera", "line", "period_start", "period_end", "period", "in_total",
                 *(f"in_{label}" for label in MASK_LABELS), "out_total", *(f"out_{label}" for label in MASK_LABELS),
                 "masked_share")


def _share(value: float | None) -> str | float:
    return "" if value is None else value


def count_rows(counts: dict, zone: ZoneInfo) -> list[dict]:
    """One row per period of a /history/counts answer."""
    cameras = " ".join(counts["cameras"] or [])
    return [{"period_start": local_iso(p["start"], zone), "period_end": local_iso(p["end"], zone),
             "period": counts["period"], "cameras": cameras, "line": counts["line"] or "",
             "direction": counts["direction"] or "", "total": p["total"], **p["counts"],
             "masked_share": _share(p["masked_share"])} for p in counts["series"]]


def people_rows(items: list[dict], zone: ZoneInfo) -> list[dict]:
    """One row per person."""
    return [{**p, "first_seen_iso": local_iso(p["first_seen"], zone), "zones": " ".join(p["zones"]),
             "static": str(p["static"]).lower()} for p in items]


def alert_rows(items: list[dict], zone: ZoneInfo) -> list[dict]:
    """One row per alert, its body as JSON."""
    return [{**a, "time_iso": local_iso(a["time"], zone), "event": json.dumps(a["event"], separators=(",", ":"))}
            for a in items]


def entry_rows(entries: dict, zone: ZoneInfo) -> list[dict]:
    """One row per line and period."""
    out = []
    for line in entries["lines"]:
        for p in line["series"]:
            out.append({"camera": line["camera"], "line": line["line"], "period_start": local_iso(p["start"], zone),
                        "period_end": local_iso(p["end"], zone), "period": entries["period"],
                        "in_total": p["in_total"], **{f"in_{k}": v for k, v in p["in"].items()},
                        "out_total": p["out_total"], **{f"out_{k}": v for k, v in p["out"].items()},
                        "masked_share": _share(p["masked_share"])})
    return out


def stats_rows(camera: str, counts: dict) -> list[dict]:
    """A /history/counts answer as rows of the camera stats.csv (people columns; face columns left empty:
    the history keeps people, not per-frame faces)."""
    return [{"camera": camera, "period_start": p["start"], "period_end": p["end"], "people": p["total"],
             **p["counts"], "compliance_rate": _share(p["masked_share"])} for p in counts["series"]]
