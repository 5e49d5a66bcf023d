"""Reading images out of a request: multipart `file` parts or JSON with base64, checked
before anything is decoded or stored."""

from __future__ import annotations

import base64
import binascii
import json
import re
import sys
from dataclasses import dataclass

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from digitlab.api.errors import BadInputError
from digitlab.api.schemas import MAX_BATCH, BatchIn, ImageIn
from digitlab.inference.preprocess import MAX_DECODED_PIXELS, decoded_pixels

_CONTROL = re.compile(r"[\x00-\x1F\x7F]")
DATA_URL = re.compile(r"^data:[\w.+/-]*(;[\w=.+-]+)*;base64,", re.IGNORECASE)
EXAMPLE = '{"image": "<base64 PNG>"} as JSON, or a multipart form with a `file` part'
BATCH_EXAMPLE = (
    '{"images": [{"image": "<base64 PNG>"}, ...]} as JSON, or a multipart form with one '
    "`file` part per image"
)
# The pixels one request may decode, all its images together: the work a request costs
# is bounded, not only its bytes (256 tiny PNGs of a few KB can each hold 4 megapixels).
# Four of the largest pictures, or 256 of 250x250.
MAX_REQUEST_PIXELS = 4 * MAX_DECODED_PIXELS


@dataclass(frozen=True)
class Upload:
    data: bytes
    label: int | None
    source: str


def decode_base64(text: str, where: str) -> bytes:
    payload = DATA_URL.sub("", text.strip(), count=1)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise BadInputError(f"{where}: not valid base64") from None
    if not data:
        raise BadInputError(f"{where}: the image is empty")
    return data


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for problem in exc.errors():
        where = ".".join(str(p) for p in problem["loc"]) or "body"
        parts.append(f"{where}: {problem['msg']}")
    return "; ".join(parts)


async def _json_object(request: Request, example: str) -> dict[str, object]:
    body = await request.body()
    if not body:
        raise BadInputError(f"the request body is empty; send {example}")
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInputError(f"the body is not valid JSON ({exc}); send {example}") from None
    except RecursionError:  # `[[[[...` a few thousand deep: the parser's stack runs out
        raise BadInputError(f"the JSON is nested too deeply; send {example}") from None
    except ValueError:  # Python's limit on int(str): a number of more than 4,300 digits
        raise BadInputError(
            f"the JSON holds a number of more than {sys.get_int_max_str_digits():,} digits;"
            f" send {example}"
        ) from None
    if not isinstance(payload, dict):
        raise BadInputError(f"the body is JSON but not an object; send {example}")
    return payload


def _form_label(value: object) -> int | None:
    if value is None or value == "":
        return None
    # One ASCII digit: str.isdigit() also takes "²" and "٣".
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]", value.strip()):
        raise BadInputError(f"true_label: {value!r} is not a digit 0..9")
    return int(value)


def _source(filename: str | None) -> str:
    # The name a client gave its file, kept as the input's source: control characters
    # (NUL, which PostgreSQL text cannot hold) become `?`, the same on both stores.
    name = _CONTROL.sub("?", filename or "file")
    return f"upload:{name}"


MAX_FORM_FIELDS = 1000


async def _form_files(request: Request, max_files: int) -> tuple[list[UploadFile], int | None]:
    wanted = (
        "one image in a `file` part"
        if max_files == 1
        else f"1 to {max_files} images, each in a `file` part"
    )
    try:
        # Text fields the route ignores are allowed (the schema does not forbid them), but
        # not without bound: the body limit caps their bytes, this their count.
        form = await request.form(max_files=max_files, max_fields=MAX_FORM_FIELDS)
    except HTTPException as exc:  # Starlette's parser: a broken form, or too many parts
        raise BadInputError(f"the form cannot be read: {exc.detail} Send {wanted}") from None
    files = [f for f in form.getlist("file") if isinstance(f, UploadFile)]
    if not files:
        raise BadInputError(f"the form has no `file` part with an image; send {wanted}")
    return files, _form_label(form.get("true_label"))


async def read_one(request: Request) -> Upload:
    """The image of a single-prediction request."""
    if _is_multipart(request, EXAMPLE):
        files, label = await _form_files(request, 1)
        return Upload(await files[0].read(), label, _source(files[0].filename))
    try:
        item = ImageIn.model_validate(await _json_object(request, EXAMPLE))
    except ValidationError as exc:
        raise BadInputError(_validation_message(exc)) from None
    return Upload(decode_base64(item.image, "image"), item.true_label, "api:json")


async def read_batch(request: Request) -> list[Upload]:
    """The images of a batch request, at most MAX_BATCH."""
    if _is_multipart(request, BATCH_EXAMPLE):
        files, _ = await _form_files(request, MAX_BATCH)
        return [Upload(await f.read(), None, _source(f.filename)) for f in files]
    payload = await _json_object(request, BATCH_EXAMPLE)
    images = payload.get("images")
    if isinstance(images, list):
        count = len(images)
        if count > MAX_BATCH:  # before validating 10,000 items
            raise BadInputError(
                f"{count} images in one request; at most {MAX_BATCH}: split the batch"
            )
        if not count:
            raise BadInputError(f"`images` is empty; send 1 to {MAX_BATCH} images")
    try:
        batch = BatchIn.model_validate(payload)
    except ValidationError as exc:
        raise BadInputError(_validation_message(exc)) from None
    return [
        Upload(decode_base64(item.image, f"images.{k}.image"), item.true_label, "api:json")
        for k, item in enumerate(batch.images)
    ]


def decoded_pixels_of(uploads: list[Upload]) -> int:
    """The pixels the images of a request decode to, read from their headers; a 413
    when a batch's are more than MAX_REQUEST_PIXELS (a single image has its own bound)."""
    total = sum(decoded_pixels(u.data) for u in uploads)
    if total > MAX_REQUEST_PIXELS:
        raise BadInputError(
            f"the {len(uploads)} images decode to {total / 1e6:.1f} megapixels together;"
            f" at most {MAX_REQUEST_PIXELS / 1e6:.1f} in one request: send fewer or smaller"
            " images per request",
            status=413,
        )
    return total


def _is_multipart(request: Request, example: str) -> bool:
    """Whether the body is a form; else it is read as JSON. No Content-Type is read as
    JSON too (older clients send none); any other type is a 415."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        return True
    if kind in ("", "application/json") or (
        kind.startswith("application/") and kind.endswith("+json")
    ):
        return False
    raise BadInputError(f"a {kind} body cannot be read; send {example}", status=415)
