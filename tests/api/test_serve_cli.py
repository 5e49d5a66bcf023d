"""`digitlab serve` and `digitlab run` (with a model present) start a real uvicorn that
answers over HTTP; the processes are stopped at the end."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import numpy as np

from digitlab.config import Settings
from digitlab.data import Split
from digitlab.registry.versions import ModelVersion
from digitlab.store.testing_pg import free_port
from tests.api.conftest import SECOND, b64, png
from tests.utils.served import start, wait_ready


def predict_and_stop(
    port: int, process: subprocess.Popen[bytes], image: np.ndarray
) -> tuple[httpx.Response, str]:
    try:
        wait_ready(port, process)
        r = httpx.post(f"http://127.0.0.1:{port}/api/v1/predict", json={"image": b64(png(image))})
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0].decode()
    return r, output


def test_serve(settings_api: Settings, mnist_test: Split, tmp_path: Path) -> None:
    port = free_port()
    env = {
        "DIGITLAB_MODEL_DIR": str(settings_api.model_dir),
        "DIGITLAB_DATABASE_URL": settings_api.database_url,
    }
    process = start(["serve", "--port", str(port)], env, tmp_path)
    r, output = predict_and_stop(port, process, mnist_test.images[0])
    assert r.status_code == 200 and r.json()["model_version"] == SECOND, r.text
    assert f"serving on http://127.0.0.1:{port}" in output


def test_run_serves_the_existing_model(
    trained_fast_model: ModelVersion, mnist_test: Split, tmp_path: Path
) -> None:
    """The main job: a model exists, so no training; it prints the card, then serves."""
    port = free_port()
    env = {
        "DIGITLAB_MODEL_DIR": str(trained_fast_model.path.parent),
        "DIGITLAB_DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}",
        "DIGITLAB_PORT": str(port),
        # No background upgrade: it would train `best` into the session's shared model
        # folder (tests/upgrade covers the upgrade).
        "DIGITLAB_UPGRADE": "false",
    }
    process = start(["run"], env, tmp_path)
    r, output = predict_and_stop(port, process, mnist_test.images[0])
    assert r.status_code == 200, r.text
    assert r.json()["model_version"] == trained_fast_model.version
    assert r.json()["prediction"] == int(mnist_test.labels[0])
    assert "test accuracy" in output and "training recipe" not in output
