"""The schema: SQLAlchemy 2 models shared by SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ROLES = ("admin", "clinician", "cso")
SESSION_STATUSES = ("scheduled", "open", "live", "ended")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both engines (SQLite keeps no zone, so store naive UTC there)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(64))
    # the id the media plane sees when this user hosts: random, says nothing about them
    participant_id: Mapped[str] = mapped_column(String(40), unique=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LoginSession(Base):
    __tablename__ = "login_sessions"
    # sha256 of the cookie value: a copy of the database does not let anyone log in
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LoginThrottle(Base):
    __tablename__ = "login_throttle"
    # "user:<username>" or "addr:<client address>"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Group(Base):
    __tablename__ = "groups"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GroupClinician(Base):
    __tablename__ = "group_clinicians"
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("group_id", "pseudonym_skeleton"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id"), index=True)
    # what the media plane and the other members see: random, never derived from the name
    participant_id: Mapped[str] = mapped_column(String(40), unique=True)
    pseudonym: Mapped[str] = mapped_column(String(64))
    pseudonym_skeleton: Mapped[str] = mapped_column(String(128))
    # encrypted at rest (AES-GCM, bound to the member id)
    real_name_enc: Mapped[str] = mapped_column(Text)
    contact_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    # who to call if the member cannot be reached (migration 0004); encrypted like the name
    emergency_contact_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    profile: Mapped[str | None] = mapped_column(String(16), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GroupSession(Base):
    __tablename__ = "group_sessions"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_min: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    live_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Invite(Base):
    __tablename__ = "invites"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("group_sessions.id"), index=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), index=True)
    # sha256 of the link's token and of the resume secret: neither is stored in clear
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    resume_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    issued_by: Mapped[str] = mapped_column(String(40))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    refused_count: Mapped[int] = mapped_column(Integer, default=0)


class Attendance(Base):
    __tablename__ = "attendance"
    session_id: Mapped[str] = mapped_column(ForeignKey("group_sessions.id"), primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), primary_key=True)
    first_joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_left_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    joins: Mapped[int] = mapped_column(Integer, default=0)
    checklist: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(120))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


# clinical safety (migration 0002): hazard-log sign-offs, the workshop checklist, the host's
# pre-session checklist, evidence runs and incidents


class HazardSignOff(Base):
    __tablename__ = "hazard_sign_offs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # one sign-off per exact file content: two CSOs signing at once leave one record
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    signed_by: Mapped[str] = mapped_column(String(40))
    signed_by_username: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    comment: Mapped[str] = mapped_column(Text)
    # the signed text itself, so the next version can be compared with it
    log_text: Mapped[str] = mapped_column(Text)


class WorkshopAnswerRow(Base):
    __tablename__ = "workshop_answers"
    # one service per deployment: the latest answer to each question
    question_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    answer: Mapped[str] = mapped_column(Text)
    answered_by: Mapped[str] = mapped_column(String(40))
    answered_by_username: Mapped[str] = mapped_column(String(64))
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime())


class HostChecklist(Base):
    __tablename__ = "host_checklists"
    session_id: Mapped[str] = mapped_column(ForeignKey("group_sessions.id"), primary_key=True)
    confirmed: Mapped[list[str]] = mapped_column(JSON)
    completed_by: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EvidenceRun(Base):
    # no longer written: the service reads the evidence record CI makes instead of running
    # tests itself; the table stays until a migration retires it
    __tablename__ = "evidence_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    started_by: Mapped[str] = mapped_column(String(40))
    log_hash: Mapped[str] = mapped_column(String(64))
    # running, passed, failed, error
    state: Mapped[str] = mapped_column(String(16))
    # test node id -> "pass" | "fail"
    results: Mapped[dict[str, str]] = mapped_column(JSON)
    summary: Mapped[str] = mapped_column(Text)


class Incident(Base):
    __tablename__ = "incidents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    # no foreign key: ad-hoc development rooms record incidents too
    session_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    # the opaque participant id, never a name
    participant_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[str] = mapped_column(Text)


class IncidentHazard(Base):
    __tablename__ = "incident_hazards"
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    hazard_id: Mapped[str] = mapped_column(String(16), primary_key=True, index=True)


# live session state (migration 0003): what a node needs to take a room over after a restart
# or from another node: the rules' state of each participant, the room's flags, the grants
# already used and the hash of each participant's current reconnect token


class LiveRoom(Base):
    __tablename__ = "live_rooms"
    room_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(64), index=True)
    # the node running the room and its fencing token: a write from an older owner is refused
    node_id: Mapped[str] = mapped_column(String(64))
    epoch: Mapped[int] = mapped_column(Integer)
    # true while a node runs the room; false once it closed with nobody in it
    running: Mapped[bool] = mapped_column(Boolean)
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    # seconds on the session's clock (exact round trip of the rules' floats)
    starts_at_s: Mapped[float] = mapped_column(Float)
    locked: Mapped[bool] = mapped_column(Boolean)
    paused: Mapped[bool] = mapped_column(Boolean)
    ended: Mapped[bool] = mapped_column(Boolean)
    # Focus as the host last set it (migration 0004); null: as the rules say
    focus: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    # alerts waiting for the next host, without their details (migration 0005)
    held_alerts: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    # the last moment the owner was known to run the room (writes and heartbeats)
    alive_at_s: Mapped[float] = mapped_column(Float)


class LiveParticipant(Base):
    __tablename__ = "live_participants"
    room_id: Mapped[str] = mapped_column(ForeignKey("live_rooms.room_id"), primary_key=True)
    # the opaque id, never a name
    participant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # arrival order: the rules list hosts in it
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    changed_at_s: Mapped[float] = mapped_column(Float)
    disconnected_at_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    state_before_disconnect: Mapped[str | None] = mapped_column(String(16), nullable=True)
    profile: Mapped[str] = mapped_column(String(16))
    profile_floor: Mapped[str | None] = mapped_column(String(16), nullable=True)
    audio_muted: Mapped[bool] = mapped_column(Boolean)
    unmute_allowed: Mapped[bool] = mapped_column(Boolean)
    hand_raised: Mapped[bool] = mapped_column(Boolean)
    video_stopped: Mapped[bool] = mapped_column(Boolean)
    video_held_by_host: Mapped[bool] = mapped_column(Boolean)
    text_only: Mapped[bool] = mapped_column(Boolean)
    # agreed to the clinician's own view (migration 0005); null in older rows: not agreed
    clinician_consent: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    # sha256 of the reconnect token of their latest connection (never the token itself)
    resume_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


class UsedGrant(Base):
    __tablename__ = "used_grants"
    # a grant's id (jti) once used to join; kept until the grant itself has expired
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(64), index=True)
    participant_id: Mapped[str] = mapped_column(String(64))
    expires_at_s: Mapped[float] = mapped_column(Float, index=True)


# session measures, safeguarding at admission and after-session feedback (migration 0004).
# Every value a member gives is encrypted with the field cipher, bound to its row's id.


class MeasureResponse(Base):
    __tablename__ = "measure_responses"
    __table_args__ = (UniqueConstraint("session_id", "member_id", "instrument"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("group_sessions.id"), index=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), index=True)
    instrument: Mapped[str] = mapped_column(String(32))
    # "completed" or "skipped"; what was answered (and the total, band, reason) is encrypted
    status: Mapped[str] = mapped_column(String(16))
    # the member's page names each submission: the same name twice is a replay
    submission_id: Mapped[str] = mapped_column(String(64), index=True)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    result_enc: Mapped[str] = mapped_column(Text)


class ArrivalCheck(Base):
    __tablename__ = "arrival_checks"
    __table_args__ = (UniqueConstraint("session_id", "member_id"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("group_sessions.id"), index=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # where the member says they are today, for their clinician only
    location_enc: Mapped[str] = mapped_column(Text)


class SessionFeedback(Base):
    __tablename__ = "session_feedback"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("group_sessions.id"), index=True)
    # null when the group's feedback is anonymous to the clinician
    member_id: Mapped[str | None] = mapped_column(
        ForeignKey("members.id"), nullable=True, index=True
    )
    # the day only: a time could be matched with the receipt's or the session's events
    submitted_on: Mapped[date] = mapped_column(Date)
    answers_enc: Mapped[str] = mapped_column(Text)


class FeedbackReceipt(Base):
    """That a member has given feedback for a session (never which feedback)."""

    __tablename__ = "feedback_receipts"
    session_id: Mapped[str] = mapped_column(ForeignKey("group_sessions.id"), primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"), primary_key=True)
