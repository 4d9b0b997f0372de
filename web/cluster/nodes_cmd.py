"""`confide nodes`: the media nodes and their rooms, and draining one, from any machine that
reaches the service's Redis (CONFIDE_REDIS_URL)."""

from __future__ import annotations

import json

from . import bus
from .errors import ClusterUnavailable
from .models import DrainNode
from .nodes import NodeDirectory
from .placement import Placement


async def list_nodes(redis_url: str, *, as_json: bool = False) -> int:
    """Print every live node with its load and the rooms placed on it."""
    redis = bus.connect(redis_url)
    try:
        nodes = await NodeDirectory(redis).live_nodes()
        rooms = await Placement(redis).rooms()
    except ClusterUnavailable as exc:
        print(f"error: {exc}")
        return 2
    finally:
        await redis.aclose()
    if as_json:
        print(json.dumps({
            "nodes": [n.model_dump() for _, n in sorted(nodes.items())],
            "rooms": [r.model_dump() for r in rooms],
        }, indent=2))
        return 0
    print(f"{'NODE':<16} {'URL':<32} {'CORES':>5} {'LOAD':>6} {'CPU':>6}  STATE     ROOMS")
    for node_id, info in sorted(nodes.items()):
        placed = [f"{r.room_id}#{r.token}" for r in rooms if r.node_id == node_id]
        state = "draining" if info.draining else "ok"
        print(f"{node_id:<16} {info.url:<32} {info.cores:>5} {info.load_cores:>6.2f} "
              f"{info.cpu_cores:>6.2f}  {state:<9} {' '.join(placed) or '-'}")
    orphans = [r for r in rooms if r.node_id not in nodes]
    for r in orphans:
        print(f"room {r.room_id}: its node {r.node_id} is gone; being placed again")
    return 0


async def drain(redis_url: str, node_id: str) -> int:
    """Ask a node to drain: its rooms move to the others now, then it stops."""
    redis = bus.connect(redis_url)
    try:
        nodes = await NodeDirectory(redis).live_nodes()
        if node_id not in nodes:
            print(f"error: no node {node_id!r} is running")
            return 1
        with bus.guarded():
            await redis.publish(bus.EVENTS,
                                DrainNode(kind="drain", node_id=node_id).model_dump_json())
    except ClusterUnavailable as exc:
        print(f"error: {exc}")
        return 2
    finally:
        await redis.aclose()
    print(f"node {node_id} is draining: its rooms move to the other nodes, then it stops")
    return 0
