"""Who may do what: the admin token (model activation), the optional viewer token,
which guards every read of stored inputs, predictions and feedback, and the labeller
token, whose holders' corrections are trusted (see `api/labeller.py`).

Without `DIGITLAB_VIEWER_TOKEN` reads stay open, as on a laptop. With it, a client sends
`Authorization: Bearer <token>` (the admin and labeller tokens are accepted too: an admin
or a labeller may view), and
a browser signs in once on /login and then carries a cookie holding an expiry and an HMAC
under the token: never the token itself, and it stops working when the token changes.
Tokens are compared in constant time; a refused credential is logged with the client's
address and the path, never with any part of what was sent. A client that sends more than
`wrong_tokens_per_minute` wrong tokens gets 429 for every credential it sends until its
bucket refills, the right one included: otherwise 429 would only mean "wrong", and the
guessing would go on at full speed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from digitlab.api.deps import API_PREFIX, SettingsDep
from digitlab.api.params import InputId
from digitlab.api.ratelimit import RateLimiter
from digitlab.config import Settings

log = logging.getLogger("digitlab.auth")

VIEWER_COOKIE = "digitlab_viewer"
LABELLER_COOKIE = "digitlab_labeller"
SESSION_SECONDS = 12 * 3600
# An expiry is a Unix time: 10 digits until the year 2286. Longer ones (int() refuses
# past 4,300 digits) and non-ASCII digits ("²".isdigit() is True) are not a session.
EXPIRY_DIGITS = 12
# Declared on the guarded routes so that /docs offers an "Authorize" button; the header
# itself is read by `viewer_state`, which also takes the browser's cookie.
viewer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="viewer",
    description="DIGITLAB_VIEWER_TOKEN (or DIGITLAB_ADMIN_TOKEN); needed only when it is set",
)
admin_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="admin",
    description="DIGITLAB_ADMIN_TOKEN; without it the admin operations answer 403",
)

Credential = Literal["open", "ok", "missing", "wrong"]


def matches(given: str | None, *tokens: str | None) -> bool:
    """Whether `given` is one of the configured `tokens`, each compared in constant time."""
    if not given:
        return False
    found = False
    for token in tokens:
        if token:  # an unset token never matches, not even an empty string
            found |= hmac.compare_digest(given.encode(), token.encode())
    return found


def bearer(authorization: str | None) -> str:
    """The token in `Authorization: Bearer <token>`, the scheme in any case (RFC 9110);
    "" for another scheme or a bare token, which callers then refuse as a wrong credential
    (the header is there) rather than take."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def install(app: FastAPI, settings: Settings) -> None:
    app.state.wrong_tokens = RateLimiter(settings.wrong_tokens_per_minute)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def throttle(request: Request) -> None:
    """429 with Retry-After while this client has spent its wrong tokens; call it before
    looking at a credential it sends."""
    limiter: RateLimiter | None = getattr(request.app.state, "wrong_tokens", None)
    wait = limiter.peek(client_address(request)) if limiter else 0.0
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise HTTPException(
            429,
            f"too many wrong tokens from this address: try again in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )


def count_wrong_token(request: Request) -> None:
    limiter: RateLimiter | None = getattr(request.app.state, "wrong_tokens", None)
    if limiter:
        limiter.take(client_address(request))


def _sign(token: str, message: str) -> str:
    return hmac.new(token.encode(), message.encode(), hashlib.sha256).hexdigest()


def session_cookie(token: str, *, now: float | None = None, role: str = "viewer") -> str:
    """The cookie value that signs a browser in until it expires: `expiry.hmac`; the
    role is in the signed text, so a viewer cookie never passes for a labeller's."""
    expires = int(now if now is not None else time.time()) + SESSION_SECONDS
    return f"{expires}.{_sign(token, f'digitlab {role} session until {expires}')}"


def session_valid(
    token: str, value: str, *, now: float | None = None, role: str = "viewer"
) -> bool:
    expires, _, _ = value.partition(".")
    if not (expires.isascii() and expires.isdigit() and len(expires) <= EXPIRY_DIGITS):
        return False  # not a cookie this service made: signed out, never a 500
    if int(expires) <= (now if now is not None else time.time()):
        return False
    expected = f"{expires}.{_sign(token, f'digitlab {role} session until {expires}')}"
    return hmac.compare_digest(value.encode(), expected.encode())


def labeller_state(request: Request, settings: Settings) -> Credential:
    """Like `viewer_state` for the labeller token (bearer) or the labeller's cookie;
    `open` never: without DIGITLAB_LABELLER_TOKEN nobody is a labeller (`missing`)."""
    token = settings.labeller_token
    if not token:
        return "missing"
    header = presented(request)
    given = bearer(header)
    cookie = request.cookies.get(LABELLER_COOKIE, "")
    if matches(given, token) or (cookie and session_valid(token, cookie, role="labeller")):
        return "ok"
    return "wrong" if header or cookie else "missing"


def labeller_or_admin(request: Request, settings: Settings) -> bool:
    """Whether the request carries the labeller's credential (token or cookie) or the
    admin token: whose labels count as trusted and whose predictions are not limited."""
    if labeller_state(request, settings) == "ok":
        return True
    return matches(bearer(request.headers.get("authorization")), settings.admin_token)


def presented(request: Request) -> str | None:
    """The Authorization header, after `throttle`: a client that has sent too many wrong
    tokens gets 429 for whatever it sends now."""
    header = request.headers.get("authorization")
    if header:
        throttle(request)
    return header


def image_key(token: str, input_id: int) -> str:
    """A key that opens one input's image: the answer to a prediction carries it, so the
    Recognise page can show what the model saw without any sign-in."""
    return _sign(token, f"digitlab input image {input_id}")[:32]


def image_url(settings: Settings, input_id: int) -> str:
    url = f"{API_PREFIX}/inputs/{input_id}/image.png"
    return (
        f"{url}?key={image_key(settings.viewer_token, input_id)}" if settings.viewer_token else url
    )


def viewer_state(request: Request, settings: Settings) -> Credential:
    """What the request carries: `open` when no viewer token is set; `ok` for the right
    bearer token or a valid session cookie; else `missing` or `wrong`."""
    token = settings.viewer_token
    if not token:
        return "open"
    header = presented(request)
    given = bearer(header)
    cookie = request.cookies.get(VIEWER_COOKIE, "")
    if matches(given, token, settings.admin_token) or (cookie and session_valid(token, cookie)):
        return "ok"
    if labeller_state(request, settings) == "ok":  # a labeller may view
        return "ok"
    return "wrong" if header or cookie else "missing"


def refused(request: Request, what: str) -> None:
    """Log a refused credential; a refused Authorization header spends one of the
    client's wrong tokens (a cookie is signed: guessing one is hopeless)."""
    # The address and the path only: the token, the cookie and the query stay out of logs.
    log.warning("refused %s from %s for %s", what, client_address(request), request.url.path)
    if request.headers.get("authorization"):
        count_wrong_token(request)


def viewer_allowed(request: Request, settings: Settings) -> bool:
    """`viewer_state`, logging a wrong credential."""
    state = viewer_state(request, settings)
    if state == "wrong":
        refused(request, "a wrong viewer token or an expired sign-in")
    return state in ("open", "ok")


def _unauthorized() -> HTTPException:
    return HTTPException(
        401,
        "stored data needs the viewer token: send `Authorization: Bearer <DIGITLAB_VIEWER_TOKEN>`"
        " (in a browser, sign in at /login)",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def require_viewer(
    request: Request,
    settings: SettingsDep,
    _scheme: Annotated[HTTPAuthorizationCredentials | None, Depends(viewer_scheme)],
) -> None:
    """The viewer token (or a signed-in browser) when one is configured; else open."""
    if not viewer_allowed(request, settings):
        raise _unauthorized()


ViewerDep = Annotated[None, Depends(require_viewer)]


async def require_image_access(
    request: Request,
    settings: SettingsDep,
    input_id: InputId,
    _scheme: Annotated[HTTPAuthorizationCredentials | None, Depends(viewer_scheme)],
    key: Annotated[
        str | None,
        Query(description="The key in a prediction's `image_url`: opens that one image"),
    ] = None,
) -> None:
    """The viewer credential, or the key that came with the prediction of this input."""
    token = settings.viewer_token
    if token and key:
        if hmac.compare_digest(key.encode(), image_key(token, input_id).encode()):
            return
        refused(request, "a wrong image key")
    if not viewer_allowed(request, settings):
        raise _unauthorized()


ImageAccessDep = Annotated[None, Depends(require_image_access)]


async def require_admin(
    request: Request,
    settings: SettingsDep,
    _scheme: Annotated[HTTPAuthorizationCredentials | None, Depends(admin_scheme)],
) -> None:
    """`Authorization: Bearer <DIGITLAB_ADMIN_TOKEN>`; without a configured token the
    admin endpoints are off."""
    token = settings.admin_token
    if not token:
        raise HTTPException(403, "model activation is off: set DIGITLAB_ADMIN_TOKEN to enable it")
    if not matches(bearer(presented(request)), token):
        refused(request, "a wrong admin token")
        raise HTTPException(
            401,
            "a valid admin token is needed: send `Authorization: Bearer <token>`",
            headers={"WWW-Authenticate": "Bearer"},
        )


AdminDep = Annotated[None, Depends(require_admin)]
