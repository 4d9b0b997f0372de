"""This node's part in a service of several: heartbeat, placement, takeover, events.

Every node serves pages and the API; each room runs on exactly one of them. This node:
- says every second who it is, where members reach it and what it runs (`NodeDirectory`);
- places rooms on the node with most headroom when asked (a lobby opens, a grant is made,
  a member's socket arrives for a room nobody runs);
- sends a socket for a room another node runs there (a typed `redirect`);
- takes over rooms whose node stopped beating, when it is the node with most headroom;
- hears the other nodes on one pub/sub channel (a session ended, a room placed here, drain).

While Redis is away, rooms already running go on untouched; what needs a placement is
refused with "try again in a moment"; everything is said again when Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from sfu.errors import SfuError
from sfu.grants import Grant
from web.live.registry import LiveRoomRegistry, persistence_of
from web.store import Store, live_state, sessions

from .bus import REDIS_TIMEOUT_S
from .errors import ClusterUnavailable, NoNodeAvailable, RoomMoved
from .events import EventChannel
from .models import ClusterEvent, DrainNode, NodeInfo, RoomOwner, RoomPlaced, SessionEnded
from .nodes import HEARTBEAT_S, NODE_TTL_S, NodeDirectory
from .placement import Placement
from .sizing import load_of

logger = logging.getLogger(__name__)

# how often a node looks for rooms whose node has died
SWEEP_S = 1.0
# how often a node asks the store whether a session it runs was ended (an end told over
# pub/sub while Redis was away is missed; the store is not)
ENDED_CHECK_S = 5.0
# how long this node must have reached Redis without a failure before it takes a room over:
# while Redis is paused or away no node can beat, so every heartbeat may have expired by the
# time it answers again, and a room would look orphaned when its node is alive and only a
# moment from beating again. One TTL after Redis answers, every live node has beaten.
STEADY_S = NODE_TTL_S
# the message members of a room moved away from this node see before their socket closes
MOVED_MESSAGE = "The session is moving to another server. You will be back in a moment."

SessionEnder = Callable[[str], Awaitable[None]]
CostOf = Callable[[str], Awaitable[float]]


def rtc_url(base_url: str) -> str:
    """The signaling socket URL of a node's base URL."""
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://"):] + "/rtc"
    if base.startswith("http://"):
        return "ws://" + base[len("http://"):] + "/rtc"
    return base + "/rtc"


class ClusterNode:
    """One node of the service, sharing rooms with the others through Redis."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        node_id: str,
        url: str,
        registry: LiveRoomRegistry,
        store: Store,
        cost_of: CostOf,
        end_session: SessionEnder,
        cores: int | None = None,
    ) -> None:
        self.redis = redis
        self.node_id = node_id
        self.url = url
        self.registry = registry
        self.store = store
        self.cost_of = cost_of
        self.end_session = end_session
        self.cores = cores or os.cpu_count() or 1
        self.directory = NodeDirectory(redis)
        self.placement = Placement(redis)
        self.events = EventChannel(redis)
        self.draining = False
        # rooms this node runs, under the token it took them with
        self.owned: dict[str, RoomOwner] = {}
        # Redis answered the last heartbeat
        self.available = True
        self.on_drain: Callable[[], None] | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._fencing: set[asyncio.Task[None]] = set()
        self._cpu_mark = (time.monotonic(), time.process_time())
        self._ended_checked = 0.0
        # when this node last failed to reach Redis, or was itself late (its loop starved for
        # seconds): never, at first, since a node that starts sees the directory as every
        # other node does
        self._unsteady_at = -STEADY_S

    # --- what this node says of itself
    def info(self) -> NodeInfo:
        publishers: dict[str, int] = {}
        for room in self.registry.rooms.values():
            for participant in room.participants.values():
                if any(pub.kind == "video" for pub in participant.publications.values()):
                    key = participant.profile.value
                    publishers[key] = publishers.get(key, 0) + 1
        now_s, cpu_s = time.monotonic(), time.process_time()
        wall = max(1e-3, now_s - self._cpu_mark[0])
        cpu_cores = max(0.0, cpu_s - self._cpu_mark[1]) / wall
        self._cpu_mark = (now_s, cpu_s)
        return NodeInfo(
            node_id=self.node_id, url=self.url, cores=self.cores, publishers=publishers,
            load_cores=load_of(publishers), cpu_cores=round(cpu_cores, 3),
            rooms=sorted(self.owned), draining=self.draining, heartbeat_at=time.time(),
        )

    # --- start and stop
    async def start(self) -> None:
        with contextlib.suppress(ClusterUnavailable):
            await self.directory.publish(self.info())
        self._tasks = [
            asyncio.ensure_future(self._every(HEARTBEAT_S, self.heartbeat, "heartbeat")),
            asyncio.ensure_future(self._every(SWEEP_S, self.sweep, "takeover sweep")),
            asyncio.ensure_future(self.events.listen(self._on_event)),
        ]

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        with contextlib.suppress(ClusterUnavailable, Exception):
            await self.directory.forget(self.node_id)
        await self.redis.aclose()

    async def _every(self, period_s: float, step: Callable[[], Awaitable[None]],
                     what: str) -> None:
        last = time.monotonic()
        while True:
            started = time.monotonic()
            if started - last > period_s + REDIS_TIMEOUT_S:
                # this node was late (a starved loop, slow calls): so may the others have
                # been, on the same machine or behind the same Redis
                logger.warning("cluster %s ran %.1f s late", what, started - last - period_s)
                self._unsteady_at = started
            last = started
            try:
                await step()
                if not self.available:
                    logger.info("Redis is reachable again")
                self.available = True
            except ClusterUnavailable:
                if self.available:
                    logger.error("Redis is unavailable: rooms go on; new placements wait")
                self.available = False
                self._unsteady_at = time.monotonic()
            except Exception:
                logger.exception("cluster %s failed", what)
            await asyncio.sleep(period_s)

    # --- heartbeat
    async def heartbeat(self) -> None:
        """Say who we are; check that every room we run is still ours."""
        # the heartbeat first: a slow store must not make this node look dead
        await self.directory.publish(self.info())
        await self._end_ended()
        for room_id, mine in list(self.owned.items()):
            current = await self.placement.owner(room_id)
            if current is None:
                # Redis lost its records (restarted empty): say again what we run
                await self.placement.reassert(mine)
            elif current.token != mine.token:
                # fence: another node was given this room; never run it twice
                logger.error("room %s: placed on %s (token %d), stopping it here", room_id,
                             current.node_id, current.token)
                await self.hand_over(room_id, current.node_id)

    async def _end_ended(self) -> None:
        if time.monotonic() - self._ended_checked < ENDED_CHECK_S or not self.owned:
            return
        self._ended_checked = time.monotonic()
        for room_id, mine in list(self.owned.items()):
            try:
                info = await self.store.run(sessions.find_session, mine.session_id)
            except Exception:  # the database away: the next check asks again
                return
            if info.status == "ended":
                logger.info("room %s: its session was ended; ending it here", room_id)
                await self.end_session(mine.session_id)
                self.owned.pop(room_id, None)
                await self.placement.release(room_id, mine.token)

    # --- placement
    async def place(self, room_id: str, session_id: str) -> NodeInfo:
        """The node that runs (or is to run) a room: its owner while that is alive, else the
        live node with most headroom."""
        # the owner first, the live nodes after: an owner that has just said again what it
        # runs (Redis back empty) beat before it did, so a fresher list of nodes holds it
        current = await self.placement.owner(room_id)
        nodes = await self.directory.live_nodes()
        if current is not None and current.node_id in nodes:
            return nodes[current.node_id]
        best = await self.placement.best_node(nodes)
        if best is None:
            raise NoNodeAvailable("no server can take this session just now: try again in a "
                                  "moment")
        if current is None:
            placed = await self.placement.claim_new(room_id, session_id, best.node_id,
                                                    await self.cost_of(session_id))
        else:
            placed = await self.placement.move(current, best.node_id)
        owner = nodes.get(placed.node_id)
        if owner is None:
            raise NoNodeAvailable("no server can take this session just now: try again in a "
                                  "moment")
        if placed.node_id != self.node_id:
            await self._publish(RoomPlaced(kind="room_placed", room_id=room_id,
                                           session_id=session_id, node_id=placed.node_id,
                                           token=placed.token))
        return owner

    async def route(self, grant: Grant) -> str | None:
        """Where a member's socket for `grant` belongs: None here (the room is opened here
        first, so their reconnect token is honoured), else the owner's socket URL."""
        if grant.session_id is None:
            return None  # a development room runs where it is joined
        mine = self.owned.get(grant.room)
        if mine is not None and grant.room in self.registry.rooms:
            try:
                current = await self.placement.owner(grant.room)
            except ClusterUnavailable:
                return None  # Redis away: the room running here goes on
            if current is None or current.token == mine.token:
                return None
            # this node was late (paused, starved) and the room was taken over meanwhile:
            # stop it here before letting anyone in, and send them to its new node
            await self.hand_over(grant.room, current.node_id)
        owner = await self.place(grant.room, grant.session_id)
        if owner.node_id != self.node_id:
            return rtc_url(owner.url)
        await self.open_here(grant.room, grant.session_id)
        return None

    async def open_here(self, room_id: str, session_id: str) -> None:
        """Run a room placed on this node: the grants used elsewhere first, then its state
        from the store (members who were present come back within the grace)."""
        lock = self._locks.setdefault(room_id, asyncio.Lock())
        async with lock:
            if room_id in self.registry.rooms:
                return
            used = await self.store.run(live_state.used_grants, now=time.time(),
                                        room_id=room_id)
            self.registry.load_used_grants(used)
            await self.registry.reopen(room_id, session_id)
            logger.info("room %s: running here (token %d)", room_id,
                        self.owned[room_id].token if room_id in self.owned else 0)

    async def token_for(self, room_id: str, session_id: str, stored_epoch: int) -> int:
        """The fencing token this node runs `room_id` under (`live.keys.RoomTokens`)."""
        current = await self.placement.owner(room_id)
        if current is None:
            if self.draining:
                raise RoomMoved("this server is draining")
            current = await self.placement.claim_new(room_id, session_id, self.node_id,
                                                     await self.cost_of(session_id),
                                                     floor=stored_epoch)
        if current.node_id != self.node_id:
            nodes = await self.directory.live_nodes()
            if current.node_id in nodes or self.draining:
                raise RoomMoved(f"this session runs on {current.node_id}")
            # its node is dead: take it
            current = await self.placement.move(current, self.node_id, floor=stored_epoch)
            if current.node_id != self.node_id:
                raise RoomMoved(f"this session runs on {current.node_id}")
        if current.token <= stored_epoch:
            current = await self.placement.move(current, self.node_id, floor=stored_epoch)
            if current.node_id != self.node_id:
                raise RoomMoved(f"this session runs on {current.node_id}")
        self.owned[room_id] = current
        return current.token

    # --- takeover
    async def sweep(self) -> None:
        """Place again the rooms of nodes that stopped beating; open those placed here."""
        if self.draining:
            return
        if time.monotonic() - self._unsteady_at < STEADY_S:
            # Redis has just come back (or this node was late): nodes whose heartbeat expired
            # meanwhile have not all beaten again yet, and taking their rooms would move
            # every room at once
            return
        # the rooms first, the live nodes after: a node puts its rooms back (Redis back
        # empty) only after its heartbeat, so with the nodes read last a room can never look
        # orphaned for want of a heartbeat written a moment after the list was read
        records = await self.placement.rooms()
        nodes = await self.directory.live_nodes()
        for record in records:
            if record.node_id in nodes:
                continue
            best = await self.placement.best_node(nodes)
            if best is None or best.node_id != self.node_id:
                # the node with most headroom takes it; every node decides the same way
                continue
            moved = await self.placement.move(record, self.node_id)
            if moved.node_id == self.node_id:
                logger.warning("room %s: its node %s stopped; taking it over", record.room_id,
                               record.node_id)
                await self._open_placed(moved)

    async def _open_placed(self, record: RoomOwner) -> None:
        try:
            await self.open_here(record.room_id, record.session_id)
        except SfuError as exc:
            logger.warning("room %s not opened here: %s", record.room_id, exc.code)
            if exc.code in ("room_not_open", "session_ended"):
                await self.placement.release(record.room_id, record.token)

    def room_fenced(self, room_id: str, token: int) -> None:
        """The store refused a write of a room run here: another node holds a later token.
        Stop running it now rather than at the next heartbeat (unless the refused write was
        of an earlier run of the room here, under an older token)."""
        mine = self.owned.get(room_id)
        if mine is not None and mine.token == token:
            task = asyncio.ensure_future(self._fenced(room_id))
            self._fencing.add(task)
            task.add_done_callback(self._fencing.discard)

    async def _fenced(self, room_id: str) -> None:
        try:
            current = await self.placement.owner(room_id)
        except ClusterUnavailable:
            current = None
        if room_id not in self.owned:
            return  # handed over meanwhile
        to = current.node_id if current is not None and current.node_id != self.node_id else None
        logger.error("room %s: the store holds a later owner (%s); stopping it here", room_id,
                     to or "unknown yet")
        await self.hand_over(room_id, to)

    async def hand_over(self, room_id: str, node_id: str | None) -> None:
        """Stop running a room here: its members are sent to its new node."""
        self.owned.pop(room_id, None)
        room = self.registry.rooms.get(room_id)
        if room is None:
            return
        persistence = persistence_of(room)
        if persistence is not None:
            persistence.writer.detach(room_id)
            persistence.fenced()
        url = None
        if node_id is not None:
            with contextlib.suppress(ClusterUnavailable):
                nodes = await self.directory.live_nodes()
                if node_id in nodes:
                    url = rtc_url(nodes[node_id].url)
        for participant in list(room.participants.values()):
            if url is not None:
                participant.send({"type": "redirect", "url": url, "message": MOVED_MESSAGE})
            else:
                participant.send({"type": "service_restarting", "message": MOVED_MESSAGE,
                                  "retry_after_ms": 1000})
            participant.disconnect()
        # the departures that follow are the move's doing: nothing of them is written
        await asyncio.sleep(0.2)
        if self.registry.rooms.get(room_id) is room:
            del self.registry.rooms[room_id]
        await room.aclose()

    # --- drain
    async def drain(self) -> None:
        """Place nothing more here; move every room to the node with most headroom now."""
        self.draining = True
        with contextlib.suppress(ClusterUnavailable):
            await self.directory.publish(self.info())
        for room_id in list(self.owned):
            room = self.registry.rooms.get(room_id)
            persistence = persistence_of(room)
            if persistence is not None:
                # the room's last state goes in before another node takes it from there
                persistence.changed()
        writer = next((p.writer for r in self.registry.rooms.values()
                       if (p := persistence_of(r)) is not None), None)
        if writer is not None:
            await writer.flush(3.0)
            # from here on, sockets closing are the move's doing, not the members'
            writer.frozen = True
        nodes = {k: v for k, v in (await self.directory.live_nodes()).items()
                 if k != self.node_id}
        for room_id, mine in list(self.owned.items()):
            best = await self.placement.best_node(nodes)
            if best is None:
                logger.error("room %s: no other node to move it to", room_id)
                continue
            moved = await self.placement.move(mine, best.node_id)
            await self._publish(RoomPlaced(kind="room_placed", room_id=room_id,
                                           session_id=mine.session_id,
                                           node_id=moved.node_id, token=moved.token))
            await self.hand_over(room_id, moved.node_id)

    # --- events between nodes
    async def _publish(self, event: ClusterEvent) -> None:
        await self.events.publish(event)

    async def session_ended(self, session_id: str) -> None:
        """A clinician ended a session through this node's API: every node hears it."""
        await self._publish(SessionEnded(kind="session_ended", session_id=session_id))

    async def request_drain(self, node_id: str) -> None:
        await self._publish(DrainNode(kind="drain", node_id=node_id))

    async def _on_event(self, event: ClusterEvent) -> None:
        if isinstance(event, SessionEnded):
            await self.end_session(event.session_id)
            for room_id, mine in list(self.owned.items()):
                if mine.session_id == event.session_id:
                    self.owned.pop(room_id, None)
                    await self.placement.release(room_id, mine.token)
        elif isinstance(event, RoomPlaced) and event.node_id == self.node_id:
            record = await self.placement.owner(event.room_id)
            if record is not None and record.node_id == self.node_id:
                await self._open_placed(record)
        elif isinstance(event, DrainNode) and event.node_id == self.node_id:
            await self.drain()
            if self.on_drain is not None:
                self.on_drain()
