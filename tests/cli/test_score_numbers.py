"""`digitlab score --folder DIR --numbers` on real PNG files of MNIST test digits named by
their number, with the tiny linear ONNX model of the read tests: each file is stored as
POST /api/v1/read stores a reading, and the printed accuracy is that of the stored texts."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from digitlab.cli.main import app
from digitlab.config import Settings
from digitlab.data import Split
from digitlab.evaluation.numberpics import LAYOUTS, compose, png_bytes
from digitlab.inference.numbers import read_number
from digitlab.inference.predictor import Predictor
from digitlab.registry.versions import current_version
from digitlab.scoring.numbers import digit_accuracy, true_number
from digitlab.store import db
from digitlab.store.models import InputData, ModelRow, Prediction, Reading, ReadingDigit
from tests.utils.onnx_model import make_model

runner = CliRunner()
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def numbers_env(
    env: Settings, engine: Engine, db_url: str, mnist_train: Split, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """The read tests' model on `db_url` (SQLite or a real PostgreSQL, at the schema)."""
    make_model(env.model_dir, mnist_train)
    monkeypatch.setenv("DIGITLAB_DATABASE_URL", db_url)
    return env.model_copy(update={"database_url": db_url})


def write_numbers(folder: Path, mnist_test: Split) -> dict[str, str]:
    """Spaced numbers of MNIST test digits, named by their number; {file name: truth}."""
    folder.mkdir()
    rng = np.random.default_rng(3)
    names = {}
    for suffix, picks in ((".png", [0, 1, 2, 3]), ("_scan.png", [10, 11, 12, 13, 14, 15])):
        truth = "".join(str(int(mnist_test.labels[k])) for k in picks)
        picture = compose([mnist_test.images[k] for k in picks], LAYOUTS[0], rng)
        (folder / f"{truth}{suffix}").write_bytes(png_bytes(picture))
        names[f"{truth}{suffix}"] = truth
    return names


def test_true_number_is_the_leading_digits_of_the_name() -> None:
    assert true_number("2026.png") == "2026"
    assert true_number("0042_meter.jpg") == "0042"
    assert true_number("scan-2026.png") is None
    assert digit_accuracy("2026", "2026") == 1.0
    assert digit_accuracy("226", "2026") == 0.75  # one digit missed, not three
    assert digit_accuracy("", "2026") == 0.0


def test_every_file_is_stored_as_a_reading_with_its_digits_and_boxes(
    numbers_env: Settings, mnist_test: Split, tmp_path: Path
) -> None:
    folder = tmp_path / "numbers"
    truths = write_numbers(folder, mnist_test)
    (folder / "blank.png").write_bytes(png_bytes(np.zeros((60, 120), np.uint8)))
    (folder / "notes.txt").write_text("not an image, skipped")

    result = runner.invoke(app, ["score", "--folder", str(folder), "--numbers"])
    assert result.exit_code == 0, result.output

    version = current_version(numbers_env.model_dir)
    # What `digitlab read` and the API read in each file, with the same model.
    predictor = Predictor(numbers_env.model_dir)
    expected = {
        name: read_number((folder / name).read_bytes(), predictor.predict)
        for name in [*truths, "blank.png"]
    }
    engine = db.make_engine(numbers_env.database_url)
    with db.transaction(engine) as s:
        readings = {
            r.source: (r, v)
            for r, v in s.execute(
                select(Reading, ModelRow.version).join(ModelRow, ModelRow.id == Reading.model_id)
            ).all()
        }
        assert sorted(readings) == sorted(f"file:{n}" for n in expected)
        for name, reading in expected.items():
            row, row_version = readings[f"file:{name}"]
            assert row_version == version
            assert row.text == reading.text and row.original == (folder / name).read_bytes()
            digits = s.execute(
                select(ReadingDigit, Prediction)
                .join(Prediction, Prediction.id == ReadingDigit.prediction_id)
                .where(ReadingDigit.reading_id == row.id)
                .order_by(ReadingDigit.position)
            ).all()
            assert [(d.x, d.y, d.width, d.height) for d, _ in digits] == [
                r.box for r in reading.digits
            ]
            assert "".join(str(p.label) for _, p in digits) == row.text
            assert {p.model_id for _, p in digits} <= {row.model_id}
            inputs = s.scalars(
                select(InputData.source).where(InputData.source == f"reading:{row.id}")
            )
            assert len(list(inputs)) == len(row.text)
    engine.dispose()
    # One box per digit drawn; the blank picture is a stored reading with no number.
    assert [len(expected[n].text) for n in truths] == [len(t) for t in truths.values()]
    assert expected["blank.png"].text == ""

    exact = sum(expected[n].text == t for n, t in truths.items())
    per_digit = sum(digit_accuracy(expected[n].text, t) for n, t in truths.items()) / 2
    out = " ".join(result.output.split())
    assert f"stored 3 readings of model {version}" in out
    assert "no number: 1; failed: 0" in out
    assert re.search(r"\(\d+\.\d ms per reading\)", out)
    assert f"exact numbers {exact / 2:.2%} ({exact} of 2 named by their number)" in out
    assert f"per digit {per_digit:.2%}" in out


@SQLITE_ONLY
def test_a_damaged_file_is_reported_stores_nothing_and_the_rest_go_on(
    numbers_env: Settings, mnist_test: Split, tmp_path: Path
) -> None:
    folder = tmp_path / "numbers"
    truths = write_numbers(folder, mnist_test)
    (folder / "1234.png").write_bytes(b"\x89PNG not really")

    result = runner.invoke(app, ["score", "--folder", str(folder), "--numbers"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "1234.png" in errors[0]
    assert "stored 2 readings" in result.output and "failed: 1" in result.output
    assert "of 2 named by their number" in result.output  # the damaged one is not counted

    engine = db.make_engine(numbers_env.database_url)
    with db.transaction(engine) as s:
        sources = set(s.scalars(select(Reading.source)))
        inputs = s.scalar(select(func.count()).select_from(InputData))
    engine.dispose()
    assert sources == {f"file:{n}" for n in truths}
    assert inputs == sum(len(t) for t in truths.values())  # one per digit read, none more


@SQLITE_ONLY
@pytest.mark.parametrize(
    "args",
    [["score", "--numbers"], ["score", "--numbers", "--dataset", "mnist"]],
)
def test_numbers_without_a_folder_is_one_line(numbers_env: Settings, args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.output.startswith("error:") and "--folder" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
