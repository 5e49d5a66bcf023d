"""The experiment tables on both backends: a run's round trip, the rules the database
keeps (status values, cascades, a finished run stays finished) and the migration."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, inspect, select

from digitlab.store import crud, db, migrate, runs
from digitlab.store.models import RunMetric, RunRow

CONFIG = {"recipe": "fast", "dataset": "mnist", "seed": 7, "epochs": 2, "optimizer": "adam"}
LIBRARIES = {"python": "3.11.9", "torch": "2.13.0"}


def epoch_row(epoch: int, member: int = 0, **changes: Any) -> dict[str, Any]:
    row = {"member": member, "epoch": epoch, "lr": 0.01 / epoch, "train_loss": 0.5 / epoch,
           "train_acc": 0.9 + epoch / 100, "val_loss": 0.4 / epoch, "val_acc": 0.95 + epoch / 100,
           "seconds": 1.5, "images_per_s": 9000.0}  # fmt: skip
    return row | changes


def new_run(engine: Engine, **changes: Any) -> int:
    with db.transaction(engine) as s:
        return runs.create_run(
            s,
            **{
                "recipe": "fast",
                "dataset": "mnist",
                "seed": 7,
                "config": CONFIG,
                "libraries": LIBRARIES,
                "git_commit": "abc123",
            }
            | changes,
        )


def register(engine: Engine, version: str) -> int:
    with db.transaction(engine) as s:
        return crud.register_model(
            s, version=version, dataset="mnist", onnx_sha256="0" * 64, metrics={}, active=False
        )


def test_a_run_round_trips_with_its_epochs_and_model(engine: Engine) -> None:
    run_id = new_run(engine, sweep="grid-1")
    with db.transaction(engine) as s:
        (running,) = runs.get_runs(s, ids=[run_id])
    assert running.status == "running" and running.finished_at is None and running.seconds is None

    with db.transaction(engine) as s:
        runs.add_epoch(s, run_id=run_id, row=epoch_row(1))
        runs.add_epoch(s, run_id=run_id, row=epoch_row(2, val_loss=None, val_acc=None))
    model_id = register(engine, "20261127-000000-mnist-fast")
    with db.transaction(engine) as s:
        runs.finish_run(
            s, run_id=run_id, status="succeeded", metrics={"test_accuracy": 0.99}, model_id=model_id
        )
        (run,) = runs.get_runs(s, ids=[run_id])

    assert (run.status, run.recipe, run.dataset, run.seed) == ("succeeded", "fast", "mnist", 7)
    assert run.config == CONFIG and run.libraries == LIBRARIES and run.git_commit == "abc123"
    assert run.model_version == "20261127-000000-mnist-fast" and run.sweep == "grid-1"
    assert run.metrics == {"test_accuracy": 0.99} and run.error is None
    assert run.finished_at is not None and run.finished_at.tzinfo is not None
    assert run.seconds is not None and run.seconds >= 0
    assert [(e.member, e.epoch) for e in run.epochs] == [(0, 1), (0, 2)]
    assert run.epochs[0].val_acc == pytest.approx(0.96) and run.epochs[0].lr == pytest.approx(0.01)
    assert run.epochs[1].val_acc is None
    assert run.val_acc is None  # neither the metrics nor the last epoch have one


def test_list_filters_and_orders_newest_first(engine: Engine) -> None:
    first, second, third = new_run(engine), new_run(engine, sweep="s"), new_run(engine, sweep="s")
    with db.transaction(engine) as s:
        runs.finish_run(s, run_id=second, status="failed", error="RuntimeError: boom")
        assert [r.id for r in runs.list_runs(s)] == [third, second, first]
        assert [r.id for r in runs.list_runs(s, sweep="s")] == [third, second]
        assert [r.id for r in runs.list_runs(s, status="failed")] == [second]
        assert [r.id for r in runs.list_runs(s, limit=1)] == [third]


def test_a_finished_run_is_not_finished_again(engine: Engine) -> None:
    run_id = new_run(engine)
    with db.transaction(engine) as s:
        runs.finish_run(s, run_id=run_id, status="succeeded", metrics={"val_accuracy": 0.98})
        # A late error (say, while printing) must not turn a recorded success into a failure.
        runs.finish_run(s, run_id=run_id, status="failed", error="late")
        (run,) = runs.get_runs(s, ids=[run_id])
    assert run.status == "succeeded" and run.error is None and run.val_acc == 0.98
    with pytest.raises(ValueError, match="not 'running'"), db.transaction(engine) as s:
        runs.finish_run(s, run_id=run_id, status="running")


def test_the_database_refuses_an_unknown_status(engine: Engine) -> None:
    with pytest.raises(db.StoreError, match="refused the write"), db.transaction(engine) as s:
        s.add(RunRow(status="paused", recipe="fast", dataset="mnist", seed=0, config={},
                     libraries={}))  # fmt: skip


def test_epochs_go_with_their_run_and_are_unique(engine: Engine) -> None:
    run_id = new_run(engine)
    with db.transaction(engine) as s:
        runs.add_epoch(s, run_id=run_id, row=epoch_row(1))
    with pytest.raises(db.StoreError, match="refused the write"), db.transaction(engine) as s:
        runs.add_epoch(s, run_id=run_id, row=epoch_row(1))
    with db.transaction(engine) as s:
        s.execute(delete(RunRow).where(RunRow.id == run_id))
    with db.transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(RunMetric)) == 0


def test_an_unknown_run_id_is_named(engine: Engine) -> None:
    run_id = new_run(engine)
    with pytest.raises(ValueError, match="no run with id 999"), db.transaction(engine) as s:
        runs.get_runs(s, ids=[run_id, 999])


def test_promotions_newest_first(engine: Engine) -> None:
    a, b = register(engine, "version-a"), register(engine, "version-b")
    with db.transaction(engine) as s:
        runs.record_promotion(s, model_id=a, promoted_by="alice")
        runs.record_promotion(s, model_id=b, promoted_by="bob")
        found = runs.promotions(s)
    assert [(p.version, p.promoted_by) for p in found] == [
        ("version-b", "bob"),
        ("version-a", "alice"),
    ]
    assert found[0].promoted_at.tzinfo is not None


def test_the_experiment_migration_steps_down_and_up(engine: Engine) -> None:
    experiment_tables = {"runs", "run_metrics", "promotions"}
    assert experiment_tables <= set(inspect(engine).get_table_names())
    migrate.downgrade(engine, "0001")
    tables = set(inspect(engine).get_table_names())
    assert not experiment_tables & tables
    assert {"models", "input_data", "predictions", "feedback"} <= tables  # the store stays
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision() == "0009"
    fks = {fk["name"]: fk for fk in inspect(engine).get_foreign_keys("run_metrics")}
    assert fks["fk_run_metrics_run_id_runs"]["options"]["ondelete"] == "CASCADE"
