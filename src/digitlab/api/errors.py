"""Errors as JSON `{"detail": "..."}` (`responses.ErrorBody`) with a message a user can
act on: bad input is a 4xx, a database or model that is not there a 503 with
`Retry-After`, and anything unexpected a plain 500. No answer carries a database URL, a
host, SQL or a traceback: the log keeps those (with the password masked).

`error(status, message)` makes every error body, here and in any route."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from digitlab.api.responses import RETRY_AFTER_SECONDS
from digitlab.inference.preprocess import ImageError, ImageTooLargeError
from digitlab.registry.versions import RegistryError
from digitlab.store.db import StoreError

log = logging.getLogger("digitlab.api")

STORE_DOWN = (
    "the prediction store is unavailable, nothing was stored; try again in a few seconds"
    " (the service logged the cause)"
)


# FastAPI's HTTPException detail for a JSON body it cannot parse.
UNPARSED_BODY = "There was an error parsing the body"


class BadInputError(Exception):
    """A request the service cannot use; `status` is the 4xx to answer with."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one error body of the service (ErrorBody); a 429 or a 503 says when to try
    again (`Retry-After`, as the schema promises; `headers` may give another value)."""
    response = JSONResponse({"detail": message}, status_code=status, headers=headers)
    if status in (429, 503):
        response.headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
    return response


def describe_validation(exc: RequestValidationError) -> str:
    """FastAPI's error list as one line: `where: what`, for each problem."""
    parts = []
    for problem in exc.errors():
        where = ".".join(str(p) for p in problem.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {problem.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is not valid"


def install(app: FastAPI) -> None:
    @app.exception_handler(BadInputError)
    async def bad_input(_: Request, exc: BadInputError) -> JSONResponse:
        return error(exc.status, exc.message)

    @app.exception_handler(ImageError)
    async def bad_image(_: Request, exc: ImageError) -> JSONResponse:
        return error(413 if isinstance(exc, ImageTooLargeError) else 422, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, describe_validation(exc))

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == UNPARSED_BODY:  # FastAPI's, to bad JSON
            return error(
                422,
                "body: cannot be read as JSON (not UTF-8, nested too deeply, or a number of"
                " over 4,300 digits)",
            )
        if exc.status_code == 400:  # Starlette's, to a form it cannot read (a field over 1 MB)
            return error(422, f"body: the form cannot be read: {exc.detail}")
        return error(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(StoreError)
    async def store_down(request: Request, exc: StoreError) -> JSONResponse:
        # StoreError messages name the database (password masked): for the log only.
        log.warning("database error on %s %s: %s", request.method, request.url.path, exc)
        return error(503, STORE_DOWN)

    @app.exception_handler(RegistryError)
    async def no_model(request: Request, exc: RegistryError) -> JSONResponse:
        # The full message names the model folder: for the log only.
        log.warning("no model on %s %s: %s", request.method, request.url.path, exc)
        return error(503, f"no model to serve: {exc.public}")

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return error(500, "internal error; the service logged the details")
