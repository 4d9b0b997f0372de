"""What the rules know of one session, and how allowed effects change it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from confidentiality.profiles import STRICTNESS, Profile

from .chat import ChatRateLimiter
from .effects import (
    AddParticipant,
    DeliverChat,
    Effect,
    EndSession,
    PauseMedia,
    Role,
    SetClinicianConsent,
    SetFocus,
    SetHandRaised,
    SetLocked,
    SetMuted,
    SetProfile,
    SetProfileFloor,
    SetState,
    SetTextOnly,
    SetUnmuteAllowed,
    SetVideoHold,
    SetVideoStopped,
)
from .errors import IllegalTransition
from .lobby import LobbyEntry, LobbyState
from .rules import GroupRules


@dataclass
class Participant:
    """One participant as the rules see them: an opaque id, never a name."""

    pid: str
    role: Role
    lobby: LobbyEntry = field(default_factory=LobbyEntry)
    profile: Profile = Profile.BLUR
    profile_floor: Profile | None = None
    audio_muted: bool = True
    unmute_allowed: bool = False
    hand_raised: bool = False
    video_stopped: bool = False
    video_held_by_host: bool = False
    text_only: bool = False
    # agreed that their clinician sees them through the group's lighter clinician profile
    clinician_consent: bool = False

    @property
    def state(self) -> LobbyState:
        return self.lobby.state

    @property
    def is_host(self) -> bool:
        return self.role == "host"


@dataclass
class SessionState:
    """One session's policy state; `starts_at` and every `now` are seconds on one clock."""

    rules: GroupRules
    starts_at: float
    participants: dict[str, Participant] = field(default_factory=dict)
    locked: bool = False
    paused: bool = False
    ended: bool = False
    chat_limiter: ChatRateLimiter = field(default_factory=ChatRateLimiter)
    # members receive only the hosts' video (starts as the group's rule says)
    focus: bool | None = None

    def __post_init__(self) -> None:
        if self.focus is None:
            self.focus = self.rules.focus

    def hosts_present(self, *, excluding: str | None = None) -> tuple[str, ...]:
        """Ids of admitted hosts, in arrival order."""
        return tuple(
            p.pid for p in self.participants.values()
            if p.is_host and p.state is LobbyState.ADMITTED and p.pid != excluding
        )

    def admitted(self, *, excluding: str | None = None) -> tuple[str, ...]:
        """Ids of everyone in the room."""
        return tuple(
            p.pid for p in self.participants.values()
            if p.state is LobbyState.ADMITTED and p.pid != excluding
        )

    def places_taken(self, now: float) -> int:
        """Admitted participants plus those within their reconnect grace window."""
        return sum(1 for p in self.participants.values() if p.lobby.holds_a_place(now))

    def members_connected(self) -> int:
        """Members with a live connection: in the room, the lobby or pre-join (hosts aside)."""
        return sum(
            1 for p in self.participants.values()
            if not p.is_host and p.state in (LobbyState.PREJOIN, LobbyState.WAITING,
                                             LobbyState.ADMITTED)
        )

    def waiting(self) -> list[Participant]:
        """Participants in the lobby, longest waiting first."""
        found = [p for p in self.participants.values() if p.state is LobbyState.WAITING]
        return sorted(found, key=lambda p: p.lobby.changed_at)


def default_profile(rules: GroupRules) -> Profile:
    """The least strict profile the group permits: what a member starts with."""
    permitted = [p for p in rules.allowed_profiles if rules.permits_profile(p)]
    return min(permitted, key=lambda p: STRICTNESS[p])


def apply_effects(state: SessionState, effects: Iterable[Effect], *, now: float) -> None:
    """Apply an allowed decision's effects to the policy state.

    Effects meant only for the wiring (alerts, disconnects, incidents, stored checklists)
    change nothing here; delivered chat spends the sender's rate-limit token.
    """
    for effect in effects:
        if isinstance(effect, AddParticipant):
            state.participants[effect.pid] = Participant(
                effect.pid, effect.role, LobbyEntry(changed_at=now), profile=effect.profile
            )
            continue
        if isinstance(effect, SetLocked):
            state.locked = effect.locked
        elif isinstance(effect, SetFocus):
            state.focus = effect.focus
        elif isinstance(effect, PauseMedia):
            state.paused = effect.paused
        elif isinstance(effect, EndSession):
            state.ended = True
        elif isinstance(effect, DeliverChat):
            state.chat_limiter.allow(effect.sender, now)
        elif isinstance(effect, SetState):
            _apply_state(state.participants[effect.pid], effect, now)
        elif isinstance(effect, SetMuted):
            state.participants[effect.pid].audio_muted = effect.muted
        elif isinstance(effect, SetUnmuteAllowed):
            state.participants[effect.pid].unmute_allowed = effect.allowed
        elif isinstance(effect, SetHandRaised):
            state.participants[effect.pid].hand_raised = effect.raised
        elif isinstance(effect, SetVideoStopped):
            state.participants[effect.pid].video_stopped = effect.stopped
        elif isinstance(effect, SetVideoHold):
            state.participants[effect.pid].video_held_by_host = effect.held
        elif isinstance(effect, SetProfile):
            state.participants[effect.pid].profile = effect.profile
        elif isinstance(effect, SetProfileFloor):
            state.participants[effect.pid].profile_floor = effect.floor
        elif isinstance(effect, SetTextOnly):
            state.participants[effect.pid].text_only = effect.text_only
        elif isinstance(effect, SetClinicianConsent):
            state.participants[effect.pid].clinician_consent = effect.consent


def _apply_state(participant: Participant, effect: SetState, now: float) -> None:
    entry = participant.lobby
    if effect.via == "confirm_checklist":
        reached = entry.confirm_checklist(
            now, lobby_required=effect.state is LobbyState.WAITING
        )
    else:
        reached = getattr(entry, effect.via)(now)
    if reached is not effect.state:
        # the decision was made on a different view of time than it is applied with
        raise IllegalTransition(
            f'"{effect.via}" reached state "{reached.value}", not "{effect.state.value}"'
        )
