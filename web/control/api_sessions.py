"""Sessions: schedule, status changes (behind the lobby gates), roster, attendance, hosting."""

from __future__ import annotations

from aiohttp import web

from web.store import invites, sessions
from web.store.accounts import UserInfo

from . import keys
from .grants import host_grant
from .http import authed, read_json, store_of
from .routes import Route


def _sid(request: web.Request) -> str:
    return request.match_info["session_id"]


def invite_url(request: web.Request, token: str) -> str:
    """The link a member opens; the token is only ever in this answer."""
    settings = request.config_dict[keys.CONTROL_SETTINGS]
    base = settings.public_base_url or f"{request.scheme}://{request.host}"
    return f"{base.rstrip('/')}/i/{token}"


@authed("clinician")
async def list_sessions(request: web.Request, user: UserInfo) -> web.StreamResponse:
    """A group's sessions."""
    found = await store_of(request).run(
        sessions.list_sessions, user, request.match_info["group_id"]
    )
    return web.json_response({"sessions": [s.to_json() for s in found]})


@authed("clinician")
async def schedule(request: web.Request, user: UserInfo) -> web.StreamResponse:
    """Schedule a session."""
    body = await read_json(request)
    found = await store_of(request).run(
        sessions.schedule,
        user,
        request.match_info["group_id"],
        starts_at=body.get("starts_at"),
        duration_min=body.get("duration_min"),
    )
    return web.json_response({"session": found.to_json()}, status=201)


@authed("clinician")
async def get_session(request: web.Request, user: UserInfo) -> web.StreamResponse:
    """One session."""
    found = await store_of(request).run(sessions.get_session, user, _sid(request))
    return web.json_response({"session": found.to_json()})


@authed("clinician")
async def set_status(request: web.Request, user: UserInfo) -> web.StreamResponse:
    """Move a session on: open (lobby), live, ended. Opening runs every lobby gate first."""
    body = await read_json(request)
    target = body.get("status")
    store = store_of(request)
    unmet: list[str] = []
    if target in ("open", "live"):
        # the access check runs before the gates, so gates never see an outsider's request
        await store.run(sessions.get_session, user, _sid(request))
        for gate in request.config_dict[keys.LOBBY_GATES]:
            unmet.extend(await gate(_sid(request)))
    found = await store.run(sessions.transition, user, _sid(request), target, unmet=unmet)
    if found.status == "ended":
        # the clinician's end ends the live room too: everyone is told, nobody joins again
        for listener in request.config_dict[keys.SESSION_END_LISTENERS]:
            await listener(found.id)
    return web.json_response({"session": found.to_json()})


@authed("clinician")
async def roster(request: web.Request, user: UserInfo) -> web.StreamResponse:
    """participant id -> pseudonym and real name, for the group's clinicians (audited)."""
    found = await store_of(request).run(sessions.session_roster, user, _sid(request))
    return web.json_response({"participants": found})


@authed("clinician")
async def attendance(request: web.Request, user: UserInfo) -> web.StreamResponse:
    """Who attended, who did not."""
    found = await store_of(request).run(sessions.attendance_report, user, _sid(request))
    return web.json_response({"attendance": found})


@authed("clinician")
async def host(request: web.Request, user: UserInfo) -> web.StreamResponse:
    """A host join grant for this session."""
    found = await store_of(request).run(sessions.get_session, user, _sid(request))
    if found.status == "ended":
        from .errors import ApiError

        raise ApiError(409, "session_ended", "this session has ended")
    return web.json_response(host_grant(request.config_dict[keys.CONTROL_SETTINGS], user, found))


@authed("clinician")
async def list_invites(request: web.Request, user: UserInfo) -> web.StreamResponse:
    """Links issued for this session and their state (tokens are never shown again)."""
    found = await store_of(request).run(invites.list_for_session, user, _sid(request))
    return web.json_response({"invites": [i.to_json() for i in found]})


@authed("clinician")
async def issue(request: web.Request, user: UserInfo) -> web.StreamResponse:
    """Issue a link for one member ({"member_id"}) or for all ({"all": true})."""
    body = await read_json(request)
    store = store_of(request)
    if body.get("all") is True:
        issued = await store.run(invites.issue_all, user, _sid(request))
    else:
        issued = [await store.run(invites.issue, user, _sid(request), body.get("member_id"))]
    return web.json_response(
        {"invites": [{**i.invite.to_json(), "url": invite_url(request, i.token)} for i in issued]},
        status=201,
    )


S = "/sessions/{session_id}"
ROUTES = [
    Route(
        "GET",
        "/groups/{group_id}/sessions",
        list_sessions,
        "List a group's sessions",
        ("clinician",),
        tag="sessions",
    ),
    Route(
        "POST",
        "/groups/{group_id}/sessions",
        schedule,
        "Schedule a session",
        ("clinician",),
        {"starts_at": "string", "duration_min": "integer"},
        "sessions",
    ),
    Route("GET", S, get_session, "Get a session", ("clinician",), tag="sessions"),
    Route(
        "POST",
        S + "/status",
        set_status,
        "Open the lobby, go live, or end",
        ("clinician",),
        {"status": "string"},
        "sessions",
    ),
    Route(
        "GET",
        S + "/roster",
        roster,
        "Participant ids with pseudonyms and real names",
        ("clinician",),
        tag="sessions",
    ),
    Route("GET", S + "/attendance", attendance, "Attendance", ("clinician",), tag="sessions"),
    Route("POST", S + "/host-grant", host, "A host join grant", ("clinician",), tag="sessions"),
    Route("GET", S + "/invites", list_invites, "List invites", ("clinician",), tag="invites"),
    Route(
        "POST",
        S + "/invites",
        issue,
        "Issue invite links",
        ("clinician",),
        {"member_id": "string", "all": "boolean"},
        "invites",
    ),
]
