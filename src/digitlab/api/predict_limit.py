"""The limit on anonymous predictions: `DIGITLAB_ANONYMOUS_PREDICTIONS_PER_MINUTE` per
client address (a token bucket, `ratelimit.RateLimiter`), answered 429 with Retry-After.

Off (0) by default: `digitlab run` and `digitlab serve` serve a laptop, a teammate's
batch script or a benchmark. The Compose and Kubernetes deployments turn it on. A
request with the labeller's or the admin's credential is not limited; anyone else's is
counted by the address uvicorn gives as the client's (behind the deployment's proxy, the
one X-Forwarded-For names, as `DIGITLAB_FORWARDED_ALLOW_IPS` allows).
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request

from digitlab.api import auth
from digitlab.api.deps import SettingsDep
from digitlab.api.ratelimit import RateLimiter
from digitlab.config import Settings


def install(app: FastAPI, settings: Settings) -> None:
    per_minute = settings.anonymous_predictions_per_minute
    app.state.prediction_limiter = RateLimiter(per_minute) if per_minute > 0 else None


def wait_seconds(request: Request, settings: Settings) -> int:
    """0 when this request may predict now (and spends one of its address's tokens),
    else the whole seconds its address must wait."""
    limiter: RateLimiter | None = getattr(request.app.state, "prediction_limiter", None)
    if limiter is None or auth.labeller_or_admin(request, settings):
        return 0
    wait = limiter.take(auth.client_address(request))
    return max(1, math.ceil(wait)) if wait > 0 else 0


def refusal(seconds: int, settings: Settings) -> str:
    # Not the address itself: behind a proxy it may be an internal one.
    return (
        f"too many predictions from this address: try again in {seconds} s (at most"
        f" {settings.anonymous_predictions_per_minute} a minute without a token;"
        " labellers and admins are not limited)"
    )


async def limit_anonymous(request: Request, settings: SettingsDep) -> None:
    """429 with Retry-After when this address has asked for too many predictions
    without a token; runs before the body is read."""
    seconds = wait_seconds(request, settings)
    if seconds:
        raise HTTPException(429, refusal(seconds, settings), headers={"Retry-After": str(seconds)})


PredictionAllowed = Depends(limit_anonymous)
PredictionAllowedDep = Annotated[None, PredictionAllowed]
