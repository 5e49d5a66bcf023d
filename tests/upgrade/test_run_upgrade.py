"""`digitlab run` serves the model it has at once and upgrades it in the background: a real
service process, a real trainer process beside it, real PostgreSQL where the switch is
checked under load. The upgrade trains `plain` for one batch (a dry run), so each test
takes seconds of training even on a busy machine: over a first model that answers 1
to everything (11.35% on MNIST test) the policy promotes it (it reaches about 17%);
over the tiny linear model (about 82%) the same policy refuses it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from digitlab.data import Split
from digitlab.registry import versions as registry
from digitlab.registry.lifecycle import activate_model
from digitlab.registry.upgrade_status import UpgradeStatus, read_status
from digitlab.store import db, migrate
from digitlab.store.testing_pg import PostgresServer, free_port
from tests.api.conftest import api_settings, b64, png
from tests.conftest import MNIST_DIR
from tests.utils.onnx_model import make_model
from tests.utils.served import wait_ready

pytestmark = pytest.mark.timeout(600)
FIRST = "20261127-000000-mnist-linear"
CONSTANT = "20261127-000000-mnist-constant"
PACE_SECONDS = 0.05  # between one client's requests


@dataclass
class Running:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    status_file: Path

    def status(self) -> UpgradeStatus | None:
        return read_status(self.status_file)

    def current(self) -> str:
        answer = httpx.get(f"{self.url}/api/v1/models/current", timeout=10)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["version"])

    def output(self) -> str:
        return self.log.read_text()


def wait_for(check: Callable[[], bool], seconds: float, what: str, running: Running) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds} s\n{running.output()[-3000:]}")
        time.sleep(0.1)


@contextmanager
def digitlab_run(tmp_path: Path, database_url: str, *args: str, **env: str) -> Iterator[Running]:
    """`python -m digitlab run ARGS` over `tmp_path/models` (the linear model serving) and
    `database_url`; stopped with SIGTERM at the end, as Ctrl-C or `docker stop` would."""
    port = free_port()
    status_file = tmp_path / "var" / "upgrade.json"
    variables = {
        "DIGITLAB_DATA_DIR": str(MNIST_DIR),
        "DIGITLAB_MODEL_DIR": str(tmp_path / "models"),
        "DIGITLAB_REPORT_DIR": str(tmp_path / "reports"),
        "DIGITLAB_DATABASE_URL": database_url,
        "DIGITLAB_PORT": str(port),
        "DIGITLAB_HOST": "127.0.0.1",
        "DIGITLAB_UPGRADE_STATUS_FILE": str(status_file),
        "DIGITLAB_UPGRADE_RECIPE": "plain",
        "DIGITLAB_UPGRADE_EPOCHS": "1",
        "DIGITLAB_SHUTDOWN_SECONDS": "2",
        **env,
    }
    log = tmp_path / "run.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "digitlab", "run", *args],
            env=os.environ | variables,
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(port, process, timeout=120, log=log)
        yield Running(f"http://127.0.0.1:{port}", process, log, status_file)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


@pytest.fixture
def first_model(tmp_path: Path, mnist_train: Split, mnist_test: Split) -> Path:
    """The linear model as the one serving, its card completed as training writes it
    (`digitlab run` prints the card)."""
    from digitlab.evaluation.report import evaluate

    model_dir = tmp_path / "models"
    make_model(model_dir, mnist_train, version=FIRST)
    model = registry.load_version(model_dir, FIRST)
    accuracy = evaluate(model, mnist_test).accuracy
    card = model.card | {
        "seed": 0,
        "config": {"epochs": 0},
        "metrics": {
            "test_accuracy": accuracy,
            "onnx_test_accuracy": accuracy,
            "train_seconds": 0.0,
            "device": "cpu",
            "parity_max_abs_diff": 0.0,
        },
    }
    (model.path / registry.CARD_FILE).write_text(json.dumps(card, indent=2))
    return model_dir


def constant_model(model_dir: Path, version: str, digit: int) -> None:
    """A real ONNX model that answers `digit` to every image, published with its card."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    bias = np.full(10, -5.0, dtype=np.float32)
    bias[digit] = 5.0
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["image", "shape"], ["flat"]),
            helper.make_node("MatMul", ["flat", "weights"], ["scores"]),
            helper.make_node("Add", ["scores", "bias"], ["logits"]),
        ],
        "constant",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        [
            numpy_helper.from_array(np.array([-1, 784], dtype=np.int64), "shape"),
            numpy_helper.from_array(np.zeros((784, 10), dtype=np.float32), "weights"),
            numpy_helper.from_array(bias, "bias"),
        ],
    )
    folder = model_dir / version
    folder.mkdir(parents=True)
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
        folder / registry.ONNX_FILE,
    )
    card = {
        "version": version,
        "created_at": "2026-11-27T00:00:00+00:00",
        "dataset": {"name": "mnist"},
        "recipe": "constant",
        "seed": 0,
        "config": {"epochs": 0},
        "metrics": {
            "test_accuracy": 0.1135,
            "onnx_test_accuracy": 0.1135,
            "train_seconds": 0.0,
            "device": "cpu",
            "parity_max_abs_diff": 0.0,
        },
        "onnx": {"sha256": registry.file_sha256(folder / registry.ONNX_FILE)},
    }
    (folder / registry.CARD_FILE).write_text(json.dumps(card, indent=2))
    registry.set_current(model_dir, version)


@pytest.fixture
def sqlite_url(tmp_path: Path, first_model: Path) -> str:
    return f"sqlite:///{tmp_path / 'digitlab.db'}"


@pytest.fixture
def pg_url(tmp_path: Path, pg_server: PostgresServer) -> str:
    """A fresh PostgreSQL database that keeps the registry, the constant model active."""
    constant_model(tmp_path / "models", CONSTANT, digit=1)
    url = pg_server.create_database(f"test_{uuid.uuid4().hex[:12]}")
    engine = db.make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    activate_model(api_settings(tmp_path, url), CONSTANT)
    return url


def load(url: str, bodies: list[bytes], stop: threading.Event) -> tuple[Counter[str], Counter[str]]:
    """Predictions from 2 clients, each ~20 a second, until `stop`: (the versions of the
    200 answers, every other outcome)."""
    versions: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    lock = threading.Lock()

    def client(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            i = offset
            while not stop.is_set():
                body = bodies[i % len(bodies)]
                i += 2
                try:
                    answer = http.post(
                        "/api/v1/predict",
                        content=body,
                        headers={"Content-Type": "application/json"},
                    )
                except httpx.HTTPError as exc:
                    with lock:
                        failures[type(exc).__name__] += 1
                    continue
                with lock:
                    if answer.status_code == 200:
                        versions[answer.json()["model_version"]] += 1
                    else:
                        failures[str(answer.status_code)] += 1
                # Paced: the trainer runs at a lower priority than the service, and an
                # unpaced load on 2 cores would leave it no CPU to finish with.
                stop.wait(PACE_SECONDS)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    stop.wait()
    for t in threads:
        t.join()
    return versions, failures


def test_the_upgrade_switches_the_served_model_under_load_without_a_failed_request(
    tmp_path: Path, pg_url: str, mnist_test: Split
) -> None:
    bodies = [json.dumps({"image": b64(png(image))}).encode() for image in mnist_test.images[:64]]
    with digitlab_run(tmp_path, pg_url, DIGITLAB_UPGRADE_DRY_RUN="1") as running:
        assert running.current() == CONSTANT
        stop = threading.Event()
        outcome: list[tuple[Counter[str], Counter[str]]] = []
        loader = threading.Thread(target=lambda: outcome.append(load(running.url, bodies, stop)))
        loader.start()
        try:
            wait_for(lambda: running.current() != CONSTANT, 300, "the switch", running)
            time.sleep(1.0)  # and some answers from the new model
        finally:
            stop.set()
            loader.join()
        versions, failures = outcome[0]
        new = running.current()
        assert new.endswith("-mnist-plain"), new
        assert not failures, failures
        assert versions[CONSTANT] > 0 and versions[new] > 0, versions
        # The service follows the pointer the moment it moves; the status follows it.
        wait_for(lambda: "upgrade promoted" in running.output(), 30, "the terminal line", running)
        status = running.status()
        assert status is not None and status.state == "promoted", status
        assert status.serving == new and status.candidate == new
        api = httpx.get(f"{running.url}/api/v1/upgrade", timeout=10).json()
        assert api["state"] == "promoted" and new in api["message"], api
        page = httpx.get(f"{running.url}/models", timeout=10).text
        assert 'data-state="promoted"' in page and "serves now" in page
    # The promotion is recorded like any other: by "upgrade".
    engine = db.make_engine(pg_url)
    with engine.connect() as conn:
        from sqlalchemy import text

        who = (
            conn.execute(
                text(
                    "SELECT p.promoted_by FROM promotions p JOIN models m ON m.id = p.model_id "
                    "WHERE m.version = :v"
                ),
                {"v": new},
            )
            .scalars()
            .all()
        )
    engine.dispose()
    assert who == ["upgrade"], who


@pytest.mark.parametrize(
    ("args", "env"), [(["--no-upgrade"], {}), ([], {"DIGITLAB_UPGRADE": "false"})]
)
def test_turned_off_the_first_model_keeps_serving(
    tmp_path: Path, sqlite_url: str, args: list[str], env: dict[str, str]
) -> None:
    with digitlab_run(tmp_path, sqlite_url, *args, **env) as running:
        time.sleep(3)  # time enough for a trainer to have started, were one started
        assert running.current() == FIRST
        assert running.status() is None
        assert "upgrade off" in running.output()
        assert httpx.get(f"{running.url}/api/v1/upgrade", timeout=10).json()["state"] == "none"
        assert 'id="upgrade"' not in httpx.get(f"{running.url}/models", timeout=10).text
    assert [v.version for v in registry.list_versions(tmp_path / "models")] == [FIRST]


def test_a_refused_upgrade_leaves_the_first_model_serving_and_says_why(
    tmp_path: Path, sqlite_url: str
) -> None:
    # One batch: chance level, far below the linear model on MNIST test.
    with digitlab_run(tmp_path, sqlite_url, DIGITLAB_UPGRADE_DRY_RUN="1") as running:
        wait_for(lambda: "upgrade kept" in running.output(), 300, "the refusal", running)
        assert running.current() == FIRST
        status = running.status()
        assert status is not None and status.state == "kept" and status.serving == FIRST
        assert "not promoted" in status.reason and "MNIST test" in status.reason
        page = httpx.get(f"{running.url}/models", timeout=10).text
        assert 'data-state="kept"' in page and "not promoted" in page


def test_a_killed_trainer_leaves_the_first_model_serving_and_says_why(
    tmp_path: Path, sqlite_url: str
) -> None:
    with digitlab_run(tmp_path, sqlite_url) as running:

        def training() -> bool:
            status = running.status()
            return status is not None and status.state == "training" and status.pid > 0

        wait_for(training, 120, "the trainer's start", running)
        status = running.status()
        assert status is not None
        os.kill(status.pid, signal.SIGKILL)
        wait_for(lambda: "upgrade failed" in running.output(), 30, "the report", running)
        assert running.current() == FIRST
        status = running.status()
        assert status is not None and status.state == "failed", status
        assert "killed by signal 9" in status.reason and FIRST in status.reason
        api = httpx.get(f"{running.url}/api/v1/upgrade", timeout=10).json()
        assert api["state"] == "failed" and "killed by signal 9" in api["message"]
        assert "killed by signal 9" in httpx.get(f"{running.url}/models", timeout=10).text
        # Still answering, with the first model.
        assert running.current() == FIRST


def test_stopping_run_cancels_the_upgrade_and_says_so(tmp_path: Path, sqlite_url: str) -> None:
    with digitlab_run(tmp_path, sqlite_url) as running:

        def training() -> bool:
            status = running.status()
            return status is not None and status.state == "training"

        wait_for(training, 120, "the trainer's start", running)
        running.process.send_signal(signal.SIGTERM)
        running.process.wait(timeout=60)
    status = read_status(running.status_file)
    assert status is not None and status.state == "cancelled", status
    assert FIRST in status.reason and "keeps serving" in status.reason
    assert registry.current_version(tmp_path / "models") == FIRST
