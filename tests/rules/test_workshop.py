"""The hazard-workshop checklist: configurable questions answered with who and when."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from session_rules.errors import WorkshopError
from session_rules.workshop import (
    DEFAULT_WORKSHOP_QUESTIONS,
    WorkshopAnswer,
    WorkshopQuestion,
    unanswered,
    validate_questions,
)


def test_default_questions_cover_the_known_ways_groups_leak() -> None:
    ids = {q.id for q in DEFAULT_WORKSHOP_QUESTIONS}
    assert {"non_members", "shared_devices", "screen_capture", "names_backgrounds",
            "lone_working", "crisis_protocol", "consent", "chat", "outage", "accessibility",
            "dpia"} <= ids
    assert validate_questions(DEFAULT_WORKSHOP_QUESTIONS) == DEFAULT_WORKSHOP_QUESTIONS


def test_answers_round_trip_and_count() -> None:
    answer = WorkshopAnswer.from_dict({"question_id": "dpia", "answer": "DPIA ref 12 approved",
                                       "answered_by": "CSO", "answered_on": "2025-03-01"})
    assert answer.answered_on == dt.date(2025, 3, 1)
    assert WorkshopAnswer.from_dict(answer.to_dict()) == answer
    left = unanswered([answer])
    assert "dpia" not in {q.id for q in left}
    assert len(left) == len(DEFAULT_WORKSHOP_QUESTIONS) - 1


def test_a_service_can_configure_its_own_questions() -> None:
    own = (WorkshopQuestion("interpreters", "How are interpreters bound by the agreement?"),)
    assert [q.id for q in unanswered([], own)] == ["interpreters"]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"question_id": "dpia", "answer": "yes", "answered_by": "",
          "answered_on": "2025-03-01"}, "answered by"),
        ({"question_id": "dpia", "answer": " ", "answered_by": "CSO",
          "answered_on": "2025-03-01"}, "answer"),
        ({"question_id": "dpia", "answer": "yes", "answered_by": "CSO",
          "answered_on": "last week"}, "must be a date"),
        ({"question_id": "dpia", "answer": "yes", "answered_by": "CSO",
          "answered_on": "2025-03-01", "extra": 1}, "unknown workshop answer field"),
    ],
)
def test_incomplete_answers_are_refused(data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(WorkshopError) as err:
        WorkshopAnswer.from_dict(data)
    assert fragment in err.value.message


@pytest.mark.parametrize(
    "questions",
    [(), (WorkshopQuestion("a", "x"), WorkshopQuestion("a", "y")), (WorkshopQuestion("", "x"),)],
)
def test_bad_question_lists_are_refused(questions: tuple[WorkshopQuestion, ...]) -> None:
    with pytest.raises(WorkshopError):
        validate_questions(questions)
