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

The whole body must also arrive within `body_seconds` of the request's start
(`DIGITLAB_BODY_READ_SECONDS`); a slower one is answered 408 and its connection closed,
so that bodies trickled a few bytes at a time do not hold connections open for long.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digitlab.api.errors import error


class BodyTimeoutError(Exception):
    """Raised from `receive()` when the body has not arrived by the deadline."""


class BodyTooLargeError(Exception):
    """Raised from `receive()` when the body passes the limit; the middleware answers it."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


def too_large_message(limit: int) -> str:
    return f"the request body is over the {limit:,}-byte limit; send a smaller image"


def too_slow_message(seconds: float) -> str:
    return f"the request body did not arrive within {seconds:g} s; send it at once"


class BodyLimitMiddleware:
    """A declared Content-Length over the limit is refused before the app runs; a
    streamed (chunked) body is cut off in `receive()` when it passes the limit, and
    whatever the app answers then is replaced by the 413 (FastAPI, for one, turns an
    error while reading a body into a 400). A body still arriving `body_seconds` after
    the request started is cut off the same way, and answered 408."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int,
        drain_bytes: int,
        drain_seconds: float,
        body_seconds: float = 15.0,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.drain_bytes = drain_bytes
        self.drain_seconds = drain_seconds
        self.body_seconds = body_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await self._refuse(receive, send)
            return

        seen = 0
        over = slow = started = ended = False
        deadline = asyncio.get_running_loop().time() + self.body_seconds

        async def limited() -> Message:
            nonlocal seen, over, slow, ended
            if ended:  # the body is in: the app waits for a disconnect, as long as it likes
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                slow = True
                raise BodyTimeoutError from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    over = True
                    raise BodyTooLargeError(self.max_body)
                ended = not message.get("more_body", False)
            else:
                ended = True
            return message

        async def send_unless_over(message: Message) -> None:
            nonlocal started
            if (over or slow) and not started:
                return  # the app's answer to a body it could not read: ours replaces it
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, send_unless_over)
        except (BodyTooLargeError, BodyTimeoutError):
            if started:  # too late to answer 413 or 408: uvicorn closes the connection
                raise
        if over and not started:
            await self._refuse(receive, send)
        elif slow and not started:
            await _answer(send, 408, too_slow_message(self.body_seconds), more_body=False)

    async def _refuse(self, receive: Receive, send: Send) -> None:
        # The whole answer goes out first, so that a client reading while it sends (curl)
        # stops sending; the response stays open while the body is drained because
        # uvicorn ends `receive()` once a response is complete, and closes right after.
        await _answer(send, 413, too_large_message(self.max_body), more_body=True)
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


async def _answer(send: Send, status: int, message: str, *, more_body: bool) -> None:
    """The one ErrorBody, with `Connection: close`: the rest of the body may stay unread."""
    body = bytes(error(status, message).body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": more_body})


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
