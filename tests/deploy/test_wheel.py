"""What `pip install digitlab` gives a user: the wheel built from pyproject.toml, installed
into a fresh venv (not editable, the source tree not importable), migrates a fresh
PostgreSQL database and serves every page, static file and a stored prediction."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from PIL import Image

from digitlab.data import Split
from digitlab.store.testing_pg import PostgresServer, free_port
from tests.conftest import MNIST_DIR, ROOT
from tests.utils.onnx_model import make_model
from tests.utils.served import wait_ready

pytestmark = pytest.mark.timeout(400)
PACKAGE = ROOT / "src" / "digitlab"
# Every file the package reads at run time; a new kind of file must be added here and
# to [tool.setuptools.package-data].
DATA_FILES = sorted(
    p.relative_to(PACKAGE.parent).as_posix()
    for p in PACKAGE.rglob("*")
    if p.is_file() and p.suffix not in {".py", ".pyc"} and "__pycache__" not in p.parts
)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)]
    subprocess.run(pip, check=True, capture_output=True)
    return next(out.glob("digitlab-*.whl"))


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel and its dependencies, the way a user installs it."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    install = [str(root / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
    # Without PYTHONPATH: a source tree on it (PYTHONPATH=src, whose egg-info the wheel
    # build just wrote) makes pip take digitlab as installed and skip the wheel.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run([*install, str(dist)], capture_output=True, text=True, env=clean)
    assert done.returncode == 0, done.stderr[-3000:]
    return root


def test_the_wheel_and_sdist_carry_every_data_file(dist: Path, tmp_path: Path) -> None:
    assert {"digitlab/web/static/app.css", "digitlab/web/templates/base.html"} <= set(DATA_FILES)
    assert set(DATA_FILES) <= set(zipfile.ZipFile(dist).namelist())
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "-o", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    with tarfile.open(next(tmp_path.glob("digitlab-*.tar.gz"))) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {f"src/{name}" for name in DATA_FILES} <= names


def run(venv: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(venv / "bin" / "digitlab"), *args], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def served(
    venv: Path, pg_server: PostgresServer, mnist_train: Split, tmp_path: Path
) -> Iterator[tuple[str, str, dict[str, str]]]:
    """`digitlab db upgrade` then `digitlab serve` from the venv, run outside the source
    tree; yields the base URL, the model version and the environment."""
    version = make_model(tmp_path / "models", mnist_train)
    port = free_port()
    url = pg_server.create_database("wheel_test")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIGITLAB_", "PYTHON"))}
    env |= {
        "DIGITLAB_DATABASE_URL": url,
        "DIGITLAB_MODEL_DIR": str(tmp_path / "models"),
        "DIGITLAB_REPORT_DIR": str(tmp_path / "reports"),
        "DIGITLAB_DATA_DIR": str(MNIST_DIR),
        "DIGITLAB_PORT": str(port),
    }
    origin = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import digitlab; print(digitlab.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert origin.startswith(str(venv)), f"digitlab imported from {origin}, not the wheel"
    run(venv, env, "db", "upgrade")
    process = subprocess.Popen(
        [str(venv / "bin" / "digitlab"), "serve"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(port, process)
        yield f"http://127.0.0.1:{port}", version, env
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_the_installed_wheel_migrates_serves_and_stores(
    served: tuple[str, str, dict[str, str]], mnist_test: Split
) -> None:
    base, version, env = served
    png = io.BytesIO()
    Image.fromarray(mnist_test.images[0]).save(png, format="PNG")
    r = httpx.post(
        f"{base}/api/v1/predict", json={"image": base64.b64encode(png.getvalue()).decode()}
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["model_version"] == version
    dsn = env["DIGITLAB_DATABASE_URL"].replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT p.label, i.original FROM predictions p JOIN input_data i ON i.id = p.input_id"
            " WHERE p.id = %s",
            (answer["prediction_id"],),
        ).fetchone()
    assert row is not None and row[0] == answer["prediction"] and row[1] == png.getvalue()

    statics = [f"/static/{n.split('/static/', 1)[1]}" for n in DATA_FILES if "/static/" in n]
    pages = ["/", "/history", "/models", "/login", "/docs", "/openapi.json", "/metrics"]
    figures = [f"/models/{version}/curves.png", f"/models/{version}/confusion.png"]
    for path in pages + statics + figures:
        r = httpx.get(base + path, timeout=60)
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:300]}"
        assert r.content, path
