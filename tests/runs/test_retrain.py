"""The loop closed, with a real shift: digits the serving model gets wrong (MNIST training
digits turned 30-45 degrees) go through the API, the wrong answers are corrected
through the feedback endpoint, and `digitlab retrain` fine-tunes, judges and promotes;
a fresh sample of the same population is then recognised much better, and MNIST test
is not worse by more than the policy allows."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import text
from typer.testing import CliRunner

from digitlab.app import create_app
from digitlab.cli.main import app
from digitlab.config import Settings
from digitlab.data import Split
from digitlab.data.rotated import sample
from digitlab.inference.runtime import OnnxClassifier
from digitlab.registry import versions as registry
from digitlab.store import db
from digitlab.store.testing_pg import PostgresServer
from tests.conftest import MNIST_DIR
from tests.runs.conftest import serving_settings

LABELLER_TOKEN = "retrain-labeller-token"


@dataclass(frozen=True)
class Loop:
    settings: Settings
    serving: str
    corrected: int


def b64png(pixels: np.ndarray) -> str:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


@pytest.fixture
def loop(
    tmp_path: Path,
    pg_server: PostgresServer,
    trained_fast_model: registry.ModelVersion,
    mnist_train: Split,
    monkeypatch: pytest.MonkeyPatch,
) -> Loop:
    settings = serving_settings(
        tmp_path, pg_server, trained_fast_model, labeller_token=LABELLER_TOKEN
    )
    url = settings.database_url
    population = sample(mnist_train, 0, 30_000, 300, seed=1)
    corrected = 0
    with TestClient(create_app(settings)) as client:
        for image, label in zip(population.images, population.labels, strict=True):
            answer = client.post("/api/v1/predict", json={"image": b64png(image)}).json()
            if answer["prediction"] != int(label):
                feedback = client.post(
                    f"/api/v1/predictions/{answer['prediction_id']}/feedback",
                    json={"label": int(label)},
                    headers={"Authorization": f"Bearer {LABELLER_TOKEN}"},  # trusted
                )
                assert feedback.status_code == 201, feedback.text
                corrected += 1
    for name, value in (
        ("DIGITLAB_DATABASE_URL", url),
        ("DIGITLAB_MODEL_DIR", str(settings.model_dir)),
        ("DIGITLAB_REPORT_DIR", str(settings.report_dir)),
        ("DIGITLAB_DATA_DIR", str(MNIST_DIR)),
    ):
        monkeypatch.setenv(name, value)
    return Loop(settings, trained_fast_model.version, corrected)


def accuracy(model: registry.ModelVersion, data: Split) -> float:
    predicted = OnnxClassifier(model).probabilities(data.images).argmax(1)
    return float((predicted == data.labels).mean())


def scalars(settings: Settings, query: str) -> list[object]:
    engine = db.make_engine(settings.database_url)
    with db.transaction(engine) as session:
        found = list(session.execute(text(query)).scalars())
    engine.dispose()
    return found


def test_corrections_make_a_better_model_that_is_promoted(
    loop: Loop, tmp_path: Path, mnist_train: Split
) -> None:
    assert loop.corrected >= 30  # the shift is real: the serving model errs often
    out = tmp_path / "retrain"
    result = CliRunner().invoke(app, ["retrain", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["promoted"], report["reasons"]
    candidate = report["candidate"]
    assert f"promoted {candidate}" in result.output
    assert scalars(loop.settings, "SELECT version FROM models WHERE is_active") == [candidate]
    before = registry.load_version(loop.settings.model_dir, loop.serving)
    after = registry.load_version(loop.settings.model_dir, candidate)
    assert after.card["lineage"]["parent"] == loop.serving
    # A fresh sample of the population, never sent and never trained on.
    fresh = sample(mnist_train, 30_000, 60_000, 1000, seed=2)
    assert accuracy(after, fresh) - accuracy(before, fresh) >= 0.05
    mnist = report["scores"]["mnist/test"]
    assert mnist[candidate]["accuracy"] >= mnist[loop.serving]["accuracy"] - 0.001
    # Lineage: the corrections trained on are recorded; the held-out ones never are.
    trained = scalars(loop.settings, "SELECT feedback_id FROM training_feedback ORDER BY 1")
    assert trained == report["feedback_ids_trained_on"] and trained
    manifest = json.loads((out / "corrections" / "manifest.json").read_text())
    held = {i["feedback_id"] for i in manifest["items"] if i["part"] == "heldout"}
    assert held and not held & set(trained)
    assert scalars(
        loop.settings, "SELECT promoted_by FROM promotions ORDER BY id DESC LIMIT 1"
    ) == ["retrain"]
    names = scalars(loop.settings, "SELECT DISTINCT name FROM model_evaluations ORDER BY 1")
    assert names == ["corrections/heldout", "mnist/test"]
    # The Models page: each version's held-out accuracy, and the candidate's parent.
    with TestClient(create_app(loop.settings)) as client:
        page = client.get("/models").text
    held_out = report["scores"]["corrections/heldout"]
    for version in (loop.serving, candidate):
        assert f"{held_out[version]['accuracy']:.2%} over {held_out[version]['images']}" in page
    assert f"Fine-tuned from</dt><dd><code>{loop.serving}</code>" in page


def test_a_candidate_that_fails_the_policy_is_not_promoted(loop: Loop, tmp_path: Path) -> None:
    out = tmp_path / "retrain"
    result = CliRunner().invoke(
        app, ["retrain", "--epochs", "1", "--min-gain", "100", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert not report["promoted"]
    assert f"not promoted: {loop.serving} keeps serving" in result.output
    assert scalars(loop.settings, "SELECT version FROM models WHERE is_active") == [loop.serving]
    assert (out / "comparison.png").stat().st_size > 1000
