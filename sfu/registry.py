"""The rooms on this node, and the grants already used here."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

from .errors import GrantError, InvalidStateError
from .grants import Grant
from .publication import TransformFactory, pass_through_factory
from .room import ClientIceServers, Room, RoomPolicy
from .workers import MediaWorkers

PolicyFor = Callable[[Grant], RoomPolicy | None]
# attaches the session's rules to a new room; raises SfuError when the room may not open
RoomSetup = Callable[[Room, Grant], Awaitable[None]]


class RoomRegistry:
    """Creates rooms on first join (when allowed) and refuses replayed grants."""

    def __init__(
        self,
        *,
        ice_servers: Sequence[dict[str, object]] = (),
        allow_adhoc: bool = True,
        policy_for: PolicyFor | None = None,
        transform_factory: TransformFactory = pass_through_factory,
        room_setup: RoomSetup | None = None,
        media_workers: MediaWorkers | None = None,
        clock: Callable[[], float] = time.time,
        client_ice_servers: ClientIceServers | None = None,
    ) -> None:
        self.room_setup = room_setup
        # what new rooms measure their reconnect grace with
        self.clock = clock
        self.client_ice_servers = client_ice_servers
        self.ice_servers = list(ice_servers)
        self.allow_adhoc = allow_adhoc
        self._policy_for = policy_for
        self.transform_factory = transform_factory
        # where processed video runs: worker processes, or (None) threads in this process
        self.media_workers = media_workers
        self.rooms: dict[str, Room] = {}
        # rooms that ended here: nobody may bring one back by joining it again
        self._ended: dict[str, float] = {}
        self._used_jtis: dict[str, tuple[float, str]] = {}

    async def room_for(self, grant: Grant) -> Room:
        room = self.rooms.get(grant.room)
        if room is not None and room.closed:
            raise InvalidStateError("this session has ended", code="session_ended")
        if room is not None:
            return room
        if grant.room in self._ended:
            raise InvalidStateError("this session has ended", code="session_ended")
        policy = self._policy_for(grant) if self._policy_for else None
        if policy is None and not self.allow_adhoc and self.room_setup is None:
            raise InvalidStateError("no such room is open", code="room_not_open")
        room = Room(
            grant.room,
            ice_servers=self.ice_servers,
            policy=policy,
            transform_factory=self.transform_factory,
            media_workers=self.media_workers,
            clock=self.clock,
            client_ice_servers=self.client_ice_servers,
        )
        if self.room_setup is not None:
            await self.room_setup(room, grant)
        # another join may have created it while we awaited the setup
        existing = self.rooms.get(grant.room)
        if existing is not None:
            return existing
        self.rooms[grant.room] = room
        return room

    def claim_grant(self, grant: Grant, resume: object = None) -> bool:
        """Record the grant as used; a reused grant needs the holder's resume token.

        Returns True when this join resumes an earlier connection.
        """
        now = time.time()
        for jti, (expires_at, _) in list(self._used_jtis.items()):
            if expires_at < now:
                del self._used_jtis[jti]
        used = self._used_jtis.get(grant.jti)
        room = self.rooms.get(grant.room)
        resumable = room is not None and room.resume_token_valid(grant.participant_id, resume)
        if used is not None and not resumable:
            raise GrantError("grant already used", code="grant_replayed")
        self._used_jtis[grant.jti] = (grant.expires_at, grant.participant_id)
        return resumable

    def grant_settled(self, grant: Grant) -> None:
        """The join that claimed `grant` is over, let in or refused (a registry that keeps
        used grants somewhere lasting writes it now: see the live registry)."""

    async def drop_if_empty(self, room: Room) -> None:
        if room.closed and self.rooms.get(room.id) is room:
            del self.rooms[room.id]
            now = time.time()
            # a tombstone outlives every grant minted for the room (grants live minutes)
            for rid, ended_at in list(self._ended.items()):
                if now - ended_at > 24 * 3600:
                    del self._ended[rid]
            self._ended[room.id] = now
            return
        if not room.participants and self.rooms.get(room.id) is room:
            # keep a room with a reconnect window open, or whose rules still hold state
            # (an empty room has no peers: it is cheap)
            holds_state = bool(getattr(room.controller, "holds_state", False))
            if not room._departed and not holds_state:
                del self.rooms[room.id]
                await room.aclose()

    async def aclose(self) -> None:
        for room in list(self.rooms.values()):
            await room.aclose()
        self.rooms.clear()
        if self.media_workers is not None:
            await self.media_workers.aclose()
