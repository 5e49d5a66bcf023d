"""Bad input sent through urllib over a real socket to `digitlab serve`: every kind gets a
4xx with a JSON `detail` a user can act on (never a 500, a traceback or a dropped
connection) and nothing is stored. test_bad_input.py covers the same ground in-process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from digitlab.store.testing_pg import PostgresServer
from tests.api.conftest import b64, counts, png, served_on_postgres
from tests.api.test_bad_input import huge_png
from tests.utils.served import Served, urllib_post

BOUNDARY = "digitlab-test-boundary"
DIGIT = np.zeros((28, 28), np.uint8)
DIGIT[6:22, 12:16] = 255  # a "1"
GOOD = b64(png(DIGIT))
TRUNCATED = png(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8))[:500]


@pytest.fixture(scope="module")
def served(
    pg_server: PostgresServer, linear_models: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("bad-input")
    with served_on_postgres(pg_server, linear_models, folder) as served:
        yield served


def as_json(value: object) -> tuple[bytes, str]:
    return json.dumps(value).encode(), "application/json"


def multipart(*parts: tuple[str, str | None, bytes]) -> tuple[bytes, str]:
    """A form of (name, filename or None for a plain field, content) parts."""
    out = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        out += content + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode(), f"multipart/form-data; boundary={BOUNDARY}"


ONE = "/api/v1/predict"
BATCH = "/api/v1/predict/batch"
FEEDBACK = "/api/v1/predictions/1/feedback"
JSON_TYPE = "application/json"

CASES: dict[str, tuple[str, tuple[bytes, str], int, str]] = {
    "empty body": (ONE, (b"", JSON_TYPE), 422, "empty"),
    "not JSON": (ONE, (b"{nope", JSON_TYPE), 422, "not valid JSON"),
    "not UTF-8": (ONE, (b'{"image": "\xff\xfe"}', JSON_TYPE), 422, "not valid JSON"),
    "nested 100,000 deep": (ONE, (b"[" * 100_000, JSON_TYPE), 422, "nested"),
    "a JSON list": (ONE, as_json([GOOD]), 422, "not an object"),
    "a JSON string": (ONE, as_json(GOOD), 422, "not an object"),
    "JSON null": (ONE, as_json(None), 422, "not an object"),
    "no image field": (ONE, as_json({"picture": GOOD}), 422, "image"),
    "image a number": (ONE, as_json({"image": 123}), 422, "image"),
    "image a list": (ONE, as_json({"image": [GOOD]}), 422, "image"),
    "label a word": (ONE, as_json({"image": GOOD, "true_label": "seven"}), 422, "true_label"),
    "label 11": (ONE, as_json({"image": GOOD, "true_label": 11}), 422, "true_label"),
    "label -1": (ONE, as_json({"image": GOOD, "true_label": -1}), 422, "true_label"),
    "label 2.5": (ONE, as_json({"image": GOOD, "true_label": 2.5}), 422, "true_label"),
    "base64 garbage": (ONE, as_json({"image": "not base64 at all!"}), 422, "base64"),
    "base64, not ASCII": (ONE, as_json({"image": "ééé"}), 422, "base64"),
    "data URL of garbage": (ONE, as_json({"image": "data:image/png;base64,%%%"}), 422, "base64"),
    "empty image": (ONE, as_json({"image": ""}), 422, "empty"),
    "text, not an image": (ONE, as_json({"image": b64(b"hello, this is text")}), 422, "PNG"),
    "truncated PNG": (ONE, as_json({"image": b64(TRUNCATED)}), 422, "truncated"),
    "0x0 PNG": (ONE, as_json({"image": b64(huge_png(0, 0))}), 422, "image"),
    "decompression bomb": (ONE, as_json({"image": b64(huge_png(30000, 30000))}), 413,
                           "too large"),
    "plain text type": (ONE, (b"hello", "text/plain"), 415, "text/plain body cannot be read"),
    "a PNG as the body": (ONE, (png(DIGIT), "image/png"), 415, "image/png body cannot be read"),
    "form without file": (ONE, multipart(("other", "x.png", png(DIGIT))), 422, "`file`"),
    "form, empty file": (ONE, multipart(("file", "x.png", b"")), 422, "empty"),
    "form, text file": (ONE, multipart(("file", "x.txt", b"just text")), 422, "PNG"),
    "form, label 11": (ONE, multipart(("file", "x.png", png(DIGIT)), ("true_label", None, b"11")),
                       422, "true_label"),
    "form, two files": (ONE, multipart(("file", "a.png", png(DIGIT)),
                                       ("file", "b.png", png(DIGIT))), 422,
                        "maximum number of files is 1"),
    "form without boundary": (ONE, (b"garbage", "multipart/form-data"), 422, "boundary"),
    "form, broken body": (ONE, (b"--x\r\ngarbage", f"multipart/form-data; boundary={BOUNDARY}"),
                          422, "multipart"),
    "form, bomb": (ONE, multipart(("file", "b.png", huge_png(30000, 30000))), 413, "too large"),
    "batch of 257": (BATCH, as_json({"images": [{"image": GOOD}] * 257}), 422, "at most 256"),
    "form batch of 257": (BATCH, multipart(*[("file", f"{k}.png", png(DIGIT)) for k in range(257)]),
                          422, "maximum number of files is 256"),
    "form batch of 300": (BATCH, multipart(*[("file", f"{k}.png", png(DIGIT)) for k in range(300)]),
                          422, "maximum number of files is 256"),
    "empty batch": (BATCH, as_json({"images": []}), 422, "empty"),
    "images not a list": (BATCH, as_json({"images": GOOD}), 422, "images"),
    "batch, a JSON list": (BATCH, as_json([{"image": GOOD}]), 422, "not an object"),
    "batch, one bad": (BATCH, as_json({"images": [{"image": GOOD}, {"image": b64(b"x")}]}), 422,
                       "image 1:"),
    "feedback, not JSON": (FEEDBACK, (b"{nope", JSON_TYPE), 422, "JSON"),
    "feedback, nested 100,000 deep": (FEEDBACK, (b"[" * 100_000, JSON_TYPE), 422,
                                      "nested too deeply"),
    "feedback, label 11": (FEEDBACK, as_json({"label": 11}), 422, "label"),
    "feedback, no prediction": (FEEDBACK, as_json({"label": 1}), 404, "no prediction 1"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_over_urllib_is_a_4xx_and_stores_nothing(served: Served, case: str) -> None:
    path, (body, content_type), status, words = CASES[case]
    before = counts(served.settings)
    answer = urllib_post(served.url + path, body, {"Content-Type": content_type})
    assert answer.status == status, answer.body
    assert answer.headers["content-type"] == "application/json"
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and words.lower() in detail.lower(), detail
    assert "Traceback" not in detail
    assert counts(served.settings) == before


def test_a_good_image_over_urllib_is_stored(served: Served) -> None:
    """The probes above fail for their own reasons, not because nothing could pass."""
    before = counts(served.settings)
    body, content_type = as_json({"image": GOOD})
    answer = urllib_post(served.url + ONE, body, {"Content-Type": content_type})
    assert answer.status == 200, answer.body
    assert counts(served.settings) == (before[0] + 1, before[1] + 1)
