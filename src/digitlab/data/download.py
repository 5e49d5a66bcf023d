"""Fetch missing dataset files from public mirrors, verified before they land.

Each file is tried on every mirror in order, with retries; bytes stream into a
temporary file beside the target, and only a file whose checksum matches is
renamed into place (atomic on one filesystem), so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TransferSpeedColumn,
)

from digitlab.config import Settings
from digitlab.data.catalog import DatasetSpec, FileSpec, dataset_dirs, find_file, verified_content
from digitlab.data.idx import DataError

CHUNK = 1 << 16


def ensure_files(
    spec: DatasetSpec,
    settings: Settings,
    *,
    mirrors: list[str] | None = None,
    retries: int = 3,
    backoff: float = 1.0,
    quiet: bool = False,
) -> Path:
    """Download every file of `spec` that is not present; returns the download folder."""
    target = dataset_dirs(spec, settings)[0]
    missing = [f for kind, f in spec.files.items() if find_file(spec, kind, settings) is None]
    if not missing:
        return target
    sources = mirrors or settings.mirrors or list(spec.mirrors)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create data folder {target}: {exc.strerror}") from exc
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        disable=quiet,
    ) as progress:
        for f in missing:
            download_file(f, target, sources, progress, retries=retries, backoff=backoff)
    return target


def download_file(
    f: FileSpec,
    target: Path,
    mirrors: list[str],
    progress: Progress,
    *,
    retries: int,
    backoff: float,
) -> Path:
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + f.name
        for attempt in range(1, retries + 1):
            try:
                return fetch_verified(url, f, target, progress)
            except DataError as exc:  # served, but wrong bytes: another try won't help
                failures.append(f"{url}: {exc}")
                break
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                reason = getattr(exc, "reason", None) or exc
                failures.append(f"{url} (try {attempt}): {reason}")
                if attempt < retries:
                    time.sleep(backoff * 2 ** (attempt - 1))
    tried = "\n  ".join(failures)
    raise DataError(
        f"could not download {f.name} from any mirror:\n  {tried}\n"
        f"Offline? Copy the four {f.name.split('-')[0]}* IDX files from a machine with internet "
        f"into {target}, or point DIGITLAB_DATA_DIR at a folder that has them."
    )


def fetch_verified(url: str, f: FileSpec, target: Path, progress: Progress) -> Path:
    task = progress.add_task(f.name, total=None)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{f.name}.", suffix=".part", dir=target)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=30) as resp:
            length = resp.headers.get("Content-Length")
            progress.update(task, total=int(length) if length else None)
            while chunk := resp.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                progress.advance(task, len(chunk))
        final = target / f.name
        if digest.hexdigest() != f.gz_sha256:
            # No published .gz checksum (or a re-compressed copy): check the content.
            try:
                verified_content(tmp, f)
            except DataError:
                raise DataError(
                    "checksum mismatch: the mirror served a corrupted or different file"
                ) from None
        tmp.replace(final)
        if not progress.disable:  # a line that stays, for logs where the bar never shows
            line = f"{f.name}: {final.stat().st_size:,} bytes from {url}, verified"
            progress.console.print(line, soft_wrap=True, markup=False, highlight=False)
        return final
    finally:
        tmp.unlink(missing_ok=True)
        progress.remove_task(task)
