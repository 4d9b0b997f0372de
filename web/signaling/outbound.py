"""Server → client messages (protocol version 1) as typed models.

The media plane builds its messages as plain dicts (it knows nothing of this package);
`check` holds every outgoing message to these models. Tests run with the check strict, so a
message that drifts from the protocol fails there; in service a mismatch is logged by type
and the message still goes out (the client must hear "ended" even if a field drifted).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError

from ..wire.validation import ReplyModel

Ref = str | int


class Track(ReplyModel):
    id: str
    kind: Literal["audio", "video"]
    muted: bool


class Muted(ReplyModel):
    audio: bool
    video: bool


class ParticipantView(ReplyModel):
    """What others learn about a participant: the pseudonym, never a real name."""

    id: str
    display_name: str
    role: Literal["host", "participant"]
    state: Literal["lobby", "admitted", "left"]
    profile: str
    tracks: list[Track]
    muted: Muted
    # in rule-governed rooms
    hand_raised: bool | None = None
    text_only: bool | None = None
    unmute_allowed: bool | None = None
    lobby_state: str | None = None


class ChecklistItem(ReplyModel):
    id: str
    text: str


class _Out(ReplyModel):
    v: Literal[1] = 1


class Joined(_Out):
    type: Literal["joined"]
    room: str
    participant: ParticipantView
    participants: list[ParticipantView]
    ice_servers: list[dict[str, Any]]
    resume: str
    paused: bool
    # said again on every join: a host whose page reconnects (a restart, a reload) sees the
    # room's lock as it is, not as it was
    locked: bool = False
    # members receive only the hosts' video ("Focus")
    focus: bool = False


class SelfState(_Out):
    type: Literal["self_state"]
    lobby_state: str
    audio_muted: bool
    unmute_allowed: bool
    hand_raised: bool
    video_stopped: bool
    video_held_by_host: bool
    text_only: bool
    profile: str
    profile_floor: str | None
    allowed_profiles: list[str]
    chat_enabled: bool
    text_only_allowed: bool
    # the group's lighter profile for the clinician (members only; None: not offered),
    # whether this member agreed to it, and what their clinician receives of them now
    clinician_profile: str | None = None
    clinician_consent: bool = False
    clinician_sees: str | None = None
    checklist: list[ChecklistItem] | None


class Admitted(_Out):
    type: Literal["admitted"]
    participant: ParticipantView
    participants: list[ParticipantView]
    paused: bool
    locked: bool = False
    focus: bool = False


class SentToLobby(_Out):
    type: Literal["sent_to_lobby"]


class ParticipantChanged(_Out):
    type: Literal["participant_joined", "participant_updated"]
    participant: ParticipantView


class ParticipantLeft(_Out):
    type: Literal["participant_left"]
    participant_id: str
    reason: str


class Lobby(_Out):
    type: Literal["lobby"]
    waiting: list[ParticipantView]


class Answer(_Out):
    type: Literal["publish_answer", "preview_answer"]
    sdp: str
    ref: Ref | None = None


class SubscribedTrack(ReplyModel):
    participant_id: str | None
    kind: str
    track_id: str | None


class SubscribeOffer(_Out):
    type: Literal["subscribe_offer"]
    sdp: str
    tracks: dict[str, SubscribedTrack]


class ProfileChanged(_Out):
    type: Literal["profile"]
    profile: str


class AlertDetails(ReplyModel):
    """How to reach a member who dropped out: for their clinician only (never a real name)."""

    contact: str | None
    emergency_contact: str | None
    # where the member said they are today, and when they said it (ISO 8601)
    location: str | None
    location_at: str | None


class Alert(_Out):
    """Hosts only."""

    type: Literal["alert"]
    kind: str
    participant_id: str | None
    message: str
    # how many times it happened in this episode (privacy_fallback)
    count: int | None = None
    details: AlertDetails | None = None


class Prompt(_Out):
    type: Literal["prompt"]
    kind: str
    message: str


class ChatMessage(_Out):
    type: Literal["chat"]
    from_: str = Field(alias="from")
    display_name: str
    to: Literal["all", "host", "lobby"]
    text: str
    ts_ms: int


class RoomPaused(_Out):
    type: Literal["room_paused"]
    paused: bool


class RoomLocked(_Out):
    type: Literal["room_locked"]
    locked: bool


class RoomFocus(_Out):
    type: Literal["room_focus"]
    focus: bool


class Closing(_Out):
    """The end of this participant's place (the socket then closes)."""

    type: Literal["removed", "declined", "ended", "replaced"]
    message: str | None = None
    reason: str | None = None


class ServiceRestarting(_Out):
    """The service is stopping to start again: the socket then closes; reconnect."""

    type: Literal["service_restarting"]
    message: str
    retry_after_ms: int


class Redirect(_Out):
    """Another server runs this session: connect there (same grant, same reconnect token)."""

    type: Literal["redirect"]
    # the signaling socket URL of the server that runs the room
    url: str
    message: str | None = None


class Ok(_Out):
    type: Literal["ok"]
    command: str
    ref: Ref | None = None
    message: str


class IncomingVideo(_Out):
    """Whether this member receives other people's video (off saves data)."""

    type: Literal["incoming_video"]
    enabled: bool
    ref: Ref | None = None


class LinkWeak(_Out):
    """The server paused others' video to this member because their connection cannot carry
    it (their sound keeps coming), or resumed it once it could."""

    type: Literal["link_weak"]
    video: Literal["paused", "resumed"]


class PublishLayer(_Out):
    """The largest picture and rate the room's gallery shows of this member's video: their
    client sends no more (the server scales down whatever is larger)."""

    type: Literal["publish_layer"]
    max_width: int
    max_height: int
    max_bps: int


class Pong(_Out):
    type: Literal["pong"]
    ts: float | int | None = None
    ref: Ref | None = None


class Error(_Out):
    type: Literal["error"]
    code: str
    message: str
    ref: Ref | None = None
    # the field to blame, for a message refused at the boundary
    field: str | None = None


Outbound = Annotated[
    Joined | SelfState | Admitted | SentToLobby | ParticipantChanged | ParticipantLeft | Lobby
    | Answer | SubscribeOffer | ProfileChanged | Alert | Prompt | ChatMessage | RoomPaused
    | RoomLocked | RoomFocus | Closing | ServiceRestarting | IncomingVideo | Redirect | LinkWeak
    | PublishLayer | Ok | Pong | Error,
    Field(discriminator="type"),
]
OUTBOUND = TypeAdapter(Outbound)


class OutboundMismatch(ValueError):
    """A message the server was about to send does not match the protocol."""


def check(message: dict[str, Any]) -> None:
    """Raise OutboundMismatch when `message` is not a protocol-1 server message."""
    try:
        OUTBOUND.validate_python(message)
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise OutboundMismatch(
            f"{message.get('type')!r} message: {where}: {err['msg']}"
        ) from None


def schema() -> dict[str, Any]:
    """JSON Schema of every server message."""
    return OUTBOUND.json_schema(by_alias=True)
