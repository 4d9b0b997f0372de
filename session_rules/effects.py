"""Effects: small typed records that a decision asks the wiring to apply."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from confidentiality.profiles import Profile

from .checklists import ChecklistResult
from .incidents import IncidentKind
from .lobby import Action, LobbyState

Role = Literal["host", "member"]
# "lobby": the host to people not yet in the room (all of them, or one named by `target`)
ChatTo = Literal["all", "host", "lobby"]
AlertKind = Literal[
    "someone_came_in", "hand_raised", "waiting", "disconnected", "not_returned", "late_arrival",
]
EndReason = Literal["declined", "removed"]


@dataclass(frozen=True)
class AddParticipant:
    """A new participant arrives (in PREJOIN) with their starting profile."""

    pid: str
    role: Role
    profile: Profile
    kind: Literal["add_participant"] = "add_participant"


@dataclass(frozen=True)
class SetState:
    """Move `pid` to `state` by lobby action `via`.

    Leaving ADMITTED means the media plane stops forwarding their media and stops sending
    them anyone else's.
    """

    pid: str
    state: LobbyState
    via: Action
    kind: Literal["set_state"] = "set_state"


@dataclass(frozen=True)
class SetMuted:
    pid: str
    muted: bool
    kind: Literal["set_muted"] = "set_muted"


@dataclass(frozen=True)
class SetUnmuteAllowed:
    pid: str
    allowed: bool
    kind: Literal["set_unmute_allowed"] = "set_unmute_allowed"


@dataclass(frozen=True)
class SetHandRaised:
    pid: str
    raised: bool
    kind: Literal["set_hand_raised"] = "set_hand_raised"


@dataclass(frozen=True)
class SetVideoStopped:
    pid: str
    stopped: bool
    kind: Literal["set_video_stopped"] = "set_video_stopped"


@dataclass(frozen=True)
class SetVideoHold:
    """While held by the host, the participant cannot start their own video."""

    pid: str
    held: bool
    kind: Literal["set_video_hold"] = "set_video_hold"


@dataclass(frozen=True)
class SetProfile:
    pid: str
    profile: Profile
    kind: Literal["set_profile"] = "set_profile"


@dataclass(frozen=True)
class SetProfileFloor:
    """The least strict profile the participant may choose, set by the host."""

    pid: str
    floor: Profile
    kind: Literal["set_profile_floor"] = "set_profile_floor"


@dataclass(frozen=True)
class SetTextOnly:
    pid: str
    text_only: bool
    kind: Literal["set_text_only"] = "set_text_only"


@dataclass(frozen=True)
class SetClinicianConsent:
    """A member agrees (or no longer agrees) that their clinician sees them through the
    group's lighter clinician profile."""

    pid: str
    consent: bool
    kind: Literal["set_clinician_consent"] = "set_clinician_consent"


@dataclass(frozen=True)
class SetLocked:
    locked: bool
    kind: Literal["set_locked"] = "set_locked"


@dataclass(frozen=True)
class SetFocus:
    """Members receive only the hosts' video (or everyone's again)."""

    focus: bool
    kind: Literal["set_focus"] = "set_focus"


@dataclass(frozen=True)
class PauseMedia:
    """Hold (or release) all audio and video for everyone."""

    paused: bool
    kind: Literal["pause_media"] = "pause_media"


@dataclass(frozen=True)
class EndSession:
    kind: Literal["end_session"] = "end_session"


@dataclass(frozen=True)
class DisconnectParticipant:
    """Close the participant's connection and tell them why (declined or removed)."""

    pid: str
    reason_code: EndReason
    kind: Literal["disconnect_participant"] = "disconnect_participant"


@dataclass(frozen=True)
class ReplaceConnection:
    """A host's new connection takes over from their earlier one, which is closed; their
    place in the room stays as it is."""

    pid: str
    kind: Literal["replace_connection"] = "replace_connection"


@dataclass(frozen=True)
class AlertHost:
    """A private alert to the hosts named in `recipients`."""

    alert: AlertKind
    about_pid: str
    recipients: tuple[str, ...]
    kind: Literal["alert_host"] = "alert_host"


@dataclass(frozen=True)
class DeliverChat:
    """Send cleaned plain text to `recipients` (never rendered as HTML, never previewed)."""

    sender: str
    to: ChatTo
    text: str
    recipients: tuple[str, ...]
    kind: Literal["deliver_chat"] = "deliver_chat"


@dataclass(frozen=True)
class StoreChecklist:
    """Keep the participant's group-agreement answers with their attendance."""

    pid: str
    result: ChecklistResult
    kind: Literal["store_checklist"] = "store_checklist"


@dataclass(frozen=True)
class RecordIncident:
    """Record an incident for the clinical safety officer (see `incidents.hazards_for`)."""

    incident: IncidentKind
    about_pid: str
    kind: Literal["record_incident"] = "record_incident"


Effect = (
    AddParticipant | SetState | SetMuted | SetUnmuteAllowed | SetHandRaised | SetVideoStopped
    | SetVideoHold | SetProfile | SetProfileFloor | SetTextOnly | SetLocked | SetFocus | SetClinicianConsent | PauseMedia
    | EndSession | DisconnectParticipant | ReplaceConnection | AlertHost | DeliverChat | StoreChecklist
    | RecordIncident
)
