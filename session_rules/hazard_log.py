"""Parse and check `hazard_log.md`: one `## HAZ-NNN: title` section per hazard.

See docs/hazard-log-format.md. Parsing never raises on content: every problem becomes a
line-numbered `LogIssue`, so the clinical safety officer sees all of them at once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Literal

from .risk import (
    ACCEPTANCE_REQUIRED_FROM,
    Likelihood,
    Severity,
    parse_likelihood,
    parse_severity,
    risk_rating,
)

Status = Literal["open", "transferred", "closed"]
STATUSES: tuple[Status, ...] = ("open", "transferred", "closed")
CONTROL_TYPES = ("design", "test", "training", "business process")

REQUIRED_FIELDS = (
    "description",
    "causes",
    "effect",
    "harm",
    "existing controls",
    "initial severity",
    "initial likelihood",
    "initial risk",
    "additional controls",
    "residual severity",
    "residual likelihood",
    "residual risk",
    "status",
    "owner",
)
OPTIONAL_FIELDS = ("acceptance", "transferred to", "updated")
_KNOWN_FIELDS = frozenset(REQUIRED_FIELDS + OPTIONAL_FIELDS)

_HEADING = re.compile(r"^##\s+(.*?)\s*$")
_HAZARD_HEADING = re.compile(r"^(HAZ-\d{3,}):\s*(\S.*)$")
_FIELD = re.compile(r"^- ([A-Za-z][A-Za-z ]*?):(?:\s+(.*?))?\s*$")
_CONTROL = re.compile(r"^  - control:(?:\s+(.*?))?\s*$")
_CONTROL_ATTR = re.compile(r"^    (type|evidence):(?:\s+(.*?))?\s*$")
_CONTINUATION = re.compile(r"^\s{2,}(\S.*?)\s*$")
_TEST_REF = re.compile(r"^tests/[\w./-]+\.py::[\w\[\]\-.:]+$")


@dataclass(frozen=True)
class LogIssue:
    """One problem in the log, at a 1-based line number."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class Evidence:
    """What shows a control works: a test node id or a named procedure."""

    kind: Literal["test", "procedure"]
    ref: str
    line: int


@dataclass(frozen=True)
class Control:
    text: str
    type: str
    evidence: tuple[Evidence, ...]
    line: int


@dataclass(frozen=True)
class Rating:
    severity: Severity
    likelihood: Likelihood
    risk: int


@dataclass(frozen=True)
class Hazard:
    """One hazard; ratings are None when the log's words could not be read."""

    id: str
    title: str
    line: int
    fields: dict[str, str]
    controls: tuple[Control, ...]
    initial: Rating | None
    residual: Rating | None

    @property
    def status(self) -> str:
        return self.fields.get("status", "").lower()

    @property
    def owner(self) -> str:
        return self.fields.get("owner", "")

    @property
    def acceptance(self) -> str:
        return self.fields.get("acceptance", "")

    def needs_acceptance(self) -> bool:
        """True when the residual risk is high enough to need a written acceptance."""
        return self.residual is not None and self.residual.risk >= ACCEPTANCE_REQUIRED_FROM

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view for the clinical safety officer's pages."""
        def rating(r: Rating | None) -> dict[str, object] | None:
            if r is None:
                return None
            return {"severity": r.severity.label, "likelihood": r.likelihood.label,
                    "risk": r.risk}
        return {
            "id": self.id,
            "title": self.title,
            "line": self.line,
            "fields": dict(self.fields),
            "initial": rating(self.initial),
            "residual": rating(self.residual),
            "controls": [
                {"text": c.text, "type": c.type,
                 "evidence": [{"kind": e.kind, "ref": e.ref} for e in c.evidence]}
                for c in self.controls
            ],
        }


@dataclass(frozen=True)
class HazardLog:
    hazards: tuple[Hazard, ...]
    metadata: dict[str, str]
    issues: tuple[LogIssue, ...]

    @property
    def ok(self) -> bool:
        return not self.issues

    def by_id(self) -> dict[str, Hazard]:
        return {h.id: h for h in self.hazards}

    def test_ids(self) -> set[str]:
        """Every test node id named as evidence."""
        return {e.ref for h in self.hazards for c in h.controls for e in c.evidence
                if e.kind == "test"}

    def test_files(self) -> set[str]:
        """The test files those ids live in (to collect only what is referenced)."""
        return {ref.split("::", 1)[0] for ref in self.test_ids()}


def content_hash(data: bytes) -> str:
    """The sha256 of the log file's bytes: what a sign-off is recorded against."""
    return hashlib.sha256(data).hexdigest()


@dataclass
class _Draft:
    id: str
    title: str
    line: int
    fields: dict[str, str] = field(default_factory=dict)
    field_lines: dict[str, int] = field(default_factory=dict)
    controls: list[dict[str, object]] = field(default_factory=list)


def parse_hazard_log(text: str) -> HazardLog:
    """Parse the log text; every problem is returned as a line-numbered issue."""
    issues: list[LogIssue] = []
    metadata: dict[str, str] = {}
    drafts: list[_Draft] = []
    current: _Draft | None = None
    # where a continuation line goes: ("field", name) or ("control", attr)
    continues: tuple[str, str] | None = None

    for no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continues = None
            continue
        heading = _HEADING.match(line)
        if heading:
            continues = None
            found = _HAZARD_HEADING.match(heading.group(1))
            if not found:
                issues.append(LogIssue(no, 'a hazard heading must read "## HAZ-NNN: title"'))
                current = None
                continue
            current = _Draft(found.group(1), found.group(2), no)
            drafts.append(current)
            continue
        if line.startswith("# "):
            continues = None
            continue
        if current is None:
            # before the first hazard: free text, plus "- key: value" metadata
            meta = _FIELD.match(line)
            if meta:
                metadata[meta.group(1).lower()] = meta.group(2) or ""
            continue
        top = _FIELD.match(line)
        if top:
            name = top.group(1).lower()
            value = top.group(2) or ""
            if name not in _KNOWN_FIELDS:
                issues.append(LogIssue(no, f'{current.id}: unknown field "{name}"'))
                continues = None
                continue
            if name in current.fields:
                issues.append(LogIssue(
                    no, f'{current.id}: field "{name}" given twice '
                    f"(first on line {current.field_lines[name]})"))
                continues = None
                continue
            current.fields[name] = value
            current.field_lines[name] = no
            continues = ("field", name)
            continue
        control = _CONTROL.match(line)
        if control:
            if continues is None or list(current.fields)[-1:] != ["additional controls"]:
                issues.append(LogIssue(
                    no, f'{current.id}: a control must be listed under "additional controls"'))
                continue
            current.controls.append(
                {"text": control.group(1) or "", "line": no, "type": None, "type_line": no,
                 "evidence": []})
            continues = ("control", "text")
            continue
        attr = _CONTROL_ATTR.match(line)
        if attr and current.controls and continues is not None and continues[0] == "control":
            ctl = current.controls[-1]
            key, value = attr.group(1), attr.group(2) or ""
            if key == "type":
                if ctl["type"] is not None:
                    issues.append(LogIssue(no, f"{current.id}: a control has two types"))
                ctl["type"], ctl["type_line"] = value, no
                continues = ("control", "type")
            else:
                evidence = ctl["evidence"]
                assert isinstance(evidence, list)
                evidence.append((value, no))
                continues = ("control", "evidence")
            continue
        more = _CONTINUATION.match(line)
        if more and continues is not None:
            _continue(current, continues, more.group(1))
            continue
        issues.append(LogIssue(no, f'{current.id}: expected "- field: value", got "{_clip(line)}"'))

    hazards: list[Hazard] = []
    first_seen: dict[str, int] = {}
    for draft in drafts:
        if draft.id in first_seen:
            issues.append(LogIssue(
                draft.line, f"duplicate hazard id {draft.id} (first on line {first_seen[draft.id]})"))
        else:
            first_seen[draft.id] = draft.line
        hazards.append(_finish(draft, issues))
    if not drafts:
        issues.append(LogIssue(1, 'no hazards found (each starts "## HAZ-NNN: title")'))
    issues.sort(key=lambda i: i.line)
    return HazardLog(tuple(hazards), metadata, tuple(issues))


def check_evidence(log: HazardLog, existing_test_ids: Collection[str]) -> list[LogIssue]:
    """Issues for evidence naming a test node id that is not in `existing_test_ids`."""
    known = set(existing_test_ids)
    # a parametrised test is collected as name[param]; naming the function is enough
    known |= {i.split("[", 1)[0] for i in existing_test_ids}
    issues = []
    for hazard in log.hazards:
        for ctl in hazard.controls:
            for ev in ctl.evidence:
                if ev.kind == "test" and ev.ref not in known:
                    issues.append(LogIssue(
                        ev.line, f"{hazard.id}: evidence names a test that does not exist: {ev.ref}"))
    return issues


def check_log(text: str, existing_test_ids: Collection[str]) -> list[LogIssue]:
    """Every issue in the log: parsing, ratings, acceptances and evidence."""
    log = parse_hazard_log(text)
    return sorted([*log.issues, *check_evidence(log, existing_test_ids)], key=lambda i: i.line)


def _continue(draft: _Draft, target: tuple[str, str], text: str) -> None:
    kind, name = target
    if kind == "field":
        draft.fields[name] = (draft.fields[name] + " " + text).strip()
        return
    ctl = draft.controls[-1]
    if name == "evidence":
        evidence = ctl["evidence"]
        assert isinstance(evidence, list)
        value, line = evidence[-1]
        evidence[-1] = ((value + " " + text).strip(), line)
    else:
        ctl[name] = (str(ctl[name] or "") + " " + text).strip()


def _clip(line: str, n: int = 40) -> str:
    line = line.strip()
    return line if len(line) <= n else line[: n - 1] + "…"


def _finish(draft: _Draft, issues: list[LogIssue]) -> Hazard:
    hid = draft.id
    for name in REQUIRED_FIELDS:
        if name not in draft.fields:
            issues.append(LogIssue(draft.line, f'{hid}: missing field "{name}"'))
        elif name != "additional controls" and not draft.fields[name].strip():
            issues.append(LogIssue(draft.field_lines[name], f'{hid}: field "{name}" is empty'))

    initial = _rating(draft, "initial", issues)
    residual = _rating(draft, "residual", issues)

    status = draft.fields.get("status", "").strip().lower()
    if "status" in draft.fields and status and status not in STATUSES:
        issues.append(LogIssue(
            draft.field_lines["status"],
            f'{hid}: status "{_clip(status)}" is not one of {", ".join(STATUSES)}'))
    if status == "transferred" and not draft.fields.get("transferred to", "").strip():
        issues.append(LogIssue(
            draft.field_lines["status"],
            f'{hid}: a transferred hazard must say who it is "transferred to"'))

    if residual is not None and residual.risk >= ACCEPTANCE_REQUIRED_FROM:
        if not draft.fields.get("acceptance", "").strip():
            issues.append(LogIssue(
                draft.field_lines["residual risk"],
                f"{hid}: residual risk {residual.risk} needs a written acceptance"))

    controls = []
    if "additional controls" in draft.fields and not draft.controls:
        issues.append(LogIssue(
            draft.field_lines["additional controls"], f"{hid}: no additional controls listed"))
    for raw in draft.controls:
        controls.append(_control(hid, raw, issues))
    return Hazard(hid, draft.title, draft.line, dict(draft.fields), tuple(controls),
                  initial, residual)


def _control(hid: str, raw: dict[str, object], issues: list[LogIssue]) -> Control:
    line = raw["line"]
    assert isinstance(line, int)
    text = str(raw["text"] or "")
    if not text:
        issues.append(LogIssue(line, f"{hid}: a control has no text"))
    ctype = raw["type"]
    type_line = raw["type_line"]
    assert isinstance(type_line, int)
    if ctype is None:
        issues.append(LogIssue(line, f'{hid}: a control is missing "type"'))
        ctype = ""
    elif str(ctype).lower() not in CONTROL_TYPES:
        issues.append(LogIssue(
            type_line, f'{hid}: control type "{_clip(str(ctype))}" is not one of '
            f'{", ".join(CONTROL_TYPES)}'))
    evidence: list[Evidence] = []
    raw_evidence = raw["evidence"]
    assert isinstance(raw_evidence, list)
    if not raw_evidence:
        issues.append(LogIssue(line, f'{hid}: a control is missing "evidence"'))
    for value, ev_line in raw_evidence:
        kind, _, ref = value.partition(":")
        kind, ref = kind.strip().lower(), ref.strip()
        if kind == "test":
            if not _TEST_REF.match(ref):
                issues.append(LogIssue(
                    ev_line, f'{hid}: test evidence must be a node id like '
                    f'"tests/path/test_x.py::test_name", got "{_clip(ref)}"'))
                continue
            evidence.append(Evidence("test", ref, ev_line))
        elif kind == "procedure":
            if not ref:
                issues.append(LogIssue(ev_line, f"{hid}: procedure evidence needs a name"))
                continue
            evidence.append(Evidence("procedure", ref, ev_line))
        else:
            issues.append(LogIssue(
                ev_line, f'{hid}: evidence must start "test:" or "procedure:"'))
    return Control(text, str(ctype).lower(), tuple(evidence), line)


def _rating(draft: _Draft, which: str, issues: list[LogIssue]) -> Rating | None:
    hid = draft.id
    sev_word = draft.fields.get(f"{which} severity")
    lik_word = draft.fields.get(f"{which} likelihood")
    risk_word = draft.fields.get(f"{which} risk")
    severity = likelihood = None
    if sev_word:
        severity = parse_severity(sev_word)
        if severity is None:
            issues.append(LogIssue(
                draft.field_lines[f"{which} severity"],
                f'{hid}: unknown severity "{_clip(sev_word)}" (expected one of '
                f'{", ".join(s.label for s in Severity)})'))
    if lik_word:
        likelihood = parse_likelihood(lik_word)
        if likelihood is None:
            issues.append(LogIssue(
                draft.field_lines[f"{which} likelihood"],
                f'{hid}: unknown likelihood "{_clip(lik_word)}" (expected one of '
                f'{", ".join(s.label for s in Likelihood)})'))
    risk: int | None = None
    if risk_word:
        if risk_word.strip().isdigit() and 1 <= int(risk_word) <= 5:
            risk = int(risk_word)
        else:
            issues.append(LogIssue(
                draft.field_lines[f"{which} risk"],
                f'{hid}: {which} risk must be a whole number 1-5, got "{_clip(risk_word)}"'))
    if severity is None or likelihood is None or risk is None:
        return None
    expected = risk_rating(severity, likelihood)
    if risk != expected:
        issues.append(LogIssue(
            draft.field_lines[f"{which} risk"],
            f"{hid}: {which} risk {risk} disagrees with the matrix: "
            f"{severity.label} x {likelihood.label} = {expected}"))
    return Rating(severity, likelihood, expected)
