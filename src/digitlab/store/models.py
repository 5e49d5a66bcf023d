"""The prediction store's tables (SQLAlchemy 2 typed declarative), and the experiment
tables: training runs, their per-epoch metrics and the promotions of model versions.

Images are stored as the raw 784 bytes of the 28x28 uint8 array the model saw, row by
row (`array.tobytes()`, C order, 0 = black), so a read-back is bit for bit the input:
`np.frombuffer(row.image, np.uint8).reshape(28, 28)`. `sha256` is of those 784 bytes.

Schema changes go through the Alembic migrations in `digitlab/store/migrations`; the
application never calls `create_all` (tests compare the two).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    REAL,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

IMAGE_BYTES = 28 * 28
# An upload is kept as sent only up to this size; larger ones keep just the 28x28 image.
MAX_ORIGINAL_BYTES = 512 * 1024

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY, not BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# float4[] on PostgreSQL (compact, queryable), a JSON list on SQLite; compare the values
# read back as float32 (PostgreSQL returns each float4's shortest decimal form).
Probabilities = JSON().with_variant(ARRAY(REAL()), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps read back time-zone aware on both backends (SQLite's are UTC, naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def created_at_column() -> Mapped[datetime]:
    return mapped_column(UtcDateTime(), server_default=func.now(), nullable=False)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ModelRow(Base):
    """One model version, registered the first time it is trained or used."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(100), unique=True)
    dataset: Mapped[str] = mapped_column(String(50))
    onnx_sha256: Mapped[str] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (
        # At most one active version: a unique index over the rows where it is true.
        Index(
            "uq_models_is_active",
            "is_active",
            unique=True,
            postgresql_where=text("is_active"),
            sqlite_where=text("is_active"),
        ),
    )


class InputData(Base):
    """An image digitlab saw: the 28x28 the model scored, and the upload as sent."""

    __tablename__ = "input_data"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    image: Mapped[bytes] = mapped_column(LargeBinary)
    original: Mapped[bytes | None] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(200))
    label: Mapped[int | None] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint(f"length(image) = {IMAGE_BYTES}", name="image_size"),
        CheckConstraint(f"length(original) <= {MAX_ORIGINAL_BYTES}", name="original_size"),
        CheckConstraint("label BETWEEN 0 AND 9", name="label_range"),
    )


class Prediction(Base):
    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    input_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("input_data.id", ondelete="CASCADE"), index=True
    )
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    label: Mapped[int] = mapped_column(SmallInteger)
    confidence: Mapped[float] = mapped_column(Float)
    probabilities: Mapped[list[float]] = mapped_column(Probabilities)
    latency_ms: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = created_at_column()
    # The model's verdict that the picture shows one handwritten digit (migration 0007);
    # NULL for predictions stored before there was one: unknown, not guessed.
    is_digit: Mapped[bool | None] = mapped_column(Boolean, nullable=True)

    __table_args__ = (
        CheckConstraint("label BETWEEN 0 AND 9", name="label_range"),
        CheckConstraint("confidence BETWEEN 0 AND 1", name="confidence_range"),
        # The monitor's window query reads only this index (migrations 0006, 0007).
        Index(
            "ix_predictions_monitor", "model_id", "created_at", "label", "confidence", "is_digit"
        ),
    )


class Feedback(Base):
    """A person's correction of a prediction; the latest one for a prediction counts."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    prediction_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("predictions.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[int] = mapped_column(SmallInteger)
    note: Mapped[str | None] = mapped_column(Text)
    # Who gave it: "labeller" (a request with the labeller token, or a signed-in labeller)
    # or "anonymous". Only labeller corrections train a model unless asked otherwise.
    source: Mapped[str] = mapped_column(String(16), server_default="anonymous")
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint("label BETWEEN 0 AND 9", name="label_range"),
        CheckConstraint("source IN ('labeller', 'anonymous')", name="source_known"),
        # The labeller corrections: trusted accuracy and the review count (migration 0006).
        Index("ix_feedback_source_prediction_id", "source", "prediction_id"),
    )


RUN_STATUSES = ("running", "succeeded", "failed", "interrupted")


class RunRow(Base):
    """One training run: what was asked (config, seed, dataset), with which code (git
    commit, library versions), how it ended, and the model version it produced.

    A run is inserted as `running` before training starts and finished as `succeeded`,
    `failed` or `interrupted`; one still `running` after its process is gone was killed
    outright (SIGKILL, power loss)."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(20))
    recipe: Mapped[str] = mapped_column(String(50))
    dataset: Mapped[str] = mapped_column(String(50))
    seed: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    sweep: Mapped[str | None] = mapped_column(String(100), index=True)
    git_commit: Mapped[str | None] = mapped_column(String(60))
    libraries: Mapped[dict[str, str]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    model_id: Mapped[int | None] = mapped_column(
        ForeignKey("models.id", ondelete="SET NULL"), index=True
    )
    started_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), server_default=func.now(), nullable=False
    )
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in RUN_STATUSES) + ")", name="status"
        ),
    )


class RunMetric(Base):
    """One epoch of one network of a run (`member` > 0 only in ensembles)."""

    __tablename__ = "run_metrics"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    member: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    lr: Mapped[float] = mapped_column(Float)
    train_loss: Mapped[float] = mapped_column(Float)
    train_acc: Mapped[float] = mapped_column(Float)
    val_loss: Mapped[float | None] = mapped_column(Float)
    val_acc: Mapped[float | None] = mapped_column(Float)
    seconds: Mapped[float] = mapped_column(Float)
    images_per_s: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = created_at_column()


class Promotion(Base):
    """A model version made the serving one, by whom and when; the newest is current."""

    __tablename__ = "promotions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    promoted_by: Mapped[str] = mapped_column(String(100))
    promoted_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), server_default=func.now(), nullable=False
    )


class ModelArtifact(Base):
    """A published model's files, kept in the database so that serving processes on any
    machine load the active version from there (PostgreSQL deployments; the embedded
    SQLite default keeps its models in the model folder only). `sha256` is the ONNX
    file's, checked again by every process that loads it."""

    __tablename__ = "model_artifacts"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    card: Mapped[dict[str, Any]] = mapped_column(JSON)
    onnx: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_at_column()


class ScoreShard(Base):
    """One finished shard of a sharded bulk scoring job (`digitlab score --shard K/N`),
    written in the transaction that stored the shard's rows: a retried shard finds its
    row and stores nothing twice."""

    __tablename__ = "score_shards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(200))
    shard: Mapped[int] = mapped_column(Integer)
    shards: Mapped[int] = mapped_column(Integer)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    images: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (
        Index("uq_score_shards_job_shard_shards", "job", "shard", "shards", unique=True),
    )


class TrainingFeedback(Base):
    """This model version was trained with this correction (lineage of a retrain)."""

    __tablename__ = "training_feedback"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    feedback_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("feedback.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class ModelEvaluation(Base):
    """An accuracy measured of a model version on a named set ("mnist/test",
    "corrections/heldout"); the newest per version and name is current."""

    __tablename__ = "model_evaluations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    images: Mapped[int] = mapped_column(Integer)
    accuracy: Mapped[float] = mapped_column(Float)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = created_at_column()


class Reading(Base):
    """A picture of a whole number read digit by digit (`digitlab.inference.numbers`):
    the upload as sent, the text read, and a person's correction of the whole string."""

    __tablename__ = "readings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    original: Mapped[bytes | None] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(String(12))
    confidence: Mapped[float] = mapped_column(Float)
    latency_ms: Mapped[float] = mapped_column(Float)
    corrected_text: Mapped[str | None] = mapped_column(String(12))
    corrected_by: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint(f"length(original) <= {MAX_ORIGINAL_BYTES}", name="original_size"),
        CheckConstraint("corrected_by IN ('labeller', 'anonymous')", name="corrected_by_known"),
    )


class ReadingDigit(Base):
    """One digit of a reading: its place, its box in the upload, and the prediction made
    of it (whose input is the digit's 28x28 crop), so a correction is digit feedback."""

    __tablename__ = "reading_digits"

    reading_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("readings.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    prediction_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("predictions.id", ondelete="CASCADE"), unique=True
    )
    x: Mapped[int] = mapped_column(Integer)
    y: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
