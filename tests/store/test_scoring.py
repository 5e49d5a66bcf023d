"""Predict and record on both backends: bulk scoring of a split and of a folder of
image files, all-or-nothing on failure, the demo pipeline, and the two queries."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from digitlab.cli.main import app
from digitlab.config import Settings
from digitlab.data import Split
from digitlab.inference.runtime import OnnxClassifier
from digitlab.registry.publish import ensure_model
from digitlab.registry.versions import resolve
from digitlab.scoring.bulk import score
from digitlab.store import crud, db
from digitlab.store.models import InputData, ModelRow, Prediction

runner = CliRunner()


def counts(url: str) -> tuple[int, int]:
    engine = db.make_engine(url)
    with db.transaction(engine) as s:
        inputs = s.scalar(select(func.count()).select_from(InputData)) or 0
        predictions = s.scalar(select(func.count()).select_from(Prediction)) or 0
    engine.dispose()
    return inputs, predictions


def test_score_stores_every_input_and_prediction(
    engine: Engine, classifier: OnnxClassifier, mnist_test: Split
) -> None:
    model_id = ensure_model(engine, classifier.model, active=True)
    images, labels = mnist_test.images[:2500], [int(y) for y in mnist_test.labels[:2500]]
    result = score(
        engine, classifier, model_id, images,
        sources=[f"dataset:mnist/test/{i}" for i in range(2500)], labels=labels,
    )  # fmt: skip
    predicted = classifier.probabilities(images).argmax(axis=1)
    assert result.stored == result.labelled == 2500
    assert result.correct == int((predicted == mnist_test.labels[:2500]).sum())
    assert 0.7 < (result.accuracy or 0) < 0.95  # the fixture's linear model
    with db.transaction(engine) as s:
        rows = s.execute(
            select(InputData.source, InputData.image, Prediction.label, Prediction.model_id).join(
                Prediction, Prediction.input_id == InputData.id
            )
        ).all()
    assert len(rows) == 2500
    for source, image, label, row_model in rows:
        i = int(source.rsplit("/", 1)[1])
        assert image == images[i].tobytes() and label == predicted[i] and row_model == model_id


def test_a_failure_half_way_leaves_nothing_written(
    engine: Engine, classifier: OnnxClassifier, mnist_test: Split
) -> None:
    model_id = ensure_model(engine, classifier.model, active=True)
    labels: list[int | None] = [int(y) for y in mnist_test.labels[:2500]]
    labels[2200] = 11  # refused in the third chunk, after two were written
    progress: list[int] = []
    with pytest.raises(ValueError, match="label 11"):
        score(
            engine, classifier, model_id, mnist_test.images[:2500],
            sources=["x"] * 2500, labels=labels, on_progress=progress.append,
        )  # fmt: skip
    assert progress == [1000, 1000]
    assert counts(str(engine.url.render_as_string(hide_password=False))) == (0, 0)


def write_images(folder: Path, digits: np.ndarray) -> list[str]:
    """One file per format; every other one dark ink on white, as people draw."""
    folder.mkdir()
    names = []
    for k, suffix in enumerate(["png", "bmp", "gif", "tiff", "jpg"]):
        pixels = digits[k] if k % 2 == 0 else 255 - digits[k]
        name = f"{k}-digit.{suffix}"
        Image.fromarray(pixels).save(folder / name)
        names.append(name)
    (folder / "notes.txt").write_text("not an image, ignored")
    return names


def test_score_a_folder_of_image_files(
    cli_env: Settings, tmp_path: Path, mnist_test: Split
) -> None:
    names = write_images(tmp_path / "uploads", mnist_test.images[:5])
    result = runner.invoke(app, ["score", "--folder", str(tmp_path / "uploads")])
    assert result.exit_code == 0, result.output
    assert "stored 5 predictions" in result.output and "accuracy" not in result.output
    engine = db.make_engine(cli_env.database_url)
    with db.transaction(engine) as s:
        rows = {r.source: r for r in s.scalars(select(InputData))}
    assert sorted(rows) == sorted(f"file:{n}" for n in names)
    for k, name in enumerate(names):
        row = rows[f"file:{name}"]
        assert row.original == (tmp_path / "uploads" / name).read_bytes()
        stored = crud.image_from_bytes(row.image)
        if name.endswith(".jpg"):  # lossy: close, not equal
            assert np.abs(stored.astype(int) - mnist_test.images[k]).mean() < 8
        else:  # lossless formats come back exactly, inverted ones inverted back
            assert np.array_equal(stored, mnist_test.images[k])


def test_a_broken_image_file_stores_nothing(
    cli_env: Settings, tmp_path: Path, mnist_test: Split
) -> None:
    write_images(tmp_path / "uploads", mnist_test.images[:5])
    (tmp_path / "uploads" / "9-broken.png").write_bytes(b"\x89PNG not really")
    result = runner.invoke(app, ["score", "--folder", str(tmp_path / "uploads")])
    assert result.exit_code == 1
    assert result.output.startswith("error:") and "9-broken.png" in result.output
    assert "Traceback" not in result.output
    assert counts(cli_env.database_url) == (0, 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["score"], "either --dataset"),
        (["score", "--dataset", "mnist", "--folder", "."], "either --dataset"),
        (["score", "--dataset", "svhn"], "unknown dataset 'svhn'"),
        (["score", "--folder", "/nonexistent"], "not a folder"),
        (["score", "--dataset", "mnist", "--model", "nope"], "no model version 'nope'"),
    ],
)
def test_bad_score_arguments(cli_env: Settings, args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code in (1, 2)
    assert result.output.startswith("error:") and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1


def test_demo_stores_checks_predicts_and_records(cli_env: Settings) -> None:
    result = runner.invoke(app, ["demo", "--count", "3", "--seed", "7"])
    assert result.exit_code == 0, result.output
    version = resolve(cli_env.model_dir).version
    assert version in result.output and "bit for bit: ok" in result.output
    assert len(re.findall(r"dataset:mnist/test/\d+", result.output)) == 3
    engine = db.make_engine(cli_env.database_url)
    with db.transaction(engine) as s:
        models = s.scalars(select(ModelRow)).all()
        assert [(m.version, m.is_active) for m in models] == [(version, True)]
        preds = s.scalars(select(Prediction)).all()
        assert len(preds) == 3 and {p.model_id for p in preds} == {models[0].id}
        assert all(p.latency_ms > 0 for p in preds)


def test_score_then_list_and_count(cli_env: Settings, mnist_test: Split) -> None:
    result = runner.invoke(app, ["score", "--dataset", "mnist", "--limit", "300"])
    assert result.exit_code == 0, result.output
    match = re.search(r"accuracy [\d.]+% \((\d+) wrong of 300 labelled\)", result.output)
    assert match, result.output
    wrong = int(match.group(1))
    assert 0 < wrong < 100

    result = runner.invoke(app, ["predictions", "--wrong", "--limit", "1000"])
    assert result.exit_code == 0, result.output
    listed = re.findall(r"dataset:mnist/test/(\d+)", result.output)
    assert len(listed) == wrong

    result = runner.invoke(app, ["predictions", "--label", "3", "--limit", "5"])
    assert result.exit_code == 0
    assert len(re.findall(r"dataset:mnist/test/", result.output)) == 5

    version = resolve(cli_env.model_dir).version
    result = runner.invoke(app, ["predictions", "--model", version, "--limit", "2"])
    assert len(re.findall(r"dataset:mnist/test/", result.output)) == 2
    result = runner.invoke(app, ["predictions", "--model", "another-version"])
    assert result.exit_code == 0 and "no predictions match" in result.output

    result = runner.invoke(app, ["stats"])
    assert result.exit_code == 0, result.output
    assert f"({300 - wrong} of 300)" in result.output and "confusion" in result.output


def test_training_registers_its_version_when_a_database_is_configured(
    engine: Engine, db_url: str, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digitlab.cli.store import register_trained

    model = resolve(model_dir)
    configured = Settings(model_dir=model_dir, database_url=db_url, _env_file=None)  # type: ignore[call-arg]
    register_trained(model, configured, active=True)
    with db.transaction(engine) as s:
        assert s.scalars(select(ModelRow.version).where(ModelRow.is_active)).all() == [
            model.version
        ]

    monkeypatch.chdir(tmp_path)  # the default URL is relative: var/digitlab.db
    monkeypatch.delenv("DIGITLAB_DATABASE_URL", raising=False)
    register_trained(model, Settings(_env_file=None), active=True)  # type: ignore[call-arg]
    assert not (tmp_path / "var").exists()  # no database created as a side effect
