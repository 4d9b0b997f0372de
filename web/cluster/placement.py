"""Room placement: which node runs a room, under which fencing token.

A room's owner record is set once with SET NX; moving it (its node died or drains) is a
compare-and-set on the token it had (WATCH/MULTI), so of several nodes deciding at once
exactly one wins. Every placement takes a fresh token from INCR: tokens only grow, and the
store refuses a takeover under a token it has already seen (`live_state.claim_room`), so a
node that lost a room cannot write it any more, even if it has not noticed yet.
"""

from __future__ import annotations

import logging
import time

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from . import bus
from .models import NodeInfo, RoomOwner
from .sizing import choose

logger = logging.getLogger(__name__)


class Placement:
    """Owner records of rooms in Redis."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def owner(self, room_id: str) -> RoomOwner | None:
        with bus.guarded():
            raw = await self.redis.get(bus.room_key(room_id))
        return RoomOwner.model_validate_json(raw) if raw else None

    async def rooms(self) -> list[RoomOwner]:
        """Every placed room."""
        with bus.guarded():
            ids = sorted(str(i) for i in await self.redis.smembers(bus.ROOMS))  # type: ignore[misc]
            raws = await self.redis.mget([bus.room_key(i) for i in ids]) if ids else []
        return [RoomOwner.model_validate_json(raw) for raw in raws if raw]

    async def reserved(self) -> dict[str, float]:
        """Expected cores of the rooms placed on each node."""
        out: dict[str, float] = {}
        for rec in await self.rooms():
            out[rec.node_id] = out.get(rec.node_id, 0.0) + rec.cost_cores
        return out

    async def _token(self, room_id: str, floor: int) -> int:
        """A fresh fencing token, above `floor` (the store's epoch, should Redis have lost
        its counter)."""
        with bus.guarded():
            token = int(await self.redis.incr(bus.token_key(room_id)))
            if token <= floor:
                token = int(await self.redis.incrby(bus.token_key(room_id), floor - token + 1))
        return token

    async def claim_new(self, room_id: str, session_id: str, node_id: str, cost_cores: float,
                        *, floor: int = 0) -> RoomOwner:
        """Place a room nobody owns on `node_id`; returns whoever owns it afterwards."""
        record = RoomOwner(room_id=room_id, session_id=session_id, node_id=node_id,
                           token=await self._token(room_id, floor), cost_cores=cost_cores,
                           placed_at=time.time())
        with bus.guarded():
            done = await self.redis.set(bus.room_key(room_id), record.model_dump_json(), nx=True)
            await self.redis.sadd(bus.ROOMS, room_id)  # type: ignore[misc]
        if done:
            logger.info("room %s placed on %s (token %d)", room_id, node_id, record.token)
            return record
        current = await self.owner(room_id)
        assert current is not None, "placed and gone at once"
        return current

    async def move(self, current: RoomOwner, node_id: str, *, floor: int = 0) -> RoomOwner:
        """Move a room from its owner as last seen to `node_id`, unless someone else moved it
        first; returns whoever owns it afterwards."""
        token = await self._token(current.room_id, max(floor, current.token))
        key = bus.room_key(current.room_id)
        with bus.guarded():
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    seen = RoomOwner.model_validate_json(raw) if raw else None
                    if seen is None or seen.token != current.token:
                        await pipe.unwatch()
                        return seen or await self.claim_new(
                            current.room_id, current.session_id, node_id, current.cost_cores,
                            floor=token)
                    record = current.model_copy(update={
                        "node_id": node_id, "token": token, "placed_at": time.time()})
                    pipe.multi()
                    pipe.set(key, record.model_dump_json())
                    await pipe.execute()
                except WatchError:
                    moved = await self.owner(current.room_id)
                    assert moved is not None, "moved and gone at once"
                    return moved
        logger.info("room %s moved from %s to %s (token %d)", current.room_id,
                    current.node_id, node_id, token)
        return record

    async def reassert(self, record: RoomOwner) -> bool:
        """Put back the record of a room its owner still runs, after Redis lost it (restarted
        empty); the token counter is raised past it so no later token repeats it."""
        with bus.guarded():
            counter = int(await self.redis.incr(bus.token_key(record.room_id)))
            if counter <= record.token:
                await self.redis.incrby(bus.token_key(record.room_id), record.token - counter + 1)
            done = await self.redis.set(bus.room_key(record.room_id), record.model_dump_json(),
                                        nx=True)
            await self.redis.sadd(bus.ROOMS, record.room_id)  # type: ignore[misc]
        if done:
            logger.info("room %s: placement said again after Redis lost it", record.room_id)
        return bool(done)

    async def release(self, room_id: str, token: int) -> None:
        """Forget a room (its session ended) if it is still placed under `token`."""
        key = bus.room_key(room_id)
        with bus.guarded():
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if not raw or RoomOwner.model_validate_json(raw).token != token:
                        await pipe.unwatch()
                        return
                    pipe.multi()
                    pipe.delete(key)
                    pipe.srem(bus.ROOMS, room_id)
                    await pipe.execute()
                except WatchError:
                    return

    async def best_node(self, nodes: dict[str, NodeInfo]) -> NodeInfo | None:
        """The live node with the most headroom, counting rooms placed and not yet full."""
        return choose(nodes.values(), await self.reserved())
