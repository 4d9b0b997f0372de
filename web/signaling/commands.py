"""Commands as a participant may send them: one typed model per command, nothing else.

Only the commands in `session_rules.commands.WIRE_COMMAND_NAMES` exist here. `leave` is the
`leave` message (one path, which also closes the socket) and `publish_media` is decided when
an offer arrives: neither can be sent as a command, so the rules and the room cannot be
talked into disagreeing about who is present.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, TypeAdapter

from confidentiality.profiles import Profile
from session_rules.commands import Command

from ..wire.validation import WireModel

ParticipantId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
ProfileName = Literal["none", "blur", "face_mask", "avatar", "camera_off"]
# the rules check chat text (length, characters); this only bounds what is parsed
ChatText = Annotated[str, StringConstraints(max_length=8000)]
AnswerId = Annotated[str, StringConstraints(max_length=64)]


class _Command(WireModel):
    def to_command(self) -> Command:
        """The session rules' command (the sender is always the socket's owner)."""
        return Command(self.name)  # type: ignore[attr-defined]


class Bare(_Command):
    """Commands with no fields."""

    name: Literal[
        "admit_all", "mute_all", "unmute", "raise_hand", "start_video", "lock", "unlock",
        "focus_on", "focus_off", "pause", "resume", "end", "someone_came_in",
    ]


class Targeted(_Command):
    """Host commands on one participant."""

    name: Literal[
        "admit", "decline", "send_to_lobby", "remove", "readmit", "allow_unmute", "allow_video",
    ]
    target: ParticipantId

    def to_command(self) -> Command:
        return Command(self.name, target=self.target)


class SelfOrTarget(_Command):
    """On oneself, or (hosts only) on someone else."""

    name: Literal["mute", "stop_video", "lower_hand"]
    target: ParticipantId | None = None

    def to_command(self) -> Command:
        return Command(self.name, target=self.target)


class EnforceProfile(_Command):
    name: Literal["enforce_profile"]
    target: ParticipantId
    profile: ProfileName

    def to_command(self) -> Command:
        return Command(self.name, target=self.target, profile=Profile(self.profile))


class SetOwnProfile(_Command):
    name: Literal["set_own_profile"]
    profile: ProfileName

    def to_command(self) -> Command:
        return Command(self.name, profile=Profile(self.profile))


class SetTextOnly(_Command):
    name: Literal["set_text_only"]
    enabled: bool = True

    def to_command(self) -> Command:
        return Command(self.name, enabled=self.enabled)


class SetClinicianConsent(_Command):
    """A member agrees (true) or no longer agrees that their clinician sees them through the
    group's lighter clinician profile."""

    name: Literal["set_clinician_consent"]
    consent: bool

    def to_command(self) -> Command:
        return Command(self.name, enabled=self.consent)


class Chat(_Command):
    name: Literal["chat"]
    to: Literal["all", "host", "lobby"] = "all"
    # with to="lobby": one person in the waiting room (none: everyone waiting)
    target: ParticipantId | None = None
    text: ChatText

    def to_command(self) -> Command:
        return Command(self.name, to=self.to, text=self.text, target=self.target)


class ConfirmChecklist(_Command):
    name: Literal["confirm_checklist"]
    answers: Annotated[list[AnswerId], Field(max_length=32)]

    def to_command(self) -> Command:
        return Command(self.name, answers=frozenset(self.answers))


WireCommand = Annotated[
    Bare | Targeted | SelfOrTarget | EnforceProfile | SetOwnProfile | SetTextOnly
    | SetClinicianConsent | Chat | ConfirmChecklist,
    Field(discriminator="name"),
]
WIRE_COMMAND = TypeAdapter(WireCommand)
