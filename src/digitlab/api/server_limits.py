"""Bounds on a request's head that `digitlab serve` sets in uvicorn itself, for a service
reached without a proxy in front (the Compose nginx and the Kubernetes ingress set their
own): at most MAX_HEAD_BYTES of request line and headers, which must arrive within
HEAD_SECONDS. The body has its own bounds (`body_limit.BodyLimitMiddleware`).

uvicorn's h11 protocol bounds the head (`h11_max_incomplete_event_size`) but has no
deadline; its httptools protocol, the fast one `digitlab serve` picks, bounds neither:
it buffered an 8 MB header and answered 200, and a client sending its headers a byte at
a time kept its connection for as long as it liked. `BoundedHttpToolsProtocol` adds both.
"""

from __future__ import annotations

import asyncio
import ctypes
import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# nginx's default for all the headers of a request (4 buffers of 8 KB).
MAX_HEAD_BYTES = 32 * 1024
HEAD_SECONDS = 10.0
PROTOCOL = f"{__name__}:BoundedHttpToolsProtocol"
# glibc's mallopt(M_MMAP_THRESHOLD, ...), and the size from which blocks are mapped.
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1024 * 1024
_END_OF_HEAD = b"\r\n\r\n"


def _answer(status: int, reason: str, message: str) -> bytes:
    """A complete answer with the service's error body, closing the connection."""
    body = json.dumps({"detail": message}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


TOO_LARGE = _answer(
    431,
    "Request Header Fields Too Large",
    f"the request's headers are over the {MAX_HEAD_BYTES:,}-byte limit",
)
TOO_SLOW = _answer(
    408, "Request Timeout", f"the request's headers did not arrive within {HEAD_SECONDS:g} s"
)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bound on the head's size and time.

    The bytes are counted as they arrive, not in the parser's callbacks: httptools keeps a
    header that has not ended yet in memory, however long. From the end of one request's
    body (or the connection's start) to the end of the next one's headers, at most
    MAX_HEAD_BYTES (give or take one read) before it is answered 431; from the connection's
    start or the last answer, HEAD_SECONDS to send them before it is answered 408.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0
        self._reading_head = True
        self._tail = b""  # the end of the last read: a head's end may straddle two
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading_head:
            window = self._tail + data
            end = window.find(_END_OF_HEAD)
            if end < 0:
                self._head_bytes += len(data)
                self._tail = window[-(len(_END_OF_HEAD) - 1) :]
            else:
                self._head_bytes += max(0, end + len(_END_OF_HEAD) - len(self._tail))
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(TOO_LARGE)
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # What comes next is the next request's head (pipelined, or after the answer).
        self._reading_head, self._head_bytes, self._tail = True, 0, b""

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(HEAD_SECONDS, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        busy = self.cycle is not None and not self.cycle.response_complete
        if self._reading_head and not busy and not self.transport.is_closing():
            self._refuse(TOO_SLOW)

    def _refuse(self, answer: bytes) -> None:
        self._reading_head = False
        self._cancel_head_timer()
        self.transport.write(answer)
        self.transport.close()


def return_freed_memory() -> bool:
    """Have glibc give blocks of 1 MB and more back to the system as soon as they are
    freed. By default it raises that threshold to the largest block freed so far (up to
    32 MB) and keeps such blocks for reuse, per thread: after a few large pictures were
    decoded in the thread pool the process stayed 50-100 MB larger than before. The
    service's usual allocations are far smaller and are not affected. False where the C
    library is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False
