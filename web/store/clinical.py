"""What a group's clinician sees of each member today, before admitting and during the
session: measures (totals, bands, change since the last session, risk flag), where the member
said they are, and how to reach them. Every view is audited."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from session_rules.rules import GroupRules

from . import audit
from .accounts import UserInfo
from .arrivals import has_location, reach_details
from .db import Tx
from .feedback import given as feedback_given
from .groups import require_group_clinician
from .invites import member_access
from .measures import group_rules, submitted, today_for_clinician
from .models import MeasureResponse, Member
from .sessions import get_row


def session_view(tx: Tx, user: UserInfo, session_id: str) -> dict[str, dict[str, Any]]:
    """participant id -> the member's day, for one of the group's clinicians only."""
    session = get_row(tx, session_id)
    group = require_group_clinician(tx, user, session.group_id)
    rules = GroupRules.from_dict(dict(group.rules))
    answered = set(tx.db.scalars(select(MeasureResponse.member_id).where(
        MeasureResponse.session_id == session_id)))
    members = [m for m in tx.db.scalars(
        select(Member).where(Member.group_id == session.group_id)
        .order_by(Member.created_at, Member.id)) if m.active or m.id in answered]
    audit.append(tx, f"user:{user.id}", "clinical.viewed", session_id,
                 {"members": [m.id for m in members]})
    return {
        m.participant_id: {
            "member_id": m.id,
            "pseudonym": m.pseudonym,
            **reach_details(tx, session, m),
            **today_for_clinician(tx, session, m, rules.measures),
        }
        for m in members
    }


@dataclass(frozen=True)
class MemberForms:
    """What a member's page needs to offer the forms of their session."""

    session_id: str
    rules: GroupRules
    location_given: bool
    submitted: tuple[str, ...]
    feedback_given: bool
    session_status: str


def member_forms(tx: Tx, secret: object, session_id: str) -> MemberForms:
    """The forms of this member's session and which of them they have done."""
    who = member_access(tx, secret, session_id, when="any")
    rules = group_rules(tx, session_id)
    return MemberForms(session_id, rules, has_location(tx, session_id, who.member_id),
                       tuple(submitted(tx, who)), feedback_given(tx, session_id, who.member_id),
                       who.session_status)
