"""Hazard log parsing: a good log parses; each kind of malformed log gives line-numbered errors."""

from __future__ import annotations

import textwrap

import pytest

from session_rules.hazard_log import (
    check_evidence,
    check_log,
    content_hash,
    parse_hazard_log,
)
from session_rules.risk import Likelihood, Severity

GOOD = textwrap.dedent("""\
    # Example hazard log

    - version: 0.1

    ## HAZ-001: Someone outside the group hears the session
    - description: A member attends from a shared room.
    - causes: No private space;
      no headphones.
    - effect: Group content heard by a non-member.
    - harm: Distress and loss of trust for several members.
    - existing controls: Group agreement.
    - initial severity: Considerable
    - initial likelihood: High
    - initial risk: 3
    - additional controls:
      - control: Checklist before joining.
        type: design
        evidence: test: tests/rules/test_x.py::test_checklist
      - control: Conversation before the first session.
        type: business process
        evidence: procedure: pre-group confidentiality conversation
    - residual severity: Considerable
    - residual likelihood: Low
    - residual risk: 2
    - status: open
    - owner: Clinical safety officer
    """)


def _issues(text: str) -> list[tuple[int, str]]:
    return [(i.line, i.message) for i in parse_hazard_log(text).issues]


def test_a_good_log_parses() -> None:
    log = parse_hazard_log(GOOD)
    assert log.ok and log.metadata == {"version": "0.1"}
    (hazard,) = log.hazards
    assert (hazard.id, hazard.title, hazard.line) == (
        "HAZ-001", "Someone outside the group hears the session", 5)
    assert hazard.fields["causes"] == "No private space; no headphones."
    assert hazard.initial is not None and hazard.initial.risk == 3
    assert hazard.residual is not None
    assert (hazard.residual.severity, hazard.residual.likelihood) == (
        Severity.CONSIDERABLE, Likelihood.LOW)
    assert [c.type for c in hazard.controls] == ["design", "business process"]
    assert log.test_ids() == {"tests/rules/test_x.py::test_checklist"}
    assert log.test_files() == {"tests/rules/test_x.py"}
    assert hazard.controls[1].evidence[0].ref == "pre-group confidentiality conversation"


def _edit(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new, 1)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (_edit("- harm: Distress and loss of trust for several members.\n", ""), 5,
         'missing field "harm"'),
        (_edit("- owner: Clinical safety officer\n", ""), 5, 'missing field "owner"'),
        (_edit("- initial risk: 3", "- initial risk: 4"), 14,
         "initial risk 4 disagrees with the matrix: Considerable x High = 3"),
        (_edit("- residual risk: 2", "- residual risk: 1"), 24,
         "residual risk 1 disagrees with the matrix: Considerable x Low = 2"),
        (_edit("- initial severity: Considerable", "- initial severity: Huge"), 12,
         'unknown severity "Huge"'),
        (_edit("- residual likelihood: Low", "- residual likelihood: Rarely"), 23,
         'unknown likelihood "Rarely"'),
        (_edit("- initial risk: 3", "- initial risk: three"), 14, "must be a whole number 1-5"),
        (_edit("- status: open", "- status: done"), 25, 'status "done" is not one of'),
        (_edit("- status: open", "- status: transferred"), 25, '"transferred to"'),
        (_edit("    type: design\n", ""), 16, 'a control is missing "type"'),
        (_edit("    type: design", "    type: hope"), 17, 'control type "hope"'),
        (_edit("    evidence: test: tests/rules/test_x.py::test_checklist\n", ""), 16,
         'a control is missing "evidence"'),
        (_edit("evidence: test: tests/rules/test_x.py::test_checklist",
               "evidence: test: test_checklist"), 18, "test evidence must be a node id"),
        (_edit("evidence: procedure: pre-group", "evidence: vibes: pre-group"), 21,
         'evidence must start "test:" or "procedure:"'),
        (_edit("- effect:", "- affect:"), 9, 'unknown field "affect"'),
        (_edit("- owner: Clinical", "- status: closed\n- owner: Clinical"), 26,
         'field "status" given twice (first on line 25)'),
        (_edit("## HAZ-001: Someone", "## Hazard one: Someone"), 5,
         'a hazard heading must read "## HAZ-NNN: title"'),
        (_edit("- effect: Group", "stray prose\n- effect: Group"), 9, 'expected "- field: value"'),
        ("# empty\n", 1, "no hazards found"),
    ],
)
def test_malformed_log_gives_line_numbered_errors(text: str, line: int, fragment: str) -> None:
    issues = _issues(text)
    assert any(n == line and fragment in m for n, m in issues), issues


def test_duplicate_ids_name_both_lines() -> None:
    second = GOOD.split("\n", 4)[4].replace("# Example", "")
    text = GOOD + "\n" + second
    issues = _issues(text)
    dup_line = GOOD.count("\n") + 2
    assert (dup_line, "duplicate hazard id HAZ-001 (first on line 5)") in issues


def test_high_residual_risk_needs_written_acceptance() -> None:
    text = _edit("- residual likelihood: Low\n- residual risk: 2",
                 "- residual likelihood: Very high\n- residual risk: 4")
    assert (24, "HAZ-001: residual risk 4 needs a written acceptance") in _issues(text)
    accepted = text.replace("- status: open",
                            "- acceptance: Agreed with the CSO: no further reduction is "
                            "practical.\n- status: open")
    log = parse_hazard_log(accepted)
    assert log.ok and log.hazards[0].needs_acceptance()


def test_evidence_naming_a_missing_test() -> None:
    log = parse_hazard_log(GOOD)
    issues = check_evidence(log, {"tests/rules/test_x.py::test_other"})
    assert [(i.line, i.message) for i in issues] == [
        (18, "HAZ-001: evidence names a test that does not exist: "
             "tests/rules/test_x.py::test_checklist")]
    # a parametrised test counts by its function name
    assert check_evidence(log, {"tests/rules/test_x.py::test_checklist[case-1]"}) == []
    assert [str(i) for i in check_log(GOOD, set())] == [
        "line 18: HAZ-001: evidence names a test that does not exist: "
        "tests/rules/test_x.py::test_checklist"]


def test_content_hash_changes_with_any_edit() -> None:
    one = content_hash(GOOD.encode())
    assert len(one) == 64 and one == content_hash(GOOD.encode())
    assert content_hash((GOOD + " ").encode()) != one
