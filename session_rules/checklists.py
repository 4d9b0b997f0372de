"""The service user's group agreement and the host's pre-session checklist."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from .errors import ChecklistError


@dataclass(frozen=True)
class ChecklistItem:
    """One item: a stable id for storage and the text the user reads."""

    id: str
    text: str


GROUP_AGREEMENT: tuple[ChecklistItem, ...] = (
    ChecklistItem(
        "private_space",
        "I am in a private space where nobody else can see or hear the group.",
    ),
    ChecklistItem(
        "headphones",
        "If anyone could be nearby, I am wearing headphones so the group cannot be overheard.",
    ),
    ChecklistItem(
        "no_recording",
        "I will not record, photograph or screenshot the group, on this or any other device.",
    ),
    ChecklistItem(
        "pseudonyms_only",
        "I will call other members only by the names they use here, in and after the group.",
    ),
    ChecklistItem(
        "someone_came_in",
        'If someone comes in, I will press "Someone came in" straight away; my camera and '
        "microphone stop and the clinician is told privately.",
    ),
)

HOST_PRE_SESSION: tuple[ChecklistItem, ...] = (
    ChecklistItem("private_space", "I am in a private room that nobody can enter or overhear."),
    ChecklistItem("headphones", "I am wearing headphones."),
    ChecklistItem(
        "crisis_plan",
        "I have the crisis plan and each member's contact and risk details to hand.",
    ),
    ChecklistItem("group_agreement", "The group agreement is ready to go over at the start."),
)


@dataclass(frozen=True)
class ChecklistResult:
    """The outcome of one set of answers, suitable for storing with attendance."""

    checklist: str
    complete: bool
    confirmed: tuple[str, ...]
    missing: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict for the attendance record."""
        return {
            "checklist": self.checklist,
            "complete": self.complete,
            "confirmed": list(self.confirmed),
            "missing": list(self.missing),
        }


def validate_answers(
    answers: Collection[str],
    items: tuple[ChecklistItem, ...] = GROUP_AGREEMENT,
    *,
    checklist: str = "group_agreement",
) -> ChecklistResult:
    """Check confirmed item ids against a checklist; unknown ids raise `ChecklistError`."""
    if isinstance(answers, str) or not all(isinstance(a, str) for a in answers):
        raise ChecklistError("checklist answers must be a list of item ids")
    known = [item.id for item in items]
    unknown = sorted(set(answers) - set(known))
    if unknown:
        raise ChecklistError(f'unknown checklist item "{unknown[0]}" for {checklist}')
    confirmed = tuple(i for i in known if i in answers)
    missing = tuple(i for i in known if i not in answers)
    return ChecklistResult(checklist, not missing, confirmed, missing)


def validate_host_answers(answers: Collection[str]) -> ChecklistResult:
    """Check the host's pre-session checklist."""
    return validate_answers(answers, HOST_PRE_SESSION, checklist="host_pre_session")
