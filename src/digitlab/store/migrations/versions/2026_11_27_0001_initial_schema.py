"""Initial schema: models, input_data, predictions, feedback.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PROBABILITIES = sa.JSON().with_variant(postgresql.ARRAY(sa.REAL()), "postgresql")


def created_at() -> sa.Column[datetime]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("dataset", sa.String(50), nullable=False),
        sa.Column("onnx_sha256", sa.String(64), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint("version", name=op.f("uq_models_version")),
    )
    op.create_index(
        "uq_models_is_active",
        "models",
        ["is_active"],
        unique=True,
        postgresql_where=sa.text("is_active"),
        sqlite_where=sa.text("is_active"),
    )
    op.create_table(
        "input_data",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("image", sa.LargeBinary(), nullable=False),
        sa.Column("original", sa.LargeBinary(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("label", sa.SmallInteger(), nullable=True),
        created_at(),
        sa.CheckConstraint("length(image) = 784", name=op.f("ck_input_data_image_size")),
        sa.CheckConstraint("length(original) <= 524288", name=op.f("ck_input_data_original_size")),
        sa.CheckConstraint("label BETWEEN 0 AND 9", name=op.f("ck_input_data_label_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_input_data")),
    )
    op.create_index(op.f("ix_input_data_sha256"), "input_data", ["sha256"])
    op.create_table(
        "predictions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("input_id", sa.BigInteger(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.SmallInteger(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("probabilities", PROBABILITIES, nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        created_at(),
        sa.CheckConstraint("label BETWEEN 0 AND 9", name=op.f("ck_predictions_label_range")),
        sa.CheckConstraint(
            "confidence BETWEEN 0 AND 1", name=op.f("ck_predictions_confidence_range")
        ),
        sa.ForeignKeyConstraint(
            ["input_id"],
            ["input_data.id"],
            name=op.f("fk_predictions_input_id_input_data"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_predictions_model_id_models")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_predictions")),
    )
    op.create_index(op.f("ix_predictions_input_id"), "predictions", ["input_id"])
    op.create_index(op.f("ix_predictions_model_id"), "predictions", ["model_id"])
    op.create_table(
        "feedback",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("prediction_id", sa.BigInteger(), nullable=False),
        sa.Column("label", sa.SmallInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        created_at(),
        sa.CheckConstraint("label BETWEEN 0 AND 9", name=op.f("ck_feedback_label_range")),
        sa.ForeignKeyConstraint(
            ["prediction_id"],
            ["predictions.id"],
            name=op.f("fk_feedback_prediction_id_predictions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
    )
    op.create_index(op.f("ix_feedback_prediction_id"), "feedback", ["prediction_id"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("predictions")
    op.drop_table("input_data")
    op.drop_index("uq_models_is_active", table_name="models")
    op.drop_table("models")
