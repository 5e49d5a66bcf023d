"""Readings of whole numbers: `readings` (the upload, the text read, its correction) and
`reading_digits` (each digit's box and the prediction made of it).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "readings",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("original", sa.LargeBinary(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("text", sa.String(12), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("corrected_text", sa.String(12), nullable=True),
        sa.Column("corrected_by", sa.String(16), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("length(original) <= 524288", name=op.f("ck_readings_original_size")),
        sa.CheckConstraint(
            "corrected_by IN ('labeller', 'anonymous')", name=op.f("ck_readings_corrected_by_known")
        ),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_readings_model_id_models")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_readings")),
    )
    op.create_index(op.f("ix_readings_model_id"), "readings", ["model_id"])
    op.create_table(
        "reading_digits",
        sa.Column("reading_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("prediction_id", sa.BigInteger(), nullable=False),
        sa.Column("x", sa.Integer(), nullable=False),
        sa.Column("y", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["reading_id"],
            ["readings.id"],
            name=op.f("fk_reading_digits_reading_id_readings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["prediction_id"],
            ["predictions.id"],
            name=op.f("fk_reading_digits_prediction_id_predictions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("reading_id", "position", name=op.f("pk_reading_digits")),
        sa.UniqueConstraint("prediction_id", name=op.f("uq_reading_digits_prediction_id")),
    )


def downgrade() -> None:
    op.drop_table("reading_digits")
    op.drop_index(op.f("ix_readings_model_id"), table_name="readings")
    op.drop_table("readings")
