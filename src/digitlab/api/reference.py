"""The reference project's own routes, answered as the reference answers them, so that
its client script and pages work unchanged against digitlab:

- `GET /health`: `{"status": "ok"}` while the process is up (its client checks it first);
- `POST /predict`: JSON `{"image": <base64>, "true_label": ...}` (or a form with the
  file in `file` or `image`), read leniently: base64 with line breaks, a `data:` prefix
  with or without `;base64`, `true_label` -1 (unknown) or a digit as a string. Its
  errors are 400 `{"error": "..."}` (a model or database that is not there: 503);
- `POST /upload`: an HTML form with the file in `image`, answered with a page.

Both predicting routes count against the anonymous prediction limit as /api/v1's do (a
way around it otherwise), answered 429 in their own shape, with Retry-After.

Only these routes are lenient; /api/v1 keeps its strict contract. They are left out of
the OpenAPI schema, which describes /api/v1 (docs/reference-compat.md describes these).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from digitlab.api import auth
from digitlab.api.deps import ServiceDep
from digitlab.api.errors import STORE_DOWN, BadInputError
from digitlab.api.predict import _predict, _results
from digitlab.api.predict_limit import refusal, wait_seconds
from digitlab.api.service import Service
from digitlab.api.uploads import Upload
from digitlab.inference.preprocess import ImageError, ImageTooLargeError
from digitlab.registry.versions import RegistryError
from digitlab.store.db import StoreError

log = logging.getLogger("digitlab.api")
router = APIRouter(include_in_schema=False)

# What the reference answers 400 (or 503) {"error": ...} for, not a 500.
BAD_REFERENCE_INPUT = (BadInputError, ImageError, RegistryError, StoreError)

# `data:image/png;base64,` or `data:image/png,`: the reference strips either.
DATA_PREFIX = re.compile(r"^\s*data:[^,]{0,200},", re.IGNORECASE)
WHITESPACE = re.compile(rb"\s+")
CONTROL = re.compile(r"[\x00-\x1F\x7F]")
UNKNOWN_LABEL = -1  # the reference's "no label"
USAGE = 'send {"image": "<base64 PNG>", "true_label": 0..9 or -1}'


def reference_label(value: object) -> int | None:
    """0..9 as a number or a string of one digit; -1, "", "-1" or null: unknown."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text in ("", "-1"):
            return None
        if re.fullmatch(r"[0-9]", text):  # ASCII only: not "²" or "٣"
            return int(text)
    elif type(value) is int and (value == UNKNOWN_LABEL or 0 <= value <= 9):  # not a bool
        return None if value == UNKNOWN_LABEL else value
    raise BadInputError("true_label must be a digit 0..9, or -1 for unknown", 400)


def reference_base64(value: object) -> bytes:
    """The image of a JSON body: base64 with any line breaks, after an optional `data:`
    prefix (with or without `;base64`)."""
    if not isinstance(value, str) or not value.strip():
        raise BadInputError(f"no image: {USAGE}", 400)
    try:
        payload = WHITESPACE.sub(b"", DATA_PREFIX.sub("", value, count=1).encode("ascii"))
        data = base64.b64decode(payload, validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise BadInputError("image: not valid base64", 400) from None
    if not data:
        raise BadInputError("image: the image is empty", 400)
    return data


async def _json_upload(request: Request) -> Upload:
    body = await request.body()
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # bad JSON, not UTF-8, a 5,000-digit number
        raise BadInputError(f"the body is not valid JSON; {USAGE}", 400) from None
    if not isinstance(payload, dict):
        raise BadInputError(f"the body is not a JSON object; {USAGE}", 400)
    data = reference_base64(payload.get("image"))
    return Upload(data, reference_label(payload.get("true_label")), "api:json")


async def _form_upload(request: Request, fields: tuple[str, ...]) -> Upload:
    try:
        form = await request.form(max_files=2, max_fields=20)
    except HTTPException as exc:  # Starlette's parser: a broken form
        raise BadInputError(f"the form cannot be read: {exc.detail}", 400) from None
    for name in fields:
        found = form.get(name)
        if isinstance(found, UploadFile):
            data = await found.read()
            if not data:
                raise BadInputError("the image file is empty", 400)
            filename = CONTROL.sub("?", found.filename or "file")
            label = form.get("true_label")
            return Upload(data, reference_label(label), f"upload:{filename}"[:200])
    raise BadInputError(f"the form has no image file (field `{fields[0]}`)", 400)


async def read_upload(request: Request, form_fields: tuple[str, ...]) -> Upload:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        return await _form_upload(request, form_fields)
    return await _json_upload(request)


def problem(exc: Exception) -> tuple[int, str]:
    """The reference's status and message for what went wrong (the log keeps the cause)."""
    if isinstance(exc, BadInputError):
        return exc.status, exc.message
    if isinstance(exc, ImageTooLargeError):
        return 413, str(exc)
    if isinstance(exc, ImageError):
        return 400, str(exc)
    if isinstance(exc, RegistryError):
        log.warning("no model: %s", exc)
        return 503, f"no model to serve: {exc.public}"
    log.warning("database error on a reference route: %s", exc)
    return 503, STORE_DOWN


async def predict_one(request: Request, service: Service, upload: Upload) -> dict[str, Any]:
    start = time.perf_counter()
    stored = await _predict(
        service, [upload], trusted=auth.labeller_or_admin(request, service.settings)
    )
    elapsed = (time.perf_counter() - start) * 1000
    return _results(stored, elapsed, service.settings)[0].model_dump()


def over_limit(request: Request, service: Service) -> tuple[str, dict[str, str]] | None:
    """The refusal and its Retry-After header when this address must wait before it
    predicts again (checked before the body is read), else None."""
    seconds = wait_seconds(request, service.settings)
    if not seconds:
        return None
    return refusal(seconds, service.settings), {"Retry-After": str(seconds)}


@router.get("/health")
def health() -> dict[str, str]:
    """The reference's liveness check: its client calls it before predicting."""
    return {"status": "ok"}


@router.post("/predict", name="predict_reference")
async def predict_reference(request: Request, service: ServiceDep) -> Response:
    """The reference's predict: lenient input, errors as 400 `{"error": ...}`."""
    if limited := over_limit(request, service):
        message, headers = limited
        return JSONResponse({"error": message}, status_code=429, headers=headers)
    try:
        upload = await read_upload(request, ("file", "image"))
        return JSONResponse(await predict_one(request, service, upload))
    except BAD_REFERENCE_INPUT as exc:
        status, message = problem(exc)
        return JSONResponse({"error": message}, status_code=status)
