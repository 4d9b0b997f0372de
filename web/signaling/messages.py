"""Client → server messages (protocol version 1): text in, one typed message out.

`parse` is the only way a client's text reaches the signaling logic. Whatever is wrong with
it becomes a `WireError` with a stable code (and the field, when one is to blame); the
socket stays open and nothing else happens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, StringConstraints, ValidationError

from session_rules.commands import COMMAND_NAMES

from ..wire import json as wire_json
from ..wire.validation import SIGNALING_CODES, FieldProblem, WireModel, problem
from .commands import WIRE_COMMAND, WireCommand

PROTOCOL_VERSION = 1
RequestRef = str | int


class WireError(Exception):
    """A message refused at the boundary; `ref` is the request's id when it had a usable one."""

    def __init__(
        self, code: str, message: str, *, ref: RequestRef | None = None, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.ref = ref
        self.field = field

    @property
    def message(self) -> str:
        return str(self.args[0])


Ref = Annotated[str, StringConstraints(max_length=64)] | int


class _Message(WireModel):
    id: Ref | None = None
    v: Literal[1] | None = None


class Join(WireModel):
    type: Literal["join"]
    id: Ref | None = None
    # checked against PROTOCOL_VERSION by the join itself: a wrong one closes the socket
    v: int | None = None
    # verified by sfu.grants (a missing or overlong grant gets its own grant_* code)
    grant: str | None = None
    room: Annotated[str, StringConstraints(max_length=128)] | None = None
    resume: Annotated[str, StringConstraints(max_length=128)] | None = None


class PublishOffer(_Message):
    type: Literal["publish_offer"]
    sdp: str


class PreviewOffer(_Message):
    type: Literal["preview_offer"]
    sdp: str


class SubscribeAnswer(_Message):
    type: Literal["subscribe_answer"]
    sdp: str


class Mute(_Message):
    """The client's own device state (shown to others; never lifts a host's hold)."""

    type: Literal["mute"]
    kind: Literal["audio", "video"]
    muted: bool


class Ping(_Message):
    type: Literal["ping"]
    ts: float | int | None = None


class IncomingVideo(_Message):
    """Receive other people's video or not (a member on little data turns it off)."""

    type: Literal["incoming_video"]
    enabled: bool


class Leave(_Message):
    type: Literal["leave"]


@dataclass(frozen=True)
class CommandMessage:
    """`{"type": "command", "name": …}`: the command's fields sit beside `type`."""

    command: WireCommand
    id: RequestRef | None = None
    type: Literal["command"] = "command"


Inbound = (
    Join | PublishOffer | PreviewOffer | SubscribeAnswer | Mute | Ping | Leave | IncomingVideo
    | CommandMessage
)

MODELS: dict[str, type[BaseModel]] = {
    "join": Join,
    "publish_offer": PublishOffer,
    "preview_offer": PreviewOffer,
    "subscribe_answer": SubscribeAnswer,
    "mute": Mute,
    "ping": Ping,
    "leave": Leave,
    "incoming_video": IncomingVideo,
}
MESSAGE_TYPES = frozenset({*MODELS, "command"})
# commands the rules know but that never come from a participant (see .commands)
_NOT_FROM_THE_WIRE = {
    "leave": 'leaving is the "leave" message, not a command',
    "publish_media": "media is published with a publish_offer, not a command",
}


def parse(text: str) -> Inbound:
    """One client message as its typed model, or WireError."""
    try:
        data = wire_json.loads(text)
    except wire_json.JsonRejected as exc:
        code = "bad_json" if exc.code == "invalid_unicode" else exc.code
        text = f"message is {exc.message}" if code == "bad_json" else exc.message
        raise WireError(code, text) from None
    if not isinstance(data, dict):
        raise WireError("bad_message", "message must be a JSON object")
    raw_ref = data.get("id")
    ref = raw_ref if _usable_ref(raw_ref) else None
    mtype = data.get("type")
    if not isinstance(mtype, str):
        raise WireError("bad_message", "field 'type' must be a string", ref=ref)
    if mtype == "command":
        return _command(data, ref)
    model = MODELS.get(mtype)
    if model is None:
        raise WireError("unknown_type", f"unknown message type {mtype[:40]!r}", ref=ref)
    try:
        return model.model_validate(data)  # type: ignore[return-value]
    except ValidationError as exc:
        raise _error(problem(exc, model, SIGNALING_CODES), ref) from None


def _command(data: dict[str, object], ref: RequestRef | None) -> CommandMessage:
    fields = {k: v for k, v in data.items() if k not in ("type", "id", "v")}
    try:
        _Message.model_validate({k: v for k, v in data.items() if k in ("id", "v")})
    except ValidationError as exc:
        raise _error(problem(exc, _Message, SIGNALING_CODES), ref) from None
    name = fields.get("name")
    if not isinstance(name, str):
        raise WireError("invalid_command", "a command needs a name", ref=ref, field="name")
    if name in _NOT_FROM_THE_WIRE:
        raise WireError("invalid_command", _NOT_FROM_THE_WIRE[name], ref=ref, field="name")
    if name not in COMMAND_NAMES:
        raise WireError("invalid_command", "unknown command", ref=ref, field="name")
    try:
        command = WIRE_COMMAND.validate_python(fields)
    except ValidationError as exc:
        # the first part of the error's path is the command's name (the union's tag)
        found = problem(exc, None, SIGNALING_CODES, skip=1)
        raise WireError("invalid_command", found.message, ref=ref, field=found.field) from None
    return CommandMessage(command, ref)


def _error(found: FieldProblem, ref: RequestRef | None) -> WireError:
    return WireError(found.code, found.message, ref=ref, field=found.field)


def _usable_ref(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or isinstance(value, str) and len(value) <= 64
