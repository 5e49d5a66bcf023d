"""The compose stack without Docker: each service's command run exactly as compose.yaml
writes it, in compose order, with the environment the file gives it. The `db` service is
a real PostgreSQL started by the suite; service host names map to localhost and named
volumes to folders."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from PIL import Image

from digitlab.data import Split
from digitlab.store.testing_pg import PostgresServer, free_port
from tests.deploy.compose_file import load_compose

pytestmark = pytest.mark.timeout(300)
BIN = Path(sys.executable).parent  # the venv's digitlab


@pytest.fixture
def stack(pg_server: PostgresServer, tmp_path: Path, settings: Any) -> dict[str, Any]:
    """compose.yaml read with .env.example, and a database matching its credentials."""
    compose = load_compose()
    user, password, name = (
        compose["services"]["db"]["environment"][k]
        for k in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")
    )
    dsn = f"host=127.0.0.1 port={pg_server.port} user=postgres dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(
            f"DO $$BEGIN CREATE ROLE \"{user}\" LOGIN PASSWORD '{password}'; "
            "EXCEPTION WHEN duplicate_object THEN NULL; END$$"
        )
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{user}"')
    # Named volumes become folders; the MNIST cache volume starts out filled, as after a
    # first `up` (the download itself is tested in tests/data).
    volumes = {"/models": tmp_path / "models", "/data/mnist": tmp_path / "mnist"}
    shutil.copytree(settings.data_dir, volumes["/data/mnist"])
    volumes["/models"].mkdir()
    return {
        "compose": compose,
        "port": pg_server.port,
        "volumes": volumes,
        "dsn": f"host=127.0.0.1 port={pg_server.port} user={user} dbname={name}",
    }


def service_env(stack: dict[str, Any], service: str, **extra: str) -> dict[str, str]:
    env = {k: str(v) for k, v in stack["compose"]["services"][service]["environment"].items()}
    for key, value in env.items():
        value = value.replace("@db:5432/", f"@127.0.0.1:{stack['port']}/")
        for inside, outside in stack["volumes"].items():
            if value == inside:
                value = str(outside)
        env[key] = value
    base = {k: v for k, v in os.environ.items() if not k.startswith("DIGITLAB_")}
    return base | {"PATH": f"{BIN}:{os.environ['PATH']}"} | env | extra


def run_service(stack: dict[str, Any], service: str, **extra: str) -> str:
    command = stack["compose"]["services"][service]["command"]
    done = subprocess.run(
        command,
        env=service_env(stack, service, **extra),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, f"{service}: {done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


@pytest.fixture
def api(stack: dict[str, Any]) -> Iterator[str]:
    port = free_port()
    command = stack["compose"]["services"]["api"]["command"]
    env = service_env(stack, "api", DIGITLAB_HOST="127.0.0.1", DIGITLAB_PORT=str(port))
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "api never became ready"
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def png_base64(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_stack_migrates_trains_once_and_serves(
    stack: dict[str, Any], mnist_test: Split, request: pytest.FixtureRequest
) -> None:
    run_service(stack, "migrate")
    # The trainer with a dry-run-sized recipe, set through the environment.
    run_service(stack, "train", DIGITLAB_TRAIN_DRY_RUN="1")
    models = [p for p in stack["volumes"]["/models"].iterdir() if p.is_dir()]
    assert len(models) == 1
    again = run_service(stack, "train", DIGITLAB_TRAIN_DRY_RUN="1")
    assert "not training" in again
    assert [p for p in stack["volumes"]["/models"].iterdir() if p.is_dir()] == models
    with psycopg.connect(stack["dsn"]) as conn:
        rows = conn.execute("SELECT version, is_active FROM models").fetchall()
    assert rows == [(models[0].name, True)]

    base = request.getfixturevalue("api")
    payload = {"image": png_base64(mnist_test.images[0]), "true_label": int(mnist_test.labels[0])}
    body = json.dumps(payload).encode()
    req = urllib.request.Request(
        base + "/api/v1/predict", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
        answer = json.loads(resp.read())
    assert answer["model_version"] == models[0].name
    with psycopg.connect(stack["dsn"]) as conn:
        row = conn.execute(
            "SELECT i.label, i.source, p.label FROM predictions p "
            "JOIN input_data i ON i.id = p.input_id WHERE p.id = %s",
            (answer["prediction_id"],),
        ).fetchone()
    assert row is not None and row[0] == int(mnist_test.labels[0])
    assert row[2] == answer["prediction"]
