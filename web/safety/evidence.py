"""Evidence records: what the test suite showed, made where the tests run, read by the service.

CI (`scripts/test.sh`) turns pytest's JUnit XML into a record: the commit, the date, each
test's outcome, the hash of the hazard log it ran against, and a hash over all of it. The
record ships inside the package (or is named by CONFIDE_EVIDENCE_RECORD); the service shows
it per control and uses it to confirm that every test the log cites exists. The service
itself never runs a test: a production server is no place for a browser test suite.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from session_rules.hazard_log import HazardLog

from .errors import EvidenceRecordError

RECORD_VERSION = 1
# worst first: a test with several reports (call failed, teardown errored) keeps the worst
OUTCOMES = ("error", "failed", "skipped", "passed")
MAX_RECORD_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class EvidenceRecord:
    """One run of the suite: test node id → passed, failed, error or skipped."""

    commit: str
    created_at: str  # ISO 8601, UTC
    hazard_log_hash: str | None
    junit_sha256: str
    results: dict[str, str] = field(default_factory=dict)
    version: int = RECORD_VERSION

    def body(self) -> dict[str, Any]:
        """Everything the record hash covers."""
        return {
            "version": self.version,
            "commit": self.commit,
            "created_at": self.created_at,
            "hazard_log_hash": self.hazard_log_hash,
            "junit_sha256": self.junit_sha256,
            "results": dict(sorted(self.results.items())),
        }

    @property
    def record_hash(self) -> str:
        return _digest(self.body())

    def summary(self) -> dict[str, int]:
        """How many tests had each outcome."""
        counts = Counter(self.results.values())
        return {o: counts.get(o, 0) for o in reversed(OUTCOMES)}

    def outcome(self, ref: str) -> str | None:
        """A cited test's outcome; a parametrised test cited by its function takes the
        worst of its cases. None when the record does not hold it."""
        found = self.results.get(ref)
        if found is not None:
            return found
        prefix = ref + "["
        cases = [o for node, o in self.results.items() if node.startswith(prefix)]
        if not cases:
            return None
        return min(cases, key=OUTCOMES.index)

    def test_ids(self) -> set[str]:
        """Every node id in the record, and the function ids of parametrised ones."""
        return set(self.results) | {node.split("[", 1)[0] for node in self.results}

    def to_json(self) -> dict[str, Any]:
        return {**self.body(), "record_hash": self.record_hash}

    def describe(self) -> dict[str, Any]:
        """What the CSO's page shows of the record (not the per-test list)."""
        return {
            "commit": self.commit,
            "created_at": self.created_at,
            "hazard_log_hash": self.hazard_log_hash,
            "record_hash": self.record_hash,
            "summary": self.summary(),
        }


def _digest(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _node_id(case: ET.Element, repo_root: Path) -> str | None:
    name = case.get("name") or ""
    classname = case.get("classname") or ""
    if not name:
        return None
    file_attr = case.get("file")
    parts = classname.split(".") if classname else []
    # the longest dotted prefix that is a file under the root is the module; the rest are
    # classes (pytest's xunit2 JUnit has no file attribute)
    for cut in range(len(parts), 0, -1):
        rel = "/".join(parts[:cut]) + ".py"
        if (file_attr and file_attr == rel) or (repo_root / rel).is_file():
            return "::".join([rel, *parts[cut:], name])
    if file_attr:
        return f"{file_attr}::{name}"
    return None


def _outcome(case: ET.Element) -> str:
    tags = {child.tag for child in case}
    if "error" in tags:
        return "error"
    if "failure" in tags:
        return "failed"
    if "skipped" in tags:
        return "skipped"
    return "passed"


def results_from_junit(xml: bytes, repo_root: Path) -> dict[str, str]:
    """Node id → outcome for every test case in a JUnit XML report."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise EvidenceRecordError(f"the JUnit report is not valid XML: {exc}") from None
    results: dict[str, str] = {}
    for case in root.iter("testcase"):
        node = _node_id(case, repo_root)
        if node is None:
            continue
        outcome = _outcome(case)
        before = results.get(node)
        if before is None or OUTCOMES.index(outcome) < OUTCOMES.index(before):
            results[node] = outcome
    return results


def git_commit(repo_root: Path) -> str:
    """The checkout's commit, marked "-dirty" when the tree has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(repo_root), "rev-parse", "HEAD"],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo_root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def from_junit(
    reports: Sequence[bytes],
    *,
    repo_root: Path,
    commit: str,
    hazard_log_hash: str | None,
    created_at: datetime | None = None,
) -> EvidenceRecord:
    """A record of one suite run from its JUnit XML reports (one per part of the run: the
    suite runs its real-time tests apart from the others). A test reported twice keeps its
    worse outcome."""
    when = (created_at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    digest = hashlib.sha256()
    results: dict[str, str] = {}
    for xml in reports:
        digest.update(hashlib.sha256(xml).digest())
        for node, outcome in results_from_junit(xml, repo_root).items():
            before = results.get(node)
            if before is None or OUTCOMES.index(outcome) < OUTCOMES.index(before):
                results[node] = outcome
    return EvidenceRecord(
        commit=commit,
        created_at=when.isoformat(),
        hazard_log_hash=hazard_log_hash,
        # one report: its own hash, as it always was; several: a hash of their hashes
        junit_sha256=(
            hashlib.sha256(reports[0]).hexdigest() if len(reports) == 1 else digest.hexdigest()
        ),
        results=results,
    )


def write_record(record: EvidenceRecord, path: Path) -> None:
    """Write the record atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record.to_json(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def load_record(path: Path) -> EvidenceRecord:
    """Read a record and check its hash; EvidenceRecordError says what is wrong."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_RECORD_BYTES + 1)
    except OSError as exc:
        raise EvidenceRecordError(
            f"cannot read the evidence record {path.name}: {exc.strerror or 'error'}"
        ) from None
    if len(raw) > MAX_RECORD_BYTES:
        raise EvidenceRecordError(f"the evidence record {path.name} is too large")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise EvidenceRecordError(f"the evidence record {path.name} is not JSON") from None
    if not isinstance(data, dict) or data.get("version") != RECORD_VERSION:
        raise EvidenceRecordError(f"the evidence record {path.name} has an unknown format")
    results = data.get("results")
    if not isinstance(results, dict) or not all(
        isinstance(k, str) and v in OUTCOMES for k, v in results.items()
    ):
        raise EvidenceRecordError(f"the evidence record {path.name} has malformed results")
    try:
        record = EvidenceRecord(
            commit=str(data["commit"]),
            created_at=str(data["created_at"]),
            hazard_log_hash=data.get("hazard_log_hash"),
            junit_sha256=str(data["junit_sha256"]),
            results=dict(results),
        )
    except KeyError as exc:
        raise EvidenceRecordError(
            f"the evidence record {path.name} lacks {exc.args[0]!r}"
        ) from None
    if record.record_hash != data.get("record_hash"):
        # a hand-edited or damaged record must not pass for what CI produced
        raise EvidenceRecordError(
            f"the evidence record {path.name} does not match its hash: it was changed"
        )
    return record


def control_status(log: HazardLog, record: EvidenceRecord | None) -> list[dict[str, Any]]:
    """Each control with its evidence's status in the record: pass, fail, skipped, missing
    (not in the record) or procedure."""
    out: list[dict[str, Any]] = []
    for hazard in log.hazards:
        for index, control in enumerate(hazard.controls):
            evidence = []
            for ev in control.evidence:
                if ev.kind == "procedure":
                    status = "procedure"
                else:
                    status = _status(record.outcome(ev.ref) if record is not None else None)
                evidence.append({"kind": ev.kind, "ref": ev.ref, "status": status})
            out.append(
                {
                    "hazard_id": hazard.id,
                    "control_index": index,
                    "control": control.text,
                    "type": control.type,
                    "status": _overall(e["status"] for e in evidence),
                    "evidence": evidence,
                }
            )
    return out


def _status(outcome: str | None) -> str:
    if outcome is None:
        return "missing"
    return {"passed": "pass", "skipped": "skipped"}.get(outcome, "fail")


def _overall(statuses: Iterable[str]) -> str:
    found = set(statuses)
    for status in ("fail", "missing", "skipped", "pass"):
        if status in found:
            return status
    return "procedure"
