"""Typed application keys of the control plane."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from web.settings import Settings
from web.store import Store

from .throttle import AnonymousThrottle

# a lobby gate: given the session id, the list of unmet items (empty when the gate is open)
LobbyGate = Callable[[str], Awaitable[list[str]]]

STORE = web.AppKey("control_store", Store)
CONTROL_SETTINGS = web.AppKey("control_settings", Settings)
# told when a clinician ends a session through the API (the session id), so that its live
# room ends too; the room wiring appends to it
SessionEndListener = Callable[[str], Awaitable[None]]
SESSION_END_LISTENERS = web.AppKey("control_session_end_listeners", list[SessionEndListener])
# told when a session's lobby opens (session id, room id), so that its room is placed on a
# media node at once; the cluster wiring appends to it
SessionOpenListener = Callable[[str, str], Awaitable[None]]
SESSION_OPEN_LISTENERS = web.AppKey("control_session_open_listeners", list[SessionOpenListener])
# among several nodes: the node (id, base URL) that runs a session's room (session id, room id)
RoomPlacer = Callable[[str, str], Awaitable[tuple[str, str]]]
ROOM_PLACER: web.AppKey[RoomPlacer] = web.AppKey("control_room_placer")
# told when something a session's hosts must hear at once happens outside the room (a risk
# flag on a member's measures): session id, participant id, alert kind; the room wiring
# appends to it
HostAlertListener = Callable[[str, str, str], Awaitable[None]]
HOST_ALERT_LISTENERS = web.AppKey("control_host_alert_listeners", list[HostAlertListener])
# checks run before a session's lobby may open (e.g. the clinical-safety gate); append to it
LOBBY_GATES = web.AppKey("control_lobby_gates", list[LobbyGate])

# anonymous requests per client address (see web.control.throttle)
ANONYMOUS_THROTTLE = web.AppKey("control_anonymous_throttle", AnonymousThrottle)
