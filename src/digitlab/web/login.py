"""Signing a browser in to see stored data, when `DIGITLAB_VIEWER_TOKEN` is set, or to
label as a labeller with `DIGITLAB_LABELLER_TOKEN` (a labeller may also view).

GET /login shows a form for the token; POST /login checks it and sets an HttpOnly,
SameSite=Strict cookie holding a signed expiry (see `auth.session_cookie`), then goes on
to `next`, which must be a path on this site; POST /logout drops the cookie. A guarded
page (`ViewerPageDep`) sends a visitor without a valid sign-in here.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from digitlab.api import auth
from digitlab.api.deps import SettingsDep
from digitlab.web.render import render

router = APIRouter(include_in_schema=False)
DEFAULT_NEXT = "/history"


class LoginRequiredError(Exception):
    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


async def require_viewer_page(request: Request, settings: SettingsDep) -> None:
    if not auth.viewer_allowed(request, settings):
        query = f"?{request.url.query}" if request.url.query else ""
        raise LoginRequiredError(request.url.path + query)


ViewerPageDep = Annotated[None, Depends(require_viewer_page)]


def safe_next(target: str | None) -> str:
    """`target` when it is a path on this site, else /history: never another site
    (`https://…`, `//host`, `/\\host`, which browsers read as `//host`)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return DEFAULT_NEXT
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return DEFAULT_NEXT
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return DEFAULT_NEXT
    return target


@router.get("/login", response_class=HTMLResponse)
def login_form(
    request: Request, next_path: Annotated[str, Query(alias="next")] = DEFAULT_NEXT
) -> HTMLResponse:
    return render(request, "login.html", "login", next=safe_next(next_path), error=None)


async def require_labeller_page(request: Request, settings: SettingsDep) -> None:
    if settings.labeller_token and auth.labeller_state(request, settings) != "ok":
        raise LoginRequiredError(request.url.path)


LabellerPageDep = Annotated[None, Depends(require_labeller_page)]


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    settings: SettingsDep,
    token: Annotated[str, Form()] = "",
    next_path: Annotated[str, Form(alias="next")] = DEFAULT_NEXT,
) -> Response:
    target = safe_next(next_path)
    if not settings.viewer_token and not settings.labeller_token:
        return RedirectResponse(target, status_code=303)  # nothing is guarded
    try:
        auth.throttle(request)  # before the token is compared: 429 says nothing about it
    except HTTPException as exc:
        error = f"{str(exc.detail).capitalize()}."
        page = render(request, "login.html", "login", status_code=429, next=target, error=error)
        page.headers.update(exc.headers or {})
        return page
    if auth.matches(token, settings.labeller_token):
        return signed_in(request, target, auth.LABELLER_COOKIE, settings.labeller_token, "labeller")
    if settings.viewer_token and auth.matches(token, settings.viewer_token, settings.admin_token):
        return signed_in(request, target, auth.VIEWER_COOKIE, settings.viewer_token, "viewer")
    auth.refused(request, "a wrong token on the sign-in form")
    auth.count_wrong_token(request)
    which = "the viewer token" if settings.viewer_token else "the labeller token"
    error = f"That is not {which}. Ask whoever runs this service for it."
    page = render(request, "login.html", "login", status_code=401, next=target, error=error)
    page.headers["WWW-Authenticate"] = "Bearer"  # a 401 names its scheme (RFC 9110)
    return page


def signed_in(
    request: Request, target: str, cookie: str, token: str | None, role: str
) -> RedirectResponse:
    """On to `target` with the role's session cookie (SameSite=Strict: another site's
    form cannot post a label with it)."""
    assert token  # the caller matched it
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        cookie,
        auth.session_cookie(token, role=role),
        max_age=auth.SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout() -> RedirectResponse:
    response = RedirectResponse("/", status_code=303)
    for cookie in (auth.VIEWER_COOKIE, auth.LABELLER_COOKIE):
        response.delete_cookie(cookie, path="/", httponly=True, samesite="strict")
    return response


def install(app: FastAPI) -> None:
    app.include_router(router)

    @app.exception_handler(LoginRequiredError)
    async def to_login(_: Request, exc: LoginRequiredError) -> RedirectResponse:
        return RedirectResponse("/login?" + urlencode({"next": exc.next_path}), status_code=303)
