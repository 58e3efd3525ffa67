"""What the bridge counts itself from the results stream: people per zone, crossings per line, unmasked people.

Camera-wide people per label come from the dashboard's rolling counts in Redis (services/dashboard/stats.py),
so MQTT and the dashboard agree; zones and lines are counted here, in one-minute buckets kept 25 hours
(they start from zero when the bridge restarts). Static faces (posters, screens) are never counted.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from datetime import datetime

from shared.schemas import COMPLIANT_LABELS, LineCrossing, PersonRecord

BUCKET_S = 60
KEEP_S = 25 * 3600
HOUR_S = 3600
UNMASKED_WINDOW_S = 60.0


def local_midnight(now: float) -> float:
    """Unix time of the last local midnight (the bridge's time zone, TZ) before `now`."""
    day = datetime.fromtimestamp(now).astimezone()
    return day.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def hour_start(now: float) -> float:
    """Start of the last-hour window: the current minute and the 59 before it (as the dashboard sums it)."""
    return (now // BUCKET_S) * BUCKET_S - (HOUR_S - BUCKET_S)


class RollingCounts:
    """Labels counted per key (e.g. ("zone", camera, name)) in one-minute buckets."""

    def __init__(self) -> None:
        self._buckets: dict[tuple, dict[int, Counter[str]]] = defaultdict(dict)

    def add(self, key: tuple, t: float, label: str) -> None:
        """Count one `label` at time `t` under `key`."""
        start = int(t // BUCKET_S) * BUCKET_S
        self._buckets[key].setdefault(start, Counter())[label] += 1

    def since(self, key: tuple, start: float) -> Counter[str]:
        """Labels counted under `key` in the buckets starting at or after `start`."""
        total: Counter[str] = Counter()
        for bucket, counts in self._buckets.get(key, {}).items():
            if bucket >= start:
                total.update(counts)
        return total

    def prune(self, now: float) -> None:
        """Forget buckets older than `KEEP_S`."""
        oldest = now - KEEP_S
        for buckets in self._buckets.values():
            for bucket in [b for b in buckets if b < oldest]:
                del buckets[bucket]


class BridgeCounts:
    """Per-camera zone and line counts and the last unmasked person, fed with results-stream messages."""

    def __init__(self) -> None:
        self.rolling = RollingCounts()
        self.zones: dict[str, set[str]] = defaultdict(set)
        self.lines: dict[str, set[str]] = defaultdict(set)
        self.last_unmasked: dict[str, float] = {}

    def add_person(self, record: PersonRecord) -> None:
        """Count a person (never a static face) in its zones; note when an unmasked one was last seen."""
        if record.static:
            return
        for zone in record.zones:
            self.zones[record.camera].add(zone)
            self.rolling.add(("zone", record.camera, zone), record.first_seen, record.label)
        if record.label not in COMPLIANT_LABELS:
            self.last_unmasked[record.camera] = max(self.last_unmasked.get(record.camera, 0.0), record.last_seen)

    def add_crossing(self, crossing: LineCrossing) -> None:
        """Count a line crossing under its line and direction."""
        self.lines[crossing.camera].add(crossing.line)
        self.rolling.add((crossing.direction, crossing.camera, crossing.line), crossing.time, crossing.label)

    def unmasked_recently(self, camera: str, now: float | None = None) -> bool:
        """Whether a person not wearing a mask correctly was last seen within the last minute."""
        now = time.time() if now is None else now
        return now - self.last_unmasked.get(camera, float("-inf")) <= UNMASKED_WINDOW_S

    def zone(self, camera: str, zone: str, start: float) -> Counter[str]:
        """People per label in a zone since `start`."""
        return self.rolling.since(("zone", camera, zone), start)

    def line(self, camera: str, line: str, direction: str, start: float) -> Counter[str]:
        """Crossings per label of one line and direction ("in" or "out") since `start`."""
        return self.rolling.since((direction, camera, line), start)

    def entries(self, camera: str, start: float) -> Counter[str]:
        """Entries ("in" crossings of every line) per label since `start`."""
        total: Counter[str] = Counter()
        for line in self.lines.get(camera, ()):
            total.update(self.line(camera, line, "in", start))
        return total
