"""Windows of the bridge's state, and the one thing it tracks itself: when an unmasked person was last seen.

Every count (people, zones, line crossings) is the dashboard's, read from its rolling buckets in Redis
(services/dashboard/stats.py), so MQTT and the dashboard agree and counts survive restarts.
"""

from __future__ import annotations

import time
from datetime import datetime

from shared.schemas import COMPLIANT_LABELS, PersonRecord

UNMASKED_WINDOW_S = 60.0


def local_midnight(now: float) -> float:
    """Unix time of the last local midnight (the bridge's time zone, TZ) before `now`."""
    day = datetime.fromtimestamp(now).astimezone()
    return day.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


class LastUnmasked:
    """Per camera, when a person not wearing a mask correctly was last seen (static faces are no people)."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}

    def add(self, record: PersonRecord) -> None:
        """Note a person record."""
        if not record.static and record.label not in COMPLIANT_LABELS:
            self.seen[record.camera] = max(self.seen.get(record.camera, 0.0), record.last_seen)

    def recently(self, camera: str, now: float | None = None) -> bool:
        """Whether such a person was last seen within the last minute."""
        now = time.time() if now is None else now
        return now - self.seen.get(camera, float("-inf")) <= UNMASKED_WINDOW_S
