"""scripts/system-packages, which `make run`, `make test` and .ci/run call: with nothing
missing it is silent; where it may not install (not root, no password-less sudo, no
apt-get, a Python too old) it stops with one line that says what to run. The cases that
would install are not run here: they would change this machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "system-packages"


def fake_bin(folder: Path, **programs: str) -> Path:
    """A folder of tiny shell programs, put first on PATH."""
    folder.mkdir()
    for name, body in programs.items():
        path = folder / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return folder


def run(job: str, python: str, path: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHON": python, "PATH": path}
    return subprocess.run(
        ["/bin/bash", str(SCRIPT), job], env=env, capture_output=True, text=True, timeout=30
    )


@pytest.fixture
def unprivileged(tmp_path: Path) -> str:
    """PATH for a user who is not root and whose sudo asks for a password."""
    folder = fake_bin(tmp_path / "bin", id="echo 1000", sudo="exit 1")
    return f"{folder}:{os.environ['PATH']}"


def test_nothing_missing_is_silent() -> None:
    done = run("run", sys.executable, os.environ["PATH"])
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_without_root_or_sudo_it_names_the_command(unprivileged: str) -> None:
    done = run("run", "/nonexistent/python3", unprivileged)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        "digitlab: 'make run' needs system packages; run: sudo apt-get update"
        " && sudo apt-get install -y --no-install-recommends python3 python3-venv\n"
    )


def test_a_python_without_venv_needs_python3_venv(tmp_path: Path, unprivileged: str) -> None:
    # A Python 3.11 that cannot import ensurepip, as Debian's python3 without python3-venv.
    python = tmp_path / "python3"
    python.write_text(
        f'#!/bin/sh\ncase "$2" in *ensurepip*) exit 1;; esac\nexec {sys.executable} "$@"\n'
    )
    python.chmod(0o755)
    done = run("run", str(python), unprivileged)
    assert done.returncode == 1
    assert done.stderr.endswith("install -y --no-install-recommends python3-venv\n")


def test_a_python_too_old_is_named(tmp_path: Path) -> None:
    folder = fake_bin(tmp_path / "bin", python3="[ \"$1\" = -V ] && echo 'Python 3.9.2'; exit 1")
    done = run("test", str(folder / "python3"), os.environ["PATH"])
    assert done.returncode == 1
    assert done.stderr == (
        "digitlab needs Python >= 3.11; "
        f"{folder}/python3 is Python 3.9.2. Install one and run: make test PYTHON=python3.11\n"
    )


def test_without_apt_get_it_names_the_packages(tmp_path: Path) -> None:
    folder = fake_bin(tmp_path / "bin", id="echo 0")  # PATH has no apt-get (nor anything else)
    done = run("run", "/nonexistent/python3", str(folder))
    assert done.returncode == 1
    assert done.stderr == (
        "digitlab: 'make run' needs these Debian packages (or your system's equivalents):"
        " python3 python3-venv\n"
    )
