"""A session's policy state as plain records, and how a restarted service takes it back.

The records hold everything a decision reads (lobby state and its times, the host, the
per-participant flags, profile floors, holds, locked/paused/ended), so a state rebuilt from
them decides exactly as the one that was lost. The chat rate limiter and a participant's
lobby history are not kept: neither changes what a host or member may do next.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from confidentiality.profiles import Profile

from .effects import Role
from .lobby import LobbyEntry, LobbyState
from .rules import GroupRules
from .session import Participant, SessionState

_PRESENT = frozenset({LobbyState.PREJOIN, LobbyState.WAITING, LobbyState.ADMITTED})


@dataclass(frozen=True)
class ParticipantRecord:
    """One participant's policy state; times are seconds on the session's clock."""

    pid: str
    role: Role
    state: LobbyState
    changed_at: float
    disconnected_at: float | None
    state_before_disconnect: LobbyState | None
    profile: Profile
    profile_floor: Profile | None
    audio_muted: bool
    unmute_allowed: bool
    hand_raised: bool
    video_stopped: bool
    video_held_by_host: bool
    text_only: bool
    clinician_consent: bool = False

    @classmethod
    def of(cls, p: Participant) -> ParticipantRecord:
        """The record of a live participant."""
        return cls(
            pid=p.pid,
            role=p.role,
            state=p.lobby.state,
            changed_at=p.lobby.changed_at,
            disconnected_at=p.lobby.disconnected_at,
            state_before_disconnect=p.lobby.state_before_disconnect,
            profile=p.profile,
            profile_floor=p.profile_floor,
            audio_muted=p.audio_muted,
            unmute_allowed=p.unmute_allowed,
            hand_raised=p.hand_raised,
            video_stopped=p.video_stopped,
            video_held_by_host=p.video_held_by_host,
            text_only=p.text_only,
            clinician_consent=p.clinician_consent,
        )

    def rebuild(self) -> Participant:
        """The participant this record describes."""
        lobby = LobbyEntry(
            state=self.state,
            changed_at=self.changed_at,
            disconnected_at=self.disconnected_at,
            state_before_disconnect=self.state_before_disconnect,
        )
        return Participant(
            self.pid,
            self.role,
            lobby,
            profile=self.profile,
            profile_floor=self.profile_floor,
            audio_muted=self.audio_muted,
            unmute_allowed=self.unmute_allowed,
            hand_raised=self.hand_raised,
            video_stopped=self.video_stopped,
            video_held_by_host=self.video_held_by_host,
            text_only=self.text_only,
            clinician_consent=self.clinician_consent,
        )


@dataclass(frozen=True)
class SessionRecord:
    """The session-wide part: the rules the room runs under and its flags."""

    rules: GroupRules
    starts_at: float
    locked: bool
    paused: bool
    ended: bool
    # Focus as the host last set it; None: as the rules say (a room kept before Focus existed)
    focus: bool | None = None

    @classmethod
    def of(cls, state: SessionState) -> SessionRecord:
        return cls(state.rules, state.starts_at, state.locked, state.paused, state.ended,
                   state.focus)

    def rules_dict(self) -> dict[str, Any]:
        return self.rules.to_dict()

    @classmethod
    def from_stored(
        cls, rules: Mapping[str, Any], starts_at: float, *, locked: bool, paused: bool,
        ended: bool, focus: bool | None = None,
    ) -> SessionRecord:
        return cls(GroupRules.from_dict(rules), starts_at, locked, paused, ended, focus)


def snapshot(state: SessionState) -> tuple[SessionRecord, list[ParticipantRecord]]:
    """Everything a decision reads, as records."""
    return SessionRecord.of(state), [
        ParticipantRecord.of(p) for p in state.participants.values()
    ]


def rebuild(session: SessionRecord, participants: Iterable[ParticipantRecord]) -> SessionState:
    """The state the records describe; pass `participants` in arrival order (hosts are
    listed in that order)."""
    state = SessionState(session.rules, starts_at=session.starts_at, focus=session.focus)
    state.locked, state.paused, state.ended = session.locked, session.paused, session.ended
    for record in participants:
        state.participants[record.pid] = record.rebuild()
    return state


def resume_after_restart(state: SessionState, *, now: float, last_alive: float) -> list[str]:
    """The service stopped at `last_alive` and runs again at `now`: nobody chose to leave.

    Everyone who was present counts as dropped at `now`, so each comes back to where they
    were within the usual grace; someone who had dropped before the stop keeps the grace
    they had left at that moment. Returns the ids moved to "disconnected".
    """
    moved: list[str] = []
    downtime = max(0.0, now - last_alive)
    for p in state.participants.values():
        entry = p.lobby
        if entry.state in _PRESENT:
            entry.disconnect(now)
            # a raised hand is dropped on any disconnect (see decide_disconnect)
            p.hand_raised = False
            moved.append(p.pid)
        elif entry.state is LobbyState.DISCONNECTED and entry.disconnected_at is not None:
            # the clock of their grace stood still while the service was down
            entry.disconnected_at += downtime
    return moved


def participant_to_dict(record: ParticipantRecord) -> dict[str, Any]:
    """A record as plain JSON values."""
    return {
        "pid": record.pid, "role": record.role, "state": record.state.value,
        "changed_at": record.changed_at, "disconnected_at": record.disconnected_at,
        "state_before_disconnect": record.state_before_disconnect.value
        if record.state_before_disconnect else None,
        "profile": record.profile.value,
        "profile_floor": record.profile_floor.value if record.profile_floor else None,
        "audio_muted": record.audio_muted, "unmute_allowed": record.unmute_allowed,
        "hand_raised": record.hand_raised, "video_stopped": record.video_stopped,
        "video_held_by_host": record.video_held_by_host, "text_only": record.text_only,
        "clinician_consent": record.clinician_consent,
    }


def participant_from_dict(data: Mapping[str, Any]) -> ParticipantRecord:
    """The record `participant_to_dict` gave (raises KeyError/ValueError on anything else)."""
    before = data["state_before_disconnect"]
    floor = data["profile_floor"]
    return ParticipantRecord(
        pid=str(data["pid"]),
        role="host" if data["role"] == "host" else "member",
        state=LobbyState(data["state"]),
        changed_at=float(data["changed_at"]),
        disconnected_at=None if data["disconnected_at"] is None
        else float(data["disconnected_at"]),
        state_before_disconnect=LobbyState(before) if before else None,
        profile=Profile(data["profile"]),
        profile_floor=Profile(floor) if floor else None,
        **{k: bool(data[k]) for k in ("audio_muted", "unmute_allowed", "hand_raised",
                                      "video_stopped", "video_held_by_host", "text_only")},
        # absent in records written before members could give this consent
        clinician_consent=bool(data.get("clinician_consent", False)),
    )


def session_to_dict(record: SessionRecord) -> dict[str, Any]:
    return {"rules": record.rules_dict(), "starts_at": record.starts_at,
            "locked": record.locked, "paused": record.paused, "ended": record.ended,
            "focus": record.focus}


def session_from_dict(data: Mapping[str, Any]) -> SessionRecord:
    return SessionRecord.from_stored(data["rules"], float(data["starts_at"]),
                                     locked=bool(data["locked"]), paused=bool(data["paused"]),
                                     ended=bool(data["ended"]),
                                     focus=None if data.get("focus") is None
                                     else bool(data["focus"]))
