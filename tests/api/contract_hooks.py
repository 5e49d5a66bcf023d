"""What the fuzzer draws for an image: the schema can only say "base64" and "binary", and
the service rightly answers 422 to bytes that are not an image, so a schema-valid case
carries a real image. Imported by tests/api/test_contract.py; for the CLI:

    SCHEMATHESIS_HOOKS=tests.api.contract_hooks st run http://127.0.0.1:8000/openapi.json
"""

from __future__ import annotations

import base64
import io

import numpy as np
import schemathesis
from hypothesis import strategies as st
from PIL import Image


def _image(seed: int, fmt: str) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (28, 28), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt)
    return out.getvalue()


IMAGES = [_image(seed, fmt) for seed, fmt in enumerate(("PNG", "JPEG", "PNG", "BMP"))]

schemathesis.openapi.format("binary", st.sampled_from(IMAGES))
schemathesis.openapi.format(
    "byte", st.sampled_from([base64.b64encode(data).decode() for data in IMAGES])
)
