"""What the nodes share in Redis, as typed models (JSON there, checked on the way in)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from web.wire.validation import ReplyModel


class NodeInfo(ReplyModel):
    """One node as it last said of itself (its heartbeat); gone when it stops saying so."""

    node_id: str
    # the base URL members' pages and sockets reach this node on
    url: str
    cores: int
    # members publishing video here, by privacy profile
    publishers: dict[str, int]
    # the cores those publishers are expected to cost (sizing.PROFILE_CORES)
    load_cores: float
    # what the process really used over the last heartbeat (user + system CPU per second)
    cpu_cores: float
    rooms: list[str]
    draining: bool
    heartbeat_at: float


class RoomOwner(ReplyModel):
    """Which node runs a room, under which fencing token (raised on every move)."""

    room_id: str
    session_id: str
    node_id: str
    token: int
    # members × the profile's measured cost, reserved on the node when placed
    cost_cores: float
    placed_at: float


class SessionEnded(ReplyModel):
    """A clinician ended a session through the API (on any node): its owner ends the room."""

    kind: Literal["session_ended"]
    session_id: str


class RoomPlaced(ReplyModel):
    """A room was (re)placed on `node_id`: that node opens it at once."""

    kind: Literal["room_placed"]
    room_id: str
    session_id: str
    node_id: str
    token: int


class DrainNode(ReplyModel):
    """An operator asked a node to drain: move its rooms away, then stop."""

    kind: Literal["drain"]
    node_id: str


ClusterEvent = Annotated[SessionEnded | RoomPlaced | DrainNode, Field(discriminator="kind")]
CLUSTER_EVENT: TypeAdapter[ClusterEvent] = TypeAdapter(ClusterEvent)
