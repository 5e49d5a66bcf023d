"""The CLI: every command listed, bad arguments give one readable line and a
non-zero exit, and the happy path works end to end on a dry-run model."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from digitlab.cli.main import app
from digitlab.config import Settings
from tests.conftest import require_package

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def assert_one_line_error(output: str, text: str) -> None:
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("error:") and text in lines[0], output


def test_help_lists_every_command() -> None:
    code, out = run("--help")
    assert code == 0
    for command in ("train", "evaluate", "models", "data", "run"):
        assert command in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--recipe", "turbo"], "unknown recipe 'turbo'"),
        (["train", "--dataset", "cifar10"], "unknown dataset 'cifar10'"),
        (["data", "verify", "--dataset", "svhn"], "unknown dataset 'svhn'"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(env: Settings, args: list[str], message: str) -> None:
    code, out = run(*args)
    assert code == 2
    assert_one_line_error(out, message)


def test_out_of_range_option_is_a_usage_error(env: Settings) -> None:
    code, out = run("train", "--epochs", "0")
    assert code == 2
    assert "Traceback" not in out and "--epochs" in out


def test_evaluate_without_a_model_says_to_train_one(env: Settings) -> None:
    code, out = run("evaluate")
    assert code == 1
    assert_one_line_error(out, "train one with `digitlab train`")


def test_unknown_version_names_the_known_ones(env: Settings) -> None:
    code, out = run("models", "use", "nope")
    assert code == 1
    assert_one_line_error(out, "no model version 'nope'")


def test_invalid_version_id_is_refused(env: Settings) -> None:
    code, out = run("models", "show", "../../etc")
    assert code == 1
    assert_one_line_error(out, "not a valid model version id")


def test_data_verify_on_missing_files(env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGITLAB_DATA_DIR", str(env.model_dir / "no-data"))
    code, out = run("data", "verify")
    assert code == 1
    assert_one_line_error(out, "not found")


def test_train_evaluate_and_list_on_a_dry_run(env: Settings) -> None:
    code, out = run("train", "--dry-run")
    assert code == 0, out
    versions = [p.name for p in env.model_dir.iterdir() if p.is_dir()]
    assert len(versions) == 1
    version = versions[0]

    code, out = run("models")
    assert code == 0 and version in out and "*" in out

    code, out = run("evaluate")
    assert code == 0, out
    report = env.report_dir / version
    assert sorted(p.name for p in report.iterdir()) == [
        "confusion.png",
        "curves.png",
        "metrics.json",
        "misclassified.png",
    ]
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["count"] == 10000
    assert sum(map(sum, metrics["confusion_matrix"])) == 10000
    assert len(metrics["per_class"]) == 10

    code, out = run("train", "--dry-run", "--if-missing")
    assert code == 0 and "not training" in out
    assert len([p for p in env.model_dir.iterdir() if p.is_dir()]) == 1


def test_run_trains_when_no_model_exists_then_reuses_it(
    env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import digitlab.ml.recipes as recipes

    # The main job trains the fast recipe; a dry run keeps this test quick.
    monkeypatch.setitem(recipes.RECIPES, "fast", recipes.RECIPES["fast"].replace(dry_run=True))
    # --no-serve: the service part is tested in tests/api/test_serve_cli.py.
    code, out = run("run", "--no-serve")
    assert code == 0, out
    assert "test accuracy" in out and "serving on" not in out
    code, _ = run("run", "--no-serve")
    assert code == 0
    assert len([p for p in env.model_dir.iterdir() if p.is_dir()]) == 1


def test_fashion_mnist_trains_through_the_same_commands(env: Settings) -> None:
    require_package(env.fashion_data_dir, "dataset-fashion-mnist")
    code, out = run("train", "--dataset", "fashion-mnist", "--dry-run")
    assert code == 0, out
    (version,) = [p for p in env.model_dir.iterdir() if p.is_dir()]
    card = json.loads((version / "model.json").read_text())
    assert card["dataset"]["name"] == "fashion-mnist"
    assert card["dataset"]["checksums"]["t10k-images-idx3-ubyte.gz"].startswith("5b4141f0")
