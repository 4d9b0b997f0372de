"""The rooms on this node, with what must outlive the process kept in the store.

On top of the media plane's registry: grants used to join are written behind and loaded
again at start (a grant is never good twice, restart or not); a reconnect token issued
before a restart is still honoured within the grace; a room with nobody in it and nobody
within their reconnect window is closed after a while (a scheduled session's room opens
again on the next join, with its state taken back from the store).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sfu.grants import Grant
from sfu.registry import RoomRegistry
from sfu.room import RECONNECT_GRACE_S, Room

from .persistence import RoomPersistence
from .writer import DurableWriter

logger = logging.getLogger(__name__)

# a room with nobody in it (and nobody who may still come back) closes after this long
EMPTY_ROOM_CLOSE_S = 120.0
REAP_EVERY_S = 2.0


def persistence_of(room: Room | None) -> RoomPersistence | None:
    """The store link of a scheduled session's room (None for development rooms)."""
    controller = room.controller if room is not None else None
    found = getattr(controller, "persistence", None)
    return found if isinstance(found, RoomPersistence) else None


class LiveRoomRegistry(RoomRegistry):
    """Creates rooms on first join, refuses replayed grants across restarts, closes empty
    rooms."""

    def __init__(self, *args: Any, empty_room_close_s: float = EMPTY_ROOM_CLOSE_S,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.empty_room_close_s = empty_room_close_s
        self.writer: DurableWriter | None = None
        self._empty_since: dict[str, float] = {}
        self._reaper: asyncio.Task[None] | None = None

    # --- grants
    def claim_grant(self, grant: Grant, resume: object = None) -> bool:
        room = self.rooms.get(grant.room)
        persistence = persistence_of(room)
        restored = persistence is not None and persistence.resume_valid(
            grant.participant_id, resume
        )
        if restored:
            # the token was issued before this process ran the room: good within the grace
            self._used_jtis[grant.jti] = (grant.expires_at, grant.participant_id)
            resumed = True
        else:
            resumed = super().claim_grant(grant, resume)
        return resumed

    def grant_settled(self, grant: Grant) -> None:
        # Written only now, once the member's reconnect token is waiting to be written with
        # the room (the writer writes a room's grants after its state): were the grant
        # lasting and the token not, a node taking the room over would refuse the member's
        # grant as used and not know their token, and they could never come back.
        if self.writer is not None and grant.session_id is not None:
            self.writer.grant_used(grant.jti, grant.room, grant.participant_id,
                                   grant.expires_at)

    def load_used_grants(self, used: dict[str, tuple[float, str]]) -> None:
        """Grants the store says were used (at start)."""
        for jti, value in used.items():
            self._used_jtis.setdefault(jti, value)

    # --- rooms
    async def reopen(self, room_id: str, session_id: str) -> Room:
        """Open a scheduled session's room without a join (at start, after a stop)."""
        return await self.room_for(
            Grant(room=room_id, participant_id="-", display_name="-", session_id=session_id)
        )

    async def drop_if_empty(self, room: Room) -> None:
        await super().drop_if_empty(room)
        if self.rooms.get(room.id) is not room:
            self._forget(room)

    def _forget(self, room: Room) -> None:
        self._empty_since.pop(room.id, None)
        persistence = persistence_of(room)
        if persistence is not None:
            persistence.closed()

    def start_reaper(self) -> None:
        if self._reaper is None:
            self._reaper = asyncio.ensure_future(self._reap_loop())

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(min(REAP_EVERY_S, max(0.5, self.empty_room_close_s / 4)))
            try:
                await self.reap(self.clock())
            except Exception:
                logger.exception("closing empty rooms failed")

    async def reap(self, now: float) -> list[str]:
        """Close rooms empty for long enough; returns their ids."""
        closed: list[str] = []
        for room_id, room in list(self.rooms.items()):
            if room.participants or room.closed or _someone_may_return(room, now):
                self._empty_since.pop(room_id, None)
                continue
            since = self._empty_since.setdefault(room_id, now)
            if now - since < self.empty_room_close_s or not self._may_close(room):
                continue
            if self.rooms.get(room_id) is not room:
                continue
            del self.rooms[room_id]
            self._forget(room)
            await room.aclose()
            closed.append(room_id)
            logger.info("room %s: closed after %.0f s with nobody in it", room_id, now - since)
        return closed

    def _may_close(self, room: Room) -> bool:
        """A room whose rules hold state closes only once that state is in the store (it
        comes back from there on the next join); a development room's never does."""
        persistence = persistence_of(room)
        if persistence is None:
            return not getattr(room.controller, "holds_state", False)
        return self.writer is None or not self.writer.pending_for(room.id)

    async def aclose(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        await super().aclose()


def _someone_may_return(room: Room, now: float) -> bool:
    """True while anyone who dropped is still within their reconnect window."""
    controller = room.controller
    state = getattr(controller, "state", None)
    if state is not None:
        return any(p.lobby.within_grace(now) for p in state.participants.values())
    # a room without rules: the media plane's own record of who dropped
    return any(now - d.left_at <= RECONNECT_GRACE_S for d in room._departed.values())
