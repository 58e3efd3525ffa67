"""The tables of the history database (SQLAlchemy Core). Alembic migrations (shared/history/migrations) create them.

- `people`: one row per person record (static faces too, flagged, never counted); `thumbnails` holds their
  face JPEGs apart, so thumbnails are pruned sooner than people and the people table stays narrow.
- `crossings`: one row per line crossing; `alerts`: one row per alert event (unique by the event's id).
- `counts`: pre-aggregated counts per (resolution "h"/"d", camera, kind, line, period start, label): kind
  "people" (line ""), or "in"/"out" crossings of a line. Hour and day starts are local to `history.timezone`.
- `recorder_gaps`: stretches of the results stream trimmed away before the recorder read them (an outage
  longer than the stream keeps).
- `recorder_state`: the results-stream position consumed, written in the same transaction as the rows,
  and the writer lease (owner, lease_until) that lets one recorder replica write at a time.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
)

NAMES = {"ix": "ix_%(table_name)s_%(column_0_N_name)s", "uq": "uq_%(table_name)s_%(column_0_N_name)s",
         "fk": "fk_%(table_name)s_%(column_0_name)s", "pk": "pk_%(table_name)s"}
metadata = MetaData(naming_convention=NAMES)
RowId = BigInteger().with_variant(Integer, "sqlite")  # SQLite's INTEGER PRIMARY KEY is the rowid
CAMERA, NAME, LABEL, STREAM_ID = String(64), String(64), String(32), String(48)
HOUR, DAY = "h", "d"
PEOPLE, IN, OUT = "people", "in", "out"
RESULTS = "results"  # the recorder_state row of the results stream

people = Table(
    "people", metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("camera", CAMERA, nullable=False),
    Column("track_id", BigInteger, nullable=False),
    Column("label", LABEL, nullable=False),
    Column("first_seen", Double, nullable=False),
    Column("last_seen", Double, nullable=False),
    Column("frames", Integer, nullable=False),
    Column("best_box", JSON, nullable=False),
    Column("zones", JSON, nullable=False),
    Column("static", Boolean, nullable=False),
    Index("ix_people_camera_first_seen_static_label", "camera", "first_seen", "static", "label"),  # covering:
    Index("ix_people_first_seen_static_label", "first_seen", "static", "label"),  # counts read the index alone
)

thumbnails = Table(
    "thumbnails", metadata,
    Column("person_id", RowId, ForeignKey("people.id", ondelete="CASCADE"), primary_key=True, autoincrement=False),
    Column("first_seen", Double, nullable=False),  # the person's, so thumbnails are pruned by time on their own
    Column("jpeg", LargeBinary, nullable=False),
    Index("ix_thumbnails_first_seen", "first_seen"),
)

crossings = Table(
    "crossings", metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("camera", CAMERA, nullable=False),
    Column("line", NAME, nullable=False),
    Column("direction", String(3), nullable=False),
    Column("track_id", BigInteger, nullable=False),
    Column("label", LABEL, nullable=False),
    Column("time", Double, nullable=False),
    Index("ix_crossings_camera_line_time", "camera", "line", "time"),
    Index("ix_crossings_time", "time"),
)

alerts = Table(
    "alerts", metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("uid", String(64), nullable=False, unique=True),
    Column("camera", CAMERA, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("time", Double, nullable=False),
    Column("event", JSON, nullable=False),
    Index("ix_alerts_camera_time", "camera", "time"),
    Index("ix_alerts_time", "time"),
)

counts = Table(
    "counts", metadata,
    Column("resolution", String(1), nullable=False),
    Column("camera", CAMERA, nullable=False),
    Column("kind", String(8), nullable=False),
    Column("line", NAME, nullable=False),
    Column("start", BigInteger, nullable=False),
    Column("label", LABEL, nullable=False),
    Column("n", BigInteger, nullable=False),
    PrimaryKeyConstraint("resolution", "camera", "kind", "line", "start", "label"),
    Index("ix_counts_resolution_kind_start", "resolution", "kind", "start"),
)

recorder_state = Table(
    "recorder_state", metadata,
    Column("stream", String(64), primary_key=True),
    Column("position", STREAM_ID, nullable=True),
    Column("owner", String(128), nullable=True),
    Column("lease_until", Double, nullable=False, default=0.0),
    Column("updated_at", Double, nullable=True),
)

recorder_gaps = Table(
    "recorder_gaps", metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("after", STREAM_ID, nullable=False),
    Column("lost_before", STREAM_ID, nullable=False),
    Column("noticed_at", Double, nullable=False),
)
