"""Every file in examples/ runs: the client and the curl session against a real served
app on 127.0.0.1 (a tiny ONNX model, SQLite), the notebook-style script end to end."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from digitlab.config import Settings
from digitlab.data import Split
from tests.conftest import MNIST_DIR, ROOT
from tests.utils.onnx_model import make_model
from tests.utils.served import Served, serving

EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, mnist_train: Split) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("examples")
    settings = Settings(
        data_dir=MNIST_DIR,
        model_dir=root / "models",
        report_dir=root / "reports",
        database_url=f"sqlite:///{root / 'digitlab.db'}",
        _env_file=None,  # type: ignore[call-arg]
    )
    make_model(settings.model_dir, mnist_train)
    with serving(settings, root) as service:
        yield service


@pytest.fixture
def digits(tmp_path: Path, mnist_test: Split) -> Path:
    """Five MNIST test digits as PNG files, as a user would have them."""
    folder = tmp_path / "digits"
    folder.mkdir()
    for k in range(5):
        Image.fromarray(mnist_test.images[k]).save(folder / f"digit-{k}.png")
    (folder / "notes.txt").write_text("not an image: the client skips it")
    return folder


def stored(served: Served) -> int:
    answer = httpx.get(f"{served.url}/api/v1/predictions", params={"limit": 500}).json()
    return len(answer["items"])


def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=300, env=os.environ | env, cwd=ROOT
    )


def test_client_prints_a_row_per_image_and_stores_them(served: Served, digits: Path) -> None:
    before = stored(served)
    done = run([sys.executable, str(EXAMPLES / "client.py"), str(digits), "--url", served.url])
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("digit-")]
    assert [row.split()[0] for row in rows] == [f"digit-{k}.png" for k in range(5)]
    for row in rows:
        _, digit, confidence, version, prediction_id = row.split()
        assert 0 <= int(digit) <= 9 and 0 < float(confidence) <= 1
        assert version == "20261127-000000-mnist-linear" and int(prediction_id) > 0
    assert "5 of 5 images recognised and stored" in done.stdout
    assert stored(served) == before + 5


def test_client_says_which_image_was_refused(served: Served, digits: Path) -> None:
    (digits / "broken.png").write_bytes(b"\x89PNG not really")
    done = run([sys.executable, str(EXAMPLES / "client.py"), str(digits), "--url", served.url])
    assert done.returncode == 1
    assert re.search(r"^broken\.png\s+refused: 4\d\d: ", done.stdout, re.MULTILINE)
    assert "5 of 6 images recognised and stored" in done.stdout


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_session_runs_every_step(served: Served, digits: Path, tmp_path: Path) -> None:
    before = stored(served)
    script = EXAMPLES / "curl-session.sh"
    done = run(["bash", str(script), served.url, str(digits / "digit-0.png")], TMPDIR=str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"prediction_id"' in done.stdout and "20261127-000000-mnist-linear" in done.stdout
    assert list(tmp_path.glob("seen-*.png")), "the image the model saw was not saved"
    assert stored(served) == before + 2  # the JSON prediction and the upload
    # The correction's answer (FeedbackOut) names the first prediction and a new label.
    answer = json.loads(done.stdout.split("== correct it", 1)[1].splitlines()[1])
    first = json.loads(done.stdout.split("== predict, as JSON (base64)\n", 1)[1].splitlines()[0])
    assert answer["prediction_id"] == first["prediction_id"]
    assert answer["label"] == (first["prediction"] + 1) % 10


def test_curl_session_stops_on_a_failing_step(served: Served, tmp_path: Path) -> None:
    not_an_image = tmp_path / "x.png"
    not_an_image.write_bytes(b"hello")
    done = run(["bash", str(EXAMPLES / "curl-session.sh"), served.url, str(not_an_image)])
    assert done.returncode != 0
    assert "predict, as a multipart upload" not in done.stdout


def test_notebook_trains_evaluates_and_plots(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "example"
    done = run(
        [sys.executable, str(EXAMPLES / "train_tiny.py"), "--out", str(out), "--dry-run"],
        DIGITLAB_DATA_DIR=str(MNIST_DIR),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"test accuracy \d+\.\d\d% on 10,000 images", done.stdout)
    assert len(re.findall(r"^  \d: recall", done.stdout, re.MULTILINE)) == 10
    figure = out / "confusion.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(figure).size[0] > 100
    assert len(list((out / "models").glob("*-mnist-fast"))) == 1
