"""Glue between the media plane, the privacy pipeline and the session rules."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from confidentiality.pipeline import PrivacyPipeline
from confidentiality.profiles import Profile
from session_rules.rules import GroupRules
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
            from web.control import hooks

            try:
                info = await hooks.session_info(app, grant.session_id)
                rules = GroupRules.from_dict(await hooks.session_rules(app, grant.session_id))
            except Exception as exc:  # unknown session, bad stored rules: refuse, say why
                raise InvalidStateError("this session is not open", code="room_not_open") from exc
            if info.status == "ended":
                raise InvalidStateError("this session has ended", code="session_ended")
            if info.status not in ("open", "live"):
                raise InvalidStateError("this session is not open", code="room_not_open")
            room.controller = SessionController(
                room, rules, starts_at=info.starts_at.timestamp(),
                recorder=StoreRecorder(app, grant.session_id), session_id=grant.session_id,
            )
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


class StoreRecorder:
    """Records a session's events in the control plane's store (ids only, never names)."""

    def __init__(self, app: web.Application, session_id: str) -> None:
        self.app = app
        self.session_id = session_id

    async def joined(self, participant_id: str) -> None:
        from web.control import hooks

        await _quietly(hooks.record_join(self.app, self.session_id, participant_id))

    async def left(self, participant_id: str) -> None:
        from web.control import hooks

        await _quietly(hooks.record_leave(self.app, self.session_id, participant_id))

    async def checklist(self, participant_id: str, result: dict[str, Any]) -> None:
        from web.control import hooks

        await _quietly(hooks.record_checklist(self.app, self.session_id, participant_id, result))

    async def incident(self, kind: str, participant_id: str | None, detail: str) -> None:
        from web.control import hooks

        record = getattr(hooks, "record_incident", None)
        if record is not None:
            await _quietly(record(self.app, self.session_id, kind, participant_id, detail))
        else:
            await _quietly(hooks.audit(self.app, participant_id or "room", f"incident.{kind}",
                                       self.session_id, {"kind": kind}))

    async def audit(self, actor: str, action: str, target: str | None, detail: str) -> None:
        from web.control import hooks

        await _quietly(hooks.audit(self.app, actor, action, target or self.session_id,
                                   {"session": self.session_id, "result": detail}))


    async def session_ended(self, actor: str) -> None:
        from web.control import keys as control_keys
        from web.store import accounts, sessions

        def end(tx: Any) -> None:
            user = accounts.user_by_participant(tx, actor)
            if user is not None:
                sessions.transition(tx, user, self.session_id, "ended")

        await _quietly(self.app[control_keys.STORE].run(end))

    async def session_status(self) -> str | None:
        from web.control import hooks

        try:
            return (await hooks.session_info(self.app, self.session_id)).status
        except Exception:
            # the store cannot say: a live room goes on by what it knows
            logger.warning("could not read the status of a session")
            return None


def _safeguarding_details(
    app: web.Application, session_id: str
) -> Callable[[str], Awaitable[dict[str, Any] | None]]:
    # how to reach a member who dropped out: read from the store for that one alert
    async def details(participant_id: str) -> dict[str, Any] | None:
        from web.control import hooks

        return await hooks.safeguarding_details(app, session_id, participant_id)

    return details


async def _quietly(coro: Awaitable[Any]) -> None:
    # a store hiccup must not break the room; it is logged (ids only)
    try:
        await coro
    except Exception:
        logger.exception("could not record a session event")
