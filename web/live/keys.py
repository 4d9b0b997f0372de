"""Typed application keys of the live rooms' store link."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from .writer import DurableWriter


class RoomTokens(Protocol):
    """Where the fencing token to take a room over comes from when several nodes share the
    store (one node alone needs none: the store raises the epoch itself)."""

    async def token_for(self, room_id: str, session_id: str, stored_epoch: int) -> int:
        """A token above `stored_epoch` under which this node owns the room, or raise."""
        ...

    def room_fenced(self, room_id: str, token: int) -> None:
        """The store refused a write of `room_id` under `token`: another node took it
        over."""
        ...


WRITER = web.AppKey("live_writer", DurableWriter)
ROOM_TOKENS = web.AppKey("live_room_tokens", RoomTokens)
