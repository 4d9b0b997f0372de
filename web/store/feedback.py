"""After-session feedback: kept encrypted; anonymous to the clinician when the group says so.

An anonymous answer is stored without the member and with the day only; a separate receipt
says that the member has answered (so nobody answers twice) and never which answer is theirs.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from session_rules import feedback as form
from session_rules.errors import FeedbackError

from . import audit
from .accounts import UserInfo
from .db import Tx, new_id
from .errors import Conflict, InvalidInput
from .groups import require_group_clinician
from .invites import member_access
from .measures import group_rules
from .models import FeedbackReceipt, Member, SessionFeedback
from .sessions import get_row


def field_context(row_id: str) -> str:
    """What the stored value is bound to (its row); data key rotation binds the same."""
    return f"feedback:{row_id}:answers"


def given(tx: Tx, session_id: str, member_id: str) -> bool:
    return tx.db.get(FeedbackReceipt, (session_id, member_id)) is not None


def submit(tx: Tx, secret: object, session_id: str, answers: dict[str, object],
           comment: object) -> bool:
    """Keep a member's feedback; True when it is anonymous to the clinician."""
    who = member_access(tx, secret, session_id, when="after")
    mode = group_rules(tx, session_id).feedback
    if mode == "off":
        raise InvalidInput("this group does not ask for feedback", code="feedback_not_offered")
    if given(tx, session_id, who.member_id):
        raise Conflict("feedback for this session was already given",
                       code="feedback_already_given")
    try:
        checked = form.check_feedback(answers, comment)
    except FeedbackError as exc:
        raise InvalidInput(exc.message, code=exc.code) from None
    anonymous = mode == "anonymous"
    row = SessionFeedback(id=new_id("fb"), session_id=session_id,
                          member_id=None if anonymous else who.member_id,
                          submitted_on=tx.now.date(), answers_enc="")
    row.answers_enc = tx.cipher.encrypt(json.dumps(checked.to_dict()),
                                        context=field_context(row.id))
    tx.db.add(row)
    tx.db.add(FeedbackReceipt(session_id=session_id, member_id=who.member_id))
    tx.db.flush()
    # an anonymous answer leaves no trace of who gave it beyond the receipt
    detail: dict[str, Any] = {"session": session_id}
    if not anonymous:
        detail["member"] = who.member_id
    audit.append(tx, "anonymous", "feedback.given", session_id, detail)
    return anonymous


def for_session(tx: Tx, user: UserInfo, session_id: str) -> list[dict[str, Any]]:
    """A session's feedback for its group's clinicians (named only when the group said so)."""
    session = get_row(tx, session_id)
    require_group_clinician(tx, user, session.group_id)
    rows = list(tx.db.scalars(select(SessionFeedback).where(
        SessionFeedback.session_id == session_id).order_by(SessionFeedback.id)))
    names = {m.id: m.pseudonym for m in tx.db.scalars(
        select(Member).where(Member.group_id == session.group_id))}
    audit.append(tx, f"user:{user.id}", "feedback.viewed", session_id, {"rows": len(rows)})
    out = []
    for row in rows:
        stored = json.loads(
            tx.cipher.decrypt(row.answers_enc, context=field_context(row.id)))
        out.append({
            "member_id": row.member_id,
            "pseudonym": names.get(row.member_id) if row.member_id else None,
            "date": row.submitted_on.isoformat(),
            "answers": {
                q.id: form.ANSWERS[stored["answers"][q.id]]
                for q in form.QUESTIONS if q.id in stored["answers"]
            },
            "comment": stored.get("comment"),
        })
    return out
