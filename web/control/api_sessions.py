"""Sessions: schedule, status changes (behind the lobby gates), roster, attendance, hosting."""

from __future__ import annotations

from aiohttp import web

from web.store import invites, sessions
from web.store.accounts import UserInfo

from . import keys
from .errors import ApiError
from .grants import host_grant, with_node
from .http import store_of
from .routes import Answer, Route, body_of
from .schemas import (
    AttendanceAnswer,
    GrantAnswer,
    InvitesAnswer,
    InvitesToIssue,
    IssuedInvitesAnswer,
    NewSession,
    SessionAnswer,
    SessionRosterAnswer,
    SessionsAnswer,
    StatusChange,
)


def _sid(request: web.Request) -> str:
    return request.match_info["session_id"]


def invite_url(request: web.Request, token: str) -> str:
    """The link a member opens; the token is only ever in this answer."""
    settings = request.config_dict[keys.CONTROL_SETTINGS]
    base = settings.public_base_url or f"{request.scheme}://{request.host}"
    return f"{base.rstrip('/')}/i/{token}"


async def list_sessions(request: web.Request, user: UserInfo) -> Answer:
    """A group's sessions."""
    found = await store_of(request).run(
        sessions.list_sessions, user, request.match_info["group_id"]
    )
    return {"sessions": [s.to_json() for s in found]}


async def schedule(request: web.Request, user: UserInfo) -> Answer:
    """Schedule a session."""
    body = body_of(request, NewSession)
    found = await store_of(request).run(
        sessions.schedule,
        user,
        request.match_info["group_id"],
        starts_at=body.starts_at,
        duration_min=body.duration_min,
    )
    return {"session": found.to_json()}


async def get_session(request: web.Request, user: UserInfo) -> Answer:
    """One session."""
    found = await store_of(request).run(sessions.get_session, user, _sid(request))
    return {"session": found.to_json()}


async def set_status(request: web.Request, user: UserInfo) -> Answer:
    """Move a session on: open (lobby), live, ended. Opening runs every lobby gate first;
    ending ends its live room at once."""
    target = body_of(request, StatusChange).status
    store = store_of(request)
    unmet: list[str] = []
    if target in ("open", "live"):
        # the access check runs before the gates, so gates never see an outsider's request
        await store.run(sessions.get_session, user, _sid(request))
        for gate in request.config_dict[keys.LOBBY_GATES]:
            unmet.extend(await gate(_sid(request)))
    found = await store.run(sessions.transition, user, _sid(request), target, unmet=unmet)
    if found.status in ("open", "live"):
        # the room goes to a media node now, not on the first join
        for opened in request.config_dict[keys.SESSION_OPEN_LISTENERS]:
            await opened(found.id, found.room)
    if found.status == "ended":
        # the clinician's end ends the live room too: everyone is told, nobody joins again
        for listener in request.config_dict[keys.SESSION_END_LISTENERS]:
            await listener(found.id)
    return {"session": found.to_json()}


async def roster(request: web.Request, user: UserInfo) -> Answer:
    """participant id -> pseudonym and real name, for the group's clinicians (audited)."""
    found = await store_of(request).run(sessions.session_roster, user, _sid(request))
    return {"participants": found}


async def attendance(request: web.Request, user: UserInfo) -> Answer:
    """Who attended, who did not."""
    found = await store_of(request).run(sessions.attendance_report, user, _sid(request))
    return {"attendance": found}


async def host(request: web.Request, user: UserInfo) -> Answer:
    """A host join grant for this session."""
    found = await store_of(request).run(sessions.get_session, user, _sid(request))
    if found.status == "ended":
        raise ApiError(409, "session_ended", "this session has ended")
    return await with_node(
        request, host_grant(request.config_dict[keys.CONTROL_SETTINGS], user, found)
    )


async def list_invites(request: web.Request, user: UserInfo) -> Answer:
    """Links issued for this session and their state (tokens are never shown again)."""
    found = await store_of(request).run(invites.list_for_session, user, _sid(request))
    return {"invites": [i.to_json() for i in found]}


async def issue(request: web.Request, user: UserInfo) -> Answer:
    """Issue a link for one member ({"member_id"}) or for all ({"all": true})."""
    body = body_of(request, InvitesToIssue)
    store = store_of(request)
    if body.all:
        issued = await store.run(invites.issue_all, user, _sid(request))
    else:
        issued = [await store.run(invites.issue, user, _sid(request), body.member_id)]
    return {
        "invites": [{**i.invite.to_json(), "url": invite_url(request, i.token)} for i in issued]
    }


S = "/sessions/{session_id}"
CLINICIAN = ("clinician",)
ROUTES = [
    Route("GET", "/groups/{group_id}/sessions", list_sessions, "List a group's sessions",
          CLINICIAN, response=SessionsAnswer, tag="sessions"),
    Route("POST", "/groups/{group_id}/sessions", schedule, "Schedule a session", CLINICIAN,
          body=NewSession, response=SessionAnswer, status=201, tag="sessions"),
    Route("GET", S, get_session, "Get a session", CLINICIAN, response=SessionAnswer,
          tag="sessions"),
    Route("POST", S + "/status", set_status, "Open the lobby, go live, or end", CLINICIAN,
          body=StatusChange, response=SessionAnswer, tag="sessions"),
    Route("GET", S + "/roster", roster, "Participant ids with pseudonyms and real names",
          CLINICIAN, response=SessionRosterAnswer, tag="sessions"),
    Route("GET", S + "/attendance", attendance, "Attendance", CLINICIAN,
          response=AttendanceAnswer, tag="sessions"),
    Route("POST", S + "/host-grant", host, "A host join grant", CLINICIAN,
          response=GrantAnswer, tag="sessions"),
    Route("GET", S + "/invites", list_invites, "List invites", CLINICIAN,
          response=InvitesAnswer, tag="invites"),
    Route("POST", S + "/invites", issue, "Issue invite links", CLINICIAN, body=InvitesToIssue,
          response=IssuedInvitesAnswer, status=201, tag="invites"),
]
