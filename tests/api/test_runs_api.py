"""GET /api/v1/runs over HTTP on SQLite and PostgreSQL: recorded runs with lineage, and
two or more side by side with their epochs and the config keys that differ."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from digitlab.config import Settings
from digitlab.store import crud, db, lineage, runs
from digitlab.store.models import Feedback, Prediction
from tests.api.conftest import SECOND

BASE = {"recipe": "fast", "epochs": 2, "lr": 0.01, "parent": None, "dataset": "mnist"}


def record(settings: Settings, config: dict[str, Any], accs: list[float], model: str | None) -> int:
    engine = db.make_engine(settings.database_url)
    with db.transaction(engine) as session:
        run_id = runs.create_run(
            session, recipe="fast", dataset="mnist", seed=1, config=config, libraries={}
        )
        for epoch, acc in enumerate(accs, 1):
            row = {"member": 0, "epoch": epoch, "lr": 0.01, "train_loss": 1 / epoch,
                   "train_acc": acc, "val_loss": 0.5, "val_acc": acc, "seconds": 1.0}  # fmt: skip
            runs.add_epoch(session, run_id=run_id, row=row)
        model_id = None
        if model:
            model_id = crud.register_model(
                session, version=model, dataset="mnist", onnx_sha256="0" * 64, metrics={},
                active=False,
            )  # fmt: skip
        runs.finish_run(
            session, run_id=run_id, status="succeeded", model_id=model_id,
            metrics={"val_accuracy": accs[-1], "test_accuracy": 0.97},
        )  # fmt: skip
    engine.dispose()
    return run_id


def add_corrections(settings: Settings, version: str, count: int) -> None:
    """`count` corrections recorded as training `version` (its lineage)."""
    engine = db.make_engine(settings.database_url)
    with db.transaction(engine) as session:
        model_id = crud.register_model(
            session, version=version, dataset="mnist", onnx_sha256="0" * 64, metrics={},
            active=False,
        )  # fmt: skip
        ids = []
        for _ in range(count):
            input_id = crud.record_input(session, image=np.zeros((28, 28), np.uint8), source="t")
            p = Prediction(input_id=input_id, model_id=model_id, label=1, confidence=0.9,
                           probabilities=[0.0] * 10, latency_ms=1.0)  # fmt: skip
            session.add(p)
            session.flush()
            f = Feedback(prediction_id=p.id, label=2, source="labeller")
            session.add(f)
            session.flush()
            ids.append(f.id)
        lineage.record_training_feedback(session, model_id=model_id, feedback_ids=ids)
    engine.dispose()


def test_runs_are_listed_with_lineage(client: TestClient, settings_api: Settings) -> None:
    assert client.get("/api/v1/runs").json() == {"runs": [], "differing": []}
    first = record(settings_api, BASE, [0.9, 0.95], SECOND)
    child = record(settings_api, BASE | {"parent": SECOND, "lr": 0.001}, [0.96], "child-v")
    add_corrections(settings_api, "child-v", 3)
    r = client.get("/api/v1/runs")
    assert r.status_code == 200, r.text
    listed = r.json()["runs"]
    assert [x["id"] for x in listed] == [child, first]  # newest first
    assert listed[0]["parent"] == SECOND and listed[0]["corrections"] == 3
    assert listed[1]["parent"] is None and listed[1]["corrections"] == 0
    assert listed[1]["model_version"] == SECOND and listed[1]["val_accuracy"] == 0.95
    assert listed[1]["test_accuracy"] == 0.97 and listed[1]["seconds"] >= 0
    assert listed[1]["epochs"] == []  # epochs only for runs asked for by id
    assert len(client.get("/api/v1/runs?limit=1").json()["runs"]) == 1
    assert client.get("/api/v1/runs?status=failed").json()["runs"] == []


def test_two_runs_side_by_side(client: TestClient, settings_api: Settings) -> None:
    a = record(settings_api, BASE, [0.9, 0.95], None)
    b = record(settings_api, BASE | {"lr": 0.1, "epochs": 3, "mixup": 0.2}, [0.8, 0.9, 0.93], None)
    r = client.get(f"/api/v1/runs?id={b}&id={a}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["id"] for x in body["runs"]] == [b, a]  # in the order asked
    assert body["differing"] == ["epochs", "lr", "mixup"]
    assert [e["val_acc"] for e in body["runs"][0]["epochs"]] == [0.8, 0.9, 0.93]
    assert len(body["runs"][1]["epochs"]) == 2


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("id=999&id=998", 404, "no run with id 999, 998"),
        ("status=exploded", 422, "query.status: Input should be 'running'"),
        ("limit=0", 422, "limit"),
        ("limit=501", 422, "limit"),
        ("id=abc", 422, "id"),
        ("&".join(f"id={k}" for k in range(1, 10)), 422, "at most 8"),
    ],
)
def test_bad_queries_are_clear_4xx(client: TestClient, query: str, status: int, words: str) -> None:
    r = client.get(f"/api/v1/runs?{query}")
    assert r.status_code == status and words in r.json()["detail"], r.text


def test_the_status_choices_are_the_stores() -> None:
    from typing import get_args

    from digitlab.api.runs import RunStatus
    from digitlab.store.models import RUN_STATUSES

    assert get_args(RunStatus) == RUN_STATUSES
