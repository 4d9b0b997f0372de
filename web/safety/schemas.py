"""The clinical-safety API's bodies and answers as typed models (see web.control.schemas).

Hazards, controls and diffs keep the shapes the hazard-log parser gives them (objects);
every answer's own fields are declared and required.
"""

from __future__ import annotations

from typing import Annotated, Any

from web.wire.validation import Code, ReplyModel, WireModel


class SignOffRequest(WireModel):
    content_hash: Annotated[str, Code("invalid_hash")]
    comment: str | None = None


class WorkshopAnswerRequest(WireModel):
    answer: Annotated[str, Code("invalid_answer")]


class HostChecklistRequest(WireModel):
    confirmed: Annotated[list[str], Code("invalid_checklist")]


class HazardLogAnswer(ReplyModel):
    name: str
    hash: str
    metadata: dict[str, Any]
    ok: bool
    issues: list[dict[str, Any]]
    signed_off: bool
    hazards: list[dict[str, Any]]


class SignOffOut(ReplyModel):
    id: int
    content_hash: str
    signed_by: str
    signed_by_username: str
    signed_at: str
    comment: str | None


class ChangesAnswer(ReplyModel):
    current_hash: str
    base: SignOffOut | None
    unchanged: bool
    added: list[dict[str, Any]]
    removed: list[dict[str, Any]]
    changed: list[dict[str, Any]]
    metadata: list[dict[str, Any]]


class SignOffsAnswer(ReplyModel):
    sign_offs: list[SignOffOut]


class SignOffAnswer(ReplyModel):
    sign_off: SignOffOut


class EvidenceRecordOut(ReplyModel):
    """What CI recorded of one suite run (web/safety/evidence.py)."""

    commit: str
    created_at: str
    hazard_log_hash: str | None
    record_hash: str
    summary: dict[str, int]


class EvidenceAnswer(ReplyModel):
    record: EvidenceRecordOut | None
    record_error: str | None
    record_matches_log: bool
    current_hash: str
    controls: list[dict[str, Any]]


class StoredAnswerOut(ReplyModel):
    question_id: str
    answer: str
    answered_by: str
    answered_by_username: str
    answered_at: str


class WorkshopQuestion(ReplyModel):
    id: str
    text: str
    answer: StoredAnswerOut | None


class WorkshopAnswer(ReplyModel):
    questions: list[WorkshopQuestion]
    complete: bool


class WorkshopAnswerAnswer(ReplyModel):
    answer: StoredAnswerOut


class IncidentOut(ReplyModel):
    id: int
    at: str
    session_id: str | None
    kind: str
    participant_id: str | None
    detail: str
    hazard_ids: list[str]


class IncidentsAnswer(ReplyModel):
    incidents: list[IncidentOut]
    kinds: list[str]


class Unmet(ReplyModel):
    code: str
    message: str


class GateAnswer(ReplyModel):
    open: bool
    unmet: list[Unmet]


class HostChecklistOut(ReplyModel):
    items: list[dict[str, str]]
    checklist: str
    complete: bool
    confirmed: list[str]
    missing: list[str]
    updated_at: str | None


class HostChecklistAnswer(ReplyModel):
    checklist: HostChecklistOut
