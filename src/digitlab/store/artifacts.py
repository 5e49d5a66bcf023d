"""Model artifacts in PostgreSQL: the ONNX file and card of each published version, which
version is active, and the notification every serving process listens for.

The active version is the `models` row with `is_active` (a unique index allows one);
a change of it is announced with NOTIFY on `CHANNEL` in the same transaction, so a
listener hears of it exactly when it is committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, exists, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from digitlab.store import db
from digitlab.store.models import ModelArtifact, ModelRow

CHANNEL = "digitlab_models"


def in_database(engine: Engine) -> bool:
    """Whether this database keeps the model registry (PostgreSQL does, SQLite does not:
    the embedded default keeps its models in the model folder)."""
    return engine.dialect.name == "postgresql"


def folder_may_activate(engine: Engine) -> bool:
    """Whether registering a model folder's CURRENT version may make it the active one:
    always where the folder is the registry; in PostgreSQL only while no version is
    active yet (the first one published, or a database from before the registry moved
    there). Otherwise only a promotion changes it, never a process that merely serves
    or scores a version."""
    return not in_database(engine) or active(engine) is None


@dataclass(frozen=True)
class Active:
    version: str
    sha256: str  # the ONNX file's, from the models row


@dataclass(frozen=True)
class Artifact:
    version: str
    card: dict[str, Any]
    onnx: bytes
    sha256: str  # as stored with the artifact
    registered_sha256: str  # as registered in `models`


def has_artifact(session: Session, model_id: int) -> bool:
    return bool(session.scalar(select(exists().where(ModelArtifact.model_id == model_id))))


def save_artifact(
    session: Session, *, model_id: int, card: dict[str, Any], onnx: bytes, sha256: str
) -> None:
    """Store a version's files once; a version's artifact never changes afterwards."""
    values = {"card": card, "onnx": onnx, "sha256": sha256, "size": len(onnx)}
    # Two processes publishing the same version at once: the first one's files stay.
    session.execute(
        postgresql.insert(ModelArtifact)
        .values(model_id=model_id, **values)
        .on_conflict_do_nothing(index_elements=["model_id"])
    )


def announce(session: Session, version: str) -> None:
    """Tell every listener that `version` was published or made active, so that they
    sync now rather than at their next poll; delivered on commit."""
    notify = text("SELECT pg_notify(:channel, :version)")
    session.execute(notify, {"channel": CHANNEL, "version": version})


def active(engine: Engine) -> Active | None:
    with db.transaction(engine) as session:
        row = session.execute(
            select(ModelRow.version, ModelRow.onnx_sha256).where(ModelRow.is_active)
        ).first()
    return Active(row.version, row.onnx_sha256) if row else None


def versions_with_artifacts(engine: Engine) -> dict[str, str]:
    """version -> ONNX SHA-256 of every version whose files are in the database."""
    with db.transaction(engine) as session:
        rows = session.execute(
            select(ModelRow.version, ModelArtifact.sha256).join(
                ModelArtifact, ModelArtifact.model_id == ModelRow.id
            )
        ).all()
    return {r.version: r.sha256 for r in rows}


def fetch(engine: Engine, version: str) -> Artifact | None:
    with db.transaction(engine) as session:
        row = session.execute(
            select(ModelRow.version, ModelRow.onnx_sha256, ModelArtifact)
            .join(ModelArtifact, ModelArtifact.model_id == ModelRow.id)
            .where(ModelRow.version == version)
        ).first()
    if row is None:
        return None
    artifact: ModelArtifact = row.ModelArtifact
    return Artifact(version, artifact.card, artifact.onnx, artifact.sha256, row.onnx_sha256)
