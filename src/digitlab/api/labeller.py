"""Whose correction is it: a labeller's (the labeller token as a bearer, or a browser
signed in as a labeller) or anyone's (anonymous, rate-limited per client address).

Anonymous corrections are kept and shown but train nothing unless asked
(`--include-anonymous`): anyone who reaches the service can send them. A request that
sends a credential which is none of the service's tokens is refused rather than taken
as anonymous: a labeller whose token is wrong should hear so, not label for nothing.
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from digitlab.api import auth
from digitlab.api.deps import ServiceDep, SettingsDep
from digitlab.api.ratelimit import RateLimiter
from digitlab.api.responses import responses
from digitlab.config import Settings
from digitlab.store.review import ANONYMOUS, LABELLER

labeller_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="labeller",
    description="DIGITLAB_LABELLER_TOKEN: the review queue, and corrections that are trusted",
)
# Labeller-only operations: 401 without the labeller token (or a sign-in), 403 while
# DIGITLAB_LABELLER_TOKEN is unset (labelling is off).
LABELLER_ONLY = responses(401, 403, 422, 500, 503)
# Feedback: 401 for a credential that is none of the service's tokens, 403 while anonymous
# feedback is off, 404 no such prediction, 409 a labeller labelled the input already, 429
# too many anonymous corrections from this address (see Retry-After).
FEEDBACK_ERRORS = responses(401, 403, 404, 409, 429)


def install(app: FastAPI, settings: Settings) -> None:
    app.state.feedback_limiter = RateLimiter(settings.anonymous_feedback_per_minute)


def _wrong_labeller() -> HTTPException:
    return HTTPException(
        401,
        "not the labeller token: send `Authorization: Bearer <DIGITLAB_LABELLER_TOKEN>`"
        " (in a browser, sign in at /login with it), or no credential to correct anonymously",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def require_labeller(
    request: Request,
    settings: SettingsDep,
    _scheme: Annotated[HTTPAuthorizationCredentials | None, Depends(labeller_scheme)],
) -> None:
    """The labeller token or a labeller's sign-in; 403 when labelling is off."""
    if not settings.labeller_token:
        raise HTTPException(403, "labelling is off: set DIGITLAB_LABELLER_TOKEN to enable it")
    state = auth.labeller_state(request, settings)
    if state != "ok":
        if state == "wrong":
            auth.refused(request, "a wrong labeller token or an expired labeller sign-in")
        raise _wrong_labeller()


LabellerDep = Annotated[None, Depends(require_labeller)]


def _anonymous_allowed(request: Request, service: ServiceDep) -> None:
    limiter: RateLimiter = request.app.state.feedback_limiter
    client = request.client.host if request.client else "unknown"
    wait = limiter.take(client)
    if wait == math.inf:
        raise HTTPException(
            403,
            "anonymous feedback is off here (DIGITLAB_ANONYMOUS_FEEDBACK_PER_MINUTE=0):"
            " corrections need the labeller token",
        )
    if wait > 0:
        service.metrics.feedback_limited.inc()
        seconds = max(1, math.ceil(wait))
        raise HTTPException(
            429,
            # Not the address itself: behind a proxy it is an internal one.
            f"too many anonymous corrections from this address: try again in {seconds} s"
            " (labellers are not limited)",
            headers={"Retry-After": str(seconds)},
        )


async def feedback_source(
    request: Request,
    service: ServiceDep,
    _scheme: Annotated[HTTPAuthorizationCredentials | None, Depends(labeller_scheme)],
) -> str:
    """ "labeller" or "anonymous" for a correction; an anonymous one spends a token of its
    address's bucket (429 with Retry-After when it has none left)."""
    settings = service.settings
    state = auth.labeller_state(request, settings)
    if state == "ok":
        return LABELLER
    header = auth.presented(request)
    # A viewer's or an admin's token is a credential of this service, just not a
    # labeller's: their corrections are anonymous. Anything else (another scheme, a bare
    # token) is a mistake.
    credential = auth.bearer(header)
    if header and not auth.matches(credential, settings.viewer_token, settings.admin_token):
        auth.refused(request, "a wrong token on a correction")
        raise _wrong_labeller()
    if request.cookies.get(auth.LABELLER_COOKIE) and settings.labeller_token:
        raise HTTPException(
            401,
            "the labeller sign-in has expired or is no longer valid: sign in again at /login",
        )
    _anonymous_allowed(request, service)
    return ANONYMOUS


FeedbackSourceDep = Annotated[str, Depends(feedback_source)]
