"""Login, logout and who-am-I."""

from __future__ import annotations

from aiohttp import web

from web.store import accounts
from web.store.accounts import UserInfo

from . import keys
from .errors import ApiError
from .http import (
    CSRF_COOKIE,
    CSRF_HEADER,
    SESSION_COOKIE,
    authed,
    client_address,
    current,
    read_json,
    store_of,
)
from .routes import Route


def _secure(request: web.Request) -> bool:
    settings = request.config_dict[keys.CONTROL_SETTINGS]
    return request.secure or settings.public_base_url.startswith("https://")


async def login(request: web.Request) -> web.StreamResponse:
    """Check a password and open a login session (cookie + CSRF token)."""
    body = await read_json(request)
    result = await store_of(request).run(
        accounts.login,
        username=body.get("username"),
        password=body.get("password"),
        address=client_address(request),
    )
    response = web.json_response({"user": result.user.to_json(), "csrf_token": result.csrf_token})
    max_age = int(accounts.LOGIN_TTL.total_seconds())
    secure = _secure(request)
    response.set_cookie(
        SESSION_COOKIE,
        result.session_token,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=secure,
    )
    # readable by our own pages so they can echo it in the header (double submit)
    response.set_cookie(
        CSRF_COOKIE,
        result.csrf_token,
        max_age=max_age,
        path="/",
        httponly=False,
        samesite="Strict",
        secure=secure,
    )
    return response


@authed()
async def logout(request: web.Request, user: UserInfo) -> web.StreamResponse:
    """End this login session."""
    await store_of(request).run(accounts.logout, request.cookies.get(SESSION_COOKIE, ""))
    response = web.json_response({"ok": True})
    response.del_cookie(SESSION_COOKIE, path="/")
    response.del_cookie(CSRF_COOKIE, path="/")
    return response


async def me(request: web.Request) -> web.StreamResponse:
    """The logged-in user and the CSRF token to send in the X-CSRF-Token header."""
    auth = await current(request)
    if auth is None:
        raise ApiError(401, "not_authenticated", "log in first")
    return web.json_response(
        {"user": auth.user.to_json(), "csrf_token": auth.csrf_token, "csrf_header": CSRF_HEADER}
    )


ROUTES = [
    Route(
        "POST",
        "/auth/login",
        login,
        "Log in (sets the session and CSRF cookies)",
        ("public",),
        {"username": "string", "password": "string"},
        "auth",
    ),
    Route("POST", "/auth/logout", logout, "Log out", ("any",), tag="auth"),
    Route("GET", "/auth/me", me, "The logged-in user and CSRF token", ("any",), tag="auth"),
]
