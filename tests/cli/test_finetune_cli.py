"""`digitlab train --extra DIR --extra-weight W --from VERSION`: the options reach the
model card and `models show`, and every wrong input is one line before anything trains."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from digitlab.config import Settings
from digitlab.data import Split
from digitlab.registry.versions import CARD_FILE
from tests.cli.test_cli import assert_one_line_error, run
from tests.utils.corrections import make_corrections


@pytest.fixture
def corrections(tmp_path: Path, mnist_test: Split) -> Path:
    return make_corrections(tmp_path / "corrections", mnist_test, train=30, heldout=10)


def versions(settings: Settings) -> list[str]:
    return sorted(p.name for p in settings.model_dir.iterdir() if p.is_dir())


def test_fine_tune_with_extra_images_and_show_the_lineage(env: Settings, corrections: Path) -> None:
    code, out = run("train", "--dry-run")
    assert code == 0, out
    (parent,) = versions(env)

    code, out = run(
        "train", "--from", parent, "--extra", str(corrections), "--extra-weight", "1.5",
        "--dry-run",
    )  # fmt: skip
    assert code == 0, out
    assert f"starting from model {parent}" in out and "extra: 30 images" in out
    child = next(v for v in versions(env) if v != parent)
    assert child.endswith("-mnist-finetune")  # the default recipe with --from
    card = json.loads((env.model_dir / child / CARD_FILE).read_text())
    assert card["config"]["parent"] == parent and card["config"]["extra_weight"] == 1.5
    assert card["lineage"]["parent"] == parent
    extra = card["lineage"]["extra"]
    assert extra["images"] == 30 and extra["weight"] == 1.5 and 30 <= extra["samples"] <= 60
    negatives = card["verdict"]["negatives"]["samples_per_epoch"]  # the 11th output's
    assert card["dataset"]["train_size"] == 55_000 + extra["samples"] + negatives

    code, out = run("models", "show", child)
    assert code == 0, out
    rows = {line.split("│")[1].strip(): line.split("│")[2] for line in out.splitlines()[2:-1]}
    assert parent in rows["fine-tuned from"]
    samples = extra["samples"]
    assert f"30 images, weight 1.5 ({samples} samples, 40 feedback ids)" in rows["extra images"]


def test_an_empty_train_part_trains_as_without_it_and_says_so(
    env: Settings, tmp_path: Path, mnist_test: Split
) -> None:
    folder = make_corrections(tmp_path / "only-heldout", mnist_test, train=0, heldout=5)
    code, out = run("train", "--dry-run", "--extra", str(folder))
    assert code == 0, out
    assert "has no train images; training without them" in out
    card = json.loads((env.model_dir / versions(env)[0] / CARD_FILE).read_text())
    negatives = card["verdict"]["negatives"]["samples_per_epoch"]
    assert card["dataset"]["train_size"] == 55_000 + negatives
    assert card["lineage"]["extra"]["images"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--extra-weight", "0"], "--extra-weight must be > 0"),
        (["--extra-weight", "-1.5"], "--extra-weight must be > 0"),
        (["--epochs", "0"], "--epochs 0 needs --from VERSION"),
    ],
)
def test_bad_training_options_exit_2(
    env: Settings, corrections: Path, args: list[str], message: str
) -> None:
    code, out = run("train", "--extra", str(corrections), *args)
    assert code == 2
    assert_one_line_error(out, message)


def test_wrong_extra_folders_and_parents_are_one_line_before_a_run(
    env: Settings, corrections: Path
) -> None:
    (corrections / "heldout-labels-idx1-ubyte.gz").write_bytes(b"changed")
    fake = env.model_dir / "20261128-000000-mnist-fast"
    fake.mkdir(parents=True)
    (fake / CARD_FILE).write_text("{}")  # a card, but no model.pt
    cases = [
        (["--extra", str(corrections.parent / "absent")], "absent: no such folder"),
        (["--extra", str(corrections)], "is not the manifest's"),
        (["--from", "nope"], "no model version 'nope'"),
        (["--from", fake.name], f"model {fake.name} has no model.pt"),
    ]
    for args, message in cases:
        code, out = run("train", "--dry-run", *args)
        assert code == 1, (args, out)
        assert_one_line_error(out, message)
    # Refused before a run was recorded: the run database was never even opened.
    assert not Path(env.database_url.removeprefix("sqlite:///")).exists()
    assert versions(env) == [fake.name]
