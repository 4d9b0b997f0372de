"""HTTP plumbing of the API: JSON in and out, errors, login sessions, CSRF, roles."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from web.store import Store, accounts
from web.store.accounts import UserInfo
from web.store.errors import StoreError

from . import keys
from .errors import ApiError, from_store
from .routes import Handler

logger = logging.getLogger(__name__)

SESSION_COOKIE = "confide_session"
CSRF_COOKIE = "confide_csrf"
CSRF_HEADER = "X-CSRF-Token"
MAX_BODY = 64 * 1024
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")

AuthedHandler = Callable[[web.Request, UserInfo], Awaitable[web.StreamResponse]]


def error_response(exc: ApiError) -> web.Response:
    """The JSON body every error has."""
    body: dict[str, Any] = {"code": exc.code, "message": exc.message, **exc.extra}
    response = web.json_response({"error": body}, status=exc.status)
    if exc.code == "login_throttled" and "retry_after_s" in exc.extra:
        response.headers["Retry-After"] = str(exc.extra["retry_after_s"])
    return response


@web.middleware
async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every /api/v1 answer is JSON, errors included; nothing is cached."""
    try:
        response = await handler(request)
    except ApiError as exc:
        response = error_response(exc)
    except StoreError as exc:
        api = from_store(exc)
        if hasattr(exc, "retry_after_s"):
            api.extra["retry_after_s"] = exc.retry_after_s
        response = error_response(api)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(
            exc.status, "http_error"
        )
        response = error_response(ApiError(exc.status, code, exc.reason))
    except Exception as exc:
        # the type only: values could carry personal data
        logger.error(
            "internal error in %s %s: %s",
            request.method,
            request.path,
            type(exc).__name__,
            exc_info=False,
        )
        response = error_response(ApiError(500, "internal_error", "internal error"))
    response.headers["Cache-Control"] = "no-store"
    return response


def _check_strings(value: Any) -> None:
    # json.loads turns "\ud800" escapes into lone surrogates: those are not text
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(400, "invalid_unicode", "request contains invalid Unicode") from None
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_strings(k)
            _check_strings(v)
    elif isinstance(value, list):
        for v in value:
            _check_strings(v)


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; clear errors for wrong type, size, encoding or syntax."""
    if request.content_type != "application/json":
        # forms cannot send this type cross-site without a preflight
        raise ApiError(415, "unsupported_media_type", "send application/json")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, "body_too_large", f"request body over {MAX_BODY} bytes")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise ApiError(413, "body_too_large", f"request body over {MAX_BODY} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_unicode", "request body is not UTF-8") from None
    except ValueError:
        raise ApiError(400, "invalid_json", "request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "request body must be a JSON object")
    _check_strings(data)
    return data


def store_of(request: web.Request) -> Store:
    """The store attached to the application."""
    return request.config_dict[keys.STORE]


def client_address(request: web.Request) -> str:
    """The peer address (proxies are not trusted for this)."""
    return request.remote or "unknown"


async def current(request: web.Request) -> accounts.Authenticated | None:
    """The logged-in user of this request, if any."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return await store_of(request).run(accounts.session_user, token)


def authed(*roles: str) -> Callable[[AuthedHandler], Handler]:
    """Require a login session (and one of `roles`); CSRF-check state-changing requests."""

    def wrap(handler: AuthedHandler) -> Handler:
        async def inner(request: web.Request) -> web.StreamResponse:
            auth = await current(request)
            if auth is None:
                raise ApiError(401, "not_authenticated", "log in first")
            if request.method in UNSAFE and not accounts.csrf_matches(
                auth.csrf_token, request.headers.get(CSRF_HEADER)
            ):
                raise ApiError(403, "csrf_failed", f"missing or wrong {CSRF_HEADER} header")
            if roles and auth.user.role not in roles:
                raise ApiError(403, "forbidden_role", "your role does not allow this")
            return await handler(request, auth.user)

        inner.__name__ = handler.__name__
        inner.__doc__ = handler.__doc__
        return inner

    return wrap
