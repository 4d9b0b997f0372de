"""What a group's clinicians see of their members' day: measures with change since the last
session and the risk flag, where each member is and how to reach them; the CSV exports for
the service's record system; after-session feedback. Every read is audited."""

from __future__ import annotations

from aiohttp import web

from web.store import clinical, measures
from web.store import feedback as feedback_store
from web.store.accounts import UserInfo

from .http import store_of
from .measures_schemas import ClinicalAnswer, FeedbackListAnswer
from .routes import Answer, Route

CLINICIAN = ("clinician",)


def _sid(request: web.Request) -> str:
    return request.match_info["session_id"]


async def clinical_view(request: web.Request, user: UserInfo) -> Answer:
    """Each member's measures, risk flag, location today and contacts (audited)."""
    found = await store_of(request).run(clinical.session_view, user, _sid(request))
    return {"participants": found}


def _csv(text: str, filename: str) -> web.Response:
    return web.Response(
        text=text, content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def session_csv(request: web.Request, user: UserInfo) -> Answer:
    """One session's measures as CSV (audited)."""
    text, _ = await store_of(request).run(measures.export_csv, user, session_id=_sid(request))
    return _csv(text, "confide-measures-session.csv")


async def group_csv(request: web.Request, user: UserInfo) -> Answer:
    """Every session's measures of a group as CSV (audited)."""
    text, _ = await store_of(request).run(
        measures.export_csv, user, group_id=request.match_info["group_id"]
    )
    return _csv(text, "confide-measures-group.csv")


async def feedback(request: web.Request, user: UserInfo) -> Answer:
    """After-session feedback (with who gave it only when the group's feedback is named)."""
    found = await store_of(request).run(feedback_store.for_session, user, _sid(request))
    return {"feedback": found}


S = "/sessions/{session_id}"
ROUTES = [
    Route("GET", S + "/clinical", clinical_view,
          "Members' measures, risk flags, location today and contacts (audited)", CLINICIAN,
          response=ClinicalAnswer, tag="measures"),
    Route("GET", S + "/measures.csv", session_csv, "A session's measures as CSV (audited)",
          CLINICIAN, media_type="text/csv", tag="measures"),
    Route("GET", "/groups/{group_id}/measures.csv", group_csv,
          "A group's measures as CSV (audited)", CLINICIAN, media_type="text/csv",
          tag="measures"),
    Route("GET", S + "/feedback", feedback, "After-session feedback", CLINICIAN,
          response=FeedbackListAnswer, tag="measures"),
]
