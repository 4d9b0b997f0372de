"""The nodes as the API shows them to administrators: `GET /nodes`, `POST /nodes/{id}/drain`."""

from __future__ import annotations

from aiohttp import web

from web.control.errors import ApiError
from web.control.routes import Answer, Route
from web.store.accounts import UserInfo
from web.wire.validation import ReplyModel

from .errors import ClusterUnavailable
from .keys import CLUSTER
from .models import NodeInfo, RoomOwner
from .node import ClusterNode


class NodeOut(ReplyModel):
    node: NodeInfo
    # rooms placed on it (placed, taken over, or running), with their fencing tokens
    rooms: list[RoomOwner]


class NodesAnswer(ReplyModel):
    # False: this service runs as one node (no CONFIDE_REDIS_URL) and the list is empty
    clustered: bool
    nodes: list[NodeOut]


class DrainAnswer(ReplyModel):
    node_id: str
    draining: bool


def _cluster(request: web.Request) -> ClusterNode | None:
    return request.config_dict.get(CLUSTER)


async def nodes_view(node: ClusterNode) -> NodesAnswer:
    """Every live node and the rooms placed on it."""
    live = await node.directory.live_nodes()
    rooms = await node.placement.rooms()
    return NodesAnswer(clustered=True, nodes=[
        NodeOut(node=info, rooms=[r for r in rooms if r.node_id == node_id])
        for node_id, info in sorted(live.items())
    ])


def _unavailable() -> ApiError:
    return ApiError(503, "service_unavailable",
                    "the nodes' directory cannot be reached just now: try again in a moment",
                    extra={"retry_after_s": 2})


async def list_nodes(request: web.Request, user: UserInfo) -> Answer:
    """The media nodes, their load and their rooms."""
    node = _cluster(request)
    if node is None:
        return {"clustered": False, "nodes": []}
    try:
        return (await nodes_view(node)).model_dump()
    except ClusterUnavailable:
        raise _unavailable() from None


async def drain_node(request: web.Request, user: UserInfo) -> Answer:
    """Drain a node: nothing new is placed there, its rooms move now, then it stops."""
    node = _cluster(request)
    if node is None:
        raise ApiError(409, "not_clustered", "this service runs as one node")
    node_id = request.match_info["node_id"]
    try:
        if node_id not in await node.directory.live_nodes():
            raise ApiError(404, "not_found", "no such node is running")
        await node.request_drain(node_id)
    except ClusterUnavailable:
        raise _unavailable() from None
    return {"node_id": node_id, "draining": True}


ROUTES = [
    Route("GET", "/nodes", list_nodes, "Media nodes, their load and rooms", ("admin",),
          response=NodesAnswer, tag="admin"),
    Route("POST", "/nodes/{node_id}/drain", drain_node, "Drain a node (its rooms move, then "
          "it stops)", ("admin",), response=DrainAnswer, tag="admin"),
]
