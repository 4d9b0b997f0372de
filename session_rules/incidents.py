"""Incident kinds and the hazards each one is evidence about."""

from __future__ import annotations

from typing import Literal, get_args

from .errors import UnknownIncidentKind

IncidentKind = Literal[
    "fail_closed_placeholder",
    "bystander_alert",
    "someone_came_in",
    "lobby_decline",
    "removal",
    "risk_indicator",
    "member_not_returned",
    "late_arrival",
]

INCIDENT_KINDS: tuple[IncidentKind, ...] = get_args(IncidentKind)

# hazard ids in hazard_log.md; a test keeps this table and the log in step
INCIDENT_HAZARDS: dict[IncidentKind, tuple[str, ...]] = {
    "fail_closed_placeholder": ("HAZ-004",),
    "bystander_alert": ("HAZ-001", "HAZ-002"),
    "someone_came_in": ("HAZ-001", "HAZ-011"),
    "lobby_decline": ("HAZ-003", "HAZ-007"),
    "removal": ("HAZ-003", "HAZ-007"),
    # PHQ-9 item 9 above 0: the clinician assesses risk that day
    "risk_indicator": ("HAZ-017",),
    # an admitted member dropped out and did not come back within the grace period
    "member_not_returned": ("HAZ-006",),
    # a member arrived after the lobby closed and was turned away
    "late_arrival": ("HAZ-020",),
}


def hazards_for(kind: str) -> tuple[str, ...]:
    """The hazard ids an incident of `kind` is linked to; unknown kinds raise."""
    try:
        return INCIDENT_HAZARDS[kind]  # type: ignore[index]
    except KeyError:
        known = ", ".join(INCIDENT_KINDS)
        raise UnknownIncidentKind(
            f'unknown incident kind "{kind}" (known: {known})'
        ) from None
