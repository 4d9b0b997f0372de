"""Invites: one single-use link per member per session, stored hashed, revocable."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select, update

from confidentiality.profiles import STRICTNESS, Profile

from . import audit
from .accounts import UserInfo
from .db import Tx, new_id, sha256_hex
from .errors import Forbidden, InvalidInput, InviteRefused, NotFound
from .groups import require_group_clinician
from .models import Group, GroupSession, Invite, Member
from .sessions import OVERRUN, SessionInfo, get_row, session_info

MAX_TOKEN = 200
DEFAULT_LOBBY_OPENS_BEFORE_MIN = 10


@dataclass(frozen=True)
class InviteInfo:
    id: str
    session_id: str
    member_id: str
    pseudonym: str
    state: str  # active | redeemed | revoked | expired
    issued_at: datetime
    redeemed_at: datetime | None
    revoked_at: datetime | None
    refused_count: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "session_id": self.session_id,
            "member_id": self.member_id,
            "pseudonym": self.pseudonym,
            "state": self.state,
            "issued_at": self.issued_at.isoformat(),
            "redeemed_at": self.redeemed_at.isoformat() if self.redeemed_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "refused_count": self.refused_count,
        }


@dataclass(frozen=True)
class IssuedInvite:
    invite: InviteInfo
    token: str  # shown once, to the clinician who issued it; only its hash is kept


@dataclass(frozen=True)
class Redemption:
    """What the control plane needs to mint a join grant: no real name in here."""

    invite_id: str
    session: SessionInfo
    member_id: str
    participant_id: str
    pseudonym: str
    profile: Profile
    resume: str | None  # the reconnect secret, returned once at redemption


def window(session: GroupSession, rules: dict[str, Any]) -> tuple[datetime, datetime]:
    """When a session's links work: from the lobby opening to the booked end."""
    before = rules.get("lobby_opens_before_min", DEFAULT_LOBBY_OPENS_BEFORE_MIN)
    if isinstance(before, bool) or not isinstance(before, int):
        before = DEFAULT_LOBBY_OPENS_BEFORE_MIN
    start = session.starts_at - timedelta(minutes=before)
    return start, session.starts_at + timedelta(minutes=session.duration_min)


def _state(inv: Invite, session: GroupSession, now: datetime, rules: dict[str, Any]) -> str:
    if inv.revoked_at is not None:
        return "revoked"
    if inv.redeemed_at is not None:
        return "redeemed"
    if session.status == "ended" or now > window(session, rules)[1]:
        return "expired"
    return "active"


def _info(
    tx: Tx, inv: Invite, session: GroupSession, member: Member, rules: dict[str, Any]
) -> InviteInfo:
    return InviteInfo(
        inv.id,
        inv.session_id,
        inv.member_id,
        member.pseudonym,
        _state(inv, session, tx.now, rules),
        inv.issued_at,
        inv.redeemed_at,
        inv.revoked_at,
        inv.refused_count,
    )


def _rules(tx: Tx, session: GroupSession) -> dict[str, Any]:
    group = tx.db.get(Group, session.group_id)
    return dict(group.rules) if group else {}


def issue(tx: Tx, user: UserInfo, session_id: str, member_id: object) -> IssuedInvite:
    """A fresh link for one member; any earlier unused link of theirs for this session is
    revoked, so there is at most one live link per member per session."""
    session = get_row(tx, session_id)
    require_group_clinician(tx, user, session.group_id)
    member = tx.db.get(Member, member_id) if isinstance(member_id, str) else None
    if member is None or member.group_id != session.group_id:
        raise NotFound("no such member in this group", code="member_not_found")
    if not member.active:
        raise InvalidInput("this member has left the group", code="member_archived")
    if session.status == "ended":
        raise InvalidInput("this session has ended", code="session_ended")
    for old in tx.db.scalars(
        select(Invite).where(
            Invite.session_id == session.id,
            Invite.member_id == member.id,
            Invite.revoked_at.is_(None),
        )
    ):
        old.revoked_at = tx.now
        audit.append(
            tx,
            f"user:{user.id}",
            "invite.revoked",
            old.id,
            {"session": session.id, "member": member.id, "reason": "reissued"},
        )
    # 256 random bits; the link carries the token, the database only its hash
    token = secrets.token_urlsafe(32)
    inv = Invite(
        id=new_id("i"),
        session_id=session.id,
        member_id=member.id,
        token_hash=sha256_hex(token),
        issued_by=user.id,
        issued_at=tx.now,
        refused_count=0,
    )
    tx.db.add(inv)
    tx.db.flush()
    audit.append(
        tx, f"user:{user.id}", "invite.issued", inv.id, {"session": session.id, "member": member.id}
    )
    return IssuedInvite(_info(tx, inv, session, member, _rules(tx, session)), token)


def issue_all(tx: Tx, user: UserInfo, session_id: str) -> list[IssuedInvite]:
    """Links for every active member of the session's group."""
    session = get_row(tx, session_id)
    require_group_clinician(tx, user, session.group_id)
    members = tx.db.scalars(
        select(Member)
        .where(Member.group_id == session.group_id, Member.active.is_(True))
        .order_by(Member.created_at, Member.id)
    ).all()
    return [issue(tx, user, session_id, m.id) for m in members]


def list_for_session(tx: Tx, user: UserInfo, session_id: str) -> list[InviteInfo]:
    """Every link issued for a session, with its state (tokens are never listed)."""
    session = get_row(tx, session_id)
    require_group_clinician(tx, user, session.group_id)
    rules = _rules(tx, session)
    rows = tx.db.execute(
        select(Invite, Member)
        .join(Member, Member.id == Invite.member_id)
        .where(Invite.session_id == session_id)
        .order_by(Invite.issued_at, Invite.id)
    ).all()
    return [_info(tx, inv, session, m, rules) for inv, m in rows]


def revoke(tx: Tx, user: UserInfo, invite_id: str) -> InviteInfo:
    """Revoke a link (safe twice); a holder who already redeemed it cannot resume."""
    inv = tx.db.get(Invite, invite_id) if isinstance(invite_id, str) else None
    if inv is None:
        raise NotFound("no such invite", code="invite_not_found")
    session = get_row(tx, inv.session_id)
    require_group_clinician(tx, user, session.group_id)
    if inv.revoked_at is None:
        inv.revoked_at = tx.now
        audit.append(
            tx,
            f"user:{user.id}",
            "invite.revoked",
            inv.id,
            {"session": inv.session_id, "member": inv.member_id},
        )
    member = tx.db.get(Member, inv.member_id)
    assert member is not None
    return _info(tx, inv, session, member, _rules(tx, session))


def revoke_member_invites(tx: Tx, member_id: str, *, actor: str) -> None:
    """Revoke every unrevoked link of a member (they left the group)."""
    for inv in tx.db.scalars(
        select(Invite).where(Invite.member_id == member_id, Invite.revoked_at.is_(None))
    ):
        inv.revoked_at = tx.now
        audit.append(
            tx,
            actor,
            "invite.revoked",
            inv.id,
            {"session": inv.session_id, "member": member_id, "reason": "member_left"},
        )


def _refuse(
    tx: Tx, inv: Invite | None, reason: str, code: str, message: str, address: str
) -> InviteRefused:
    detail: dict[str, Any] = {"reason": reason, "address": address}
    if inv is not None:
        detail.update(session=inv.session_id, member=inv.member_id)
    audit.append(tx, "anonymous", "invite.refused", inv.id if inv else "-", detail)
    return InviteRefused(message, code=code, keep_changes=True)


def _profile_for(member: Member, rules: dict[str, Any]) -> Profile:
    minimum = Profile(rules.get("minimum_profile", Profile.BLUR.value))
    chosen = Profile(member.profile) if member.profile else minimum
    # never weaker than the group's minimum, whatever was stored earlier
    return chosen if STRICTNESS[chosen] >= STRICTNESS[minimum] else minimum


def _check_usable(
    tx: Tx, inv: Invite, address: str, *, overrun: bool
) -> tuple[GroupSession, Member, dict[str, Any]]:
    session = get_row(tx, inv.session_id)
    member = tx.db.get(Member, inv.member_id)
    assert member is not None
    rules = _rules(tx, session)
    opens, closes = window(session, rules)
    if overrun and session.status == "live":
        closes += OVERRUN
    if inv.revoked_at is not None or not member.active:
        raise _refuse(
            tx,
            inv,
            "revoked",
            "invite_revoked",
            "this link has been withdrawn: ask your clinician for a new one",
            address,
        )
    if session.status == "ended" or tx.now > closes:
        raise _refuse(
            tx,
            inv,
            "expired",
            "invite_expired",
            "this link has expired: the session is over",
            address,
        )
    if session.status == "scheduled" and tx.now < opens:
        raise _refuse(
            tx,
            inv,
            "not_yet_valid",
            "invite_not_yet_valid",
            f"this link opens at {opens.isoformat()}",
            address,
        )
    return session, member, rules


def redeem(tx: Tx, token: object, *, address: str = "") -> Redemption:
    """Use a link once: returns what the grant needs and a resume secret for reconnects."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
        raise _refuse(tx, None, "malformed", "invite_not_found", "this link is not valid", address)
    inv = tx.db.scalar(select(Invite).where(Invite.token_hash == sha256_hex(token)))
    if inv is None:
        raise _refuse(tx, None, "unknown", "invite_not_found", "this link is not valid", address)
    if inv.redeemed_at is not None and inv.revoked_at is None:
        # a second browser: refuse and record it; the holder's own session is untouched
        inv.refused_count += 1
        raise _refuse(
            tx,
            inv,
            "already_redeemed",
            "invite_already_redeemed",
            "this link has already been used on another device",
            address,
        )
    session, member, rules = _check_usable(tx, inv, address, overrun=False)
    resume = secrets.token_urlsafe(32)
    # atomic single use: only one of two racing redemptions updates the row
    done = tx.db.execute(
        update(Invite)
        .where(Invite.id == inv.id, Invite.redeemed_at.is_(None), Invite.revoked_at.is_(None))
        .values(redeemed_at=tx.now, resume_hash=sha256_hex(resume))
        .execution_options(synchronize_session=False)
    )
    if getattr(done, "rowcount", 0) != 1:
        inv.refused_count += 1
        raise _refuse(
            tx,
            inv,
            "already_redeemed",
            "invite_already_redeemed",
            "this link has already been used on another device",
            address,
        )
    return _granted(tx, "invite.redeemed", inv, session, member, rules, address, resume)


def resume(tx: Tx, secret: object, *, address: str = "") -> Redemption:
    """A fresh grant's data for the holder of a redeemed link (reconnect), checked again."""
    if not isinstance(secret, str) or not secret or len(secret) > MAX_TOKEN:
        raise _refuse(
            tx,
            None,
            "malformed_resume",
            "resume_invalid",
            "this reconnect secret is not valid",
            address,
        )
    inv = tx.db.scalar(select(Invite).where(Invite.resume_hash == sha256_hex(secret)))
    if inv is None:
        raise _refuse(
            tx,
            None,
            "unknown_resume",
            "resume_invalid",
            "this reconnect secret is not valid",
            address,
        )
    session, member, rules = _check_usable(tx, inv, address, overrun=True)
    return _granted(tx, "invite.resumed", inv, session, member, rules, address, None)


def _granted(
    tx: Tx, action: str, inv: Invite, session: Any, member: Any, rules: Any, address: str,
    resume_secret: str | None,
) -> Redemption:
    # redeeming and resuming end alike: audited by ids only, then what a grant needs
    audit.append(
        tx,
        "anonymous",
        action,
        inv.id,
        {"session": inv.session_id, "member": member.id, "address": address},
    )
    return Redemption(
        inv.id,
        session_info(session),
        member.id,
        member.participant_id,
        member.pseudonym,
        _profile_for(member, rules),
        resume_secret,
    )


def revoke_for_participant(tx: Tx, session_id: str, participant_id: str, *, actor: str) -> int:
    """Revoke a participant's links for one session (removed by the host); how many."""
    member = tx.db.scalar(select(Member).where(Member.participant_id == participant_id))
    if member is None:
        return 0
    rows = list(
        tx.db.scalars(
            select(Invite).where(
                Invite.session_id == session_id,
                Invite.member_id == member.id,
                Invite.revoked_at.is_(None),
            )
        )
    )
    for inv in rows:
        inv.revoked_at = tx.now
        audit.append(
            tx,
            actor,
            "invite.revoked",
            inv.id,
            {"session": session_id, "member": member.id, "reason": "removed"},
        )
    return len(rows)


# how long after its end a member's page may still send the after-session forms
AFTER_SESSION_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class MemberAccess:
    """A member acting through their redeemed link (their page holds its resume secret)."""

    invite_id: str
    session_id: str
    group_id: str
    member_id: str
    participant_id: str
    session_status: str
    session_starts_at: datetime


FormsWhen = Literal["before", "after", "any"]


def member_access(
    tx: Tx, secret: object, session_id: str, *, when: FormsWhen = "before"
) -> MemberAccess:
    """The member whose redeemed link `secret` is, if it is for `session_id` and still usable:
    before and during the session ("before"), up to a day after its end ("after"), or
    either ("any")."""
    if not isinstance(secret, str) or not secret or len(secret) > MAX_TOKEN:
        raise InviteRefused("sign in with your link first", code="resume_invalid")
    inv = tx.db.scalar(select(Invite).where(Invite.resume_hash == sha256_hex(secret)))
    if inv is None:
        raise InviteRefused("this link's secret is not valid", code="resume_invalid")
    if inv.session_id != session_id:
        # a member of another session (or another group): nothing of this one is theirs
        audit.append(tx, "anonymous", "member.refused", inv.id,
                     {"reason": "not_in_session", "member": inv.member_id})
        raise Forbidden("you are not a member of this session", code="not_in_session",
                        keep_changes=True)
    session = get_row(tx, inv.session_id)
    member = tx.db.get(Member, inv.member_id)
    assert member is not None
    if inv.revoked_at is not None or not member.active:
        raise InviteRefused("this link has been withdrawn", code="invite_revoked")
    rules = _rules(tx, session)
    closes = window(session, rules)[1]
    before_ok = session.status != "ended" and tx.now <= closes + OVERRUN
    after_ok = session.status != "scheduled" and tx.now <= (
        session.ended_at or closes) + AFTER_SESSION_WINDOW
    usable = {"before": before_ok, "after": after_ok, "any": before_ok or after_ok}[when]
    if not usable:
        raise InviteRefused("the forms for this session are closed", code="invite_expired")
    return MemberAccess(inv.id, session.id, session.group_id, member.id, member.participant_id,
                        session.status, session.starts_at)
