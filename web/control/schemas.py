"""The control plane's API bodies and answers as typed models.

Requests are parsed into these before a handler runs (`routes.bind`); answers are held to
them before they are sent; the OpenAPI document is made from them. Values are checked for
their type here and for their meaning by the store (lengths, characters, uniqueness), which
gives each its stable error code.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from web.wire.validation import Code, ReplyModel, WireModel

# --- requests


class Login(WireModel):
    username: Annotated[str, Code("invalid_request")]
    password: Annotated[str, Code("invalid_request")]


class NewUser(WireModel):
    username: str
    role: str
    password: str
    display_name: str | None = None


class NewPassword(WireModel):
    """An admin's reset of someone's password."""

    password: str


class NewGroup(WireModel):
    name: str
    rules: Annotated[dict[str, Any], Code("invalid_rules")] | None = None
    clinicians: Annotated[
        list[str], Field(max_length=20), Code("invalid_clinician")
    ] | None = None


class GroupChange(WireModel):
    name: str | None = None
    rules: Annotated[dict[str, Any], Code("invalid_rules")] | None = None


class ClinicianToAdd(WireModel):
    username: str


class NewMember(WireModel):
    real_name: str
    pseudonym: str
    contact: str | None = None
    profile: str | None = None
    # who to call if the member cannot be reached (a name and a number)
    emergency_contact: str | None = None


class MemberChange(WireModel):
    real_name: str | None = None
    pseudonym: str | None = None
    # null clears the contact
    contact: str | None = None
    profile: str | None = None
    # null clears it
    emergency_contact: str | None = None


class NewSession(WireModel):
    starts_at: Annotated[str, Field(description="ISO 8601 with a time zone")]
    duration_min: int


class StatusChange(WireModel):
    status: Annotated[Literal["scheduled", "open", "live", "ended"], Code("invalid_status")]


class InvitesToIssue(WireModel):
    """One member's link, or every active member's (`all: true`)."""

    member_id: str | None = None
    all: bool = False


class Redeem(WireModel):
    token: str


class Resume(WireModel):
    resume: str


class Empty(WireModel):
    """No fields (clients may send `{}`)."""


# --- answers


class UserOut(ReplyModel):
    id: str
    username: str
    role: str
    display_name: str
    # a leaver's account: no logins (admins see it in the list)
    disabled: bool


class UserAnswer(ReplyModel):
    user: UserOut


class UsersAnswer(ReplyModel):
    users: list[UserOut]


class LoginAnswer(ReplyModel):
    user: UserOut
    csrf_token: str


class MeAnswer(ReplyModel):
    user: UserOut
    csrf_token: str
    csrf_header: str


class OkAnswer(ReplyModel):
    ok: bool


class GroupOut(ReplyModel):
    id: str
    name: str
    rules: dict[str, Any]
    clinician_ids: list[str]
    created_at: str


class GroupAnswer(ReplyModel):
    group: GroupOut


class GroupsAnswer(ReplyModel):
    groups: list[GroupOut]


class MemberOut(ReplyModel):
    """A member without their real name."""

    id: str
    group_id: str
    participant_id: str
    pseudonym: str
    profile: str | None
    active: bool


class MemberAnswer(ReplyModel):
    member: MemberOut


class RosterMember(MemberOut):
    """For the group's clinicians only (each view audited)."""

    real_name: str
    contact: str | None
    emergency_contact: str | None


class GroupRosterAnswer(ReplyModel):
    members: list[RosterMember]


class SuggestionsAnswer(ReplyModel):
    suggestions: list[str]


class SessionOut(ReplyModel):
    id: str
    group_id: str
    room: str
    starts_at: str
    duration_min: int
    ends_at: str
    status: Literal["scheduled", "open", "live", "ended"]
    opened_at: str | None
    live_at: str | None
    ended_at: str | None


class SessionAnswer(ReplyModel):
    session: SessionOut


class SessionsAnswer(ReplyModel):
    sessions: list[SessionOut]


class RosterEntry(ReplyModel):
    member_id: str
    pseudonym: str
    real_name: str


class SessionRosterAnswer(ReplyModel):
    participants: dict[str, RosterEntry]


class AttendanceEntry(ReplyModel):
    member_id: str
    participant_id: str
    pseudonym: str
    status: Literal["attended", "did_not_attend", "not_yet"]
    first_joined_at: str | None
    last_left_at: str | None
    joins: int
    checklist: dict[str, Any] | None
    # questionnaire id -> "completed" or "skipped" (the answers are in /clinical)
    measures: dict[str, Literal["completed", "skipped"]]
    location_given: bool


class AttendanceAnswer(ReplyModel):
    attendance: list[AttendanceEntry]


class GrantAnswer(ReplyModel):
    """A join grant: the pseudonym as display name, never a real name."""

    grant: str
    room: str
    display_name: str
    participant_id: str
    profile: str
    role: Literal["host", "participant"]
    session_id: str
    session_status: str
    # the reconnect secret: once, at redemption
    resume: str | None
    # the node that runs the room, among several (its base URL: pages and sockets go there);
    # None when the service runs as one node, or placement must wait a moment
    node_id: str | None
    node_url: str | None


class InviteOut(ReplyModel):
    id: str
    session_id: str
    member_id: str
    pseudonym: str
    state: Literal["active", "redeemed", "revoked", "expired"]
    issued_at: str
    redeemed_at: str | None
    revoked_at: str | None
    refused_count: int


class IssuedInviteOut(InviteOut):
    # the link, shown this once
    url: str


class InviteAnswer(ReplyModel):
    invite: InviteOut


class InvitesAnswer(ReplyModel):
    invites: list[InviteOut]


class IssuedInvitesAnswer(ReplyModel):
    invites: list[IssuedInviteOut]


class AuditEventOut(ReplyModel):
    id: int
    at: str
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


class AuditAnswer(ReplyModel):
    events: list[AuditEventOut]


class ErrorBody(ReplyModel):
    # some errors say more (the unmet gates, the problems of a hazard log)
    model_config = ConfigDict(extra="allow", frozen=True)

    code: str
    message: str
    # the field to blame, for a body refused at the boundary
    field: str | None = None
    retry_after_s: int | None = None
    unmet: list[Any] | None = None


class ErrorAnswer(ReplyModel):
    error: ErrorBody
