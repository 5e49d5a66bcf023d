"""The threat of docs/learning-loop.md, over HTTP on a real PostgreSQL: one client sends
200 wrong corrections of its own uploads. The service rate-limits them (429 with
Retry-After, counted in /metrics); those it stored are anonymous, so `feedback export`
leaves them out and `retrain` has nothing to train on: the serving model stays. Only
`--include-anonymous` trains on them, and the policy's decision is shown."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import text
from typer.testing import CliRunner

from digitlab.cli.main import app
from digitlab.data import Split
from digitlab.registry import versions as registry
from digitlab.store import db
from digitlab.store.testing_pg import PostgresServer
from tests.conftest import MNIST_DIR
from tests.runs.conftest import serving_settings
from tests.utils.served import serving

PER_MINUTE = 40  # the burst one address may send; the rest of the 200 get 429


def b64png(pixels: np.ndarray) -> str:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def scalar(url: str, query: str) -> object:
    engine = db.make_engine(url)
    with db.transaction(engine) as session:
        found = session.execute(text(query)).scalar()
    engine.dispose()
    return found


@pytest.mark.slow
def test_a_flood_of_wrong_anonymous_corrections_does_not_replace_the_model(
    tmp_path: Path,
    pg_server: PostgresServer,
    trained_fast_model: registry.ModelVersion,
    mnist_test: Split,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = serving_settings(tmp_path, pg_server, trained_fast_model)
    url = settings.database_url
    env = {
        "DIGITLAB_ANONYMOUS_FEEDBACK_PER_MINUTE": str(PER_MINUTE),
        "DIGITLAB_LABELER_TOKEN": "a-labeller-token-nobody-sends-here",
    }
    with (
        serving(settings, tmp_path, **env) as served,
        httpx.Client(base_url=served.url, timeout=30) as client,
    ):
        body = {"images": [{"image": b64png(image)} for image in mnist_test.images[:200]]}
        answers = client.post("/api/v1/predict/batch", json=body)
        assert answers.status_code == 200, answers.text
        statuses = []
        for answer in answers.json()["predictions"]:
            wrong = (answer["prediction"] + 1) % 10  # the attacker's "correction"
            r = client.post(
                f"/api/v1/predictions/{answer['prediction_id']}/feedback", json={"label": wrong}
            )
            statuses.append(r.status_code)
            if r.status_code == 429:
                assert int(r.headers["retry-after"]) >= 1
                assert "too many anonymous corrections" in r.json()["detail"]
        stored, limited = statuses.count(201), statuses.count(429)
        assert stored + limited == 200
        assert PER_MINUTE <= stored <= PER_MINUTE + 15 and limited >= 140
        metrics = client.get("/metrics").text
        assert f"digitlab_feedback_rate_limited_total {float(limited)}" in metrics
        assert f'digitlab_feedback_total{{source="anonymous"}} {float(stored)}' in metrics
        serving_before = client.get("/api/v1/models/current").json()["version"]
    assert serving_before == trained_fast_model.version
    assert scalar(url, "SELECT count(*) FROM feedback WHERE source = 'anonymous'") == stored
    assert scalar(url, "SELECT count(*) FROM feedback WHERE source = 'labeller'") == 0

    for name, value in (
        ("DIGITLAB_DATABASE_URL", url),
        ("DIGITLAB_MODEL_DIR", str(settings.model_dir)),
        ("DIGITLAB_REPORT_DIR", str(settings.report_dir)),
        ("DIGITLAB_DATA_DIR", str(MNIST_DIR)),
    ):
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    exported = runner.invoke(app, ["feedback", "export", str(tmp_path / "export")])
    assert exported.exit_code == 0, exported.output
    assert "exported 0 images (0 corrections)" in exported.output
    assert f"left out {stored} anonymous corrections" in exported.output

    refused = runner.invoke(app, ["retrain", "--out", str(tmp_path / "retrain")])
    assert refused.exit_code == 0, refused.output
    assert "exported 0 corrections" in refused.output and "nothing to do" in refused.output
    assert scalar(url, "SELECT count(*) FROM models") == 1
    assert scalar(url, "SELECT version FROM models WHERE is_active") == serving_before

    included = runner.invoke(
        app,
        ["retrain", "--include-anonymous", "--epochs", "1", "--no-promote",
         "--out", str(tmp_path / "poisoned")],
    )  # fmt: skip
    assert included.exit_code == 0, included.output
    assert f"including {stored} anonymous corrections" in included.output
    report = json.loads((tmp_path / "poisoned" / "report.json").read_text())
    assert report["include_anonymous"] is True and report["feedback_ids_trained_on"]
    decision = "passes the policy" if report["promote"] else "not promoted"
    assert decision in included.output and all(r in included.output for r in report["reasons"])
    assert scalar(url, "SELECT version FROM models WHERE is_active") == serving_before
