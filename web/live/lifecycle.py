"""The service starting and stopping under live sessions.

At start the node takes back the rooms it was running (their state from the store) and the
grants already used. On a graceful stop everyone is told the service is restarting (a typed
message), the rooms' last state is written, and sockets are closed so members reconnect by
themselves to the next start. A stop is never the members' doing: nothing they do while the
service stops is recorded as their leaving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web

from sfu.errors import SfuError
from web import keys as app_keys
from web.control import keys as control_keys
from web.store import live_state
from web.store.errors import StoreUnavailable

from .keys import WRITER
from .registry import LiveRoomRegistry, persistence_of
from .rooms import node_id
from .writer import AlarmKind

logger = logging.getLogger(__name__)

# what members are told on a graceful stop; their page reconnects by itself
RESTARTING_MESSAGE = "The service is restarting. You will be back in the session in a moment."
RESTART_RETRY_AFTER_MS = 2000
FINAL_WRITE_S = 3.0

ALERTS: dict[AlarmKind, tuple[str, str]] = {
    "database_unavailable": (
        "records_delayed",
        "The service cannot reach its database. The session goes on; its records are kept "
        "and saved when the database is back.",
    ),
    "queue_filling": (
        "records_delayed",
        "Many records of this session are waiting for the database; they are kept in order.",
    ),
    "database_restored": ("records_saved", "The database is back; the session's records are "
                          "being saved."),
    "records_dropped": (
        "records_dropped",
        "Some audit records could not be kept while the database was away; how many is "
        "noted in the audit log.",
    ),
}


async def restore_rooms(app: web.Application) -> list[str]:
    """Take back the rooms this node was running and the grants already used."""
    registry = app.get(app_keys.ROOMS)
    store = app[control_keys.STORE]
    now = time.time()
    try:
        used = await store.run(live_state.used_grants, now=now)
        await store.run(live_state.prune_grants, now=now)
        running = await store.run(live_state.running_rooms, node_id(app))
    except StoreUnavailable:
        logger.error("could not read the live rooms at start: the database is unavailable")
        return []
    if isinstance(registry, LiveRoomRegistry):
        registry.load_used_grants(used)
    restored: list[str] = []
    for room_id, session_id in running:
        try:
            if isinstance(registry, LiveRoomRegistry):
                await registry.reopen(room_id, session_id)
                restored.append(room_id)
        except SfuError as exc:
            logger.warning("room %s not taken back: %s", room_id, exc.code)
            if exc.code in ("room_not_open", "session_ended"):
                await store.run(live_state.retire_room, room_id)
    if restored:
        logger.info("took back %d room(s) after a stop", len(restored))
    return restored


def alert_hosts(app: web.Application) -> Any:
    """An alarm listener telling the hosts of every room (privately) about the records."""

    def listener(kind: AlarmKind, detail: dict[str, Any]) -> None:
        alert, text = ALERTS[kind]
        registry = app.get(app_keys.ROOMS)
        for room in list(registry.rooms.values()) if registry is not None else []:
            if persistence_of(room) is None:
                continue
            for host in room.admitted():
                if host.is_host:
                    host.send({"type": "alert", "kind": alert, "participant_id": None,
                               "message": text})

    return listener


async def announce_stop(app: web.Application) -> None:
    """On a graceful stop: tell everyone, write the rooms' last state, close the sockets."""
    registry = app.get(app_keys.ROOMS)
    rooms = list(registry.rooms.values()) if registry is not None else []
    writer = app[WRITER]
    message = {"type": "service_restarting", "message": RESTARTING_MESSAGE,
               "retry_after_ms": RESTART_RETRY_AFTER_MS}
    for room in rooms:
        room.broadcast(dict(message), everyone=True)
        persistence = persistence_of(room)
        if persistence is not None:
            persistence.changed()
    # from here on, sockets closing are the service's doing, not the members'
    writer.frozen = True
    if not await writer.flush(FINAL_WRITE_S):
        logger.error("stopping before every room's state was written (database unavailable)")
    connected = [p for room in rooms for p in room.participants.values()]
    for participant in connected:
        participant.disconnect()
    if connected:
        logger.info("told %d participant(s) that the service is restarting", len(connected))
        # let the sockets close before the server stops waiting for them
        await asyncio.sleep(0.2)
