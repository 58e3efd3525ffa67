"""Compliance statistics per camera and period, counted over people (person records), not frames.

Public API:
- `StatsAccumulator(period_s, origin=0.0)`: `.add_person(record)` files a person under the period
  holding its `first_seen` (periods are [origin + k * period_s, origin + (k + 1) * period_s));
  `.observe(camera, t)` notes that a camera was watched at time `t`, so quiet periods get rows too;
  `.rows() -> list[StatsRow]` gives every period of every camera from the first to the last it was
  watched or saw someone in, empty periods included, in time order; `.write_csv(path)`.
- `StatsRow`: camera, period_start, period_end, people, one count per label, compliance_rate
  (share of people `with_mask`; None when the period has nobody); with counting lines also entries,
  exits, entries per label and the share of entries `with_mask`.
- `.add_crossing(crossing)`: count a line crossing (entry or exit) in the period of its time; with
  `lines=True` the CSV has the entry columns (`ENTRY_COLUMNS`) too. Static faces are never people.
- `compliance_rate(counts)`; `CSV_COLUMNS`, `ENTRY_COLUMNS`.
"""

from __future__ import annotations

import csv
import math
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel

from shared.schemas import COMPLIANT_LABELS, MASK_LABELS, LineCrossing, PersonRecord

CSV_COLUMNS: tuple[str, ...] = (
    "camera", "period_start", "period_end", "people", *MASK_LABELS, "compliance_rate",
)
ENTRY_COLUMNS: tuple[str, ...] = (
    "entries", "exits", *(f"entries_{label}" for label in MASK_LABELS), "entries_compliance_rate",
)


def compliance_rate(counts: Mapping[str, int]) -> float | None:
    """Share of people with a compliant label, or None when there are no people."""
    people = sum(counts.values())
    if not people:
        return None
    return sum(n for label, n in counts.items() if label in COMPLIANT_LABELS) / people


class StatsRow(BaseModel):
    """People counted in one period of one camera."""

    camera: str
    period_start: float
    period_end: float
    people: int
    with_mask: int = 0
    without_mask: int = 0
    mask_incorrect: int = 0
    compliance_rate: float | None = None
    entries: int = 0
    exits: int = 0
    entries_with_mask: int = 0
    entries_without_mask: int = 0
    entries_mask_incorrect: int = 0
    entries_compliance_rate: float | None = None


class StatsAccumulator:
    """Counts person records into fixed periods, per camera."""

    def __init__(self, period_s: float, origin: float = 0.0, lines: bool = False) -> None:
        if not period_s > 0 or not math.isfinite(period_s):
            raise ValueError(f"the statistics period must be a positive number of seconds, got {period_s}")
        self.period_s, self.origin = float(period_s), float(origin)
        self.lines = lines
        self._counts: dict[str, dict[int, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
        self._entries: dict[str, dict[int, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
        self._span: dict[str, tuple[int, int]] = {}

    def observe(self, camera: str, t: float) -> None:
        """Note that `camera` was watched at time `t` (its rows cover every period it was watched in)."""
        index = self._index(t)
        first, last = self._span.get(camera, (index, index))
        self._span[camera] = (min(first, index), max(last, index))

    def add_person(self, record: PersonRecord) -> None:
        """Count one person in the period where it was first seen (a static face is no person)."""
        self.observe(record.camera, record.first_seen)
        if not record.static:
            self._counts[record.camera][self._index(record.first_seen)][record.label] += 1

    def add_crossing(self, crossing: LineCrossing) -> None:
        """Count one entry (per label) or exit in the period of its time."""
        self.observe(crossing.camera, crossing.time)
        key = crossing.label if crossing.direction == "in" else "exit"
        self._entries[crossing.camera][self._index(crossing.time)][key] += 1

    def rows(self) -> list[StatsRow]:
        """One row per camera and period, empty periods included, ordered by period then camera."""
        rows = []
        for camera, (first, last) in self._span.items():
            periods, entries = self._counts[camera], self._entries[camera]
            for index in range(first, last + 1):
                counts = periods.get(index, Counter())
                crossed = entries.get(index, Counter())
                entered = {label: crossed.get(label, 0) for label in MASK_LABELS}
                entry_rate = compliance_rate(entered)
                start = self.origin + index * self.period_s
                rate = compliance_rate(counts)
                rows.append(
                    StatsRow(
                        camera=camera,
                        period_start=round(start, 3),
                        period_end=round(start + self.period_s, 3),
                        people=sum(counts.values()),
                        **{label: counts.get(label, 0) for label in MASK_LABELS},
                        compliance_rate=None if rate is None else round(rate, 4),
                        entries=sum(entered.values()), exits=crossed.get("exit", 0),
                        **{f"entries_{label}": n for label, n in entered.items()},
                        entries_compliance_rate=None if entry_rate is None else round(entry_rate, 4),
                    )
                )
        return sorted(rows, key=lambda r: (r.period_start, r.camera))

    def write_csv(self, path: str | Path) -> int:
        """Write `rows()` as CSV with a header line; returns the number of rows."""
        rows = self.rows()
        columns = (*CSV_COLUMNS, *ENTRY_COLUMNS) if self.lines else CSV_COLUMNS
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                values = row.model_dump()
                for rate in ("compliance_rate", "entries_compliance_rate"):
                    values[rate] = "" if values[rate] is None else values[rate]
                writer.writerow(values)
        return len(rows)

    def _index(self, t: float) -> int:
        return math.floor((t - self.origin) / self.period_s)
