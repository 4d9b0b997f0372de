"""The clinical-safety API: hazard log, changes, evidence, sign-off, workshop, incidents, gate."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from session_rules.gate import SIGN_OFF_ROLES, can_sign_off
from session_rules.hazard_log import STATUSES, Hazard
from session_rules.incidents import INCIDENT_KINDS
from web.control.errors import ApiError
from web.control.http import store_of
from web.control.routes import Answer, Route, body_of
from web.store import safety as safety_store
from web.store.accounts import UserInfo

from . import evidence, logfile
from .changes import diff_logs
from .config import SafetyConfig
from .errors import HazardLogUnreadable
from .gate import gate_result
from .keys import SAFETY_CONFIG
from .schemas import (
    ChangesAnswer,
    EvidenceAnswer,
    GateAnswer,
    HazardLogAnswer,
    HostChecklistAnswer,
    HostChecklistRequest,
    IncidentsAnswer,
    SignOffAnswer,
    SignOffRequest,
    SignOffsAnswer,
    WorkshopAnswer,
    WorkshopAnswerAnswer,
    WorkshopAnswerRequest,
)

logger = logging.getLogger(__name__)

READERS = ("cso", "admin")
# who may sign a version off (session_rules.gate.SIGN_OFF_ROLES)
SIGNERS = tuple(sorted(SIGN_OFF_ROLES))
_HAZARD_ID_CHARS = frozenset("HAZ-0123456789")


def _config(request: web.Request) -> SafetyConfig:
    return request.config_dict[SAFETY_CONFIG]


async def _snapshot(request: web.Request) -> logfile.LogSnapshot:
    try:
        return await asyncio.to_thread(logfile.snapshot, _config(request))
    except HazardLogUnreadable as exc:
        raise ApiError(503, exc.code, exc.message) from None


def _hazard_json(h: Hazard) -> dict[str, Any]:
    return {
        **h.to_dict(),
        "status": h.status,
        "owner": h.owner,
        "needs_acceptance": h.needs_acceptance(),
        "acceptance": h.acceptance,
    }


def _risk_key(h: Hazard) -> tuple[int, int, str]:
    # highest residual risk first, then highest initial risk: what still needs attention
    residual = h.residual.risk if h.residual else 0
    initial = h.initial.risk if h.initial else 0
    return (-residual, -initial, h.id)


async def hazard_log(request: web.Request, user: UserInfo) -> Answer:
    """The current hazard log with its problems (?sort=risk|id, ?status=open|transferred|closed)."""
    sort = request.query.get("sort", "risk")
    if sort not in ("risk", "id"):
        raise ApiError(400, "invalid_query", "sort must be risk or id")
    status = request.query.get("status")
    if status is not None and status not in STATUSES:
        raise ApiError(400, "invalid_query", f"status must be one of {', '.join(STATUSES)}")
    snap = await _snapshot(request)
    signed = await store_of(request).run(safety_store.signed_off_hashes)
    hazards = list(snap.log.hazards)
    if status is not None:
        hazards = [h for h in hazards if h.status == status]
    hazards.sort(key=_risk_key if sort == "risk" else (lambda h: (h.id, h.line)))
    return (
        {
            "name": snap.name,
            "hash": snap.hash,
            "metadata": snap.log.metadata,
            "ok": snap.log.ok,
            "issues": snap.issues_json(),
            "signed_off": snap.hash in signed,
            "hazards": [_hazard_json(h) for h in hazards],
        }
    )


async def changes(request: web.Request, user: UserInfo) -> Answer:
    """What changed since the last signed-off version, hazard by hazard."""
    snap = await _snapshot(request)
    last = await store_of(request).run(safety_store.last_sign_off)
    base = logfile.parse_stored(last.log_text) if last is not None else None
    if base is None:
        diff: dict[str, Any] = {
            "added": [{"id": h.id, "title": h.title} for h in snap.log.hazards],
            "removed": [],
            "changed": [],
            "metadata": [],
        }
    else:
        diff = diff_logs(base, snap.log)
    return (
        {
            "current_hash": snap.hash,
            "base": last.to_json() if last is not None else None,
            "unchanged": last is not None and last.content_hash == snap.hash,
            **diff,
        }
    )


async def list_sign_offs(request: web.Request, user: UserInfo) -> Answer:
    """Every sign-off, newest first."""
    found = await store_of(request).run(safety_store.list_sign_offs)
    return {"sign_offs": [s.to_json() for s in found]}


async def sign_off(request: web.Request, user: UserInfo) -> Answer:
    """Sign off the current version: {content_hash (the version reviewed), comment}."""
    # the route lets only clinical safety officers in; this says why in the policy's words
    assert can_sign_off(user.role)
    body = body_of(request, SignOffRequest)
    reviewed = body.content_hash
    snap = await _snapshot(request)
    if not snap.log.ok:
        raise ApiError(
            409,
            "log_invalid",
            f"the hazard log has {len(snap.log.issues)} problem(s) and cannot be signed off",
            extra={"issues": snap.issues_json()},
        )
    if reviewed != snap.hash:
        # sign exactly what was read: the file changed since this CSO loaded it
        raise ApiError(
            409,
            "log_changed",
            "the hazard log changed since it was loaded: review the current version",
            extra={"current_hash": snap.hash},
        )
    made = await store_of(request).run(
        safety_store.sign_off,
        user,
        content_hash=snap.hash,
        comment=body.comment,
        log_text=snap.text,
    )
    return {"sign_off": made.to_json()}


async def get_evidence(request: web.Request, user: UserInfo) -> Answer:
    """Evidence status per control, from the evidence record CI made (never a run here)."""
    snap = await _snapshot(request)
    record = snap.record
    return {
        "record": record.describe() if record is not None else None,
        "record_error": snap.record_error,
        "record_matches_log": record is not None and record.hazard_log_hash == snap.hash,
        "current_hash": snap.hash,
        "controls": evidence.control_status(snap.log, record),
    }


async def get_workshop(request: web.Request, user: UserInfo) -> Answer:
    """The workshop questions with this service's answers (who and when)."""
    answers = {a.question_id: a for a in await store_of(request).run(safety_store.workshop_answers)}
    questions = [
        {"id": q.id, "text": q.text, "answer": answers[q.id].to_json() if q.id in answers else None}
        for q in _config(request).questions
    ]
    return (
        {
            "questions": questions,
            "complete": all(q["answer"] is not None for q in questions),
        }
    )


async def answer_workshop(request: web.Request, user: UserInfo) -> Answer:
    """Answer one workshop question: {answer}."""
    body = body_of(request, WorkshopAnswerRequest)
    made = await store_of(request).run(
        safety_store.answer_workshop,
        user,
        request.match_info["question_id"],
        body.answer,
        known_ids=_config(request).question_ids,
    )
    return {"answer": made.to_json()}


def _incident_filters(request: web.Request) -> tuple[str | None, str | None, str | None]:
    kind = request.query.get("kind") or None
    if kind is not None and kind not in INCIDENT_KINDS:
        raise ApiError(400, "invalid_query", f"kind must be one of {', '.join(INCIDENT_KINDS)}")
    hazard = request.query.get("hazard") or None
    if hazard is not None and (len(hazard) > 16 or not set(hazard) <= _HAZARD_ID_CHARS):
        raise ApiError(400, "invalid_query", "hazard must be an id like HAZ-001")
    session = request.query.get("session") or None
    if session is not None and len(session) > 64:
        raise ApiError(400, "invalid_query", "session id too long")
    return kind, hazard, session


async def list_incidents(request: web.Request, user: UserInfo) -> Answer:
    """Incidents, newest first (?kind=&hazard=&session=)."""
    kind, hazard, session = _incident_filters(request)
    found = await store_of(request).run(
        safety_store.list_incidents, kind=kind, hazard_id=hazard, session_id=session
    )
    return {"incidents": [i.to_json() for i in found], "kinds": list(INCIDENT_KINDS)}


async def export_incidents(request: web.Request, user: UserInfo) -> Answer:
    """Incidents as CSV (same filters as the list; all of them, not a page)."""
    store = store_of(request)
    kind, hazard, session = _incident_filters(request)
    found = await store.run(
        safety_store.list_incidents, kind=kind, hazard_id=hazard, session_id=session, limit=None
    )
    from web.store import audit

    await store.run(
        audit.append,
        f"user:{user.id}",
        "incidents.exported",
        "incidents",
        {"incidents": len(found)},
    )
    return web.Response(
        text=safety_store.incidents_csv(found),
        content_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="confide-incidents.csv"'},
    )


async def service_status(request: web.Request, user: UserInfo) -> Answer:
    """The service-wide part of the gate (log valid, signed off, risks accepted, workshop)."""
    result = await gate_result(_config(request), store_of(request), None)
    return result.to_dict()


async def session_gate(request: web.Request, user: UserInfo) -> Answer:
    """The whole gate for one session, with codes (group clinicians)."""
    from web.store import sessions

    await store_of(request).run(sessions.get_session, user, request.match_info["session_id"])
    result = await gate_result(
        _config(request), store_of(request), request.match_info["session_id"]
    )
    return result.to_dict()


async def get_host_checklist(request: web.Request, user: UserInfo) -> Answer:
    """The host's pre-session checklist for this session."""
    found = await store_of(request).run(
        safety_store.host_checklist, user, request.match_info["session_id"]
    )
    return {"checklist": found}


async def put_host_checklist(request: web.Request, user: UserInfo) -> Answer:
    """Confirm the host's pre-session checklist: {confirmed: [item ids]}."""
    body = body_of(request, HostChecklistRequest)
    found = await store_of(request).run(
        safety_store.set_host_checklist,
        user,
        request.match_info["session_id"],
        body.confirmed,
    )
    return {"checklist": found}


S = "/sessions/{session_id}"
ROUTES = [
    Route("GET", "/safety/hazard-log", hazard_log,
          "The hazard log with its problems (?sort=risk|id&status=)", READERS,
          response=HazardLogAnswer, tag="safety"),
    Route("GET", "/safety/hazard-log/changes", changes,
          "Changes since the last signed-off version", READERS, response=ChangesAnswer,
          tag="safety"),
    Route("GET", "/safety/sign-offs", list_sign_offs, "Hazard-log sign-offs", READERS,
          response=SignOffsAnswer, tag="safety"),
    Route("POST", "/safety/sign-offs", sign_off, "Sign off the current hazard log", SIGNERS,
          body=SignOffRequest, response=SignOffAnswer, status=201, tag="safety",
          role_error="forbidden"),
    Route("GET", "/safety/evidence", get_evidence,
          "Evidence status per control, from the evidence record", READERS,
          response=EvidenceAnswer, tag="safety"),
    Route("GET", "/safety/workshop", get_workshop, "The hazard-workshop checklist", READERS,
          response=WorkshopAnswer, tag="safety"),
    Route("PUT", "/safety/workshop/{question_id}", answer_workshop,
          "Answer a workshop question", READERS, body=WorkshopAnswerRequest,
          response=WorkshopAnswerAnswer, tag="safety"),
    Route("GET", "/safety/incidents", list_incidents, "Incidents (?kind=&hazard=&session=)",
          READERS, response=IncidentsAnswer, tag="safety"),
    Route("GET", "/safety/incidents.csv", export_incidents, "Incidents as CSV", READERS,
          media_type="text/csv", tag="safety"),
    Route("GET", "/safety/status", service_status, "The service-wide safety gate", READERS,
          response=GateAnswer, tag="safety"),
    Route("GET", S + "/safety-gate", session_gate, "The safety gate for one session",
          ("clinician",), response=GateAnswer, tag="safety"),
    Route("GET", S + "/host-checklist", get_host_checklist, "The host's pre-session checklist",
          ("clinician",), response=HostChecklistAnswer, tag="safety"),
    Route("PUT", S + "/host-checklist", put_host_checklist,
          "Confirm the host's pre-session checklist", ("clinician",),
          body=HostChecklistRequest, response=HostChecklistAnswer, tag="safety"),
]
