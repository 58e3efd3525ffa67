"""The first history schema: people, thumbnails, crossings, alerts, counts, recorder state.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("camera", sa.String(64), nullable=False),
        sa.Column("track_id", sa.BigInteger, nullable=False),
        sa.Column("label", sa.String(32), nullable=False),
        sa.Column("first_seen", sa.Double, nullable=False),
        sa.Column("last_seen", sa.Double, nullable=False),
        sa.Column("frames", sa.Integer, nullable=False),
        sa.Column("best_box", sa.JSON, nullable=False),
        sa.Column("zones", sa.JSON, nullable=False),
        sa.Column("static", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_people"),
    )
    op.create_index("ix_people_camera_first_seen", "people", ["camera", "first_seen"])
    op.create_index("ix_people_first_seen", "people", ["first_seen"])
    op.create_table(
        "thumbnails",
        sa.Column("person_id", RowId, nullable=False, autoincrement=False),
        sa.Column("first_seen", sa.Double, nullable=False),
        sa.Column("jpeg", sa.LargeBinary, nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name="fk_thumbnails_person_id", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("person_id", name="pk_thumbnails"),
    )
    op.create_index("ix_thumbnails_first_seen", "thumbnails", ["first_seen"])
    op.create_table(
        "crossings",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("camera", sa.String(64), nullable=False),
        sa.Column("line", sa.String(64), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("track_id", sa.BigInteger, nullable=False),
        sa.Column("label", sa.String(32), nullable=False),
        sa.Column("time", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_crossings"),
    )
    op.create_index("ix_crossings_camera_line_time", "crossings", ["camera", "line", "time"])
    op.create_index("ix_crossings_time", "crossings", ["time"])
    op.create_table(
        "alerts",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("uid", sa.String(64), nullable=False),
        sa.Column("camera", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("time", sa.Double, nullable=False),
        sa.Column("event", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        sa.UniqueConstraint("uid", name="uq_alerts_uid"),
    )
    op.create_index("ix_alerts_camera_time", "alerts", ["camera", "time"])
    op.create_index("ix_alerts_time", "alerts", ["time"])
    op.create_table(
        "counts",
        sa.Column("resolution", sa.String(1), nullable=False),
        sa.Column("camera", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("line", sa.String(64), nullable=False),
        sa.Column("start", sa.BigInteger, nullable=False),
        sa.Column("label", sa.String(32), nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("resolution", "camera", "kind", "line", "start", "label", name="pk_counts"),
    )
    op.create_index("ix_counts_resolution_kind_start", "counts", ["resolution", "kind", "start"])
    op.create_table(
        "recorder_state",
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("position", sa.String(48), nullable=True),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("lease_until", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=True),
        sa.PrimaryKeyConstraint("stream", name="pk_recorder_state"),
    )


def downgrade() -> None:
    for table in ("recorder_state", "counts", "alerts", "crossings", "thumbnails", "people"):
        op.drop_table(table)
