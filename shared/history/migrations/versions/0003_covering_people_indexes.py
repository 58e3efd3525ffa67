"""People indexes that cover the history API's filters (static, label), so counting a week of every camera
reads the index alone instead of every row (with paging in index order, a people page of a week of all cameras
answers in p95 105 ms on SQLite with 2.7 M people: `nice -n 10 python benchmarks/history.py`, in
benchmarks/results/history.json).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_people_camera_first_seen", "people")
    op.drop_index("ix_people_first_seen", "people")
    op.create_index("ix_people_camera_first_seen_static_label", "people", ["camera", "first_seen", "static", "label"])
    op.create_index("ix_people_first_seen_static_label", "people", ["first_seen", "static", "label"])


def downgrade() -> None:
    op.drop_index("ix_people_first_seen_static_label", "people")
    op.drop_index("ix_people_camera_first_seen_static_label", "people")
    op.create_index("ix_people_camera_first_seen", "people", ["camera", "first_seen"])
    op.create_index("ix_people_first_seen", "people", ["first_seen"])
