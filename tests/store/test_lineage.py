"""Training lineage on both backends: which corrections a version was trained with
(recorded once however often it is recorded), the newest evaluation per version and set,
cascades from models and feedback, and migration 0004 stepping down and up."""

from __future__ import annotations

import numpy as np
from sqlalchemy import Engine, delete, func, inspect, select

from digitlab.store import crud, db, lineage, migrate
from digitlab.store.models import Feedback, ModelEvaluation, ModelRow, TrainingFeedback
from tests.store.test_crud import new_model, some_probs


def corrections(engine: Engine, model_id: int, n: int) -> list[int]:
    """n inputs, each predicted by `model_id` and corrected once; the feedback ids."""
    ids = []
    with db.transaction(engine) as s:
        for k in range(n):
            image = np.full((28, 28), k, dtype=np.uint8)
            input_id = crud.record_input(s, image=image, source="test")
            pred = crud.record_prediction(
                s, input_id=input_id, model_id=model_id, probabilities=some_probs(1)[0],
                latency_ms=1.0,
            )  # fmt: skip
            ids.append(crud.record_feedback(s, prediction_id=pred, label=k % 10))
    return ids


def pairs(engine: Engine) -> set[tuple[int, int]]:
    with db.transaction(engine) as s:
        rows = s.execute(select(TrainingFeedback.model_id, TrainingFeedback.feedback_id))
        return {(m, f) for m, f in rows}


def test_recording_training_feedback_twice_stores_each_pair_once(engine: Engine) -> None:
    v1 = new_model(engine, "v1")
    feedback = corrections(engine, v1, 3)
    v2 = new_model(engine, "v2")
    with db.transaction(engine) as s:
        lineage.record_training_feedback(s, model_id=v2, feedback_ids=feedback[:2])
    with db.transaction(engine) as s:  # again, overlapping, with a repeat inside
        lineage.record_training_feedback(s, model_id=v2, feedback_ids=[*feedback, feedback[0]])
        lineage.record_training_feedback(s, model_id=v2, feedback_ids=[])
    assert pairs(engine) == {(v2, f) for f in feedback}

    v3 = new_model(engine, "v3")
    with db.transaction(engine) as s:
        lineage.record_training_feedback(s, model_id=v3, feedback_ids=feedback[1:2])
    with db.transaction(engine) as s:
        found = lineage.training_versions_by_feedback(s, [*feedback, 10_000])
    assert found == {feedback[0]: ["v2"], feedback[1]: ["v2", "v3"], feedback[2]: ["v2"]}


def test_lineage_goes_with_its_model_or_feedback(engine: Engine) -> None:
    v1 = new_model(engine, "v1")
    feedback = corrections(engine, v1, 2)
    v2 = new_model(engine, "v2")
    with db.transaction(engine) as s:
        lineage.record_training_feedback(s, model_id=v2, feedback_ids=feedback)
        lineage.record_evaluation(s, model_id=v2, name="mnist/test", images=10, accuracy=0.9)
    with db.transaction(engine) as s:
        s.execute(delete(Feedback).where(Feedback.id == feedback[0]))
    assert pairs(engine) == {(v2, feedback[1])}
    with db.transaction(engine) as s:
        s.execute(delete(ModelRow).where(ModelRow.id == v2))
    assert pairs(engine) == set()
    with db.transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(ModelEvaluation)) == 0


def test_latest_evaluations_keep_the_newest_per_version_and_set(engine: Engine) -> None:
    v1, v2 = new_model(engine, "v1"), new_model(engine, "v2")
    with db.transaction(engine) as s:
        lineage.record_evaluation(s, model_id=v1, name="mnist/test", images=100, accuracy=0.5)
        lineage.record_evaluation(
            s, model_id=v1, name="corrections/heldout", images=7, accuracy=0.25,
            details={"wrong": [1, 2]},
        )  # fmt: skip
        lineage.record_evaluation(s, model_id=v2, name="mnist/test", images=100, accuracy=0.75)
    with db.transaction(engine) as s:
        newer = lineage.record_evaluation(
            s, model_id=v1, name="mnist/test", images=10000, accuracy=0.99
        )
    with db.transaction(engine) as s:
        found = lineage.latest_evaluations(s)
        assert s.get_one(ModelEvaluation, newer).created_at.tzinfo is not None
    assert found == {
        "v1": {"mnist/test": (0.99, 10000), "corrections/heldout": (0.25, 7)},
        "v2": {"mnist/test": (0.75, 100)},
    }


def test_the_lineage_migration_steps_down_and_up(engine: Engine) -> None:
    tables = {"training_feedback", "model_evaluations"}
    assert tables <= set(inspect(engine).get_table_names())
    migrate.downgrade(engine, "0003")
    assert not tables & set(inspect(engine).get_table_names())
    assert "model_artifacts" in inspect(engine).get_table_names()
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    schema = inspect(engine)
    assert schema.get_pk_constraint("training_feedback")["constrained_columns"] == [
        "model_id", "feedback_id",
    ]  # fmt: skip
    fks = {fk["name"]: fk for fk in schema.get_foreign_keys("training_feedback")}
    assert fks["fk_training_feedback_feedback_id_feedback"]["options"]["ondelete"] == "CASCADE"
    assert fks["fk_training_feedback_model_id_models"]["options"]["ondelete"] == "CASCADE"
    indexes = {ix["name"] for ix in schema.get_indexes("training_feedback")}
    assert "ix_training_feedback_feedback_id" in indexes


def test_versions_by_prediction_merge_every_correction_of_it(engine: Engine) -> None:
    v1 = new_model(engine, "v1")
    first, other = corrections(engine, v1, 2)
    with db.transaction(engine) as s:
        pred = s.get_one(Feedback, first).prediction_id
        again = crud.record_feedback(s, prediction_id=pred, label=4)  # a newer correction
    v2, v3 = new_model(engine, "v2"), new_model(engine, "v3")
    with db.transaction(engine) as s:
        lineage.record_training_feedback(s, model_id=v2, feedback_ids=[first])
        lineage.record_training_feedback(s, model_id=v3, feedback_ids=[first, again])
    with db.transaction(engine) as s:
        other_pred = s.get_one(Feedback, other).prediction_id
        found = lineage.training_versions_by_prediction(s, [pred, other_pred])
    assert found == {pred: ["v2", "v3"]}
