"""The DCB0129 5x5 clinical risk matrix: severity x likelihood -> risk 1-5."""

from __future__ import annotations

import enum


class Severity(enum.IntEnum):
    """Consequence of the harm, psychological harm included."""

    MINOR = 1
    SIGNIFICANT = 2
    CONSIDERABLE = 3
    MAJOR = 4
    CATASTROPHIC = 5

    @property
    def label(self) -> str:
        return self.name.capitalize()


class Likelihood(enum.IntEnum):
    """How likely the harm is, given the controls in place."""

    VERY_LOW = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4
    VERY_HIGH = 5

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").capitalize()


_SV = Severity
# rows: likelihood; columns: Minor, Significant, Considerable, Major, Catastrophic
_ROWS: dict[Likelihood, tuple[int, int, int, int, int]] = {
    Likelihood.VERY_HIGH: (3, 4, 4, 5, 5),
    Likelihood.HIGH: (2, 3, 3, 4, 5),
    Likelihood.MEDIUM: (2, 2, 3, 3, 4),
    Likelihood.LOW: (1, 2, 2, 3, 4),
    Likelihood.VERY_LOW: (1, 1, 2, 2, 3),
}
MATRIX: dict[tuple[Severity, Likelihood], int] = {
    (severity, likelihood): row[severity - 1]
    for likelihood, row in _ROWS.items()
    for severity in Severity
}

ACCEPTABILITY: dict[int, str] = {
    5: "unacceptable",
    4: "mandatory elimination or control to reduce risk to an acceptable level",
    3: "undesirable; acceptable only where further reduction is impractical",
    2: "acceptable where the cost of further reduction outweighs the benefit",
    1: "acceptable; no action required",
}
# at or above this residual risk a written acceptance is required
ACCEPTANCE_REQUIRED_FROM = 4


def risk_rating(severity: Severity, likelihood: Likelihood) -> int:
    """The matrix cell for `severity` and `likelihood`."""
    return MATRIX[(severity, likelihood)]


def parse_severity(word: str) -> Severity | None:
    """A severity from its word (case-insensitive), or None."""
    key = word.strip().upper().replace(" ", "_")
    return Severity.__members__.get(key)


def parse_likelihood(word: str) -> Likelihood | None:
    """A likelihood from its words, e.g. "Very low" (case-insensitive), or None."""
    key = "_".join(word.strip().upper().split())
    return Likelihood.__members__.get(key)
