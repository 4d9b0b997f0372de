"""Accounts (admin) and the audit log (admin and CSO)."""

from __future__ import annotations

from aiohttp import web

from web.store import accounts, audit
from web.store.accounts import UserInfo

from .errors import ApiError
from .http import authed, read_json, store_of
from .routes import Route


@authed("admin")
async def list_users(request: web.Request, user: UserInfo) -> web.StreamResponse:
    """All accounts."""
    found = await store_of(request).run(accounts.list_users)
    return web.json_response({"users": [u.to_json() for u in found]})


@authed("admin")
async def create_user(request: web.Request, user: UserInfo) -> web.StreamResponse:
    """Create an account."""
    body = await read_json(request)
    made = await store_of(request).run(
        accounts.create_user,
        username=body.get("username"),
        role=body.get("role"),
        password=body.get("password"),
        display_name=body.get("display_name"),
        actor=f"user:{user.id}",
    )
    return web.json_response({"user": made.to_json()}, status=201)


def _int_param(request: web.Request, name: str, default: int | None) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 12:
        raise ApiError(400, "invalid_query", f"{name} must be a whole number")
    return int(raw)


@authed("admin", "cso")
async def list_audit(request: web.Request, user: UserInfo) -> web.StreamResponse:
    """Audit events, newest first (?limit=&before=&action=)."""
    limit = _int_param(request, "limit", 100)
    assert limit is not None
    events = await store_of(request).run(
        audit.list_events,
        limit=limit,
        before_id=_int_param(request, "before", None),
        action=request.query.get("action"),
    )
    return web.json_response({"events": [e.to_json() for e in events]})


@authed("admin", "cso")
async def export_audit(request: web.Request, user: UserInfo) -> web.StreamResponse:
    """The whole audit log as CSV."""
    store = store_of(request)
    events = await store.run(audit.all_events)
    await store.run(
        audit.append, f"user:{user.id}", "audit.exported", "audit", {"events": len(events)}
    )
    return web.Response(
        text=audit.to_csv(events),
        content_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="confide-audit.csv"'},
    )


ROUTES = [
    Route("GET", "/users", list_users, "List accounts", ("admin",), tag="admin"),
    Route(
        "POST",
        "/users",
        create_user,
        "Create an account",
        ("admin",),
        {"username": "string", "role": "string", "password": "string", "display_name": "string"},
        "admin",
    ),
    Route("GET", "/audit", list_audit, "Audit events", ("admin", "cso"), tag="audit"),
    Route("GET", "/audit.csv", export_audit, "Audit log as CSV", ("admin", "cso"), tag="audit"),
]
