"""The DCB0129 5x5 matrix, all 25 cells."""

from __future__ import annotations

import pytest

from session_rules.risk import Likelihood, Severity, parse_likelihood, parse_severity, risk_rating

L, S = Likelihood, Severity
CELLS = [
    (L.VERY_HIGH, [3, 4, 4, 5, 5]),
    (L.HIGH, [2, 3, 3, 4, 5]),
    (L.MEDIUM, [2, 2, 3, 3, 4]),
    (L.LOW, [1, 2, 2, 3, 4]),
    (L.VERY_LOW, [1, 1, 2, 2, 3]),
]
SEVERITIES = [S.MINOR, S.SIGNIFICANT, S.CONSIDERABLE, S.MAJOR, S.CATASTROPHIC]


@pytest.mark.parametrize(
    ("likelihood", "severity", "risk"),
    [(lik, sev, row[i]) for lik, row in CELLS for i, sev in enumerate(SEVERITIES)],
)
def test_matrix_cell(likelihood: Likelihood, severity: Severity, risk: int) -> None:
    assert risk_rating(severity, likelihood) == risk


@pytest.mark.parametrize(
    ("word", "severity"),
    [("Minor", S.MINOR), ("considerable", S.CONSIDERABLE), (" CATASTROPHIC ", S.CATASTROPHIC),
     ("Huge", None), ("", None)],
)
def test_parse_severity(word: str, severity: Severity | None) -> None:
    assert parse_severity(word) is severity


@pytest.mark.parametrize(
    ("word", "likelihood"),
    [("Very low", L.VERY_LOW), ("very  HIGH", L.VERY_HIGH), ("Medium", L.MEDIUM),
     ("Sometimes", None), ("Very", None)],
)
def test_parse_likelihood(word: str, likelihood: Likelihood | None) -> None:
    assert parse_likelihood(word) is likelihood


def test_labels_read_as_in_the_log() -> None:
    assert [s.label for s in S] == ["Minor", "Significant", "Considerable", "Major",
                                    "Catastrophic"]
    assert L.VERY_LOW.label == "Very low"
