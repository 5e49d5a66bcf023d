"""The monitor's indexes: predictions by version and time, holding the label and the
confidence too, so that a window's counts are read from the index alone; and feedback
by source, for the labeller corrections.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_predictions_monitor",
        "predictions",
        ["model_id", "created_at", "label", "confidence"],
    )
    op.create_index("ix_feedback_source_prediction_id", "feedback", ["source", "prediction_id"])


def downgrade() -> None:
    op.drop_index("ix_feedback_source_prediction_id", table_name="feedback")
    op.drop_index("ix_predictions_monitor", table_name="predictions")
