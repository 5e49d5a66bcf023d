"""`digitlab score --shard K/N` on both backends: the N shards of a run store exactly what
one unsharded run stores, each image once; a finished shard run again stores nothing;
bad --shard and --job values are refused before anything is loaded or stored."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import delete, select
from typer.testing import CliRunner

from digitlab.cli.main import app
from digitlab.config import Settings
from digitlab.data import Split
from digitlab.scoring.sharding import JOB_CHARS, Shard, default_job, parse_shard
from digitlab.store import db
from digitlab.store.models import InputData, Prediction, ScoreShard
from digitlab.store.testing_pg import free_port
from tests.conftest import MNIST_DIR
from tests.store.test_scoring import write_images

runner = CliRunner()


def stored_sources(url: str) -> list[str]:
    """Every stored input's source, duplicates kept, each with its prediction."""
    engine = db.make_engine(url)
    with db.transaction(engine) as s:
        sources = s.scalars(
            select(InputData.source).join(Prediction, Prediction.input_id == InputData.id)
        ).all()
        assert len(sources) == len(s.scalars(select(InputData.id)).all())  # none orphaned
    engine.dispose()
    return list(sources)


def markers(url: str) -> list[tuple[str, int, int, int]]:
    engine = db.make_engine(url)
    with db.transaction(engine) as s:
        rows = s.scalars(select(ScoreShard).order_by(ScoreShard.shard)).all()
        found = [(r.job, r.shard, r.shards, r.images) for r in rows]
    engine.dispose()
    return found


def forget_rows(url: str) -> None:
    engine = db.make_engine(url)
    with db.transaction(engine) as s:
        s.execute(delete(Prediction))
        s.execute(delete(InputData))
    engine.dispose()


@pytest.mark.parametrize(("total", "count"), [(0, 1), (1, 3), (10, 3), (1001, 3), (60000, 7)])
def test_blocks_are_contiguous_disjoint_and_cover_everything(total: int, count: int) -> None:
    blocks = [Shard(k, count).block(total) for k in range(count)]
    assert [i for block in blocks for i in block] == list(range(total))
    assert max(map(len, blocks)) - min(map(len, blocks)) <= 1


def test_the_default_job_is_shared_by_shards_and_differs_between_runs() -> None:
    key = default_job("dataset:mnist/test", 1000, "v1")
    assert key == default_job("dataset:mnist/test", 1000, "v1")
    others = {
        default_job("dataset:mnist/train", 1000, "v1"),
        default_job("dataset:mnist/test", None, "v1"),
        default_job("dataset:mnist/test", 1000, "v2"),
        key,
    }
    assert len(others) == 4
    deep = [default_job(f"folder:/{'d' * 300}/{k}", None, "v1") for k in range(2)]
    assert all(len(k) == JOB_CHARS for k in deep) and deep[0] != deep[1]
    assert parse_shard(" 2/3 ") == Shard(2, 3)


def test_the_shards_of_a_split_store_what_one_run_stores(cli_env: Settings) -> None:
    url = cli_env.database_url
    result = runner.invoke(app, ["score", "--dataset", "mnist", "--limit", "1001"])
    assert result.exit_code == 0, result.output
    whole = stored_sources(url)
    assert len(whole) == len(set(whole)) == 1001 and markers(url) == []  # unsharded: none
    forget_rows(url)

    parts: list[set[str]] = []
    for k in range(3):
        args = ["score", "--dataset", "mnist", "--limit", "1001", "--shard", f"{k}/3"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        now = stored_sources(url)
        assert len(now) == len(set(now)), "a source stored twice"
        parts.append(set(now) - set().union(*parts))
        first, last = min(Shard(k, 3).block(1001)), max(Shard(k, 3).block(1001))
        assert f"shard {k}/3 of job " in result.output, result.output
        assert f"images {first} to {last}" in result.output, result.output
    assert [len(p) for p in parts] == [333, 334, 334]
    assert set().union(*parts) == set(whole)
    job = default_job("dataset:mnist/test", 1001, resolve_version(cli_env))
    assert markers(url) == [(job, 0, 3, 333), (job, 1, 3, 334), (job, 2, 3, 334)]


def resolve_version(settings: Settings) -> str:
    from digitlab.registry.versions import resolve

    return resolve(settings.model_dir).version


def test_the_shards_of_a_folder_split_it_by_file_name(
    cli_env: Settings, tmp_path: Path, mnist_test: Split
) -> None:
    names = write_images(tmp_path / "uploads", mnist_test.images[:5])
    folder = str(tmp_path / "uploads")
    got = []
    for k in (1, 0):  # any order: each shard is a fixed block of the sorted names
        result = runner.invoke(app, ["score", "--folder", folder, "--shard", f"{k}/2"])
        assert result.exit_code == 0, result.output
        got.append(sorted(stored_sources(cli_env.database_url)))
    files = [f"file:{n}" for n in sorted(names)]
    assert got == [files[2:], files]
    assert [m[3] for m in markers(cli_env.database_url)] == [2, 3]


def test_a_finished_shard_run_again_stores_nothing(cli_env: Settings) -> None:
    url = cli_env.database_url
    args = ["score", "--dataset", "mnist", "--limit", "600", "--shard", "1/2"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0 and "stored 300 predictions" in first.output, first.output
    before = stored_sources(url)

    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    lines = again.output.strip().splitlines()
    assert len(lines) == 1 and "already stored (300 images" in lines[0], again.output
    assert stored_sources(url) == before and len(markers(url)) == 1

    named = runner.invoke(app, [*args, "--job", "nightly"])  # another job: stored again
    assert named.exit_code == 0 and "stored 300 predictions" in named.output, named.output
    assert len(stored_sources(url)) == 600
    job = default_job("dataset:mnist/test", 600, resolve_version(cli_env))
    assert {m[0] for m in markers(url)} == {job, "nightly"}


def test_a_shard_with_no_images_is_recorded_as_done(cli_env: Settings) -> None:
    args = ["score", "--dataset", "mnist", "--limit", "1", "--shard", "0/2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and "no images" in result.output, result.output
    assert stored_sources(cli_env.database_url) == [] and markers(cli_env.database_url)[0][3] == 0
    result = runner.invoke(app, [*args[:-1], "1/2"])
    assert result.exit_code == 0 and "images 0 to 0" in result.output, result.output
    assert stored_sources(cli_env.database_url) == ["dataset:mnist/test/0"]


BAD = [
    (["--shard", "3/3"], "must be below N=3"),
    (["--shard", "-1/2"], "expected K/N"),
    (["--shard=-1/2"], "expected K/N"),
    (["--shard", "x"], "expected K/N"),
    (["--shard", "1/0"], "N must be between 1"),
    (["--shard", "1"], "expected K/N"),
    (["--shard", "0/2", "--job", "j" * (JOB_CHARS + 1)], "at most 200"),
    (["--shard", "0/2", "--job", " "], "must not be empty"),
    (["--job", "nightly"], "give --shard K/N too"),
]


@pytest.mark.parametrize(("args", "message"), BAD)
def test_bad_shard_arguments_store_nothing(
    cli_env: Settings, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["score", "--dataset", "mnist", "--limit", "10", *args])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines
    assert stored_sources(cli_env.database_url) == [] and markers(cli_env.database_url) == []


@pytest.mark.parametrize(("args", "message"), BAD[:2])
def test_bad_shard_arguments_are_refused_before_the_database_is_touched(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str], message: str
) -> None:
    # Neither a database nor a model: anything loaded first would fail with its own message.
    monkeypatch.setenv("DIGITLAB_DATABASE_URL", f"postgresql://x@127.0.0.1:{free_port()}/x")
    monkeypatch.setenv("DIGITLAB_MODEL_DIR", str(tmp_path / "no-models"))
    monkeypatch.setenv("DIGITLAB_DATA_DIR", str(MNIST_DIR))
    result = runner.invoke(app, ["score", "--dataset", "mnist", *args])
    assert result.exit_code == 2 and re.match(rf"error: .*{re.escape(message)}", result.output)
