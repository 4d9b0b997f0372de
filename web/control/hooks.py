"""What the room wiring calls: attendance, rules, the clinician's roster, audit events.

All are coroutines taking the application; database work runs in a worker thread.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from web.store import accounts, arrivals, invites, safety, sessions
from web.store import audit as audit_log
from web.store.errors import Forbidden
from web.store.sessions import SessionInfo

from . import keys


async def record_join(app: web.Application, session_id: str, participant_id: str) -> bool:
    """A member entered the room; False when the id is not a member of the session's group."""
    return await app[keys.STORE].run(sessions.record_join, session_id, participant_id)


async def record_leave(app: web.Application, session_id: str, participant_id: str) -> bool:
    """A member left the room."""
    return await app[keys.STORE].run(sessions.record_leave, session_id, participant_id)


async def record_checklist(
    app: web.Application, session_id: str, participant_id: str, answers: dict[str, Any]
) -> bool:
    """Store a member's pre-join checklist answers with their attendance."""
    return await app[keys.STORE].run(sessions.record_checklist, session_id, participant_id, answers)


async def session_info(app: web.Application, session_id: str) -> SessionInfo:
    """A session's times and status (raises web.store.errors.NotFound)."""
    return await app[keys.STORE].run(sessions.find_session, session_id)


async def session_rules(app: web.Application, session_id: str) -> dict[str, Any]:
    """The group rules dict of the session's group (GroupRules.from_dict accepts it)."""

    def load(tx: Any) -> dict[str, Any]:
        return dict(sessions.group_of(tx, session_id).rules)

    return await app[keys.STORE].run(load)


async def roster(
    app: web.Application, session_id: str, clinician: str
) -> dict[str, dict[str, str]]:
    """participant_id -> {pseudonym, real_name, member_id} for one of the group's clinicians.

    `clinician` is their user id or the participant id of their host grant. Audited; raises
    web.store.errors.Forbidden for anyone else. Send the result to that clinician only.
    """

    def load(tx: Any) -> dict[str, dict[str, str]]:
        user = accounts.user_by_participant(tx, clinician)
        if user is None:
            raise Forbidden(
                "only this group's clinicians may see real names", code="not_group_clinician"
            )
        return sessions.session_roster(tx, user, session_id)

    return await app[keys.STORE].run(load)


async def revoke_participant(
    app: web.Application, session_id: str, participant_id: str, *, actor: str
) -> int:
    """Withdraw a removed participant's link for this session (they cannot resume)."""
    return await app[keys.STORE].run(
        invites.revoke_for_participant, session_id, participant_id, actor=actor
    )


async def audit(
    app: web.Application,
    actor: str,
    action: str,
    target: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append an audit event (e.g. "lobby.admitted"); detail must hold ids, never real names."""
    await app[keys.STORE].run(audit_log.append, actor, action, target, detail)


async def record_incident(
    app: web.Application, session_id: str, kind: str, participant_id: str | None, detail: str
) -> None:
    """Store a safety incident (fail-closed placeholder, bystander alert, "someone came in",
    lobby decline, removal) linked to its hazard ids; `participant_id` is the opaque id and
    `detail` must never hold a name. Unknown kinds raise web.store.errors.InvalidInput."""
    await app[keys.STORE].run(safety.record_incident, session_id, kind, participant_id, detail)


async def safeguarding_details(
    app: web.Application, session_id: str, participant_id: str
) -> dict[str, Any] | None:
    """How to reach a member who dropped out (contact, emergency contact, where they said
    they are today): for the alert to the session's hosts only. Audited."""
    return await app[keys.STORE].run(arrivals.safeguarding_details, session_id, participant_id)


__all__ = [
    "safeguarding_details",
    "audit",
    "record_incident",
    "record_checklist",
    "record_join",
    "record_leave",
    "revoke_participant",
    "roster",
    "session_info",
    "session_rules",
]
