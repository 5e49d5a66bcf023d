"""Every kind of bad input gets a 4xx with a JSON message a user can act on, never a 500,
and nothing is stored."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from digitlab.app import create_app
from digitlab.config import Settings
from digitlab.data import Split
from tests.api.conftest import b64, counts, png


def huge_png(width: int, height: int) -> bytes:
    """A valid PNG header and a short all-black stream: a decompression bomb's shape."""
    import struct

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    row = b"\x00" + b"\x00" * width
    stream = zlib.compress(row * 64, 9)  # only the first rows: the size is the point
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", stream) + chunk(b"IEND", b"")
    )


def truncated_png(mnist_test: Split) -> bytes:
    out = io.BytesIO()
    Image.fromarray(mnist_test.images[0]).resize((300, 300)).save(out, format="PNG")
    return out.getvalue()[: len(out.getvalue()) // 2]


CASES = {
    "empty body": ({"content": b"", "headers": {"content-type": "application/json"}}, 422,
                   "empty"),
    "not JSON": ({"content": b"{nope", "headers": {"content-type": "application/json"}}, 422,
                 "not valid JSON"),
    "no image field": ({"json": {"picture": "x"}}, 422, "image"),
    "bad base64": ({"json": {"image": "not base64 at all!"}}, 422, "base64"),
    "not an image": ({"json": {"image": b64(b"hello, this is text")}}, 422, "PNG"),
    "label 11": ({"json": {"image": b64(png(np.zeros((28, 28), np.uint8))), "true_label": 11}},
                 422, "true_label"),
    "empty file": ({"files": {"file": ("x.png", b"", "image/png")}}, 422, "empty"),
    "no file part": ({"files": {"other": ("x.png", b"abc", "image/png")}}, 422, "`file`"),
    "20000x20000": ({"json": {"image": b64(huge_png(20000, 20000))}}, 413, "too large"),
    "9000 wide": ({"json": {"image": b64(huge_png(9000, 100))}}, 413, "9000x100"),
    "bomb, multipart": ({"files": {"file": ("b.png", huge_png(30000, 30000), "image/png")}},
                        413, "too large"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_a_4xx_and_stores_nothing(
    client: TestClient, settings_api: Settings, case: str
) -> None:
    kwargs, status, words = CASES[case]
    r = client.post("/api/v1/predict", **kwargs)  # type: ignore[arg-type]
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    detail = r.json()["detail"]
    assert isinstance(detail, str) and words.lower() in detail.lower(), detail
    assert counts(settings_api) == (0, 0)


def test_truncated_image(client: TestClient, settings_api: Settings, mnist_test: Split) -> None:
    r = client.post("/api/v1/predict", json={"image": b64(truncated_png(mnist_test))})
    assert r.status_code == 422 and "truncated" in r.json()["detail"], r.text
    assert counts(settings_api) == (0, 0)


def test_body_over_the_limit(tmp_path: Path, settings_api: Settings) -> None:
    small = settings_api.model_copy(update={"max_upload_bytes": 10_000})
    with TestClient(create_app(small), raise_server_exceptions=False) as client:
        r = client.post("/api/v1/predict", files={"file": ("big.png", b"\0" * 20_000)})
        assert r.status_code == 413 and "10,000-byte limit" in r.json()["detail"]
        # A streamed body with no declared length is cut off as well.
        chunks = iter([b'{"image": "', b"A" * 20_000, b'"}'])
        r = client.post(
            "/api/v1/predict", content=chunks, headers={"content-type": "application/json"}
        )
        assert r.status_code == 413, r.text
    assert counts(settings_api) == (0, 0)


def test_the_default_limit_is_5_mb(client: TestClient, settings_api: Settings) -> None:
    assert settings_api.max_upload_bytes == 5 * 1024 * 1024
    r = client.post("/api/v1/predict", json={"image": "A" * (5 * 1024 * 1024)})
    assert r.status_code == 413


def test_batch_of_10000_and_an_empty_batch(
    client: TestClient, settings_api: Settings, mnist_test: Split
) -> None:
    item = {"image": b64(png(mnist_test.images[0]))}
    r = client.post("/api/v1/predict/batch", json={"images": [item] * 10_000})
    assert r.status_code == 422 and "at most 256" in r.json()["detail"], r.text
    r = client.post("/api/v1/predict/batch", json={"images": []})
    assert r.status_code == 422 and "empty" in r.json()["detail"]
    assert counts(settings_api) == (0, 0)


def test_one_bad_image_in_a_batch_stores_none(
    client: TestClient, settings_api: Settings, mnist_test: Split
) -> None:
    good = {"image": b64(png(mnist_test.images[0]))}
    r = client.post("/api/v1/predict/batch", json={"images": [good, {"image": b64(b"junk")}]})
    assert r.status_code == 422 and r.json()["detail"].startswith("image 1:"), r.text
    assert counts(settings_api) == (0, 0)


def test_bad_query_and_path_values(client: TestClient) -> None:
    assert client.get("/api/v1/predictions?label=11").status_code == 422
    assert "label" in client.get("/api/v1/predictions?label=11").json()["detail"]
    assert client.get("/api/v1/predictions/abc").status_code == 422
    assert client.get("/api/v1/predictions/999999").status_code == 404
    r = client.post("/api/v1/predictions/1/feedback", json={"label": 11})
    assert r.status_code == 422 and "label" in r.json()["detail"]
    assert client.get("/nowhere").json() == {"detail": "Not Found"}
