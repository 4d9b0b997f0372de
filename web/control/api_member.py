"""What a member's own page sends about themselves: where they are today, their session
measures and their after-session feedback. Each route takes the member's link secret
(`MEMBER`); nothing a member sends here is ever sent back to them or to anyone in the room.
"""

from __future__ import annotations

import logging

from aiohttp import web

from session_rules import feedback as feedback_form
from session_rules.measures import INSTRUMENTS, SKIP_REASONS, Instrument
from web.store import arrivals, clinical, measures
from web.store import feedback as feedback_store

from . import keys
from .http import store_of
from .measures_schemas import (
    FeedbackIn,
    FeedbackSavedAnswer,
    LocationAnswer,
    LocationIn,
    MeasuresIn,
    MeasuresSavedAnswer,
    MemberFormsAnswer,
)
from .routes import MEMBER, Answer, MemberKey, Route, body_of

logger = logging.getLogger(__name__)


def _sid(request: web.Request) -> str:
    return request.match_info["session_id"]


def instrument_json(form: Instrument) -> dict[str, object]:
    """A questionnaire as the member's page shows it."""
    return {
        "id": form.id, "name": form.name, "title": form.title, "stem": form.stem,
        "attribution": form.attribution,
        "items": [{"id": i.id, "text": i.text, "not_applicable": i.not_applicable}
                  for i in form.items],
        "options": [{"value": o.value, "label": o.label} for o in form.options],
    }


async def forms(request: web.Request, key: MemberKey) -> Answer:
    """The forms of this member's session, and which they have already done."""
    found = await store_of(request).run(clinical.member_forms, key.secret, _sid(request))
    rules = found.rules
    chosen = [INSTRUMENTS[i] for i in rules.measures]
    return {
        "session_id": found.session_id,
        "session_status": found.session_status,
        "ask_location": rules.ask_location,
        "location_given": found.location_given,
        "measures_before": [instrument_json(f) for f in chosen if f.timing == "before"],
        "measures_after": [instrument_json(f) for f in chosen if f.timing == "after"],
        "submitted": list(found.submitted),
        "skip_reasons": [{"id": k, "label": v} for k, v in SKIP_REASONS.items()],
        "feedback": {
            "mode": rules.feedback,
            "given": found.feedback_given,
            "questions": [{"id": q.id, "label": q.text} for q in feedback_form.QUESTIONS],
            "answers": list(feedback_form.ANSWERS),
            "comment_prompt": feedback_form.COMMENT_PROMPT,
            "max_comment": feedback_form.MAX_COMMENT,
        },
    }


async def location(request: web.Request, key: MemberKey) -> Answer:
    """Where the member is now (for their clinician only)."""
    body = body_of(request, LocationIn)
    await store_of(request).run(arrivals.record_location, key.secret, _sid(request),
                                body.location)
    return {"saved": True}


async def submit_measures(request: web.Request, key: MemberKey) -> Answer:
    """Answers to (or reasons for skipping) the questionnaires the group chose. A PHQ-9
    question 9 above 0 is an incident at once and an alert to the session's hosts."""
    body = body_of(request, MeasuresIn)
    saved = await store_of(request).run(
        measures.submit, key.secret, _sid(request), body.submission_id,
        [measures.Response(r.instrument, r.answers, r.skipped) for r in body.responses],
        timing=body.timing,
    )
    if saved.risk_flag:
        for listener in request.config_dict[keys.HOST_ALERT_LISTENERS]:
            try:
                await listener(saved.session_id, saved.participant_id, "risk_indicator")
            except Exception:
                # the incident is recorded and the host panel shows the flag regardless
                logger.exception("could not alert the room's hosts of a risk flag")
    # the member is told what was kept, never a score, a band or a flag
    return {"saved": list(saved.instruments)}


async def submit_feedback(request: web.Request, key: MemberKey) -> Answer:
    """After-session feedback (anonymous to the clinician when the group says so)."""
    body = body_of(request, FeedbackIn)
    anonymous = await store_of(request).run(
        feedback_store.submit, key.secret, _sid(request), dict(body.answers), body.comment
    )
    return {"saved": True, "anonymous": anonymous}


M = "/sessions/{session_id}/member"
ROUTES = [
    Route("GET", M + "/forms", forms, "A member's forms for this session", MEMBER,
          response=MemberFormsAnswer, tag="member"),
    Route("PUT", M + "/location", location, "Where the member is now (clinician only)", MEMBER,
          body=LocationIn, response=LocationAnswer, tag="member"),
    Route("POST", M + "/measures", submit_measures, "Session measures: answers or skips",
          MEMBER, body=MeasuresIn, response=MeasuresSavedAnswer, status=201, tag="member"),
    Route("POST", M + "/feedback", submit_feedback, "After-session feedback", MEMBER,
          body=FeedbackIn, response=FeedbackSavedAnswer, status=201, tag="member"),
]
