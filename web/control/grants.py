"""Join grants for sessions: what redeeming an invite or hosting returns."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from confidentiality.profiles import Profile
from sfu.errors import SfuError
from sfu.grants import mint_grant
from web.settings import Settings
from web.store.accounts import UserInfo
from web.store.invites import Redemption
from web.store.sessions import SessionInfo

from . import keys

logger = logging.getLogger(__name__)

GRANT_TTL_S = 600.0


async def with_node(request: web.Request, answer: dict[str, Any]) -> dict[str, Any]:
    """Name the node that runs the grant's room (placing it there now if nobody runs it).

    One node alone names none. When placement cannot be done just now (Redis away), the
    grant is still given, without a node: the socket then goes to this node, which asks the
    member to try again in a moment; an invite already redeemed is never lost for it.
    """
    placer = request.config_dict.get(keys.ROOM_PLACER)
    node_id = node_url = None
    if placer is not None:
        try:
            node_id, node_url = await placer(answer["session_id"], answer["room"])
        except SfuError as exc:
            logger.warning("grant for room %s names no node: %s", answer["room"], exc.code)
    return {**answer, "node_id": node_id, "node_url": node_url}


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
