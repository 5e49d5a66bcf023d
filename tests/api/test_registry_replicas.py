"""The model registry in PostgreSQL: serving processes with separate, empty model folders
load the active version from the database, follow a promotion within 2 s without a
restart, refuse a damaged artifact and keep serving, and catch up after their listening
connection is cut."""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import Engine, text

from digitlab.config import Settings
from digitlab.data import Split
from digitlab.registry import versions as registry
from digitlab.registry.database import WATCHER_NAME, sync
from digitlab.registry.lifecycle import activate_model
from digitlab.registry.publish import ensure_model
from digitlab.store import artifacts, crud, db, migrate
from digitlab.store.testing_pg import PostgresServer
from tests.api.conftest import FIRST, SECOND, api_settings, b64, png
from tests.utils.served import Served, serving

THIRD = "20261127-000002-mnist-linear"


@pytest.fixture
def publisher(tmp_path: Path, pg_server: PostgresServer, linear_models: Path) -> Settings:
    """Where models are trained: a folder with three versions, over a fresh database."""
    url = pg_server.create_database(f"test_{uuid.uuid4().hex[:12]}")
    settings = api_settings(tmp_path / "trainer", url)
    shutil.copytree(linear_models, settings.model_dir)
    shutil.copytree(settings.model_dir / SECOND, settings.model_dir / THIRD)
    card = settings.model_dir / THIRD / registry.CARD_FILE
    card.write_text(card.read_text().replace(SECOND, THIRD))
    engine = db.make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return settings


def replica(publisher: Settings, folder: Path) -> Settings:
    """A serving process's settings: the same database, its own empty model folder."""
    return publisher.model_copy(update={"model_dir": folder})


def serving_version(served: Served) -> str:
    answer = httpx.get(f"{served.url}/api/v1/models/current", timeout=5)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["version"])


def wait_for(check: Callable[[], bool], seconds: float) -> float:
    """Seconds until `check()` held; fails after `seconds`."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < seconds, f"not within {seconds} s"
        time.sleep(0.02)
    return time.monotonic() - start


@pytest.fixture
def two_replicas(publisher: Settings, tmp_path: Path) -> Iterator[list[Served]]:
    activate_model(publisher, FIRST)  # published from the trainer's folder, active
    with ExitStack() as stack:
        yield [
            stack.enter_context(serving(replica(publisher, tmp_path / name), tmp_path))
            for name in ("replica-a", "replica-b")
        ]


def test_replicas_with_empty_folders_serve_the_database_s_version(
    two_replicas: list[Served], tmp_path: Path
) -> None:
    assert [serving_version(s) for s in two_replicas] == [FIRST, FIRST]
    for name in ("replica-a", "replica-b"):
        folder = tmp_path / name
        assert registry.current_version(folder) == FIRST
        model = registry.load_version(folder, FIRST)
        registry.verify_onnx(model)  # the copy is the published file, bit for bit


def test_a_promotion_reaches_every_replica_within_2_s(
    two_replicas: list[Served], publisher: Settings, mnist_test: Split
) -> None:
    activate_model(publisher, SECOND, by="test")
    waited = [wait_for(lambda s=s: serving_version(s) == SECOND, 2.0) for s in two_replicas]
    assert max(waited) < 2.0
    for served in two_replicas:
        answer = httpx.post(
            f"{served.url}/api/v1/predict",
            json={"image": b64(png(mnist_test.images[0]))},
            timeout=10,
        )
        assert answer.status_code == 200 and answer.json()["model_version"] == SECOND


def test_a_published_version_is_listed_by_every_replica_at_once(
    two_replicas: list[Served], publisher: Settings
) -> None:
    engine = db.make_engine(publisher.database_url)
    ensure_model(engine, registry.load_version(publisher.model_dir, SECOND), active=False)
    engine.dispose()

    def listed(served: Served) -> set[str]:
        answer = httpx.get(f"{served.url}/api/v1/models", timeout=5)
        return {m["version"] for m in answer.json()}

    for served in two_replicas:
        wait_for(lambda s=served: listed(s) == {FIRST, SECOND}, 2.0)
        assert serving_version(served) == FIRST  # published, not promoted


def test_a_damaged_artifact_is_refused_and_the_replicas_keep_serving(
    two_replicas: list[Served], publisher: Settings
) -> None:
    engine = db.make_engine(publisher.database_url)
    # Published as ensure_model does, but with the stored ONNX file one byte longer, in
    # one transaction: damaged after publishing, a replica could copy the intact file in
    # between (every published version is copied) and would rightly serve that copy.
    model = registry.load_version(publisher.model_dir, THIRD)
    with db.transaction(engine) as session:
        model_id = crud.register_model(
            session,
            version=THIRD,
            dataset=model.card["dataset"]["name"],
            onnx_sha256=model.card["onnx"]["sha256"],
            metrics=model.card.get("metrics", {}),
            active=False,
        )
        artifacts.save_artifact(
            session,
            model_id=model_id,
            card=model.card,
            onnx=model.onnx_path.read_bytes() + b"\x00",
            sha256=model.card["onnx"]["sha256"],
        )
        artifacts.announce(session, THIRD)
    shutil.rmtree(publisher.model_dir / THIRD)  # so the database's copy is what is activated
    with pytest.raises(registry.RegistryError, match="changed or damaged"):
        activate_model(publisher, THIRD)
    # Made active behind the lifecycle's back, and announced: the replicas must refuse it.
    with db.transaction(engine) as session:
        session.execute(text("UPDATE models SET is_active = false WHERE is_active"))
        session.execute(text("UPDATE models SET is_active = true WHERE version = :v"), {"v": THIRD})
        session.execute(text("SELECT pg_notify('digitlab_models', :v)"), {"v": THIRD})
    engine.dispose()
    time.sleep(1.5)
    for served in two_replicas:
        assert serving_version(served) == FIRST
        assert httpx.get(f"{served.url}/readyz", timeout=5).status_code == 200
        assert not (served.settings.model_dir / THIRD).exists()


def test_a_replica_catches_up_after_its_listening_connection_is_cut(
    two_replicas: list[Served], publisher: Settings
) -> None:
    engine = db.make_engine(publisher.database_url)
    ensure_model(engine, registry.load_version(publisher.model_dir, SECOND), active=False)
    engine.dispose()
    dsn = db.parse_url(publisher.database_url).set(drivername="postgresql")
    with psycopg.connect(dsn.render_as_string(hide_password=False), autocommit=True) as conn:
        cut = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (WATCHER_NAME,),
        ).fetchall()
        assert len(cut) == 2  # one listener per replica
        # A promotion nobody is told about: only the poll after reconnecting finds it.
        conn.execute("UPDATE models SET is_active = false WHERE is_active")
        conn.execute("UPDATE models SET is_active = true WHERE version = %s", (SECOND,))
    for served in two_replicas:
        wait_for(lambda s=served: serving_version(s) == SECOND, 10.0)


def test_sync_fills_an_empty_folder_and_points_at_the_active_version(
    publisher: Settings, tmp_path: Path
) -> None:
    activate_model(publisher, SECOND)
    engine = db.make_engine(publisher.database_url)
    folder = tmp_path / "cache"
    assert sync(engine, folder) == SECOND
    assert registry.current_version(folder) == SECOND
    assert [v.version for v in registry.list_versions(folder)] == [SECOND]
    # A promotion later: the next sync brings the new version and moves CURRENT.
    activate_model(publisher, FIRST)
    assert sync(engine, folder) == FIRST
    assert {v.version for v in registry.list_versions(folder)} == {FIRST, SECOND}
    engine.dispose()


def test_a_sync_that_read_before_a_promotion_does_not_undo_it(
    publisher: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A promotion and a serving process's watcher on one host, one folder: the watcher
    reads the active version, the promotion lands, then the watcher carries on. CURRENT
    must stay on the promoted version (it used to go back until the next notification)."""
    activate_model(publisher, FIRST)
    engine = db.make_engine(publisher.database_url)
    ensure_model(engine, registry.load_version(publisher.model_dir, SECOND), active=False)
    read, promoted = threading.Event(), threading.Event()
    real_active = artifacts.active

    def active_then_wait(engine: Engine) -> artifacts.Active | None:
        found = real_active(engine)
        if threading.current_thread().name == "watcher" and not read.is_set():
            read.set()
            assert promoted.wait(10)
        return found

    monkeypatch.setattr(artifacts, "active", active_then_wait)
    results: list[str | None] = []
    watcher = threading.Thread(
        target=lambda: results.append(sync(engine, publisher.model_dir)), name="watcher"
    )
    watcher.start()
    assert read.wait(10)  # the watcher has read FIRST as the active version
    activate_model(publisher, SECOND, by="test")
    promoted.set()
    watcher.join(10)
    assert results == [SECOND]
    assert registry.current_version(publisher.model_dir) == SECOND
    engine.dispose()


def test_the_cli_works_on_a_machine_that_has_only_the_database(
    publisher: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pod with the image and DIGITLAB_DATABASE_URL, and an empty model folder."""
    from typer.testing import CliRunner

    from digitlab.cli.main import app

    activate_model(publisher, FIRST)
    monkeypatch.setenv("DIGITLAB_DATABASE_URL", publisher.database_url)
    monkeypatch.setenv("DIGITLAB_MODEL_DIR", str(tmp_path / "pod"))
    monkeypatch.setenv("DIGITLAB_DATA_DIR", str(publisher.data_dir))
    runner = CliRunner()

    listed = runner.invoke(app, ["models"])
    assert listed.exit_code == 0 and FIRST in listed.output, listed.output
    skipped = runner.invoke(app, ["train", "--if-missing"])
    assert skipped.exit_code == 0 and f"model {FIRST} exists; not training" in skipped.output
    scored = runner.invoke(app, ["score", "--dataset", "mnist", "--limit", "50"])
    assert scored.exit_code == 0, scored.output
    # SECOND was never published: this machine cannot switch to it.
    refused = runner.invoke(app, ["models", "use", SECOND])
    assert refused.exit_code != 0
    assert f"no model version {SECOND!r} in the database" in refused.output
    engine = db.make_engine(publisher.database_url)
    with db.transaction(engine) as session:
        active = session.execute(text("SELECT version FROM models WHERE is_active")).scalars()
        assert list(active) == [FIRST]
    engine.dispose()
