"""One session room's link to the store: what its controller reports after each decision.

The controller calls `changed()` after every applied decision and `connected()` when someone
joins; the room's latest state is written behind (see `writer`). This also answers whether
a reconnect token is still good after the process that issued it has gone.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from session_rules.lobby import LobbyState
from session_rules.session import SessionState
from session_rules.snapshot import snapshot
from web.store.db import sha256_hex
from web.store.live_state import RoomSnapshot

from .writer import DurableWriter

logger = logging.getLogger(__name__)


class RoomPersistence:
    """The store's view of one live room, owned by this node under `epoch`."""

    def __init__(
        self,
        writer: DurableWriter,
        *,
        room_id: str,
        session_id: str,
        epoch: int,
        resume_hashes: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        on_fenced: Callable[[str, int], None] | None = None,
    ) -> None:
        self.writer = writer
        self.on_fenced = on_fenced
        self._room_id = room_id
        self.session_id = session_id
        self._epoch = epoch
        self.clock = clock
        self._hashes: dict[str, str] = dict(resume_hashes or {})
        self._state: Callable[[], SessionState] | None = None
        self._held_alerts: Callable[[], Sequence[dict[str, Any]]] = lambda: ()
        self.is_fenced = False

    @property
    def room_id(self) -> str:
        return self._room_id

    @property
    def epoch(self) -> int:
        return self._epoch

    def bind(self, state: Callable[[], SessionState], *,
             held_alerts: Callable[[], Sequence[dict[str, Any]]] | None = None) -> None:
        """Where to read the rules' state from (the controller's, as it is when written), and
        the alerts waiting for the next host."""
        self._state = state
        if held_alerts is not None:
            self._held_alerts = held_alerts
        self.writer.attach(self)

    # --- what the controller reports
    def changed(self) -> None:
        """A decision was applied: the room's state is written behind."""
        self.writer.room_changed(self)

    def connected(self, participant_id: str, resume_token: str) -> None:
        """Someone joined and was given `resume_token` (only its hash is kept)."""
        self._hashes[participant_id] = sha256_hex(resume_token)
        self.changed()

    def closed(self) -> None:
        """The room closed with nobody in it (reopening it later is not a restart)."""
        self.writer.room_closed(self)

    def fenced(self) -> None:
        """Another owner took the room over: this one stops writing it (and, once, says so
        to whoever runs the room here, so that it stops running it too)."""
        if self.is_fenced:
            return
        self.is_fenced = True
        if self.on_fenced is not None:
            self.on_fenced(self._room_id, self._epoch)

    # --- what the writer reads
    def snapshot(self) -> RoomSnapshot:
        assert self._state is not None, "bind() the controller's state first"
        session, participants = snapshot(self._state())
        return RoomSnapshot(
            room_id=self._room_id,
            session_id=self.session_id,
            session=session,
            participants=participants,
            resume_hashes=dict(self._hashes),
            alive_at=self.clock(),
            held_alerts=list(self._held_alerts()),
        )

    # --- reconnects after a restart
    def resume_valid(self, participant_id: str, token: object) -> bool:
        """True when `token` is the reconnect token of `participant_id`'s last connection
        and they dropped within the grace window (a restart counts as within it)."""
        if not isinstance(token, str) or not token or self._state is None:
            return False
        stored = self._hashes.get(participant_id)
        policy = self._state().participants.get(participant_id)
        if stored is None or policy is None:
            return False
        if policy.state is not LobbyState.DISCONNECTED or not policy.lobby.within_grace(
            self.clock()
        ):
            return False
        return hmac.compare_digest(stored, sha256_hex(token))
