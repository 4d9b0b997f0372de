"""Safeguarding at admission: where a member says they are today (encrypted, for their
clinician only), and what a clinician needs to reach a member who drops out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from . import audit
from .db import Tx, new_id
from .groups import member_by_participant, member_contacts
from .invites import member_access
from .models import ArrivalCheck, Member
from .sessions import get_row
from .validate import text

MAX_LOCATION = 300


@dataclass(frozen=True)
class Location:
    text: str
    given_at: datetime


def field_context(row_id: str) -> str:
    """What the stored value is bound to (its row); data key rotation binds the same."""
    return f"arrival:{row_id}:location"


def record_location(tx: Tx, secret: object, session_id: str, location: object) -> datetime:
    """A member says where they are now (again, if they moved); when it was recorded."""
    who = member_access(tx, secret, session_id, when="before")
    clean = text(location, "location", max_len=MAX_LOCATION)
    row = tx.db.scalar(select(ArrivalCheck).where(ArrivalCheck.session_id == session_id,
                                                  ArrivalCheck.member_id == who.member_id))
    if row is None:
        row = ArrivalCheck(id=new_id("ac"), session_id=session_id, member_id=who.member_id,
                           updated_at=tx.now, location_enc="")
        tx.db.add(row)
    row.updated_at = tx.now
    row.location_enc = tx.cipher.encrypt(clean, context=field_context(row.id))
    # the audit records that it was given, never what it says
    audit.append(tx, "anonymous", "arrival.location_given", who.member_id,
                 {"session": session_id})
    return tx.now


def location_of(tx: Tx, session_id: str, member_id: str) -> Location | None:
    """Where a member said they are for this session (callers are clinician-only paths)."""
    row = tx.db.scalar(select(ArrivalCheck).where(ArrivalCheck.session_id == session_id,
                                                  ArrivalCheck.member_id == member_id))
    if row is None:
        return None
    return Location(tx.cipher.decrypt(row.location_enc, context=field_context(row.id)),
                    row.updated_at)


def has_location(tx: Tx, session_id: str, member_id: str) -> bool:
    return tx.db.scalar(select(ArrivalCheck.id).where(
        ArrivalCheck.session_id == session_id, ArrivalCheck.member_id == member_id)) is not None


def reach_details(tx: Tx, session: Any, member: Member) -> dict[str, Any]:
    """Contact, emergency contact and today's location of one member."""
    contact, emergency = member_contacts(tx, member)
    where = location_of(tx, session.id, member.id)
    return {
        "contact": contact,
        "emergency_contact": emergency,
        "location": where.text if where else None,
        "location_at": where.given_at.isoformat() if where else None,
    }


def safeguarding_details(tx: Tx, session_id: str, participant_id: str) -> dict[str, Any] | None:
    """For the alert to the session's hosts when a member drops out and does not come back:
    how to reach them. Audited; None when the id is not a member of the session's group."""
    session = get_row(tx, session_id)
    member = member_by_participant(tx, participant_id)
    if member is None or member.group_id != session.group_id:
        return None
    audit.append(tx, "room", "safeguarding.details_sent", member.id, {"session": session_id})
    return reach_details(tx, session, member)
