"""The node directory: each node's heartbeat in Redis, gone when it stops beating."""

from __future__ import annotations

import redis.asyncio as aioredis

from . import bus
from .models import NodeInfo

HEARTBEAT_S = 1.0
# a node missing this long is dead: its rooms are placed again
NODE_TTL_S = 5.0


class NodeDirectory:
    """Publishes this node's heartbeat and lists the nodes alive now."""

    def __init__(self, redis: aioredis.Redis, *, ttl_s: float = NODE_TTL_S) -> None:
        self.redis = redis
        self.ttl_s = ttl_s

    async def publish(self, info: NodeInfo) -> None:
        with bus.guarded():
            await self.redis.set(bus.node_key(info.node_id), info.model_dump_json(),
                                 px=int(self.ttl_s * 1000))

    async def forget(self, node_id: str) -> None:
        """A node that stopped: gone at once, not after its TTL."""
        with bus.guarded():
            await self.redis.delete(bus.node_key(node_id))

    async def live_nodes(self) -> dict[str, NodeInfo]:
        """Every node whose heartbeat has not expired, by id."""
        with bus.guarded():
            keys = [k async for k in self.redis.scan_iter(match=bus.node_pattern(), count=100)]
            raws = await self.redis.mget(keys) if keys else []
        nodes: dict[str, NodeInfo] = {}
        for raw in raws:
            if raw is None:  # expired between the scan and the read
                continue
            info = NodeInfo.model_validate_json(raw)
            nodes[info.node_id] = info
        return nodes
