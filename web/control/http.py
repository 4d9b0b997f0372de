"""HTTP plumbing of the API: JSON in and out, errors, login sessions, CSRF, roles."""

from __future__ import annotations

import logging
import math
from typing import Any, TypeVar

from aiohttp import web
from pydantic import ValidationError

from web.ops.logs import redact_target
from web.store import Store, accounts, audit
from web.store.errors import StoreError
from web.wire import json as wire_json
from web.wire.validation import HTTP_CODES, WireModel, problem

from . import keys, proxies
from .errors import ApiError, from_store
from .routes import ANY, BODY, MEMBER_HEADER, Handler, MemberKey, Route

logger = logging.getLogger(__name__)

SESSION_COOKIE = "confide_session"
CSRF_COOKIE = "confide_csrf"
CSRF_HEADER = "X-CSRF-Token"
MAX_BODY = 64 * 1024
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
AUTH = web.RequestKey("api_auth", accounts.Authenticated)
B = TypeVar("B", bound=WireModel)


def error_response(exc: ApiError) -> web.Response:
    """The JSON body every error has."""
    body: dict[str, Any] = {"code": exc.code, "message": exc.message, **exc.extra}
    response = web.json_response({"error": body}, status=exc.status)
    # throttled (429), or the database away for a moment (503): when to try again
    if exc.status in (429, 503) and "retry_after_s" in exc.extra:
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
        # the type and the stack, never the message: values could carry personal data (the
        # log formatters in web/ops/logs.py drop exception messages)
        logger.error(
            "internal error in %s %s: %s",
            request.method,
            redact_target(request.path),
            type(exc).__name__,
            exc_info=True,
        )
        response = error_response(ApiError(500, "internal_error", "internal error"))
    response.headers["Cache-Control"] = "no-store"
    return response


async def read_body(request: web.Request, model: type[B]) -> B:
    """The request's JSON body as `model`; clear errors for type, size, encoding, syntax,
    depth and every field (unknown, missing, of the wrong type)."""
    if request.content_type != "application/json":
        # forms cannot send this type cross-site without a preflight
        raise ApiError(415, "unsupported_media_type", "send application/json")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, "body_too_large", f"request body over {MAX_BODY} bytes")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise ApiError(413, "body_too_large", f"request body over {MAX_BODY} bytes")
    try:
        data = wire_json.loads(raw)
    except wire_json.JsonRejected as exc:
        code = "invalid_json" if exc.code == "bad_json" else exc.code
        raise ApiError(400, code, f"request body: {exc.message}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        found = problem(exc, model, HTTP_CODES)
        raise ApiError(400, found.code, found.message, extra={"field": found.field}) from None


def store_of(request: web.Request) -> Store:
    """The store attached to the application."""
    return request.config_dict[keys.STORE]


def client_address(request: web.Request) -> str:
    """The client's address: the peer's, or behind a trusted reverse proxy the one it
    forwarded (CONFIDE_TRUSTED_PROXIES; see web/control/proxies.py). Key throttling on this."""
    return proxies.client_address(request)


async def current(request: web.Request) -> accounts.Authenticated | None:
    """The logged-in user of this request, if any."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return await store_of(request).run(accounts.session_user, token)


def auth_of(request: web.Request) -> accounts.Authenticated:
    """The caller's login, checked by the router (routes that are not public only)."""
    return request[AUTH]


def bind(route: Route) -> Handler:
    """The aiohttp handler for `route`: its access, its body and its answer, as declared."""

    async def handler(request: web.Request) -> web.StreamResponse:
        args: list[Any] = []
        if route.member:
            # no login: the member's link secret, and the allowance every anonymous caller has
            # its own allowance per address: a member's forms do not use up the calls their
            # link needs (redeem, resume) when several members share one address
            await anonymous_allowance(request, "member." + route.method.lower(), scope="member")
            secret = request.headers.get(MEMBER_HEADER, "")
            if not secret:
                raise ApiError(401, "member_not_authenticated",
                               f"open your personal link first (no {MEMBER_HEADER} header)")
            args.append(MemberKey(secret))
        elif not route.public:
            auth = await current(request)
            if auth is None:
                raise ApiError(401, "not_authenticated", "log in first")
            if request.method in UNSAFE and not accounts.csrf_matches(
                auth.csrf_token, request.headers.get(CSRF_HEADER)
            ):
                raise ApiError(403, "csrf_failed", f"missing or wrong {CSRF_HEADER} header")
            if route.access != ANY and auth.user.role not in route.access:
                raise ApiError(403, route.role_error, "your role does not allow this")
            request[AUTH] = auth
            args.append(auth.user)
        if route.body is not None:
            request[BODY] = await read_body(request, route.body)
        answer = await route.handler(request, *args)
        if isinstance(answer, web.StreamResponse):
            return answer
        return web.json_response(_held_to(route, answer), status=route.status)

    handler.__name__ = getattr(route.handler, "__name__", "handler")
    handler.__doc__ = route.handler.__doc__
    return handler


def _held_to(route: Route, answer: dict[str, Any]) -> Any:
    if route.response is None:
        return answer
    try:
        return route.response.model_validate(answer).model_dump(mode="json", by_alias=True)
    except ValidationError as exc:
        # the code and its declared answer disagree: a defect, never shown to the caller
        err = exc.errors(include_url=False, include_input=False)[0]
        logger.error("answer of %s %s does not match %s at %s: %s", route.method, route.path,
                     route.response.__name__, err["loc"], err["type"])
        raise ApiError(500, "internal_error", "internal error") from None


async def anonymous_allowance(request: web.Request, action: str, *, scope: str = "") -> None:
    """Go ahead, or 429 `too_many_requests` with Retry-After (audited, boundedly)."""
    throttle = request.config_dict[keys.ANONYMOUS_THROTTLE]
    address = client_address(request)
    key = f"{scope}:{address}" if scope else address
    wait = throttle.take(key)
    if not wait:
        return
    refused = throttle.refusals_to_record(key)
    if refused:
        await store_of(request).run(
            audit.append, "anonymous", f"{action}.throttled", "-",
            {"address": address, "refused": refused},
        )
    raise ApiError(429, "too_many_requests", "too many requests: try again later",
                   extra={"retry_after_s": max(1, math.ceil(wait))})
