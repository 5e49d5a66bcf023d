"""The error answers every operation shares, declared once for the OpenAPI schema.

Every 4xx and 5xx body is an `ErrorBody`, `{"detail": "<one line a user can act on>"}`,
made by `errors.error()`. A route lists the statuses it can answer with `responses=`:

    @router.get("/things/{thing_id}", responses=responses(401, 404, 422, 503))

`openapi.install()` then puts each one in `components.responses` and points the
operations at it, so the schema says once what a 404 looks like.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

RETRY_AFTER_SECONDS = 5


class ErrorBody(BaseModel):
    """The body of every error answer (4xx and 5xx)."""

    detail: str = Field(
        description="What went wrong, in one line, and what to do about it; for a 422,"
        " `where: what` for each problem, separated by `; `",
        examples=["path.prediction_id: Input should be greater than or equal to 1"],
    )


# Name in components.responses, description, headers (name -> description).
SHARED: dict[int, tuple[str, str, dict[str, str]]] = {
    401: (
        "Unauthorized",
        "The token this operation needs is missing or wrong",
        {"WWW-Authenticate": "`Bearer`"},
    ),
    403: ("Forbidden", "The operation is switched off on this service", {}),
    404: ("NotFound", "No such resource", {}),
    405: ("MethodNotAllowed", "The path does not take this method", {"Allow": "The methods"}),
    409: ("Conflict", "The request conflicts with what is stored", {}),
    413: ("TooLarge", "The request body or the image is over the service's limit", {}),
    415: (
        "UnsupportedMediaType",
        "The body is neither `application/json` nor `multipart/form-data`",
        {},
    ),
    422: (
        "BadInput",
        "The request is not valid: a parameter, the body or the image. `detail` names"
        " each problem as `where: what`",
        {},
    ),
    429: (
        "TooManyRequests",
        "Too many requests; wait as `Retry-After` says",
        {"Retry-After": "Seconds to wait before trying again"},
    ),
    500: ("InternalError", "An unexpected error; the service logged the details", {}),
    503: (
        "Unavailable",
        "The database or the model is not available; nothing was stored. Try again after"
        " `Retry-After` seconds",
        {"Retry-After": "Seconds to wait before trying again"},
    ),
}
# Headers the service always sends with these statuses (checked by the contract tests).
_REQUIRED_HEADERS = {"Retry-After"}


def component_name(status: int) -> str:
    return SHARED[status][0]


def shared_components() -> dict[str, Any]:
    """`components.responses` of the schema: one entry per shared error status."""
    out = {}
    for name, description, headers in SHARED.values():
        response: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
        }
        if headers:
            response["headers"] = {
                header: {
                    "description": text,
                    "required": header in _REQUIRED_HEADERS,
                    "schema": {"type": "integer" if header == "Retry-After" else "string"},
                }
                for header, text in headers.items()
            }
        out[name] = response
    return out


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status as an ErrorBody; `openapi.install()` swaps
    them for references to the shared components."""
    return {status: {"model": ErrorBody, "description": SHARED[status][1]} for status in statuses}


# What a group of routes can answer, besides their own statuses. 500 is everywhere:
# an unexpected error answers it, with the same body.
ANY = responses(500)
READ = responses(422, 500, 503)
# The viewer-token guarded reads.
GUARDED = responses(401, 422, 500, 503)
# The admin-token operations: 403 while DIGITLAB_ADMIN_TOKEN is unset.
ADMIN = responses(401, 403, 422, 500, 503)
# The predict operations read their body themselves: too large, of a type they do not
# read, or not an image they can use.
UPLOAD = responses(413, 415, 422, 500, 503)
