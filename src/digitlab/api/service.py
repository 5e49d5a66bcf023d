"""What the routes share: the settings, the database engine, the predictor and the
metrics, and the one unit of work of the service, predict-and-store."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine, text

from digitlab.api.batcher import GroupWriter
from digitlab.api.metrics import Metrics
from digitlab.config import Settings
from digitlab.inference.predictor import Batch, Predictor
from digitlab.registry import versions as registry
from digitlab.registry.publish import ensure_model
from digitlab.store import crud, db, migrate
from digitlab.store.artifacts import folder_may_activate
from digitlab.store.writers import PgWriter, SessionWriter, writer_for

log = logging.getLogger("digitlab.api")
INLINE_PREDICT = 32  # images scored on the event loop itself


@dataclass
class Stored:
    batch: Batch
    ids: list[tuple[int, int]]  # (input id, prediction id) per image


@dataclass
class Service:
    settings: Settings
    engine: Engine
    predictor: Predictor
    metrics: Metrics = field(default_factory=Metrics)
    _model_ids: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    writer: GroupWriter = field(init=False)
    _store: PgWriter | SessionWriter = field(init=False)

    def __post_init__(self) -> None:
        self.writer = GroupWriter(self._predict_and_store)
        self._store = writer_for(self.engine)

    async def close(self) -> None:
        """Let the last group commit, then close the writer's connection."""
        await self.writer.close()
        await self._store.close()

    def model_id(self, model: registry.ModelVersion) -> int:
        """The version's id in `models`, registered on first use (also after an outage)."""
        found = self._model_ids.get(model.version)
        if found is None:
            current = registry.current_version(self.settings.model_dir)
            active = model.version == current and folder_may_activate(self.engine)
            found = ensure_model(self.engine, model, active=active)
            with self._lock:
                self._model_ids[model.version] = found
        return found

    async def _predict_and_store(
        self,
        digits: npt.NDArray[np.uint8],
        sources: list[str],
        labels: list[int | None],
        originals: list[bytes | None],
        anonymous: list[int | None] | None = None,
    ) -> tuple[Batch, list[tuple[int, int]]]:
        # A small group is scored on the loop (a few images take ~0.1 ms); a large one,
        # or a new model to load, in a thread, so that the loop goes on reading requests.
        loaded = self.predictor.current() if len(digits) <= INLINE_PREDICT else None
        if loaded is not None:
            batch = self.predictor.predict(digits, loaded)
        else:
            batch = await asyncio.to_thread(self.predictor.predict, digits)
        model_id = self._model_ids.get(batch.model.version)
        if model_id is None:
            model_id = await asyncio.to_thread(self.model_id, batch.model)
        group = crud.Group(
            images=digits,
            probabilities=batch.probabilities,
            model_id=model_id,
            sources=sources,
            labels=labels,
            latency_ms=batch.seconds * 1000 / len(digits),
            originals=originals,
            is_digit=batch.is_digit.tolist(),
            anonymous_labels=anonymous,
        )
        ids = await self._store.record_predictions(group)
        self.metrics.serving(batch.model.version)
        self.metrics.predicted(batch.labels)
        return batch, ids

    def readiness(self) -> dict[str, str]:
        """'ok' or the problem, for the model and the database."""
        checks = {}
        try:
            checks["model"] = f"ok ({self.predictor.model.version})"
        except registry.RegistryError as exc:
            # Without the folder's path (the log has it from startup or a failed request).
            checks["model"] = exc.public
        try:
            with db.translate_errors(self.engine), self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except db.StoreError as exc:
            # The message names the database: the log keeps it, the answer does not.
            log.warning("readiness: %s", exc)
            checks["database"] = "unavailable (the service logged the cause)"
        return checks


def prepare_engine(settings: Settings) -> Engine:
    """The engine, with the schema checked when the database answers (an embedded SQLite
    one brought up to date). An unreachable database is not fatal: the service starts,
    reports not ready, and recovers when the database comes back. A schema that is behind
    is fatal, with the message naming `digitlab db upgrade`."""
    engine = db.make_engine(settings.database_url)
    try:
        db.ping(engine)
    except db.StoreError as exc:
        log.warning("%s; starting anyway, /readyz reports it until it answers", exc)
        return engine
    with db.translate_errors(engine):
        current, head = migrate.current_revision(engine), migrate.head_revision()
        if current != head:
            if engine.dialect.name != "sqlite":
                raise db.StoreError(db.schema_behind_message(engine, current, head))
            migrate.upgrade(engine)
    return engine
