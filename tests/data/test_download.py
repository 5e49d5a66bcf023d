"""The downloader against real HTTP servers on localhost: one serving the original
files, one serving a corrupted copy, and a mirror that is down."""

from __future__ import annotations

import functools
import http.server
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from digitlab.config import Settings
from digitlab.data import DataError, load_split
from digitlab.data.catalog import MNIST
from digitlab.data.download import ensure_files


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(folder: Path) -> Iterator[str]:
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def good_mirror(settings: Settings) -> Iterator[str]:
    yield from serve(settings.data_dir)


@pytest.fixture
def corrupt_mirror(settings: Settings, tmp_path: Path) -> Iterator[str]:
    folder = tmp_path / "corrupt-mirror"
    folder.mkdir()
    for f in MNIST.files.values():
        data = bytearray((settings.data_dir / f.name).read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle
        (folder / f.name).write_bytes(bytes(data))
    yield from serve(folder)


@pytest.fixture
def dead_mirror() -> str:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_downloads_and_verifies_into_an_empty_folder(
    settings: Settings, tmp_path: Path, good_mirror: str, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "fresh"
    fresh = settings.model_copy(update={"data_dir": target, "mirrors": [good_mirror]})
    split = load_split("mnist", "test", fresh)
    assert split.images.shape == (10000, 28, 28)
    assert sorted(p.name for p in target.iterdir()) == sorted(f.name for f in MNIST.files.values())
    # One line per file stays in the output (container logs have no progress bar).
    out = capsys.readouterr().out
    for f in MNIST.files.values():
        assert f"{f.name}: " in out and f"from {good_mirror}{f.name}, verified" in out, out


def test_skips_a_dead_and_a_corrupt_mirror(
    settings: Settings, tmp_path: Path, dead_mirror: str, corrupt_mirror: str, good_mirror: str
) -> None:
    target = tmp_path / "fresh"
    fresh = settings.model_copy(update={"data_dir": target})
    ensure_files(
        MNIST,
        fresh,
        mirrors=[dead_mirror, corrupt_mirror, good_mirror],
        retries=2,
        backoff=0.01,
        quiet=True,
    )
    for f in MNIST.files.values():
        assert (target / f.name).read_bytes() == (settings.data_dir / f.name).read_bytes()
    assert not list(target.glob(".*")), "no temporary files left behind"


def test_all_mirrors_failing_leaves_nothing_and_says_what_to_do(
    settings: Settings, tmp_path: Path, dead_mirror: str, corrupt_mirror: str
) -> None:
    target = tmp_path / "fresh"
    fresh = settings.model_copy(update={"data_dir": target})
    with pytest.raises(DataError) as info:
        ensure_files(
            MNIST, fresh, mirrors=[dead_mirror, corrupt_mirror], retries=2, backoff=0.01, quiet=True
        )
    message = str(info.value)
    assert "could not download train-images-idx3-ubyte.gz" in message
    assert "(try 2)" in message  # the dead mirror was retried
    assert "checksum mismatch" in message  # the corrupt one was detected
    assert "Offline?" in message and str(target) in message
    assert list(target.iterdir()) == [], "a corrupt download must never land"


def test_present_files_are_not_downloaded_again(settings: Settings, dead_mirror: str) -> None:
    # Every file is present, so the dead mirror is never contacted.
    assert ensure_files(MNIST, settings, mirrors=[dead_mirror], retries=1, quiet=True) == (
        settings.data_dir
    )


def test_partial_folder_gets_only_the_missing_file(
    settings: Settings, tmp_path: Path, good_mirror: str
) -> None:
    target = tmp_path / "partial"
    target.mkdir()
    keep = MNIST.files["train-images"].name
    shutil.copy(settings.data_dir / keep, target / keep)
    before = (target / keep).stat().st_mtime_ns
    fresh = settings.model_copy(update={"data_dir": target})
    ensure_files(MNIST, fresh, mirrors=[good_mirror], quiet=True)
    assert (target / keep).stat().st_mtime_ns == before
    assert len(list(target.iterdir())) == 4
