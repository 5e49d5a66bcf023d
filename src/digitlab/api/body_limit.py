"""The request body limit (`DIGITLAB_MAX_UPLOAD_BYTES`), enforced before anything reads
or stores a body, and a 413 that every client gets to read.

Many clients (Python's urllib and http.client, requests) read the answer only after
they have sent the whole body. If the server answers and closes while body bytes are
still arriving, the kernel resets the connection, and a reset throws away the 413 the
client had not read yet: it sees `Connection reset by peer`. So, as nginx's lingering
close does, the 413 goes out at once and then the rest of the body is read and thrown
away, up to a bounded number of bytes and a bounded time, before the connection closes.
A body beyond those bounds just gets the connection closed: a client sending an endless
or very slow body holds a connection (not the event loop) for `drain_seconds` at most.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digitlab.api.errors import error


class BodyTooLargeError(Exception):
    """Raised from `receive()` when the body passes the limit; the middleware answers it."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


def too_large_message(limit: int) -> str:
    return f"the request body is over the {limit:,}-byte limit; send a smaller image"


class BodyLimitMiddleware:
    """A declared Content-Length over the limit is refused before the app runs; a
    streamed (chunked) body is cut off in `receive()` when it passes the limit, and
    whatever the app answers then is replaced by the 413 (FastAPI, for one, turns an
    error while reading a body into a 400)."""

    def __init__(
        self, app: ASGIApp, *, max_body: int, drain_bytes: int, drain_seconds: float
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.drain_bytes = drain_bytes
        self.drain_seconds = drain_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await self._refuse(receive, send)
            return

        seen = 0
        over = started = False

        async def limited() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    over = True
                    raise BodyTooLargeError(self.max_body)
            return message

        async def send_unless_over(message: Message) -> None:
            nonlocal started
            if over and not started:
                return  # the app's answer to a body it could not read: the 413 replaces it
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, send_unless_over)
        except BodyTooLargeError:
            if started:  # too late to answer 413: uvicorn closes the connection
                raise
        if over and not started:
            await self._refuse(receive, send)

    async def _refuse(self, receive: Receive, send: Send) -> None:
        body = bytes(error(413, too_large_message(self.max_body)).body)  # the one ErrorBody
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),  # the rest of the body may stay unread
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        # The whole answer goes out first, so that a client reading while it sends (curl)
        # stops sending; the response stays open while the body is drained because
        # uvicorn ends `receive()` once a response is complete, and closes right after.
        await send({"type": "http.response.body", "body": body, "more_body": True})
        await self._drain(receive)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _drain(self, receive: Receive) -> None:
        """Read and discard the rest of the body: until it ends or the client goes,
        `drain_bytes` at most, for `drain_seconds` at most."""
        left = self.drain_bytes
        try:
            async with asyncio.timeout(self.drain_seconds):
                while left > 0:
                    message = await receive()
                    if message["type"] != "http.request":
                        return  # http.disconnect
                    left -= len(message.get("body", b""))
                    if not message.get("more_body", False):
                        return
        except TimeoutError:
            pass


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
