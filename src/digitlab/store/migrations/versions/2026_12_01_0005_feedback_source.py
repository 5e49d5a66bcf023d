"""Who gave each correction: "labeller" or "anonymous". Existing corrections came from
anyone who reached the service, so they become "anonymous".

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot add a CHECK constraint to an existing table in place.
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(
            sa.Column("source", sa.String(16), server_default="anonymous", nullable=False)
        )
        batch.create_check_constraint(
            op.f("ck_feedback_source_known"), "source IN ('labeller', 'anonymous')"
        )


def downgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.drop_constraint(op.f("ck_feedback_source_known"), type_="check")
        batch.drop_column("source")
