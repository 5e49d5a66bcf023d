"""Versioned model folders and the pointer to the current default.

Layout of the model directory:
    <version>/model.onnx   the exported network (BatchNorm folded, dynamic batch)
    <version>/model.pt     the PyTorch state dict (for fine-tuning; serving never reads it)
    <version>/model.json   the model card
    CURRENT                the default version's id, replaced atomically
    .pointer.lock          taken while CURRENT follows the database (registry/database.py)

A version folder is built under a hidden temporary name and renamed into place
when complete, so a reader never sees half a model.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CURRENT_FILE = "CURRENT"
POINTER_LOCK_FILE = ".pointer.lock"
CARD_FILE = "model.json"
ONNX_FILE = "model.onnx"
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class RegistryError(Exception):
    """A model version is missing, malformed or cannot be made current.

    `str(exc)` names the files (for the log and the CLI); `public` says the same without
    any server path, for HTTP answers and pages."""

    def __init__(self, message: str, *, public: str | None = None) -> None:
        super().__init__(message)
        self.public = public or message


@dataclass(frozen=True)
class ModelVersion:
    version: str
    path: Path
    card: dict[str, Any]

    @property
    def onnx_path(self) -> Path:
        return self.path / ONNX_FILE


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def new_version_id(model_dir: Path, dataset: str, recipe: str, now: datetime | None = None) -> str:
    """Sortable and readable: 20261127-023012-mnist-fast (with -2, -3... on a clash)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{dataset}-{recipe}"
    version, n = base, 1
    while (model_dir / version).exists():
        n += 1
        version = f"{base}-{n}"
    return version


def staging_dir(model_dir: Path) -> Path:
    """A fresh hidden folder to build a version in before `publish` renames it."""
    model_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".staging-", dir=model_dir))


def publish(staging: Path, model_dir: Path, version: str) -> ModelVersion:
    target = model_dir / version
    staging.rename(target)  # atomic: the folder appears complete or not at all
    return load_version(model_dir, version)


def load_version(model_dir: Path, version: str) -> ModelVersion:
    if not VERSION_RE.match(version):
        raise RegistryError(f"{version!r} is not a valid model version id")
    path = model_dir / version
    card_path = path / CARD_FILE
    if not card_path.is_file():
        known = ", ".join(v.version for v in list_versions(model_dir)) or "none"
        raise RegistryError(
            f"no model version {version!r} in {model_dir} (known: {known})",
            public=f"no model version {version!r} (known: {known})",
        )
    try:
        card = json.loads(card_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RegistryError(
            f"{card_path}: unreadable model card ({exc})",
            public=f"model version {version!r}: its model card is unreadable",
        ) from exc
    return ModelVersion(version, path, card)


def list_versions(model_dir: Path) -> list[ModelVersion]:
    """Every complete version, oldest first."""
    if not model_dir.is_dir():
        return []
    found = [
        load_version(model_dir, p.name)
        for p in model_dir.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / CARD_FILE).is_file()
    ]
    return sorted(found, key=lambda v: (v.card.get("created_at", ""), v.version))


def current_version(model_dir: Path) -> str | None:
    pointer = model_dir / CURRENT_FILE
    if not pointer.is_file():
        return None
    return pointer.read_text().strip() or None


def set_current(model_dir: Path, version: str) -> ModelVersion:
    """Make `version` the default; the pointer is swapped with an atomic rename."""
    chosen = load_version(model_dir, version)
    fd, tmp = tempfile.mkstemp(prefix=".current-", dir=model_dir)
    with os.fdopen(fd, "w") as f:
        f.write(version + "\n")
    Path(tmp).replace(model_dir / CURRENT_FILE)
    return chosen


@contextmanager
def pointer_lock(model_dir: Path) -> Iterator[None]:
    """Held by whoever reads the active version from the database and then moves CURRENT
    to it: a promotion and the serving processes' watchers on one host. Without it a
    watcher that read the old version just before a promotion would move CURRENT back
    after the promotion had moved it forward."""
    model_dir.mkdir(parents=True, exist_ok=True)
    with (model_dir / POINTER_LOCK_FILE).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        yield


def resolve(model_dir: Path, version: str | None = None) -> ModelVersion:
    """`version`, or the current default when None."""
    if version is None:
        version = current_version(model_dir)
        if version is None:
            raise RegistryError(
                f"no model in {model_dir} yet; train one with `digitlab train`",
                public="no model in the model folder yet; train one with `digitlab train`",
            )
    return load_version(model_dir, version)


def verify_onnx(model: ModelVersion) -> None:
    """Refuse an ONNX file that is not the one its card describes."""
    expected = model.card.get("onnx", {}).get("sha256")
    actual = file_sha256(model.onnx_path)
    if expected != actual:
        raise RegistryError(
            f"{model.onnx_path}: SHA-256 {actual[:12]}... does not match the model card "
            f"({str(expected)[:12]}...); the file was changed or damaged",
            public=f"model version {model.version}: its ONNX file does not match its model"
            " card (changed or damaged)",
        )
