"""Clinical safety records: hazard-log sign-offs, workshop answers, host checklists and
incidents. Repository functions, each run inside one transaction by `Store.run`."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from session_rules.checklists import HOST_PRE_SESSION, validate_host_answers
from session_rules.errors import ChecklistError, UnknownIncidentKind
from session_rules.gate import can_sign_off
from session_rules.incidents import hazards_for
from session_rules.workshop import WorkshopAnswer

from . import audit, sessions
from .accounts import UserInfo
from .db import Tx
from .errors import Conflict, Forbidden, InvalidInput, NotFound
from .models import (
    HazardSignOff,
    HostChecklist,
    Incident,
    IncidentHazard,
    WorkshopAnswerRow,
)

MAX_COMMENT = 2000
MAX_ANSWER = 4000
MAX_DETAIL = 500
MAX_LOG_BYTES = 1024 * 1024
WORKSHOP_ROLES = frozenset({"cso", "admin"})
_HASH = re.compile(r"^[0-9a-f]{64}$")
# participant ids are opaque tokens minted by the service; anything else is refused so
# that a name cannot be slipped into the incident record through this field
_PARTICIPANT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass(frozen=True)
class SignOff:
    id: int
    content_hash: str
    signed_by: str
    signed_by_username: str
    signed_at: datetime
    comment: str
    log_text: str

    def to_json(self) -> dict[str, Any]:
        """The record without the file text (that is served by the diff)."""
        return {
            "id": self.id,
            "content_hash": self.content_hash,
            "signed_by": self.signed_by,
            "signed_by_username": self.signed_by_username,
            "signed_at": self.signed_at.isoformat(),
            "comment": self.comment,
        }


@dataclass(frozen=True)
class StoredAnswer:
    question_id: str
    answer: str
    answered_by: str
    answered_by_username: str
    answered_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "question_id": self.question_id,
            "answer": self.answer,
            "answered_by": self.answered_by,
            "answered_by_username": self.answered_by_username,
            "answered_at": self.answered_at.isoformat(),
        }

    def to_rule(self) -> WorkshopAnswer:
        """The policy layer's view of this answer."""
        return WorkshopAnswer(
            self.question_id, self.answer, self.answered_by_username, self.answered_at.date()
        )


@dataclass(frozen=True)
class IncidentInfo:
    id: int
    at: datetime
    session_id: str
    kind: str
    participant_id: str | None
    detail: str
    hazard_ids: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "session_id": self.session_id,
            "kind": self.kind,
            "participant_id": self.participant_id,
            "detail": self.detail,
            "hazard_ids": list(self.hazard_ids),
        }


@dataclass(frozen=True)
class GateInputs:
    """What the safety gate needs from the store for one session."""

    signed_off_hashes: frozenset[str]
    workshop_answers: tuple[WorkshopAnswer, ...]
    host_checklist: tuple[str, ...] | None


# sign-offs


def _sign_off(row: HazardSignOff) -> SignOff:
    return SignOff(
        row.id,
        row.content_hash,
        row.signed_by,
        row.signed_by_username,
        row.signed_at,
        row.comment,
        row.log_text,
    )


def signed_off_hashes(tx: Tx) -> frozenset[str]:
    """Every content hash a CSO has signed off."""
    return frozenset(tx.db.scalars(select(HazardSignOff.content_hash)))


def list_sign_offs(tx: Tx) -> list[SignOff]:
    """Every sign-off, newest first."""
    rows = tx.db.scalars(select(HazardSignOff).order_by(HazardSignOff.id.desc()))
    return [_sign_off(r) for r in rows]


def last_sign_off(tx: Tx) -> SignOff | None:
    """The most recent sign-off, with the text it covered."""
    row = tx.db.scalars(select(HazardSignOff).order_by(HazardSignOff.id.desc()).limit(1)).first()
    return _sign_off(row) if row is not None else None


def sign_off(
    tx: Tx, user: UserInfo, *, content_hash: str, comment: object, log_text: str
) -> SignOff:
    """Record a CSO's sign-off of one exact version; a version is signed once (409 after)."""
    if not can_sign_off(user.role):
        raise Forbidden("only a clinical safety officer can sign off the hazard log")
    if not _HASH.match(content_hash):
        raise InvalidInput("content_hash must be a sha256 in hex", code="invalid_hash")
    if not isinstance(comment, str) or not comment.strip():
        raise InvalidInput("a sign-off needs a comment", code="invalid_comment")
    if len(comment) > MAX_COMMENT:
        raise InvalidInput(f"the comment is over {MAX_COMMENT} characters", code="invalid_comment")
    if len(log_text.encode("utf-8")) > MAX_LOG_BYTES:
        raise InvalidInput("the hazard log is too large to sign off", code="log_too_large")
    existing = tx.db.scalars(
        select(HazardSignOff).where(HazardSignOff.content_hash == content_hash)
    ).first()
    if existing is not None:
        raise Conflict(
            f"hazard log version {content_hash[:12]} is already signed off",
            code="already_signed_off",
        )
    row = HazardSignOff(
        content_hash=content_hash,
        signed_by=user.id,
        signed_by_username=user.username,
        signed_at=tx.now,
        comment=comment.strip(),
        log_text=log_text,
    )
    tx.db.add(row)
    try:
        # the unique constraint settles a race between two CSOs signing at the same moment
        tx.db.flush()
    except IntegrityError:
        raise Conflict(
            f"hazard log version {content_hash[:12]} is already signed off",
            code="already_signed_off",
        ) from None
    audit.append(tx, f"user:{user.id}", "hazard_log.signed_off", content_hash, {"sign_off": row.id})
    return _sign_off(row)


# workshop


def _answer(row: WorkshopAnswerRow) -> StoredAnswer:
    return StoredAnswer(
        row.question_id, row.answer, row.answered_by, row.answered_by_username, row.answered_at
    )


def workshop_answers(tx: Tx) -> list[StoredAnswer]:
    """The service's current answer to each workshop question."""
    rows = tx.db.scalars(select(WorkshopAnswerRow).order_by(WorkshopAnswerRow.question_id))
    return [_answer(r) for r in rows]


def answer_workshop(
    tx: Tx, user: UserInfo, question_id: str, answer: object, *, known_ids: Collection[str]
) -> StoredAnswer:
    """Record (or replace) this service's answer to one workshop question."""
    if user.role not in WORKSHOP_ROLES:
        raise Forbidden("only a clinical safety officer or an admin answers the workshop")
    if question_id not in known_ids:
        raise NotFound(f'no workshop question "{question_id[:64]}"', code="unknown_question")
    if not isinstance(answer, str) or not answer.strip():
        raise InvalidInput("an answer needs text", code="invalid_answer")
    if len(answer) > MAX_ANSWER:
        raise InvalidInput(f"an answer is at most {MAX_ANSWER} characters", code="invalid_answer")
    row = tx.db.get(WorkshopAnswerRow, question_id)
    if row is None:
        row = WorkshopAnswerRow(question_id=question_id)
        tx.db.add(row)
    row.answer = answer.strip()
    row.answered_by = user.id
    row.answered_by_username = user.username
    row.answered_at = tx.now
    tx.db.flush()
    audit.append(tx, f"user:{user.id}", "workshop.answered", question_id)
    return _answer(row)


# the host's pre-session checklist


def host_checklist(tx: Tx, user: UserInfo, session_id: str) -> dict[str, Any]:
    """The items and what the host has confirmed for this session (group clinicians)."""
    sessions.get_session(tx, user, session_id)
    row = tx.db.get(HostChecklist, session_id)
    confirmed = list(row.confirmed) if row is not None else []
    result = validate_host_answers(confirmed)
    return {
        "items": [{"id": i.id, "text": i.text} for i in HOST_PRE_SESSION],
        **result.to_dict(),
        "updated_at": row.updated_at.isoformat() if row is not None else None,
    }


def set_host_checklist(
    tx: Tx, user: UserInfo, session_id: str, confirmed: object
) -> dict[str, Any]:
    """Store the host's confirmed items for this session (replacing earlier answers)."""
    found = sessions.get_session(tx, user, session_id)
    if found.status == "ended":
        raise Conflict("this session has ended", code="session_ended")
    if not isinstance(confirmed, list):
        raise InvalidInput("confirmed must be a list of item ids", code="invalid_checklist")
    try:
        result = validate_host_answers(confirmed)
    except ChecklistError as exc:
        raise InvalidInput(exc.message, code="invalid_checklist") from None
    row = tx.db.get(HostChecklist, session_id)
    if row is None:
        row = HostChecklist(session_id=session_id)
        tx.db.add(row)
    row.confirmed = list(result.confirmed)
    row.completed_by = user.id
    row.updated_at = tx.now
    tx.db.flush()
    audit.append(
        tx,
        f"user:{user.id}",
        "host_checklist.updated",
        session_id,
        {"complete": result.complete, "missing": list(result.missing)},
    )
    return host_checklist(tx, user, session_id)


def gate_inputs(tx: Tx, session_id: str) -> GateInputs:
    """Sign-offs, workshop answers and this session's host checklist, in one transaction."""
    row = tx.db.get(HostChecklist, session_id)
    return GateInputs(
        signed_off_hashes(tx),
        tuple(a.to_rule() for a in workshop_answers(tx)),
        tuple(row.confirmed) if row is not None else None,
    )


# incidents


def record_incident(
    tx: Tx, session_id: str, kind: str, participant_id: str | None, detail: str
) -> IncidentInfo:
    """Store an incident, linked to the hazards its kind is evidence about."""
    try:
        hazard_ids = hazards_for(kind)
    except UnknownIncidentKind as exc:
        raise InvalidInput(str(exc), code="unknown_incident_kind") from None
    if not isinstance(session_id, str) or not 0 < len(session_id) <= 64:
        raise InvalidInput("an incident needs a session id", code="invalid_session_id")
    if participant_id is not None and not _PARTICIPANT_ID.match(participant_id):
        raise InvalidInput(
            "participant_id must be the opaque id the service issued",
            code="invalid_participant_id",
        )
    if not isinstance(detail, str):
        raise InvalidInput("detail must be text", code="invalid_detail")
    row = Incident(
        at=tx.now,
        session_id=session_id,
        kind=kind,
        participant_id=participant_id,
        detail=detail[:MAX_DETAIL],
    )
    tx.db.add(row)
    tx.db.flush()
    for hazard_id in hazard_ids:
        tx.db.add(IncidentHazard(incident_id=row.id, hazard_id=hazard_id))
    return IncidentInfo(
        row.id, row.at, row.session_id, row.kind, row.participant_id, row.detail, hazard_ids
    )


def list_incidents(
    tx: Tx,
    *,
    kind: str | None = None,
    hazard_id: str | None = None,
    session_id: str | None = None,
    limit: int | None = 500,
) -> list[IncidentInfo]:
    """Incidents, newest first, optionally of one kind, hazard or session."""
    query = select(Incident).order_by(Incident.id.desc())
    if kind:
        query = query.where(Incident.kind == kind)
    if session_id:
        query = query.where(Incident.session_id == session_id)
    if hazard_id:
        query = query.where(
            Incident.id.in_(
                select(IncidentHazard.incident_id).where(IncidentHazard.hazard_id == hazard_id)
            )
        )
    if limit is not None:
        query = query.limit(limit)
    rows = list(tx.db.scalars(query))
    links: dict[int, list[str]] = {r.id: [] for r in rows}
    if rows:
        for link in tx.db.scalars(
            select(IncidentHazard)
            .where(IncidentHazard.incident_id.in_(list(links)))
            .order_by(IncidentHazard.hazard_id)
        ):
            links[link.incident_id].append(link.hazard_id)
    return [
        IncidentInfo(
            r.id, r.at, r.session_id, r.kind, r.participant_id, r.detail, tuple(links[r.id])
        )
        for r in rows
    ]


def incidents_csv(incidents: Iterable[IncidentInfo]) -> str:
    """Incidents as CSV, one row each, hazard ids joined by spaces."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "at", "session_id", "kind", "participant_id", "hazard_ids", "detail"])
    for i in incidents:
        writer.writerow(
            [
                i.id,
                i.at.isoformat(),
                i.session_id,
                i.kind,
                i.participant_id or "",
                " ".join(i.hazard_ids),
                _csv_safe(i.detail),
            ]
        )
    return out.getvalue()


def _csv_safe(value: str) -> str:
    # a cell starting with = + - @ is a formula in spreadsheet programs
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value
