"""POST /api/v1/predict and /api/v1/predict/batch (and the reference's POST /predict)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from digitlab.api import auth
from digitlab.api.auth import image_url
from digitlab.api.deps import API_PREFIX, ServiceDep
from digitlab.api.predict_limit import PredictionAllowed
from digitlab.api.responses import UPLOAD, responses
from digitlab.api.schemas import MAX_BATCH, BatchOut, ImageIn, PredictOut
from digitlab.api.service import Service, Stored
from digitlab.api.uploads import Upload, decoded_pixels_of, read_batch, read_one
from digitlab.config import Settings
from digitlab.inference.preprocess import ImageError, image_to_digit

# The prefix on the router itself: metrics label requests by the full route path.
router = APIRouter(prefix=API_PREFIX, tags=["predict"])
INLINE_DECODE_BYTES = 16 * 1024
INLINE_DECODE_PIXELS = 64 * 1024
# 429: too many predictions from this address without a token (see Retry-After); only
# where DIGITLAB_ANONYMOUS_PREDICTIONS_PER_MINUTE is set.
PREDICT_ERRORS = UPLOAD | responses(429)

_IMAGE_JSON = ImageIn.model_json_schema()
_LABEL = {"type": "integer", "minimum": 0, "maximum": 9, "description": "The right answer"}
_FILE = {"type": "string", "format": "binary", "description": "An image file (PNG, JPEG, ...)"}


def _body(json_schema: dict[str, Any], form_schema: dict[str, Any]) -> dict[str, Any]:
    # The routes read the body themselves (JSON or multipart), so OpenAPI is told here.
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": json_schema},
                "multipart/form-data": {"schema": form_schema},
            },
        }
    }


ONE_BODY = _body(
    _IMAGE_JSON,
    {
        "type": "object",
        "required": ["file"],
        "properties": {"file": _FILE, "true_label": _LABEL},
    },
)
BATCH_BODY = _body(
    {
        "type": "object",
        "required": ["images"],
        "properties": {
            "images": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_BATCH,
                "items": _IMAGE_JSON,
                "description": f"1 to {MAX_BATCH} images",
            }
        },
    },
    {
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_BATCH,
                "items": _FILE,
                "description": f"The `file` part repeated, up to {MAX_BATCH} times",
            }
        },
    },
)


def _digits(uploads: list[Upload]) -> np.ndarray[Any, np.dtype[np.uint8]]:
    digits = []
    for k, upload in enumerate(uploads):
        try:
            digits.append(image_to_digit(upload.data))
        except ImageError as exc:
            if len(uploads) == 1:
                raise
            raise type(exc)(f"image {k}: {exc}") from None
    return np.stack(digits)


async def _predict(service: Service, uploads: list[Upload], *, trusted: bool) -> Stored:
    # Everything decoded first: one bad image stores nothing of the batch. Small files
    # (a 28x28 PNG decodes in well under 0.1 ms) are decoded on the event loop, larger
    # ones in a worker thread so that they do not hold up other requests. Judged by the
    # pixels the headers promise too, not by bytes alone: 16 KB of PNG can hold 4
    # megapixels. A batch whose images decode to too many pixels is refused first (413).
    pixels = decoded_pixels_of(uploads)
    if pixels <= INLINE_DECODE_PIXELS and sum(len(u.data) for u in uploads) <= INLINE_DECODE_BYTES:
        digits = _digits(uploads)
    else:
        digits = await run_in_threadpool(_digits, uploads)
    given = [u.label for u in uploads]
    # With anonymous feedback off (DIGITLAB_ANONYMOUS_FEEDBACK_PER_MINUTE=0) a stranger's
    # label is not kept at all.
    keep_anonymous = not trusted and service.settings.anonymous_feedback_per_minute > 0
    batch, ids = await service.writer.submit(
        digits,
        sources=[u.source[:200] for u in uploads],
        labels=given if trusted else [None] * len(uploads),
        originals=[u.data for u in uploads],
        anonymous=given if keep_anonymous and any(x is not None for x in given) else None,
    )
    return Stored(batch, ids)


def _results(stored: Stored, latency_ms: float, settings: Settings) -> list[PredictOut]:
    probs, is_digit = stored.batch.probabilities, stored.batch.is_digit
    return [
        PredictOut(
            prediction=int(probs[k].argmax()),
            confidence=float(probs[k].max()),
            probabilities=[float(p) for p in probs[k]],
            is_digit=bool(is_digit[k]),
            input_data_id=input_id,
            prediction_id=prediction_id,
            model_version=stored.batch.model.version,
            latency_ms=latency_ms,
            image_url=image_url(settings, input_id),
        )
        for k, (input_id, prediction_id) in enumerate(stored.ids)
    ]


@router.post(
    "/predict",
    response_model=PredictOut,
    openapi_extra=ONE_BODY,
    responses=PREDICT_ERRORS,
    dependencies=[PredictionAllowed],
)
async def predict(request: Request, service: ServiceDep) -> PredictOut:
    """Predict the digit in one image; the input and the prediction are stored first."""
    start = time.perf_counter()
    upload = await read_one(request)
    stored = await _predict(
        service, [upload], trusted=auth.labeller_or_admin(request, service.settings)
    )
    return _results(stored, (time.perf_counter() - start) * 1000, service.settings)[0]


@router.post(
    "/predict/batch",
    response_model=BatchOut,
    openapi_extra=BATCH_BODY,
    responses=PREDICT_ERRORS,
    dependencies=[PredictionAllowed],
)
async def predict_batch(request: Request, service: ServiceDep) -> BatchOut:
    """Predict up to 256 images in one request, all stored in one transaction."""
    start = time.perf_counter()
    uploads = await read_batch(request)
    stored = await _predict(
        service, uploads, trusted=auth.labeller_or_admin(request, service.settings)
    )
    latency_ms = (time.perf_counter() - start) * 1000
    return BatchOut(
        model_version=stored.batch.model.version,
        predictions=_results(stored, latency_ms, service.settings),
        latency_ms=latency_ms,
    )
