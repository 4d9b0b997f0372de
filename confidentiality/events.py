"""Events a privacy pipeline reports to the media plane."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EventKind = Literal["fail_closed", "recovered", "bystander", "bystander_cleared"]


@dataclass(frozen=True, slots=True)
class PrivacyEvent:
    """Something the host should know about a participant's video (pseudonym only)."""

    kind: EventKind
    detail: str
    faces: int = 0
    # fail_closed because a frame missed its deadline (models warming up, a busy node): the
    # placeholder goes out all the same; the host hears of it only if it lasts
    late: bool = False
