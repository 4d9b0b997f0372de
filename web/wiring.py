"""Glue between the media plane, the privacy pipeline and the session rules."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from confidentiality.pipeline import PrivacyPipeline
from confidentiality.profiles import Profile
from sfu.errors import InvalidStateError
from sfu.grants import Grant
from sfu.processor import FrameTransform
from sfu.room import Room

from . import keys
from .session_control import DEV_RULES, SessionController

logger = logging.getLogger(__name__)


# privacy_transform_factory as media worker processes import it (sfu/workers.py)
PRIVACY_FACTORY = "web.wiring:privacy_transform_factory"


def privacy_transform_factory(
    profile: Profile, display_name: str, on_event: Callable[[Any], None]
) -> FrameTransform:
    """The privacy pipeline a processed publication runs (fail-closed, off the loop)."""
    pipeline = PrivacyPipeline(profile=profile, display_name=display_name, on_event=on_event)
    if profile.needs_pixels:
        # models load in the pipeline's thread while the first keyframe is on its way
        pipeline.preload()
    return pipeline


def room_setup(app: web.Application) -> Callable[[Room, Grant], Awaitable[None]]:
    """Attach each new room's rules: the session's, or the development defaults."""

    async def setup(room: Room, grant: Grant) -> None:
        settings = app[keys.SETTINGS]
        if grant.session_id is not None and _has_control_plane(app):
            # the session's rules, its state taken back from the store when it has one
            from web.live.rooms import session_controller

            room.controller = await session_controller(app, room, grant.session_id)
            room.controller.alerts.details = _safeguarding_details(app, grant.session_id)
        elif settings.dev:
            room.controller = SessionController(room, DEV_RULES, skip_agreement=True)
        else:
            raise InvalidStateError("no such room is open", code="room_not_open")

    return setup


async def end_live_room(app: web.Application, session_id: str) -> None:
    """The clinician ended the session through the API: end its room here, if it is live.

    Everyone in it is told and disconnected; the store already says "ended", so no grant
    for it joins again, here or after a restart.
    """
    for room in list(app[keys.ROOMS].rooms.values()):
        controller = room.controller
        if isinstance(controller, SessionController) and controller.session_id == session_id:
            await controller.end_elsewhere()
            await app[keys.ROOMS].drop_if_empty(room)


async def alert_live_room(app: web.Application, session_id: str, participant_id: str,
                          kind: str) -> None:
    """Tell a session's hosts privately (a risk flag on today's measures); an alert with no
    host in the room is kept for the next one. Nothing happens when the room is not live."""
    for room in list(app[keys.ROOMS].rooms.values()):
        controller = room.controller
        if isinstance(controller, SessionController) and controller.session_id == session_id:
            await controller.alert_hosts(kind, participant_id)


def _has_control_plane(app: web.Application) -> bool:
    try:
        from web.control import keys as control_keys
    except ImportError:
        return False
    return control_keys.STORE in app


def _safeguarding_details(
    app: web.Application, session_id: str
) -> Callable[[str], Awaitable[dict[str, Any] | None]]:
    # how to reach a member who dropped out: read from the store for that one alert
    async def details(participant_id: str) -> dict[str, Any] | None:
        from web.control import hooks

        return await hooks.safeguarding_details(app, session_id, participant_id)

    return details
