"""Group sessions (scheduled -> open -> live -> ended) and attendance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from . import audit
from .accounts import UserInfo
from .db import Tx, new_id
from .errors import GateClosed, InvalidInput, InvalidTransition, NotFound
from .groups import member_real_name, require_group_clinician
from .models import ArrivalCheck, Attendance, Group, GroupSession, MeasureResponse, Member
from .validate import json_size_ok

MIN_DURATION_MIN = 15
MAX_DURATION_MIN = 480
MAX_PAST_START = timedelta(days=1)
MAX_FUTURE_START = timedelta(days=730)
# a live session may overrun its booked time by this much before links stop working
OVERRUN = timedelta(minutes=60)
MAX_CHECKLIST_JSON = 4096

# the only moves a session may make; "ended" is final
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "scheduled": ("open", "ended"),
    "open": ("live", "ended"),
    "live": ("ended",),
    "ended": (),
}


@dataclass(frozen=True)
class SessionInfo:
    id: str
    group_id: str
    starts_at: datetime
    duration_min: int
    status: str
    opened_at: datetime | None
    live_at: datetime | None
    ended_at: datetime | None

    @property
    def room(self) -> str:
        """The media-plane room id for this session (the session id: random, already "s_")."""
        return self.id

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.duration_min)

    def to_json(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "id": self.id,
            "group_id": self.group_id,
            "room": self.room,
            "starts_at": self.starts_at.isoformat(),
            "duration_min": self.duration_min,
            "ends_at": self.ends_at.isoformat(),
            "status": self.status,
            "opened_at": iso(self.opened_at),
            "live_at": iso(self.live_at),
            "ended_at": iso(self.ended_at),
        }


def session_info(s: GroupSession) -> SessionInfo:
    """The public view of a session row."""
    return SessionInfo(
        s.id, s.group_id, s.starts_at, s.duration_min, s.status, s.opened_at, s.live_at, s.ended_at
    )


def parse_time(value: object, field: str) -> datetime:
    """An ISO 8601 time with a zone, or InvalidInput."""
    if not isinstance(value, str) or len(value) > 40:
        raise InvalidInput(f"{field} must be an ISO 8601 time", code="invalid_time")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{field} must be an ISO 8601 time", code="invalid_time") from None
    if parsed.tzinfo is None:
        raise InvalidInput(f"{field} must include a time zone offset", code="invalid_time")
    return parsed


def get_row(tx: Tx, session_id: str) -> GroupSession:
    """The session row or NotFound."""
    row = tx.db.get(GroupSession, session_id) if isinstance(session_id, str) else None
    if row is None:
        raise NotFound("no such session", code="session_not_found")
    return row


def schedule(
    tx: Tx, user: UserInfo, group_id: str, *, starts_at: object, duration_min: object
) -> SessionInfo:
    """Schedule a session for a group (its clinicians only)."""
    require_group_clinician(tx, user, group_id)
    start = parse_time(starts_at, "starts_at")
    if (
        isinstance(duration_min, bool)
        or not isinstance(duration_min, int)
        or not (MIN_DURATION_MIN <= duration_min <= MAX_DURATION_MIN)
    ):
        raise InvalidInput(
            f"duration_min must be a whole number from {MIN_DURATION_MIN} to {MAX_DURATION_MIN}",
            code="invalid_duration",
        )
    if start < tx.now - MAX_PAST_START or start > tx.now + MAX_FUTURE_START:
        raise InvalidInput("starts_at is too far in the past or future", code="invalid_time")
    row = GroupSession(
        id=new_id("s"),
        group_id=group_id,
        starts_at=start,
        duration_min=duration_min,
        status="scheduled",
        created_by=user.id,
        created_at=tx.now,
    )
    tx.db.add(row)
    tx.db.flush()
    audit.append(
        tx,
        f"user:{user.id}",
        "session.scheduled",
        row.id,
        {"group": group_id, "starts_at": start.isoformat(), "duration_min": duration_min},
    )
    return session_info(row)


def get_session(tx: Tx, user: UserInfo, session_id: str) -> SessionInfo:
    """One session (its group's clinicians only)."""
    row = get_row(tx, session_id)
    require_group_clinician(tx, user, row.group_id)
    return session_info(row)


def find_session(tx: Tx, session_id: str) -> SessionInfo:
    """One session, without an access check (for the room wiring)."""
    return session_info(get_row(tx, session_id))


def list_sessions(tx: Tx, user: UserInfo, group_id: str) -> list[SessionInfo]:
    """A group's sessions by start time."""
    require_group_clinician(tx, user, group_id)
    rows = tx.db.scalars(
        select(GroupSession)
        .where(GroupSession.group_id == group_id)
        .order_by(GroupSession.starts_at, GroupSession.id)
    )
    return [session_info(r) for r in rows]


def transition(
    tx: Tx, user: UserInfo, session_id: str, to: object, *, unmet: list[str] | None = None
) -> SessionInfo:
    """Move a session on; `unmet` lists safety-gate items still open (opening is refused)."""
    row = get_row(tx, session_id)
    require_group_clinician(tx, user, row.group_id)
    if not isinstance(to, str) or to not in TRANSITIONS:
        raise InvalidInput(
            "status must be one of scheduled, open, live, ended", code="invalid_status"
        )
    if to not in TRANSITIONS[row.status]:
        raise InvalidTransition(f'Cannot move session from "{row.status}" to "{to}"')
    if to in ("open", "live") and unmet:
        audit.append(tx, f"user:{user.id}", "session.open_refused", row.id, {"unmet": unmet})
        raise GateClosed("the safety gate is closed: " + "; ".join(unmet), unmet=unmet)
    row.status = to
    setattr(row, {"open": "opened_at", "live": "live_at", "ended": "ended_at"}[to], tx.now)
    audit.append(tx, f"user:{user.id}", f"session.{to}", row.id, {"group": row.group_id})
    return session_info(row)


def _session_member(tx: Tx, session_id: str, participant_id: str) -> Member | None:
    row = get_row(tx, session_id)
    member = tx.db.scalar(select(Member).where(Member.participant_id == participant_id))
    if member is None or member.group_id != row.group_id:
        return None
    return member


def _attendance(tx: Tx, session_id: str, member_id: str) -> Attendance:
    """The member's attendance row, created if missing and locked for this transaction.

    A join and the agreement's answers can be written at the same moment (by different
    threads or nodes): the row is made by an insert that does nothing when it exists, then
    read back locked (FOR UPDATE on PostgreSQL; on SQLite the insert already holds the
    database's write lock), so neither fails on the row's key and no count is lost.
    """
    insert = pg_insert if tx.db.get_bind().dialect.name == "postgresql" else sqlite_insert
    tx.db.execute(
        insert(Attendance)
        .values(session_id=session_id, member_id=member_id, joins=0)
        .on_conflict_do_nothing(index_elements=["session_id", "member_id"])
    )
    return tx.db.scalars(
        select(Attendance)
        .where(Attendance.session_id == session_id, Attendance.member_id == member_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def record_join(tx: Tx, session_id: str, participant_id: str) -> bool:
    """Note a member entering the room; False when the id is not a member of this group."""
    member = _session_member(tx, session_id, participant_id)
    if member is None:
        return False
    row = _attendance(tx, session_id, member.id)
    row.first_joined_at = row.first_joined_at or tx.now
    row.last_joined_at = tx.now
    row.joins = (row.joins or 0) + 1
    return True


def record_leave(tx: Tx, session_id: str, participant_id: str) -> bool:
    """Note a member leaving the room; False when the id is not a member of this group."""
    member = _session_member(tx, session_id, participant_id)
    if member is None:
        return False
    row = _attendance(tx, session_id, member.id)
    row.last_left_at = tx.now
    return True


def record_checklist(tx: Tx, session_id: str, participant_id: str, answers: object) -> bool:
    """Store a member's pre-join checklist answers with their attendance."""
    if not isinstance(answers, dict) or not json_size_ok(answers, MAX_CHECKLIST_JSON):
        raise InvalidInput(
            "checklist answers must be a JSON object of at most 4 KiB", code="invalid_checklist"
        )
    member = _session_member(tx, session_id, participant_id)
    if member is None:
        return False
    _attendance(tx, session_id, member.id).checklist = answers
    return True


def attendance_report(tx: Tx, user: UserInfo, session_id: str) -> list[dict[str, Any]]:
    """Per member of the group: attended, did not attend (session ended), or not yet."""
    row = get_row(tx, session_id)
    require_group_clinician(tx, user, row.group_id)
    members = tx.db.scalars(
        select(Member).where(Member.group_id == row.group_id).order_by(Member.created_at, Member.id)
    )
    given: dict[str, dict[str, str]] = {}
    for member_id, instrument, status in tx.db.execute(
        select(MeasureResponse.member_id, MeasureResponse.instrument, MeasureResponse.status)
        .where(MeasureResponse.session_id == session_id)
    ).all():
        given.setdefault(member_id, {})[instrument] = status
    located = set(tx.db.scalars(
        select(ArrivalCheck.member_id).where(ArrivalCheck.session_id == session_id)))
    out: list[dict[str, Any]] = []
    for m in members:
        seen = tx.db.get(Attendance, (session_id, m.id))
        if seen is None and not m.active:
            continue
        joined = seen is not None and seen.first_joined_at is not None
        status = (
            "attended" if joined else ("did_not_attend" if row.status == "ended" else "not_yet")
        )
        out.append(
            {
                "member_id": m.id,
                "participant_id": m.participant_id,
                "pseudonym": m.pseudonym,
                "status": status,
                "first_joined_at": seen.first_joined_at.isoformat()
                if seen and seen.first_joined_at
                else None,
                "last_left_at": seen.last_left_at.isoformat()
                if seen and seen.last_left_at
                else None,
                "joins": seen.joins if seen else 0,
                "checklist": seen.checklist if seen else None,
                # what the member gave before the session (never the answers themselves)
                "measures": given.get(m.id, {}),
                "location_given": m.id in located,
            }
        )
    return out


def session_roster(tx: Tx, user: UserInfo, session_id: str) -> dict[str, dict[str, str]]:
    """participant_id -> {pseudonym, real_name, member_id} for the group's clinicians only.

    Each call is audited as a view of real names.
    """
    row = get_row(tx, session_id)
    require_group_clinician(tx, user, row.group_id)
    members = list(
        tx.db.scalars(
            select(Member).where(Member.group_id == row.group_id, Member.active.is_(True))
        )
    )
    audit.append(
        tx,
        f"user:{user.id}",
        "roster.viewed",
        row.group_id,
        {"session": session_id, "members": [m.id for m in members]},
    )
    return {
        m.participant_id: {
            "member_id": m.id,
            "pseudonym": m.pseudonym,
            "real_name": member_real_name(tx, m),
        }
        for m in members
    }


def group_of(tx: Tx, session_id: str) -> Group:
    """The group a session belongs to."""
    group = tx.db.get(Group, get_row(tx, session_id).group_id)
    assert group is not None  # foreign key
    return group


def expected_size(tx: Tx, session_id: str) -> tuple[int, dict[str, Any]]:
    """How many may take part in a session (its group's active members and one clinician)
    and the group's rules: what placing its room needs to know."""
    group = group_of(tx, session_id)
    members = tx.db.scalars(
        select(Member.id).where(Member.group_id == group.id, Member.active.is_(True))
    ).all()
    return len(members) + 1, dict(group.rules)
