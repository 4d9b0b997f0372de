"""Opening a scheduled session's room: its rules, and its state taken back from the store.

A room opens on the first join, at start for rooms this node was running when it stopped,
or again after it closed empty. Each time the node takes the room over under a new epoch;
whatever the store holds (lobby, admitted, removed, the host, holds, floors, flags, reconnect
tokens) is rebuilt exactly. If the room was running when its node stopped, nobody chose to
leave: everyone present counts as dropped at this moment and comes back within the grace.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web

from session_rules.rules import GroupRules
from session_rules.snapshot import SessionRecord, rebuild, resume_after_restart
from sfu.errors import InvalidStateError
from sfu.room import Room
from web.control import keys as control_keys
from web.host_alerts import HeldAlert
from web.session_control import SessionController
from web.store import Tx, live_state, sessions
from web.store.errors import StoreError, StoreUnavailable
from web.store.live_state import StaleToken, StoredRoom
from web.store.sessions import SessionInfo

from .errors import ServiceUnavailable
from .keys import ROOM_TOKENS, WRITER
from .persistence import RoomPersistence
from .recorder import QueuedRecorder

logger = logging.getLogger(__name__)

OPEN_STATUSES = ("open", "live")


@dataclass(frozen=True)
class _Opened:
    info: SessionInfo
    rules: GroupRules
    epoch: int
    prior: StoredRoom | None


def node_id(app: web.Application) -> str:
    """This node's id (one node: "local")."""
    return app[control_keys.CONTROL_SETTINGS].node_id or "local"


def _open(tx: Tx, room_id: str, session_id: str, node: str, now: float,
          token: int | None) -> _Opened | SessionInfo:
    info = sessions.find_session(tx, session_id)
    if info.status not in OPEN_STATUSES:
        return info
    rules = GroupRules.from_dict(dict(sessions.group_of(tx, session_id).rules))
    fresh = SessionRecord(rules, info.starts_at.timestamp(), False, False, False)
    epoch, prior = live_state.claim_room(tx, room_id, session_id, node, fresh=fresh, now=now,
                                         token=token)
    return _Opened(info, rules, epoch, prior)


async def _claim(app: web.Application, room_id: str, session_id: str,
                 now: float) -> _Opened | SessionInfo:
    """Take the room over in the store, under the placement's fencing token when there is
    one (a token the store has already seen is raised once above it, then tried again)."""
    store = app[control_keys.STORE]
    tokens = app.get(ROOM_TOKENS)
    if tokens is None:
        return await store.run(_open, room_id, session_id, node_id(app), now, None)
    stored = await store.run(live_state.epoch_of, room_id)
    for _ in range(2):
        token = await tokens.token_for(room_id, session_id, stored)
        try:
            return await store.run(_open, room_id, session_id, node_id(app), now, token)
        except StaleToken as exc:
            stored = exc.stored_epoch
    raise ServiceUnavailable("this room is being moved: try again in a moment")


async def session_controller(
    app: web.Application, room: Room, session_id: str
) -> SessionController:
    """The controller of a scheduled session's room, its state rebuilt from the store."""
    store = app[control_keys.STORE]
    writer = app[WRITER]
    # the room's clock is the rules' clock: grace, restarts and kept times all use it
    now = room.clock()
    try:
        opened = await _claim(app, room.id, session_id, now)
    except StoreUnavailable as exc:
        raise ServiceUnavailable(
            "the service cannot reach its records just now: try again in a moment"
        ) from exc
    except (StoreError, ValueError) as exc:  # unknown session, bad stored rules: say why
        raise InvalidStateError("this session is not open", code="room_not_open") from exc
    if not isinstance(opened, _Opened):
        if opened.status == "ended":
            raise InvalidStateError("this session has ended", code="session_ended")
        raise InvalidStateError("this session is not open", code="room_not_open")
    prior = opened.prior
    if prior is not None and prior.session.ended:
        raise InvalidStateError("this session has ended", code="session_ended")
    persistence = RoomPersistence(
        writer, room_id=room.id, session_id=session_id, epoch=opened.epoch,
        resume_hashes=prior.resume_hashes if prior is not None else None, clock=room.clock,
        on_fenced=tokens.room_fenced if (tokens := app.get(ROOM_TOKENS)) is not None else None,
    )
    state = None
    if prior is not None:
        # the rules the session started under, not any edited since
        state = rebuild(prior.session, prior.participants)
        if prior.running:
            moved = resume_after_restart(state, now=now, last_alive=prior.alive_at)
            logger.info("room %s: taken back after a stop (%d were present, epoch %d)",
                        room.id, len(moved), opened.epoch)
    controller = SessionController(
        room,
        state.rules if state is not None else opened.rules,
        starts_at=opened.info.starts_at.timestamp(),
        recorder=QueuedRecorder(writer, session_id, store),
        session_id=session_id,
        state=state,
        persistence=persistence,
    )
    alerts = controller.alerts
    if prior is not None:
        restored = []
        for raw in prior.held_alerts:
            try:
                restored.append(HeldAlert.from_dict(raw))
            except (KeyError, TypeError, ValueError):
                logger.warning("room %s: a held host alert could not be read", room.id)
        alerts.restore(restored)
    alerts.on_held_changed = persistence.changed
    persistence.bind(lambda: controller.state,
                     held_alerts=lambda: [a.to_dict() for a in alerts.held()])
    persistence.changed()
    return controller
