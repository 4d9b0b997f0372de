"""The short after-session feedback form, modelled on the patient experience questionnaire
(PEQ) that NHS Talking Therapies services use. Every question is optional; the group decides
whether the clinician sees who wrote it (`GroupRules.feedback`)."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import FeedbackError

MAX_COMMENT = 1000


@dataclass(frozen=True)
class Question:
    id: str
    text: str


ANSWERS: tuple[str, ...] = ("Never", "Rarely", "Sometimes", "Most of the time", "At all times")
QUESTIONS: tuple[Question, ...] = (
    Question("listened", "Did you feel listened to, and were your concerns taken seriously?"),
    Question("helped", "Did today's session help you to understand and manage your "
                       "difficulties?"),
    Question("safe", "Did you feel safe sharing in the group?"),
    Question("involved", "Could you take part in the way that suited you (speaking, "
                         "listening or writing)?"),
    Question("online", "Did joining online work well for you?"),
)
COMMENT_PROMPT = "Is there anything else you would like to tell us about today's session?"
_IDS = frozenset(q.id for q in QUESTIONS)


@dataclass(frozen=True)
class Feedback:
    """Checked answers: question id -> index into ANSWERS, and an optional comment."""

    answers: Mapping[str, int]
    comment: str | None

    def to_dict(self) -> dict[str, object]:
        return {"answers": dict(self.answers), "comment": self.comment}


def check_feedback(answers: Mapping[str, object], comment: object) -> Feedback:
    """The form as given, checked; nothing answered at all is refused (nothing to keep)."""
    unknown = sorted(set(answers) - _IDS)
    if unknown:
        raise FeedbackError(f'unknown question "{unknown[0][:40]}"', code="unknown_question")
    clean: dict[str, int] = {}
    for qid, value in answers.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise FeedbackError(f'answer to "{qid}" must be a whole number',
                                code="invalid_answers")
        if not 0 <= value < len(ANSWERS):
            raise FeedbackError(f'answer to "{qid}" runs from 0 to {len(ANSWERS) - 1}',
                                code="answer_out_of_range")
        clean[qid] = value
    text: str | None = None
    if comment is not None:
        if not isinstance(comment, str):
            raise FeedbackError("the comment must be text", code="invalid_comment")
        text = unicodedata.normalize("NFC", comment).strip() or None
        if text is not None and len(text) > MAX_COMMENT:
            raise FeedbackError(f"the comment is longer than {MAX_COMMENT} characters",
                                code="comment_too_long")
        if text is not None and any(
            unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") and ch not in "\n\t"
            for ch in text
        ):
            raise FeedbackError("the comment contains control characters",
                                code="invalid_comment")
    if not clean and text is None:
        raise FeedbackError("answer at least one question, or close the form",
                            code="feedback_empty")
    return Feedback(clean, text)
