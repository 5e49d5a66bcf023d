"""The database as a real deployment meets it: wrong or unreachable URLs, eight
processes writing at once, and a server that stops in the middle of a scoring run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from digitlab.cli.main import app
from digitlab.config import Settings
from digitlab.store import db
from digitlab.store.testing_pg import PostgresServer, free_port
from tests.conftest import MNIST_DIR

runner = CliRunner()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "is not a URL"),
        ("mysql://user@localhost/digitlab", "unsupported database 'mysql'"),
        ("postgresql+psycopg://postgres@127.0.0.1:{port}/digitlab", "cannot connect"),
        ("postgresql://nobody@127.0.0.1:{port}/digitlab", "cannot connect"),
        ("sqlite:////dev/null/digitlab.db", "cannot create the folder"),
        ("sqlite:///{tmp}/not-a-database.db", "file is not a database"),
    ],
)
def test_a_wrong_or_unreachable_url_is_one_line_and_exit_1(
    url: str, message: str, monkeypatch: pytest.MonkeyPatch, model_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "not-a-database.db").write_bytes(b"some other file " * 100)
    monkeypatch.setenv("DIGITLAB_DATABASE_URL", url.format(port=free_port(), tmp=tmp_path))
    monkeypatch.setenv("DIGITLAB_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("DIGITLAB_DATA_DIR", str(MNIST_DIR))
    for command in (["stats"], ["db", "upgrade"], ["score", "--dataset", "mnist"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1, (command, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), result.output
        assert message in lines[0]


def digitlab(settings: Settings, *args: str) -> subprocess.Popen[str]:
    """`digitlab ARGS` in a process of its own, as a user or a cron job runs it."""
    env = os.environ | {
        "DIGITLAB_DATA_DIR": str(MNIST_DIR),
        "DIGITLAB_MODEL_DIR": str(settings.model_dir),
        "DIGITLAB_DATABASE_URL": settings.database_url,
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "digitlab", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def table_counts(url: str) -> dict[str, int]:
    engine = db.make_engine(url)
    with engine.connect() as conn:
        found = {
            table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("models", "input_data", "predictions")
        }
        found["orphan_inputs"] = conn.execute(
            text(
                "SELECT count(*) FROM input_data i "
                "WHERE NOT EXISTS (SELECT 1 FROM predictions p WHERE p.input_id = i.id)"
            )
        ).scalar_one()
    engine.dispose()
    return found


def test_eight_concurrent_writers_store_exactly_what_they_report(cli_env: Settings) -> None:
    runs = [
        digitlab(cli_env, "score", "--dataset", "mnist", "--limit", str(40 + k)) for k in range(8)
    ]
    reported = 0
    for run in runs:
        out, _ = run.communicate(timeout=120)
        assert run.returncode == 0, out
        match = re.search(r"stored (\d+) predictions", out)
        assert match, out
        reported += int(match.group(1))
    assert reported == sum(40 + k for k in range(8))
    assert table_counts(cli_env.database_url) == {
        "models": 1,
        "input_data": reported,
        "predictions": reported,
        "orphan_inputs": 0,
    }


def wait_for_open_write(server: PostgresServer, timeout: float = 60) -> bool:
    """Until a digitlab session holds a transaction that has written rows."""
    dsn = f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres"
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            writing = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = 'digitlab' AND backend_xid IS NOT NULL"
            ).fetchone()
            if writing and writing[0]:
                return True
            time.sleep(0.005)
    return False


def test_the_server_going_away_mid_run_loses_nothing_committed(model_dir: Path) -> None:
    with PostgresServer.start() as server:  # its own: the shared one must survive
        url = server.create_database("x")
        settings = Settings(model_dir=model_dir, database_url=url, _env_file=None)  # type: ignore[call-arg]
        upgrade = digitlab(settings, "db", "upgrade")
        assert upgrade.wait(60) == 0
        first = digitlab(settings, "score", "--dataset", "mnist", "--limit", "100")
        assert first.wait(60) == 0

        run = digitlab(settings, "score", "--dataset", "mnist", "--split", "test")
        assert wait_for_open_write(server), "the scoring run never started writing"
        server.stop(mode="immediate")  # a crash, as far as the client can tell
        out, _ = run.communicate(timeout=60)

        assert run.returncode == 1, out
        assert "Traceback" not in out
        error = [line for line in out.splitlines() if line.startswith("error:")]
        assert len(error) == 1 and "rolled back" in error[0], out

        server.launch()
        counts = table_counts(settings.database_url)
        assert counts == {"models": 1, "input_data": 100, "predictions": 100, "orphan_inputs": 0}
