"""Login, logout and who-am-I."""

from __future__ import annotations

import asyncio

from aiohttp import web

from web.store import accounts
from web.store.accounts import UserInfo

from . import keys
from .http import (
    CSRF_COOKIE,
    CSRF_HEADER,
    SESSION_COOKIE,
    auth_of,
    client_address,
    store_of,
)
from .proxies import is_https
from .routes import ANY, PUBLIC, Answer, Route, body_of
from .schemas import Login, LoginAnswer, MeAnswer, OkAnswer


def _secure(request: web.Request) -> bool:
    settings = request.config_dict[keys.CONTROL_SETTINGS]
    return is_https(request) or settings.public_base_url.startswith("https://")


async def login(request: web.Request) -> Answer:
    """Check a password and open a login session (cookie + CSRF token)."""
    body = body_of(request, Login)
    result = await asyncio.to_thread(
        accounts.login,
        store_of(request),
        username=body.username,
        password=body.password,
        address=client_address(request),
    )
    answer = LoginAnswer.model_validate(
        {"user": result.user.to_json(), "csrf_token": result.csrf_token}
    )
    response = web.json_response(answer.model_dump(mode="json"))
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


async def logout(request: web.Request, user: UserInfo) -> Answer:
    """End this login session."""
    await store_of(request).run(accounts.logout, request.cookies.get(SESSION_COOKIE, ""))
    response = web.json_response(OkAnswer(ok=True).model_dump())
    response.del_cookie(SESSION_COOKIE, path="/")
    response.del_cookie(CSRF_COOKIE, path="/")
    return response


async def me(request: web.Request, user: UserInfo) -> Answer:
    """The logged-in user and the CSRF token to send in the X-CSRF-Token header."""
    return {"user": user.to_json(), "csrf_token": auth_of(request).csrf_token,
            "csrf_header": CSRF_HEADER}


ROUTES = [
    Route("POST", "/auth/login", login, "Log in (sets the session and CSRF cookies)", PUBLIC,
          body=Login, response=LoginAnswer, tag="auth"),
    Route("POST", "/auth/logout", logout, "Log out", ANY, response=OkAnswer, tag="auth"),
    Route("GET", "/auth/me", me, "The logged-in user and CSRF token", ANY, response=MeAnswer,
          tag="auth"),
]
