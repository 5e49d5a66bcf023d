"""A model version's row in `models`, and on PostgreSQL its files too, published to every
serving process: what training, promotion, scoring and the service share."""

from __future__ import annotations

from sqlalchemy import Engine

from digitlab.registry.versions import ModelVersion, verify_onnx
from digitlab.store import artifacts, crud, db


def ensure_model(engine: Engine, model: ModelVersion, *, active: bool) -> int:
    """The model version's id in `models`, registering it on first use (on PostgreSQL
    with its files); its own short transaction, so concurrent scoring runs do not wait
    on each other's."""
    card = model.card
    with db.transaction(engine) as session:
        model_id = crud.register_model(
            session,
            version=model.version,
            dataset=card["dataset"]["name"],
            onnx_sha256=card["onnx"]["sha256"],
            metrics=card.get("metrics", {}),
            active=active,
        )
        if artifacts.in_database(engine):
            # The registry lives in PostgreSQL: the files go with the row, and a
            # promotion is announced to every serving process.
            published = not artifacts.has_artifact(session, model_id)
            if published:
                verify_onnx(model)
                artifacts.save_artifact(
                    session,
                    model_id=model_id,
                    card=card,
                    onnx=model.onnx_path.read_bytes(),
                    sha256=card["onnx"]["sha256"],
                )
            if published or active:
                artifacts.announce(session, model.version)
        return model_id
