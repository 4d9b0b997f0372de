"""The safety gate: may a session's lobby open? Every unmet item is listed."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Literal

from .checklists import validate_host_answers
from .errors import ChecklistError
from .hazard_log import HazardLog
from .workshop import DEFAULT_WORKSHOP_QUESTIONS, WorkshopAnswer, WorkshopQuestion, unanswered

UnmetCode = Literal[
    "log_invalid",
    "log_not_signed_off",
    "risk_not_accepted",
    "workshop_incomplete",
    "host_checklist_incomplete",
]

SIGN_OFF_ROLES = frozenset({"cso"})


@dataclass(frozen=True)
class UnmetItem:
    code: UnmetCode
    message: str


@dataclass(frozen=True)
class GateResult:
    open: bool
    unmet: list[UnmetItem] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"open": self.open,
                "unmet": [{"code": u.code, "message": u.message} for u in self.unmet]}


def can_sign_off(role: str) -> bool:
    """Only a clinical safety officer may sign off a version of the hazard log."""
    return role in SIGN_OFF_ROLES


def evaluate(
    *,
    log_hash: str,
    signed_off_hashes: Collection[str],
    log: HazardLog,
    accepted_hazard_ids: Collection[str] = (),
    workshop_answers: Iterable[WorkshopAnswer] = (),
    workshop_questions: Iterable[WorkshopQuestion] = DEFAULT_WORKSHOP_QUESTIONS,
    host_checklist: Collection[str] | None = None,
) -> GateResult:
    """Open only when the current log is valid and signed off, every high residual risk is
    accepted, the workshop is complete and the host has done their pre-session checklist."""
    unmet: list[UnmetItem] = []
    if log.issues:
        unmet.append(UnmetItem(
            "log_invalid", f"the hazard log has {len(log.issues)} problem(s), first: "
            f"{log.issues[0]}"))
    # a sign-off covers exact bytes: any edit to the log closes the gate until re-signed
    if log_hash not in signed_off_hashes:
        unmet.append(UnmetItem(
            "log_not_signed_off",
            f"hazard log version {log_hash[:12]} has not been signed off by a clinical "
            "safety officer"))
    for hazard in log.hazards:
        if hazard.needs_acceptance() and not (
            hazard.acceptance.strip() or hazard.id in accepted_hazard_ids
        ):
            assert hazard.residual is not None
            unmet.append(UnmetItem(
                "risk_not_accepted",
                f"{hazard.id} stands at residual risk {hazard.residual.risk} without an "
                "accepted justification"))
    missing = unanswered(workshop_answers, workshop_questions)
    if missing:
        unmet.append(UnmetItem(
            "workshop_incomplete",
            "hazard-workshop questions not answered: " + ", ".join(q.id for q in missing)))
    try:
        host = validate_host_answers(host_checklist or ())
        host_missing = list(host.missing)
    except ChecklistError as exc:
        host_missing = [exc.message]
    if host_missing:
        unmet.append(UnmetItem(
            "host_checklist_incomplete",
            "the host's pre-session checklist is not done: " + ", ".join(host_missing)))
    return GateResult(not unmet, unmet)
