"""People indexes that cover the history API's filters (static, label), so counting a week of every camera
reads the index alone instead of every row (benchmarks/history.py, SQLite, 2.7 M people: a people page of a
week of all cameras p95 1.8 s before, 0.1 s after, together with paging in index order).

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
