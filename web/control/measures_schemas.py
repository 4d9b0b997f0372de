"""Bodies and answers of the measures, safeguarding and feedback routes, as typed models.

What a member's page sends and is told (the forms, "saved") is kept apart from what the
group's clinicians are told (scores, bands, change, flags, where a member is, how to reach
them): no model of the first kind has a field for anything of the second.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from web.wire.validation import Code, ReplyModel, WireModel

InstrumentName = Annotated[str, StringConstraints(max_length=32)]

# --- what a member's page sends


class LocationIn(WireModel):
    location: Annotated[str, StringConstraints(max_length=1000)]


class ResponseIn(WireModel):
    """One questionnaire: every answer in order (null only where the form offers "not
    applicable"), or the reason it was skipped."""

    instrument: InstrumentName
    answers: Annotated[list[int | None], Field(max_length=16), Code("invalid_answers")] | None = None
    skipped: Annotated[str, StringConstraints(max_length=32)] | None = None


class MeasuresIn(WireModel):
    # chosen by the page for this submission: sending it again is a replay
    submission_id: Annotated[str, StringConstraints(max_length=64)]
    timing: Literal["before", "after"] = "before"
    responses: Annotated[list[ResponseIn], Field(max_length=8)]


class FeedbackIn(WireModel):
    answers: Annotated[dict[Annotated[str, StringConstraints(max_length=32)], int],
                       Field(max_length=16), Code("invalid_answers")]
    comment: Annotated[str, StringConstraints(max_length=4000)] | None = None


# --- what a member's page is told


class Choice(ReplyModel):
    id: str
    label: str


class OptionOut(ReplyModel):
    value: int
    label: str


class ItemOut(ReplyModel):
    id: str
    text: str
    not_applicable: str | None


class InstrumentOut(ReplyModel):
    id: str
    name: str
    title: str
    stem: str
    attribution: str
    items: list[ItemOut]
    options: list[OptionOut]


class FeedbackFormOut(ReplyModel):
    mode: Literal["off", "named", "anonymous"]
    given: bool
    questions: list[Choice]
    answers: list[str]
    comment_prompt: str
    max_comment: int


class MemberFormsAnswer(ReplyModel):
    session_id: str
    session_status: str
    ask_location: bool
    location_given: bool
    measures_before: list[InstrumentOut]
    measures_after: list[InstrumentOut]
    submitted: list[str]
    skip_reasons: list[Choice]
    feedback: FeedbackFormOut


class LocationAnswer(ReplyModel):
    saved: bool


class MeasuresSavedAnswer(ReplyModel):
    """That the answers were kept: never a score, a band or a flag."""

    saved: list[str]


class FeedbackSavedAnswer(ReplyModel):
    saved: bool
    anonymous: bool


# --- what the group's clinicians are told


class MeasureToday(ReplyModel):
    instrument: str
    name: str
    max_total: int
    status: Literal["completed", "skipped", "not_given"]
    total: int | None
    band: str | None
    answers: list[int | None] | None
    skip_reason: str | None
    submitted_at: str | None
    previous_total: int | None
    change: Literal["reliable_improvement", "reliable_deterioration",
                    "no_reliable_change"] | None
    change_label: str | None
    difference: int | None


class ProgressOut(ReplyModel):
    previous_date: str | None
    overall: str | None
    overall_label: str | None
    caseness_before: bool | None
    caseness_after: bool | None
    recovery: bool | None
    reliable_recovery: bool | None


class ClinicalEntry(ReplyModel):
    member_id: str
    pseudonym: str
    contact: str | None
    emergency_contact: str | None
    location: str | None
    location_at: str | None
    risk_flag: bool
    caseness: bool | None
    measures: list[MeasureToday]
    progress: ProgressOut | None


class ClinicalAnswer(ReplyModel):
    """participant id -> the member's day (this group's clinicians only, audited)."""

    participants: dict[str, ClinicalEntry]


class FeedbackOut(ReplyModel):
    # null when the group's feedback is anonymous to the clinician
    member_id: str | None
    pseudonym: str | None
    date: str
    answers: dict[str, str]
    comment: str | None


class FeedbackListAnswer(ReplyModel):
    feedback: list[FeedbackOut]
