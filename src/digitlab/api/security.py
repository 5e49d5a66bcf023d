"""What every answer carries and what every browser change must prove.

- Security headers on every answer, errors and static files included: a strict
  Content-Security-Policy (scripts and styles only from this site, no plug-ins, no
  framing), `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` (for browsers
  without frame-ancestors) and `Referrer-Policy: same-origin` (an image key in a URL never
  leaves the site).
- CSRF from the same site: SameSite=Strict keeps other sites' requests from carrying the
  sign-in cookie, but a page on another port of the same host is the same *site*. So a
  change (POST, PUT, PATCH, DELETE) that carries a session cookie and no bearer token must
  come from this origin, as `Sec-Fetch-Site` (or, from older browsers, `Origin`) says.
  A script with a bearer token cannot be forged by a page (that header needs CORS, which
  this service does not grant), and a client that sends neither header is not a browser.
- Image keys out of the access log: a key opens one stored image, so uvicorn's access log
  shows `key=<hidden>`.
"""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digitlab.api.auth import LABELLER_COOKIE, VIEWER_COOKIE

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    # data: for the CSS icons of the API docs; blob: for a drawn digit's preview.
    "img-src": "'self' data: blob:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
# ReDoc (/redoc) writes its styles into <style> elements and searches in a blob: worker;
# the page shows the public schema only, no stored data and no cookie-guarded action.
LOOSER = {"/redoc": {"style-src": "'self' 'unsafe-inline'", "worker-src": "'self' blob:"}}


def policy(path: str) -> str:
    return "; ".join(f"{k} {v}" for k, v in (POLICY | LOOSER.get(path, {})).items())


STATIC_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeadersMiddleware:
    """Adds the headers above to every HTTP answer that does not set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = (b"content-security-policy", policy(scope["path"]).encode())

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [h for h in (csp, *STATIC_HEADERS) if h[0] not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
SESSION_COOKIES = (VIEWER_COOKIE, LABELLER_COOKIE)
# Signing in is a change of the browser's state too (another page could sign a victim in
# as someone else); it carries no cookie yet.
ALWAYS_CHECKED = ("/login", "/logout")
DEFAULT_PORTS = {"http": 80, "https": 443}


def _authority(scheme: str, host: str | None, port: int | None) -> str:
    host = (host or "").lower()
    return host if port in (None, DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"


def cross_origin(headers: Headers, scheme: str) -> str | None:
    """Why this browser request comes from another origin, or None when it comes from
    this one (or from no browser at all)."""
    site = headers.get("sec-fetch-site")
    if site is not None:
        return None if site in ("same-origin", "none") else f"Sec-Fetch-Site: {site}"
    origin = headers.get("origin")
    if origin is None:
        return None  # not a browser: every browser sends one of the two on these methods
    try:
        parts = urlsplit(origin)
        theirs = _authority(parts.scheme, parts.hostname, parts.port)
        host = urlsplit(f"//{headers.get('host', '')}")
        ours = _authority(scheme, host.hostname, host.port)
    except ValueError:
        return f"Origin: {origin[:100]}"
    return None if theirs == ours and theirs else f"Origin: {origin[:100]}"


class CsrfMiddleware:
    """403 for a cookie-authenticated change sent by a page of another origin."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS:
            headers = Headers(scope=scope)
            cookies = headers.get("cookie", "")
            with_session = any(f"{name}=" in cookies for name in SESSION_COOKIES)
            checked = with_session or scope["path"] in ALWAYS_CHECKED
            if checked and "authorization" not in headers:
                why = cross_origin(headers, scope.get("scheme", "http"))
                if why is not None:
                    await _refuse(send, why)
                    return
        await self.app(scope, receive, send)


async def _refuse(send: Send, why: str) -> None:
    detail = (
        f"refused a change sent from another site's page ({why}): with the sign-in cookie "
        "only this site's own pages may change anything; a script sends "
        "`Authorization: Bearer <token>` instead"
    )
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 403, "headers": headers})
    await send({"type": "http.response.body", "body": body})


IMAGE_KEY = re.compile(r"([?&]key=)[^&\s]*")


class HideImageKeys(logging.Filter):
    """uvicorn's access log line, with any `key=` query value hidden."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path = IMAGE_KEY.sub(r"\1<hidden>", args[2])
            record.args = (*args[:2], path, *args[3:])
        return True


def hide_image_keys() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, HideImageKeys) for f in access.filters):
        access.addFilter(HideImageKeys())


def install(app: FastAPI) -> None:
    """The CSRF check inside, the headers outside: a refusal carries them too."""
    app.add_middleware(CsrfMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    hide_image_keys()
