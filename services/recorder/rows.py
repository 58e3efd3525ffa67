"""Results-stream messages as history rows: people, thumbnails, crossings, alerts, and the counts they add."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections import Counter
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from shared.history.periods import Period, period_start
from shared.history.schema import DAY, HOUR, IN, OUT, PEOPLE, people
from shared.schemas import AlertRecord, FrameResult, LineCrossing, PersonRecord

Message = FrameResult | PersonRecord | LineCrossing | AlertRecord
CountKey = tuple[str, str, str, str, int, str]  # resolution, camera, kind, line, start, label
PERSON_COLUMNS = frozenset(c.name for c in people.c if c.name != "id")


@dataclass
class Rows:
    """The rows one batch of results-stream entries adds."""

    people: list[dict] = field(default_factory=list)
    thumbnails: list[bytes | None] = field(default_factory=list)  # one per person, in order
    crossings: list[dict] = field(default_factory=list)
    alerts: list[dict] = field(default_factory=list)
    counts: Counter[CountKey] = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.people) + len(self.crossings) + len(self.alerts)

    def by_kind(self) -> dict[str, int]:
        """Rows per history table: people, crossings, alerts."""
        return {"people": len(self.people), "crossings": len(self.crossings), "alerts": len(self.alerts)}


def build_rows(entries: list[tuple[str, Message]], zone: ZoneInfo) -> Rows:
    """Rows of the parsed entries (stream id, message), in stream order; frames add nothing."""
    rows = Rows()
    for entry_id, message in entries:
        if isinstance(message, PersonRecord):
            rows.people.append(_person(message))
            rows.thumbnails.append(_jpeg(message.thumbnail))
            if not message.static:  # a poster or a screen: kept, never counted
                _count(rows.counts, message.camera, PEOPLE, "", message.first_seen, message.label, zone)
        elif isinstance(message, LineCrossing):
            rows.crossings.append({"camera": message.camera, "line": message.line, "direction": message.direction,
                                   "track_id": message.track_id, "label": message.label, "time": message.time})
            _count(rows.counts, message.camera, IN if message.direction == "in" else OUT, message.line,
                   message.time, message.label, zone)
        elif isinstance(message, AlertRecord):
            uid = message.event.get("id")
            if not isinstance(uid, str) or not uid or len(uid) > 64:
                uid = uuid.uuid5(uuid.NAMESPACE_URL, f"maskwatch:results:{entry_id}").hex
            rows.alerts.append({"uid": uid, "camera": message.camera, "kind": message.kind[:32],
                                "time": message.time, "event": message.event})
    return rows


def _person(record: PersonRecord) -> dict:
    """The people row: the record's fields that the table has (the thumbnail is stored apart)."""
    return record.model_dump(include=PERSON_COLUMNS)


def _jpeg(thumbnail: str | None) -> bytes | None:
    """The thumbnail's JPEG bytes (stored as they come: blurred by the detector when privacy is on)."""
    if not thumbnail:
        return None
    try:
        return base64.b64decode(thumbnail, validate=True)
    except (binascii.Error, ValueError):
        return None


def _count(counts: Counter[CountKey], camera: str, kind: str, line: str, ts: float, label: str,
           zone: ZoneInfo) -> None:
    counts[(HOUR, camera, kind, line, period_start(ts, Period.HOUR, zone), label)] += 1
    counts[(DAY, camera, kind, line, period_start(ts, Period.DAY, zone), label)] += 1
