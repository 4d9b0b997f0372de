"""The hazard-workshop checklist: what a CSO-led workshop must cover, answered per service."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import WorkshopError


@dataclass(frozen=True)
class WorkshopQuestion:
    id: str
    text: str


DEFAULT_WORKSHOP_QUESTIONS: tuple[WorkshopQuestion, ...] = (
    WorkshopQuestion("non_members", "How could someone outside the group see or hear a "
                     "session (at a member's end or the clinician's), and what stops it?"),
    WorkshopQuestion("shared_devices", "What if a member uses a shared or family device, or "
                     "one managed by someone else (links, history, notifications)?"),
    WorkshopQuestion("screen_capture", "How is covert screen capture or recording by a "
                     "participant discouraged, and what happens if it is found?"),
    WorkshopQuestion("names_backgrounds", "How are real names, faces, voices and home "
                     "backgrounds kept from other members (pseudonyms, blur, mask, avatar)?"),
    WorkshopQuestion("lone_working", "How is the clinician supported when running a remote "
                     "group alone (co-facilitator, supervision, escalation)?"),
    WorkshopQuestion("crisis_protocol", "What is the crisis protocol if a member discloses "
                     "risk or drops out distressed, and how is each member reached?"),
    WorkshopQuestion("consent", "How is informed consent to remote group work obtained and "
                     "recorded, including the group agreement?"),
    WorkshopQuestion("chat", "Who can read chat (including people who later leave), and how "
                     "is sharing identifying details in chat handled?"),
    WorkshopQuestion("outage", "What happens if the service or a connection fails "
                     "mid-session, and how does the clinician follow up?"),
    WorkshopQuestion("accessibility", "How are hearing or sight difficulties, language needs "
                     "and digital exclusion met, so remote groups are not the only option?"),
    WorkshopQuestion("lobby_identity", "How does the clinician verify who is waiting before "
                     "admitting them from the lobby?"),
    WorkshopQuestion("dpia", "Is there a completed data protection impact assessment for "
                     "this service's use of remote groups?"),
)


@dataclass(frozen=True)
class WorkshopAnswer:
    """An answer to one question: what was agreed, by whom, on which day."""

    question_id: str
    answer: str
    answered_by: str
    answered_on: dt.date

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkshopAnswer:
        """An answer from stored JSON; incomplete or mistyped answers raise `WorkshopError`."""
        unknown = sorted(set(data) - {"question_id", "answer", "answered_by", "answered_on"})
        if unknown:
            raise WorkshopError(f'unknown workshop answer field "{unknown[0]}"')
        for key in ("question_id", "answer", "answered_by", "answered_on"):
            value = data.get(key)
            if not isinstance(value, str) or not value.strip():
                raise WorkshopError(f"a workshop answer needs {key.replace('_', ' ')}")
        try:
            day = dt.date.fromisoformat(data["answered_on"])
        except ValueError:
            raise WorkshopError("answered_on must be a date like 2025-03-01") from None
        return cls(data["question_id"], data["answer"].strip(), data["answered_by"].strip(), day)

    def to_dict(self) -> dict[str, str]:
        return {"question_id": self.question_id, "answer": self.answer,
                "answered_by": self.answered_by, "answered_on": self.answered_on.isoformat()}


def unanswered(
    answers: Iterable[WorkshopAnswer],
    questions: Iterable[WorkshopQuestion] = DEFAULT_WORKSHOP_QUESTIONS,
) -> list[WorkshopQuestion]:
    """Questions with no complete answer (text, who and when), in checklist order."""
    done = {
        a.question_id for a in answers
        if a.answer.strip() and a.answered_by.strip()
    }
    return [q for q in questions if q.id not in done]


def validate_questions(questions: Iterable[WorkshopQuestion]) -> tuple[WorkshopQuestion, ...]:
    """A service's configured checklist: ids unique and non-empty, text present."""
    out = tuple(questions)
    seen: set[str] = set()
    for q in out:
        if not q.id.strip() or not q.text.strip():
            raise WorkshopError("every workshop question needs an id and text")
        if q.id in seen:
            raise WorkshopError(f'workshop question id "{q.id}" is used twice')
        seen.add(q.id)
    if not out:
        raise WorkshopError("the workshop checklist cannot be empty")
    return out
