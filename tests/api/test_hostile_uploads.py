"""What a hostile or careless upload costs a real service process: a 65 KB PNG that would
decode to 64 MB is refused from its header (little memory, little CPU, and memory back
where it was after), a batch's pixels are bounded, crafted TIFFs and 5,000-digit JSON
numbers are 4xx, and anonymous predictions are rate-limited per client address when
DIGITLAB_ANONYMOUS_PREDICTIONS_PER_MINUTE is set (off by default)."""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from digitlab.store.testing_pg import PostgresServer
from tests.api.conftest import ADMIN_TOKEN, counts, png, ready_settings, served_on_postgres
from tests.api.hostile_files import FLOAT, RATIONAL, crafted_tiff, wavy_line, zero_png
from tests.utils.served import Served, serving

LABELLER_TOKEN = "l4beller-hostile-test"
PER_MINUTE = 3
SMALL = png(np.full((28, 28), 200, dtype=np.uint8))


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PeakRss:
    """The largest resident size of a process while the block runs, sampled every 5 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_mb(pid)
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch)

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.005)

    def __enter__(self) -> PeakRss:
        self._watcher.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._watcher.join()


def at_once(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    answers: list[Any] = [None] * len(calls)

    def run(k: int) -> None:
        answers[k] = calls[k]()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


@pytest.fixture(scope="module")
def served(linear_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`digitlab serve` on SQLite, with its defaults (no limit on predictions)."""
    folder = tmp_path_factory.mktemp("hostile")
    settings = ready_settings(folder, f"sqlite:///{folder / 'store.db'}", linear_models)
    with serving(settings, folder) as served:
        for _ in range(10):  # warm: the thread pool, the model, the first decodes
            httpx.post(f"{served.url}/api/v1/predict", files={"file": ("d.png", SMALL)})
        yield served


def post_file(url: str, data: bytes, name: str = "f.png") -> httpx.Response:
    return httpx.post(f"{url}/api/v1/predict", files={"file": (name, data)}, timeout=60)


def test_a_65_kb_png_of_4096_squared_costs_little_and_nothing_stays(
    served: Served, tmp_path: Path
) -> None:
    assert served.process is not None
    pid = served.process.pid
    data = zero_png(tmp_path, 4096).read_bytes()
    assert len(data) < 70_000
    post_file(served.url, data)  # the refusal's own code paths, once
    before, rss_before, cpu_before = counts(served.settings), rss_mb(pid), cpu_seconds(pid)
    with PeakRss(pid) as rss:
        singles = at_once([lambda: post_file(served.url, data)] * 4)
        batch = httpx.post(
            f"{served.url}/api/v1/predict/batch",
            files=[("file", (f"{k}.png", data)) for k in range(10)],
            timeout=60,
        )
    peak = rss.peak
    for answer in [*singles, batch]:
        assert answer.status_code == 413, answer.text
        assert "4096x4096" in answer.json()["detail"], answer.text
        assert "scale it down" in answer.json()["detail"]
    # 14 pictures of 64 MB each: before, four of them took the process from 171 to 731 MB.
    assert peak - rss_before < 40, (rss_before, peak)
    assert (cpu_seconds(pid) - cpu_before) / 5 < 0.2  # per request, all its images
    assert rss_mb(pid) - rss_before < 10
    assert counts(served.settings) == before


def test_pictures_of_noise_and_long_strokes_to_read_are_bounded(served: Served) -> None:
    """POST /api/v1/read cuts strokes into candidate digits: noise makes hundreds of groups
    of strokes, a long wavy line thousands of candidates. Both are a 422 without a
    mask of the whole picture per group (it took 300 MB for one 1024x1024 noise) or
    seconds of cutting (2.8 s for the line)."""
    assert served.process is not None
    pid = served.process.pid
    rng = np.random.default_rng(0)
    noise = [png(rng.integers(0, 256, (1024, 1024), dtype=np.uint8)) for _ in range(4)]
    line = wavy_line(2048)
    url = f"{served.url}/api/v1/read"

    def read(data: bytes) -> httpx.Response:
        return httpx.post(url, files={"file": ("n.png", data)}, timeout=60)

    read(line)  # the refusal's own code paths, once
    before, rss_before, cpu_before = counts(served.settings), rss_mb(pid), cpu_seconds(pid)
    lines = [read(line) for _ in range(5)]
    line_cpu = (cpu_seconds(pid) - cpu_before) / 5
    with PeakRss(pid) as rss:
        noisy = at_once([lambda d=d: read(d) for d in noise])
    peak = rss.peak
    for answer in lines:
        assert answer.status_code == 422, answer.text
        assert "too many strokes" in answer.json()["detail"]
    for answer in noisy:
        assert answer.status_code == 422, answer.text
        assert "at most 12 can be read at once" in answer.json()["detail"]
    assert line_cpu < 0.2, line_cpu
    assert peak - rss_before < 100, (rss_before, peak)
    assert counts(served.settings) == before


def test_memory_goes_back_after_large_pictures_that_are_allowed(
    served: Served, tmp_path: Path
) -> None:
    """2048x2048 (4 megapixels) is the largest a picture may decode to: it is predicted,
    and the process's memory returns to its level afterwards."""
    assert served.process is not None
    pid = served.process.pid
    data = zero_png(tmp_path, 2048).read_bytes()
    rss_before = rss_mb(pid)  # before the first large picture: its level, not the one after
    for _ in range(3):
        answers = at_once([lambda: post_file(served.url, data)] * 4)
        assert [a.status_code for a in answers] == [200] * 4, answers[0].text
    time.sleep(0.5)
    # Before, the process stayed 50-100 MB larger: glibc kept each thread's freed blocks.
    assert rss_mb(pid) - rss_before < 20, (rss_before, rss_mb(pid))


def test_the_pixels_of_a_batch_are_bounded(served: Served, tmp_path: Path) -> None:
    data = zero_png(tmp_path, 2048).read_bytes()  # 16 KB, 4.2 megapixels
    before = counts(served.settings)
    answer = httpx.post(
        f"{served.url}/api/v1/predict/batch",
        files=[("file", (f"{k}.png", data)) for k in range(5)],
        timeout=60,
    )
    assert answer.status_code == 413, answer.text
    assert "5 images decode to 21.0 megapixels" in answer.json()["detail"]
    assert "fewer or smaller images" in answer.json()["detail"]
    assert counts(served.settings) == before
    fine = httpx.post(
        f"{served.url}/api/v1/predict/batch",
        files=[("file", (f"{k}.png", data)) for k in range(4)],
        timeout=60,
    )
    assert fine.status_code == 200, fine.text


@pytest.mark.parametrize(
    "tiff",
    [
        crafted_tiff(strip_offsets_type=RATIONAL),
        crafted_tiff(strip_offsets_type=FLOAT),
        crafted_tiff(xmp_short=True),
    ],
    ids=["strip-offsets-rational", "strip-offsets-float", "xmp-short"],
)
def test_crafted_tiffs_are_bad_input(served: Served, tiff: bytes) -> None:
    before = counts(served.settings)
    for answer in (
        post_file(served.url, tiff, "crafted.tif"),
        httpx.post(
            f"{served.url}/api/v1/predict/batch",
            files=[("file", ("ok.png", SMALL)), ("file", ("crafted.tif", tiff))],
        ),
    ):
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        assert "broken image file" in detail, detail
        assert "Traceback" not in detail and "IFDRational" not in detail
    assert counts(served.settings) == before


def test_a_well_formed_tiff_of_the_same_layout_is_read(served: Served) -> None:
    """The crafted files differ from a readable one only in their tags' types."""
    assert post_file(served.url, crafted_tiff(), "plain.tif").status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/predict", "/api/v1/predict/batch"])
def test_a_json_number_of_5000_digits_is_bad_input(served: Served, path: str) -> None:
    number = b"7" * 5000
    image = b'{"image": "' + base64.b64encode(SMALL) + b'"}'
    bodies = [
        b'{"image": "x", "extra": ' + number + b"}",
        b'{"images": [' + image + b"], " + b'"n": [' + number + b"]}",
        b'{"image": "x", "true_label": ' + number + b"}",
    ]
    before = counts(served.settings)
    for body in bodies:
        answer = httpx.post(
            f"{served.url}{path}", content=body, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 422, answer.text
        assert "more than 4,300 digits" in answer.json()["detail"]
    assert counts(served.settings) == before


def test_predictions_are_not_limited_by_default(served: Served) -> None:
    answers = [post_file(served.url, SMALL) for _ in range(2 * PER_MINUTE + 4)]
    assert {a.status_code for a in answers} == {200}


@pytest.fixture(scope="module")
def limited(
    pg_server: PostgresServer, linear_models: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """`digitlab serve` on PostgreSQL with DIGITLAB_ANONYMOUS_PREDICTIONS_PER_MINUTE set."""
    folder = tmp_path_factory.mktemp("limited")
    env = {
        "DIGITLAB_ANONYMOUS_PREDICTIONS_PER_MINUTE": str(PER_MINUTE),
        "DIGITLAB_LABELLER_TOKEN": LABELLER_TOKEN,
        "DIGITLAB_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    with served_on_postgres(pg_server, linear_models, folder, **env) as served:
        yield served


def client_at(address: str) -> httpx.Client:
    """A client whose connections come from `address` (any 127.x.y.z is this machine)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


def test_anonymous_predictions_are_limited_per_client_address(limited: Served) -> None:
    url = f"{limited.url}/api/v1/predict"
    with client_at("127.0.0.2") as first, client_at("127.0.0.3") as second:
        allowed = [first.post(url, files={"file": ("d.png", SMALL)}) for _ in range(PER_MINUTE)]
        assert [a.status_code for a in allowed] == [200] * PER_MINUTE
        before = counts(limited.settings)
        refused = first.post(url, files={"file": ("d.png", SMALL)})
        batch = first.post(f"{url}/batch", files={"file": ("d.png", SMALL)})
        for answer in (refused, batch):
            assert answer.status_code == 429, answer.text
            assert int(answer.headers["retry-after"]) >= 1
            assert set(answer.json()) == {"detail"}
            assert "too many predictions from this address" in answer.json()["detail"]
        assert counts(limited.settings) == before  # refused before the body was read
        # Another address has its own bucket.
        assert second.post(url, files={"file": ("d.png", SMALL)}).status_code == 200


def test_the_reference_routes_count_against_the_same_limit(limited: Served) -> None:
    """/predict and /upload, the reference project's routes, are no way around the limit:
    refused in their own shapes (JSON `error`, a page), with Retry-After, nothing stored."""
    with client_at("127.0.0.6") as client:
        image = base64.b64encode(SMALL).decode()
        allowed = [
            client.post(f"{limited.url}/predict", json={"image": image}) for _ in range(PER_MINUTE)
        ]
        assert [a.status_code for a in allowed] == [200] * PER_MINUTE
        before = counts(limited.settings)
        refused = client.post(f"{limited.url}/predict", json={"image": image})
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["retry-after"]) >= 1
        assert set(refused.json()) == {"error"}
        assert "too many predictions from this address" in refused.json()["error"]
        page = client.post(f"{limited.url}/upload", files={"image": ("d.png", SMALL)})
        assert page.status_code == 429
        assert int(page.headers["retry-after"]) >= 1
        assert page.headers["content-type"].startswith("text/html")
        assert "too many predictions from this address" in page.text
        # The limit is shared: /api/v1/predict is refused for this address too.
        api = client.post(f"{limited.url}/api/v1/predict", files={"file": ("d.png", SMALL)})
        assert api.status_code == 429
        assert counts(limited.settings) == before


@pytest.mark.parametrize("token", [ADMIN_TOKEN, LABELLER_TOKEN], ids=["admin", "labeller"])
def test_labellers_and_admins_are_not_limited(limited: Served, token: str) -> None:
    url = f"{limited.url}/api/v1/predict"
    with client_at("127.0.0.4" if token == ADMIN_TOKEN else "127.0.0.5") as client:
        headers = {"Authorization": f"Bearer {token}"}
        answers = [
            client.post(url, files={"file": ("d.png", SMALL)}, headers=headers)
            for _ in range(PER_MINUTE + 3)
        ]
        assert {a.status_code for a in answers} == {200}
        anonymous = [client.post(url, files={"file": ("d.png", SMALL)}) for _ in range(4)]
        assert [a.status_code for a in anonymous][-1] == 429


def test_the_schema_declares_the_429(limited: Served) -> None:
    schema = httpx.get(f"{limited.url}/openapi.json").json()
    for path in ("/api/v1/predict", "/api/v1/predict/batch"):
        answer = schema["paths"][path]["post"]["responses"]["429"]
        assert answer["$ref"] == "#/components/responses/TooManyRequests"
