"""Join grants for sessions: what redeeming an invite or hosting returns."""

from __future__ import annotations

from typing import Any

from confidentiality.profiles import Profile
from sfu.grants import mint_grant
from web.settings import Settings
from web.store.accounts import UserInfo
from web.store.invites import Redemption
from web.store.sessions import SessionInfo

GRANT_TTL_S = 600.0


def participant_grant(settings: Settings, r: Redemption) -> dict[str, Any]:
    """The redemption response: grant with the pseudonym as display name, never a real name."""
    grant = mint_grant(
        settings.grant_secret,
        room=r.session.room,
        display_name=r.pseudonym,
        participant_id=r.participant_id,
        role="participant",
        profile=r.profile,
        session_id=r.session.id,
        ttl_s=GRANT_TTL_S,
    )
    return {
        "grant": grant,
        "room": r.session.room,
        "display_name": r.pseudonym,
        "participant_id": r.participant_id,
        "profile": r.profile.value,
        "role": "participant",
        "session_id": r.session.id,
        "session_status": r.session.status,
        "resume": r.resume,
    }


def host_grant(settings: Settings, user: UserInfo, session: SessionInfo) -> dict[str, Any]:
    """A host grant for one of the group's clinicians."""
    grant = mint_grant(
        settings.grant_secret,
        room=session.room,
        display_name=user.display_name,
        participant_id=user.participant_id,
        role="host",
        profile=Profile.NONE,
        session_id=session.id,
        ttl_s=GRANT_TTL_S,
    )
    return {
        "grant": grant,
        "room": session.room,
        "display_name": user.display_name,
        "participant_id": user.participant_id,
        "profile": Profile.NONE.value,
        "role": "host",
        "session_id": session.id,
        "session_status": session.status,
        "resume": None,
    }
