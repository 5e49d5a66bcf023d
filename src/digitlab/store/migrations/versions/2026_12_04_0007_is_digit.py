"""The not-a-digit verdict of each prediction: `predictions.is_digit`, true when the model
judged the picture to show one handwritten digit. Nullable: predictions stored before
the verdict existed stay NULL, unknown, rather than being guessed now.

The monitor's index gains the column, so that a window's counts split by the verdict are
still read from the index alone.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

MONITOR_INDEX = "ix_predictions_monitor"
MONITOR_COLUMNS = ["model_id", "created_at", "label", "confidence"]


def upgrade() -> None:
    # A nullable column without a default: SQLite adds it in place, no table rebuild.
    op.add_column("predictions", sa.Column("is_digit", sa.Boolean(), nullable=True))
    op.drop_index(MONITOR_INDEX, table_name="predictions")
    op.create_index(MONITOR_INDEX, "predictions", [*MONITOR_COLUMNS, "is_digit"])


def downgrade() -> None:
    op.drop_index(MONITOR_INDEX, table_name="predictions")
    op.create_index(MONITOR_INDEX, "predictions", MONITOR_COLUMNS)
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("is_digit")
