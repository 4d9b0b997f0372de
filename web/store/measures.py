"""Session measures a member gives on their own device: stored encrypted beside their
attendance, shown to the group's clinicians (totals, bands, change since the last session,
risk flag) and exported as CSV for the service's record system.

Scoring, bands and the rules for change are `session_rules.measures`; this module keeps
and reads. Nothing here goes to the media plane or to another member.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from session_rules import measures as rules_measures
from session_rules.errors import MeasureError
from session_rules.measures import INSTRUMENTS, SKIP_REASONS, Instrument, Timing
from session_rules.rules import GroupRules

from . import audit, safety
from .accounts import UserInfo
from .db import Tx, new_id
from .errors import Conflict, InvalidInput
from .groups import require_group_clinician
from .invites import MemberAccess, member_access
from .models import GroupSession, MeasureResponse, Member
from .sessions import get_row, group_of
from .spreadsheet import cell

_SUBMISSION_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
RISK_DETAIL = "PHQ-9 question 9 answered above 0"


@dataclass(frozen=True)
class Response:
    """One questionnaire as a member sends it: answers, or a reason for skipping it."""

    instrument: str
    answers: Sequence[int | None] | None = None
    skipped: str | None = None


@dataclass(frozen=True)
class Saved:
    """What was kept (never the scores: the member's page is not told them)."""

    instruments: tuple[str, ...]
    risk_flag: bool
    session_id: str
    participant_id: str


def group_rules(tx: Tx, session_id: str) -> GroupRules:
    """The rules of a session's group."""
    return GroupRules.from_dict(dict(group_of(tx, session_id).rules))


def offered(rules: GroupRules, timing: Timing) -> tuple[str, ...]:
    """The questionnaires the group chose for `timing` (before or after the session)."""
    return tuple(i for i in rules.measures if INSTRUMENTS[i].timing == timing)


def field_context(row_id: str) -> str:
    """What the stored value is bound to (its row); data key rotation binds the same."""
    return f"measure:{row_id}:result"


def submit(
    tx: Tx,
    secret: object,
    session_id: str,
    submission_id: object,
    responses: Sequence[Response],
    *,
    timing: Timing,
) -> Saved:
    """Keep a member's answers to the questionnaires their group chose for `timing`.

    Every chosen questionnaire not yet given is needed, each completed in full or skipped
    with a reason; a submission id used before is a replay. A PHQ-9 question 9 above 0 is
    recorded as an incident at once (the live room's hosts are told by the caller).
    """
    who = member_access(tx, secret, session_id, when=timing)
    if not isinstance(submission_id, str) or not _SUBMISSION_ID.match(submission_id):
        raise InvalidInput("submission_id must be 8-64 letters, digits, - or _",
                           code="invalid_submission_id")
    chosen = offered(group_rules(tx, session_id), timing)
    if not chosen:
        raise InvalidInput("this group asks for no questionnaires here",
                           code="measure_not_offered")
    replayed = tx.db.scalar(
        select(MeasureResponse.id).where(
            MeasureResponse.session_id == session_id,
            MeasureResponse.member_id == who.member_id,
            MeasureResponse.submission_id == submission_id,
        ).limit(1)
    )
    if replayed is not None:
        audit.append(tx, "anonymous", "measures.replayed", who.member_id,
                     {"session": session_id})
        raise Conflict("these answers were already received", code="submission_replayed",
                       keep_changes=True)
    done = set(tx.db.scalars(
        select(MeasureResponse.instrument).where(
            MeasureResponse.session_id == session_id,
            MeasureResponse.member_id == who.member_id,
        )
    ))
    given: dict[str, Response] = {}
    for response in responses:
        name = response.instrument
        if name not in chosen:
            raise InvalidInput(f'"{str(name)[:40]}" is not one of this group\'s questionnaires',
                               code="measure_not_offered")
        if name in given:
            raise InvalidInput(f"{INSTRUMENTS[name].name} is given twice",
                               code="duplicate_measure")
        if name in done:
            raise Conflict(f"{INSTRUMENTS[name].name} was already given for this session",
                           code="measure_already_submitted")
        given[name] = response
    missing = [INSTRUMENTS[i].name for i in chosen if i not in done and i not in given]
    if missing:
        raise InvalidInput(
            "answer or skip (with a reason) each questionnaire: " + ", ".join(missing),
            code="measure_missing",
        )
    rows: list[tuple[MeasureResponse, dict[str, Any]]] = []
    risk = False
    for name, response in given.items():
        result = _checked(name, response)
        risk = risk or bool(result.get("risk_flag"))
        row = MeasureResponse(
            id=new_id("mr"), session_id=session_id, member_id=who.member_id, instrument=name,
            status=result["status"], submission_id=submission_id, submitted_at=tx.now,
            result_enc="",
        )
        row.result_enc = tx.cipher.encrypt(json.dumps(result), context=field_context(row.id))
        rows.append((row, result))
        tx.db.add(row)
    try:
        tx.db.flush()
    except IntegrityError:
        # two submissions raced: the first one is kept
        raise Conflict("these questionnaires were already given for this session",
                       code="measure_already_submitted") from None
    # the audit says what was given, never what was answered
    audit.append(tx, "anonymous", "measures.submitted", who.member_id, {
        "session": session_id,
        "completed": [r.instrument for r, res in rows if res["status"] == "completed"],
        "skipped": [r.instrument for r, res in rows if res["status"] == "skipped"],
    })
    if risk:
        safety.record_incident(tx, session_id, "risk_indicator", who.participant_id,
                               RISK_DETAIL)
    return Saved(tuple(given), risk, session_id, who.participant_id)


def _checked(name: str, response: Response) -> dict[str, Any]:
    if (response.answers is None) == (response.skipped is None):
        raise InvalidInput("each questionnaire has answers or a reason for skipping it",
                           code="invalid_response")
    try:
        if response.skipped is not None:
            reason = rules_measures.skip_reason(response.skipped)
            return {"status": "skipped", "skip_reason": reason}
        assert response.answers is not None
        scored = rules_measures.score(name, list(response.answers))
    except MeasureError as exc:
        raise InvalidInput(exc.message, code=exc.code) from None
    return {
        "status": "completed",
        "answers": list(scored.answers),
        "total": scored.total,
        "band": scored.band,
        "risk_flag": scored.risk_flag,
    }


# ---- reading (the group's clinicians only)


@dataclass(frozen=True)
class Given:
    """One stored questionnaire, decrypted."""

    session_id: str
    session_date: datetime
    member_id: str
    instrument: str
    submitted_at: datetime
    result: dict[str, Any]

    @property
    def completed(self) -> bool:
        return self.result.get("status") == "completed"

    @property
    def total(self) -> int | None:
        value = self.result.get("total")
        return value if isinstance(value, int) else None


def _read(tx: Tx, rows: Iterable[tuple[MeasureResponse, GroupSession]]) -> list[Given]:
    return [
        Given(s.id, s.starts_at, r.member_id, r.instrument, r.submitted_at,
              json.loads(tx.cipher.decrypt(r.result_enc, context=field_context(r.id))))
        for r, s in rows
    ]


def _given(tx: Tx, *, session_id: str | None = None, group_id: str | None = None,
           member_id: str | None = None) -> list[Given]:
    query = select(MeasureResponse, GroupSession).join(
        GroupSession, GroupSession.id == MeasureResponse.session_id)
    if session_id is not None:
        query = query.where(MeasureResponse.session_id == session_id)
    if group_id is not None:
        query = query.where(GroupSession.group_id == group_id)
    if member_id is not None:
        query = query.where(MeasureResponse.member_id == member_id)
    query = query.order_by(GroupSession.starts_at, GroupSession.id, MeasureResponse.member_id,
                           MeasureResponse.instrument)
    return _read(tx, ((r, s) for r, s in tx.db.execute(query).all()))


def _instrument_json(form: Instrument, item: Given | None) -> dict[str, Any]:
    out: dict[str, Any] = {"instrument": form.id, "name": form.name, "max_total": form.max_total,
                           "status": "not_given", "total": None, "band": None,
                           "answers": None, "skip_reason": None, "submitted_at": None}
    if item is not None:
        res = item.result
        reason = res.get("skip_reason")
        out.update(
            status=res.get("status"), total=res.get("total"), band=res.get("band"),
            answers=res.get("answers"),
            skip_reason=SKIP_REASONS.get(reason) if isinstance(reason, str) else None,
            submitted_at=item.submitted_at.isoformat(),
        )
    return out


def today_for_clinician(tx: Tx, session: GroupSession, member: Member,
                        chosen: Sequence[str]) -> dict[str, Any]:
    """One member's measures for `session`, with change since their last session."""
    today = {g.instrument: g for g in _given(tx, session_id=session.id, member_id=member.id)}
    earlier = [g for g in _given(tx, group_id=session.group_id, member_id=member.id)
               if g.session_date < session.starts_at and g.completed]
    # the last earlier session in which they completed PHQ-9 or GAD-7
    last: dict[str, int] = {}
    last_date: datetime | None = None
    for g in reversed(earlier):
        if last_date is not None and g.session_date != last_date:
            break
        if g.instrument in ("phq9", "gad7") and g.total is not None:
            last_date = g.session_date
            last[g.instrument] = g.total
    names = list(dict.fromkeys([*chosen, *today]))
    measures = []
    for name in rules_measures.ordered(names):
        form = INSTRUMENTS[name]
        entry = _instrument_json(form, today.get(name))
        earlier_total = last.get(name)
        entry["previous_total"] = earlier_total
        if earlier_total is not None and entry["total"] is not None and form.reliable_change:
            change = rules_measures.reliable_change(name, earlier_total, entry["total"])
            entry["change"] = change.value
            entry["change_label"] = change.label
            entry["difference"] = entry["total"] - earlier_total
        else:
            entry["change"] = entry["change_label"] = entry["difference"] = None
        measures.append(entry)
    now_totals = {n: g.total for n, g in today.items()
                  if g.completed and g.total is not None}
    progress: dict[str, Any] | None = None
    if last and now_totals:
        found = rules_measures.progress(last, now_totals)  # type: ignore[arg-type]
        progress = {
            "previous_date": last_date.date().isoformat() if last_date else None,
            "overall": found.overall.value if found.overall else None,
            "overall_label": found.overall.label if found.overall else None,
            "caseness_before": found.caseness_before,
            "caseness_after": found.caseness_after,
            "recovery": found.recovery,
            "reliable_recovery": found.reliable_recovery,
        }
    risk = any(bool(g.result.get("risk_flag")) for g in today.values())
    return {"measures": measures, "progress": progress, "risk_flag": risk,
            "caseness": rules_measures.at_caseness(now_totals) if now_totals else None}


# ---- export


def export_csv(tx: Tx, user: UserInfo, *, session_id: str | None = None,
               group_id: str | None = None) -> tuple[str, int]:
    """Measures as CSV, one row per member per session: member id, pseudonym, date, each
    item, totals. Audited; every cell is safe to open in a spreadsheet."""
    if session_id is not None:
        session = get_row(tx, session_id)
        group_id = session.group_id
    assert group_id is not None
    group = require_group_clinician(tx, user, group_id)
    found = _given(tx, session_id=session_id, group_id=group_id)
    rules = GroupRules.from_dict(dict(group.rules))
    names = rules_measures.ordered([*rules.measures, *(g.instrument for g in found)])
    header = ["member_id", "pseudonym", "date", "session_id"]
    for name in names:
        form = INSTRUMENTS[name]
        header += [f"{name}_status", *[it.id for it in form.items], f"{name}_total",
                   f"{name}_band", f"{name}_skip_reason"]
    rows: dict[tuple[str, str], dict[str, Given]] = {}
    dates: dict[str, datetime] = {}
    for g in found:
        rows.setdefault((g.session_id, g.member_id), {})[g.instrument] = g
        dates[g.session_id] = g.session_date
    pseudonyms = {m.id: m.pseudonym for m in tx.db.scalars(
        select(Member).where(Member.group_id == group_id))}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    ordered_keys = sorted(rows, key=lambda k: (dates[k[0]], k[0], pseudonyms.get(k[1], ""), k[1]))
    for session_key, member_key in ordered_keys:
        by_name = rows[(session_key, member_key)]
        line: list[object] = [member_key, pseudonyms.get(member_key, ""),
                              dates[session_key].date().isoformat(), session_key]
        for name in names:
            form = INSTRUMENTS[name]
            stored = by_name.get(name)
            res = stored.result if stored is not None else {}
            answers = res.get("answers") or [None] * len(form.items)
            reason = res.get("skip_reason")
            line += [res.get("status", ""), *answers, res.get("total"), res.get("band"),
                     SKIP_REASONS.get(reason, "") if isinstance(reason, str) else ""]
        writer.writerow([cell(v) for v in line])
    audit.append(tx, f"user:{user.id}", "measures.exported", session_id or group_id,
                 {"group": group_id, "session": session_id, "rows": len(ordered_keys)})
    return out.getvalue(), len(ordered_keys)


def submitted(tx: Tx, who: MemberAccess) -> list[str]:
    """The questionnaires this member has given for their session."""
    return list(tx.db.scalars(
        select(MeasureResponse.instrument).where(
            MeasureResponse.session_id == who.session_id,
            MeasureResponse.member_id == who.member_id,
        )
    ))
