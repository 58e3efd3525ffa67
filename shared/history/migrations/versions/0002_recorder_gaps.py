"""Record stretches of the results stream lost before the recorder read them (an outage longer than it keeps).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "recorder_gaps",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("after", sa.String(48), nullable=False),
        sa.Column("lost_before", sa.String(48), nullable=False),
        sa.Column("noticed_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_recorder_gaps"),
    )


def downgrade() -> None:
    op.drop_table("recorder_gaps")
