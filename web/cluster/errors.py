"""Errors of the nodes' shared directory, each with a stable code for the wire."""

from __future__ import annotations

from sfu.errors import SfuError


class ClusterUnavailable(SfuError):
    """Redis cannot be reached: rooms already running go on, new placements wait."""

    code = "service_unavailable"


class NoNodeAvailable(SfuError):
    """No live node may take a room just now (all draining, or none heartbeating)."""

    code = "service_unavailable"


class RoomMoved(SfuError):
    """The room belongs to another node now: this one must not run it."""

    code = "room_moved"
