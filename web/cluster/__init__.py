"""Several `confide serve` processes as one service: nodes, placement, takeover, drain.

With `CONFIDE_REDIS_URL` and a PostgreSQL `CONFIDE_DATABASE_URL` shared by every node:
- `models`: what the nodes share in Redis (heartbeats, room owners, events), typed;
- `bus`: the Redis connection, key names, Redis being away as one error;
- `nodes`: each node's heartbeat with a TTL, and the list of live nodes;
- `sizing`: a room's expected cost (members × the profile's measured cost) and headroom;
- `placement`: which node runs a room, under a fencing token (SET NX, INCR, compare-and-set);
- `events`: typed events between nodes over pub/sub (session ended, room placed, drain);
- `node`: this node's loops (heartbeat, takeover sweep, events) and its routing of joins;
- `api`: `GET /api/v1/nodes` and `POST /api/v1/nodes/{id}/drain` for administrators.

Without Redis none of this is loaded: one process, everything in it, as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator

from aiohttp import web

from confidentiality.profiles import Profile
from session_rules.rules import GroupRules
from web import keys as app_keys
from web.control import keys as control_keys
from web.live.keys import ROOM_TOKENS
from web.live.registry import LiveRoomRegistry
from web.settings import Settings
from web.store import sessions
from web.store.errors import StoreError

from . import bus
from .errors import ClusterUnavailable
from .keys import CLUSTER
from .node import ClusterNode
from .sizing import expected_cost

logger = logging.getLogger(__name__)


def setup_cluster(app: web.Application, settings: Settings) -> ClusterNode:
    """Join the service's other nodes through Redis (call after the control plane)."""
    from web.wiring import end_live_room

    registry = app[app_keys.ROOMS]
    assert isinstance(registry, LiveRoomRegistry)
    store = app[control_keys.STORE]

    async def cost_of(session_id: str) -> float:
        try:
            members, rules = await store.run(sessions.expected_size, session_id)
            profile = GroupRules.from_dict(rules).minimum_profile
        except (StoreError, ValueError):
            members, profile = 13, Profile.BLUR  # a full group, blurred: never under-placed
        return expected_cost(members, profile)

    async def end_here(session_id: str) -> None:
        await end_live_room(app, session_id)

    node = ClusterNode(
        bus.connect(settings.redis_url), node_id=settings.node_id, url=settings.base_url,
        registry=registry, store=store, cost_of=cost_of, end_session=end_here,
    )
    app[CLUSTER] = node
    app[app_keys.ROUTER] = node.route
    app[ROOM_TOKENS] = node

    async def place(session_id: str, room_id: str) -> tuple[str, str]:
        owner = await node.place(room_id, session_id)
        return owner.node_id, owner.url

    async def place_on_open(session_id: str, room_id: str) -> None:
        try:
            await node.place(room_id, session_id)
        except ClusterUnavailable:
            logger.warning("room %s not placed when its lobby opened (Redis unavailable); "
                           "it is placed on the first join", room_id)

    async def end_everywhere(session_id: str) -> None:
        # ended here at once; the room's node (any other) hears it over pub/sub
        await end_here(session_id)
        try:
            await node.session_ended(session_id)
        except ClusterUnavailable:
            logger.error("session %s ended while Redis is unavailable: its node ends the room "
                         "when a member next joins", session_id)

    app[control_keys.ROOM_PLACER] = place
    app[control_keys.SESSION_OPEN_LISTENERS].append(place_on_open)
    app[control_keys.SESSION_END_LISTENERS][:] = [end_everywhere]

    async def cluster_ctx(app: web.Application) -> AsyncIterator[None]:
        await node.start()
        yield
        await node.aclose()

    async def drain_on_stop(app: web.Application) -> None:
        # SIGTERM (or SIGINT): the rooms move to other nodes before the process goes
        try:
            await node.drain()
        except ClusterUnavailable:
            logger.error("stopping while Redis is unavailable: rooms are taken over once "
                         "this node's heartbeat has expired")

    def stop_self() -> None:
        # a drain asked through the API or the CLI ends as a SIGTERM would
        with contextlib.suppress(ProcessLookupError):
            os.kill(os.getpid(), signal.SIGTERM)

    node.on_drain = stop_self
    app.cleanup_ctx.append(cluster_ctx)
    # before the live rooms' own "the service is restarting": rooms leave first
    app.on_shutdown.insert(0, drain_on_stop)
    return node


__all__ = ["CLUSTER", "ClusterNode", "setup_cluster"]
