"""The per-participant lobby state machine; time is passed in, no clock is read here."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal

from .errors import IllegalTransition

# a network blip or a page reload within this window returns straight to the room
RECONNECT_GRACE_S = 30.0


class LobbyState(enum.StrEnum):
    """Where a participant stands in one session."""

    PREJOIN = "prejoin"  # arrived, group agreement not yet confirmed
    WAITING = "waiting"  # in the lobby; receives and sends no media
    ADMITTED = "admitted"  # in the room
    DECLINED = "declined"  # the host said no; final for this invite
    REMOVED = "removed"  # the host removed them; final for this invite
    LEFT = "left"  # left of their own accord
    DISCONNECTED = "disconnected"  # dropped; may come back within the grace window


Action = Literal[
    "confirm_checklist",
    "enter_as_host",
    "admit",
    "decline",
    "send_to_lobby",
    "remove",
    "readmit",
    "leave",
    "disconnect",
    "reconnect",
    "return_after_leaving",
    "return_as_host",
]

_S = LobbyState
# action -> states it may be taken from
_FROM: dict[Action, frozenset[LobbyState]] = {
    "confirm_checklist": frozenset({_S.PREJOIN}),
    "enter_as_host": frozenset({_S.PREJOIN}),
    "admit": frozenset({_S.WAITING}),
    "decline": frozenset({_S.PREJOIN, _S.WAITING}),
    "send_to_lobby": frozenset({_S.ADMITTED}),
    "remove": frozenset({_S.PREJOIN, _S.WAITING, _S.ADMITTED, _S.DISCONNECTED}),
    # only a fresh decision by the host lets a removed or declined invite back in
    "readmit": frozenset({_S.REMOVED, _S.DECLINED}),
    "leave": frozenset({_S.PREJOIN, _S.WAITING, _S.ADMITTED, _S.DISCONNECTED}),
    "disconnect": frozenset({_S.PREJOIN, _S.WAITING, _S.ADMITTED}),
    "reconnect": frozenset({_S.DISCONNECTED}),
    # leaving is not a ban, but the group agreement is confirmed again
    "return_after_leaving": frozenset({_S.LEFT}),
    # a valid host grant always returns its holder to control, however long they were away
    "return_as_host": frozenset({_S.PREJOIN, _S.WAITING, _S.DISCONNECTED, _S.LEFT}),
}


@dataclass
class LobbyEntry:
    """One participant's place in one session."""

    state: LobbyState = LobbyState.PREJOIN
    changed_at: float = 0.0
    disconnected_at: float | None = None
    state_before_disconnect: LobbyState | None = None
    history: list[tuple[float, LobbyState]] = field(default_factory=list)

    def can(self, action: Action) -> bool:
        """True when `action` is legal from the current state."""
        return self.state in _FROM[action]

    def confirm_checklist(self, now: float, *, lobby_required: bool = True) -> LobbyState:
        """Group agreement confirmed: wait in the lobby (or go in when no lobby is required)."""
        self._check("confirm_checklist")
        return self._go(LobbyState.WAITING if lobby_required else LobbyState.ADMITTED, now)

    def enter_as_host(self, now: float) -> LobbyState:
        """A host goes straight in; their own pre-session checklist is part of the gate."""
        self._check("enter_as_host")
        return self._go(LobbyState.ADMITTED, now)

    def admit(self, now: float) -> LobbyState:
        self._check("admit")
        return self._go(LobbyState.ADMITTED, now)

    def decline(self, now: float) -> LobbyState:
        self._check("decline")
        return self._go(LobbyState.DECLINED, now)

    def send_to_lobby(self, now: float) -> LobbyState:
        self._check("send_to_lobby")
        return self._go(LobbyState.WAITING, now)

    def remove(self, now: float) -> LobbyState:
        self._check("remove")
        return self._go(LobbyState.REMOVED, now)

    def readmit(self, now: float) -> LobbyState:
        """The host's fresh decision: they may arrive again, confirm and wait to be admitted."""
        self._check("readmit")
        return self._go(LobbyState.PREJOIN, now)

    def leave(self, now: float) -> LobbyState:
        self._check("leave")
        return self._go(LobbyState.LEFT, now)

    def return_after_leaving(self, now: float) -> LobbyState:
        self._check("return_after_leaving")
        return self._go(LobbyState.PREJOIN, now)

    def disconnect(self, now: float) -> LobbyState:
        self._check("disconnect")
        before = self.state
        self._go(LobbyState.DISCONNECTED, now)
        self.disconnected_at = now
        self.state_before_disconnect = before
        return self.state

    def within_grace(self, now: float) -> bool:
        """True while a dropped participant may return without passing the lobby."""
        return (
            self.state is LobbyState.DISCONNECTED
            and self.disconnected_at is not None
            and 0.0 <= now - self.disconnected_at <= RECONNECT_GRACE_S
        )

    def reconnect(self, now: float) -> LobbyState:
        """Back from a drop: same state within the grace window, else the lobby."""
        self._check("reconnect")
        before = self.state_before_disconnect or LobbyState.PREJOIN
        if before is LobbyState.ADMITTED and not self.within_grace(now):
            # after the grace window they may not be who left: the host admits again
            target = LobbyState.WAITING
        else:
            target = before
        self.disconnected_at = None
        self.state_before_disconnect = None
        return self._go(target, now)

    def return_as_host(self, now: float) -> LobbyState:
        """A host comes back: straight into the room, never the lobby (nobody could admit them)."""
        self._check("return_as_host")
        self.disconnected_at = None
        self.state_before_disconnect = None
        return self._go(LobbyState.ADMITTED, now)

    def holds_a_place(self, now: float) -> bool:
        """True when this participant counts towards the room's size."""
        if self.state is LobbyState.ADMITTED:
            return True
        return self.state_before_disconnect is LobbyState.ADMITTED and self.within_grace(now)

    def _check(self, action: Action) -> None:
        if not self.can(action):
            raise IllegalTransition(
                f'Cannot "{action}" a participant in state "{self.state.value}"'
            )

    def _go(self, target: LobbyState, now: float) -> LobbyState:
        self.history.append((now, target))
        self.state = target
        self.changed_at = now
        return target
