"""Accounts (admin) and the audit log (admin and CSO)."""

from __future__ import annotations

from aiohttp import web

from web.store import accounts, audit
from web.store.accounts import UserInfo

from .errors import ApiError
from .http import store_of
from .routes import Answer, Route, body_of
from .schemas import AuditAnswer, NewPassword, NewUser, UserAnswer, UsersAnswer

# rows per database round trip while exporting: memory stays flat however long the log
EXPORT_BATCH = 500


async def list_users(request: web.Request, user: UserInfo) -> Answer:
    """All accounts."""
    found = await store_of(request).run(accounts.list_users)
    return {"users": [u.to_json() for u in found]}


async def create_user(request: web.Request, user: UserInfo) -> Answer:
    """Create an account."""
    body = body_of(request, NewUser)
    made = await store_of(request).run(
        accounts.create_user,
        username=body.username,
        role=body.role,
        password=body.password,
        display_name=body.display_name,
        actor=f"user:{user.id}",
    )
    return {"user": made.to_json()}


async def disable_user(request: web.Request, user: UserInfo) -> Answer:
    """Disable an account (a leaver): no more logins, its sessions end now."""
    found = await store_of(request).run(
        accounts.set_disabled, user, request.match_info["user_id"], True
    )
    return {"user": found.to_json()}


async def enable_user(request: web.Request, user: UserInfo) -> Answer:
    """Enable a disabled account again."""
    found = await store_of(request).run(
        accounts.set_disabled, user, request.match_info["user_id"], False
    )
    return {"user": found.to_json()}


async def reset_password(request: web.Request, user: UserInfo) -> Answer:
    """Set a new password for an account: {password}; its sessions end now."""
    body = body_of(request, NewPassword)
    found = await store_of(request).run(
        accounts.reset_password, user, request.match_info["user_id"], body.password
    )
    return {"user": found.to_json()}


def _int_param(request: web.Request, name: str, default: int | None) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 12:
        raise ApiError(400, "invalid_query", f"{name} must be a whole number")
    return int(raw)


async def list_audit(request: web.Request, user: UserInfo) -> Answer:
    """Audit events, newest first (?limit=&before=&action=)."""
    limit = _int_param(request, "limit", 100)
    assert limit is not None
    events = await store_of(request).run(
        audit.list_events,
        limit=limit,
        before_id=_int_param(request, "before", None),
        action=request.query.get("action"),
    )
    return {"events": [e.to_json() for e in events]}


async def export_audit(request: web.Request, user: UserInfo) -> Answer:
    """The whole audit log as CSV, streamed page by page (the log only grows)."""
    store = store_of(request)
    # the export is the log as it stood when asked for; the export itself is its next line
    up_to = await store.run(audit.last_id)
    await store.run(
        audit.append, f"user:{user.id}", "audit.exported", "audit", {"up_to_id": up_to}
    )
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="confide-audit.csv"',
        }
    )
    await response.prepare(request)
    await response.write(audit.to_csv([]).encode())
    after = 0
    while True:
        page = await store.run(audit.events_after, after, up_to_id=up_to, limit=EXPORT_BATCH)
        if not page:
            break
        await response.write(audit.to_csv(page, header=False).encode())
        after = page[-1].id
    await response.write_eof()
    return response


ROUTES = [
    Route("GET", "/users", list_users, "List accounts", ("admin",), response=UsersAnswer,
          tag="admin"),
    Route("POST", "/users", create_user, "Create an account", ("admin",), body=NewUser,
          response=UserAnswer, status=201, tag="admin"),
    Route("POST", "/users/{user_id}/disable", disable_user, "Disable an account (leaver)",
          ("admin",), response=UserAnswer, tag="admin"),
    Route("POST", "/users/{user_id}/enable", enable_user, "Enable an account again",
          ("admin",), response=UserAnswer, tag="admin"),
    Route("POST", "/users/{user_id}/password", reset_password, "Reset an account's password",
          ("admin",), body=NewPassword, response=UserAnswer, tag="admin"),
    Route("GET", "/audit", list_audit, "Audit events", ("admin", "cso"), response=AuditAnswer,
          tag="audit"),
    Route("GET", "/audit.csv", export_audit, "Audit log as CSV", ("admin", "cso"),
          media_type="text/csv", tag="audit"),
]
