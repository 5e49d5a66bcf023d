"""`digitlab read FILE...` on real PNG files of numbers, with a real (tiny, linear) ONNX
model: the boxes found are checked here; how well digits are read, in bench/read_numbers.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from digitlab.cli.main import app
from digitlab.config import Settings
from digitlab.data import Split
from digitlab.evaluation.numberpics import LAYOUTS, compose, png_bytes
from tests.utils.onnx_model import make_model

runner = CliRunner()


@pytest.fixture
def env_with_model(env: Settings, mnist_train: Split) -> Settings:
    make_model(env.model_dir, mnist_train)
    return env


def test_read_prints_each_number_and_fails_on_a_bad_file(
    env_with_model: Settings, mnist_test: Split, tmp_path: Path
) -> None:
    folder = tmp_path / "numbers"
    folder.mkdir()
    truths = {}
    rng = np.random.default_rng(3)
    for name, picks in (("a.png", [0, 1, 2, 3]), ("b.png", [10, 11, 12, 13, 14, 15])):
        picture = compose([mnist_test.images[k] for k in picks], LAYOUTS[0], rng)
        (folder / name).write_bytes(png_bytes(picture))
        truths[name] = "".join(str(int(mnist_test.labels[k])) for k in picks)
    result = runner.invoke(app, ["read", str(folder)])
    assert result.exit_code == 0, result.output
    lines = dict(line.split("\t")[:2] for line in result.output.splitlines())
    assert list(lines) == [str(folder / n) for n in truths]
    # One digit per digit drawn: the linear model may misread some, not miss any.
    assert [len(text) for text in lines.values()] == [len(t) for t in truths.values()]

    (tmp_path / "junk.png").write_bytes(b"not a picture")
    bad = runner.invoke(app, ["read", str(tmp_path / "junk.png")])
    assert bad.exit_code == 1
    assert "not an image file" in bad.output
