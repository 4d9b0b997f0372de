"""The hazard log as the service sees it: the file's bytes, hash, parsed hazards and issues."""

from __future__ import annotations

import ast
import dataclasses
import threading
from dataclasses import dataclass
from pathlib import Path

from session_rules.hazard_log import (
    HazardLog,
    LogIssue,
    check_evidence,
    content_hash,
    parse_hazard_log,
)

from .config import SafetyConfig
from .errors import EvidenceRecordError, HazardLogUnreadable
from .evidence import EvidenceRecord, load_record

MAX_LOG_BYTES = 1024 * 1024


@dataclass(frozen=True)
class LogSnapshot:
    """One read of the log: `log.issues` holds every problem, evidence checks included."""

    name: str
    text: str
    hash: str
    log: HazardLog
    # what CI recorded of the suite, when a usable record is configured
    record: EvidenceRecord | None = None
    record_error: str | None = None

    def issues_json(self) -> list[dict[str, object]]:
        """Line-numbered problems, ready for JSON."""
        return [{"line": i.line, "message": i.message} for i in self.log.issues]


def read_log(path: Path) -> tuple[bytes, str]:
    """The file's bytes and text; unreadable, oversized or non-UTF-8 files raise."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_LOG_BYTES + 1)
    except OSError as exc:
        raise HazardLogUnreadable(
            f"cannot read the hazard log {path.name}: {exc.strerror or 'error'}"
        ) from None
    if len(data) > MAX_LOG_BYTES:
        raise HazardLogUnreadable(f"the hazard log {path.name} is over {MAX_LOG_BYTES} bytes")
    try:
        return data, data.decode("utf-8")
    except UnicodeDecodeError:
        raise HazardLogUnreadable(f"the hazard log {path.name} is not UTF-8 text") from None


_PARSE_LOCK = threading.Lock()


def static_test_ids(files: set[str], repo_root: Path) -> tuple[set[str], list[str]]:
    """Test node ids defined in `files` (read, never imported or run) and the missing files.

    Fast enough to run on every page view, and needs no pytest.
    """
    # one parse at a time: concurrent ast.parse calls from worker threads have raised
    # SystemError in CPython 3.11 under load
    with _PARSE_LOCK:
        return _static_test_ids(files, repo_root)


def _static_test_ids(files: set[str], repo_root: Path) -> tuple[set[str], list[str]]:
    ids: set[str] = set()
    missing: list[str] = []
    for name in sorted(files):
        path = repo_root / name
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=name)
        except (OSError, UnicodeDecodeError, SyntaxError):
            missing.append(name)
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (
                node.name.startswith("test")
            ):
                ids.add(f"{name}::{node.name}")
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and (
                        item.name.startswith("test")
                    ):
                        ids.add(f"{name}::{node.name}::{item.name}")
    return ids, missing


def snapshot(config: SafetyConfig) -> LogSnapshot:
    """Read, parse and check the configured log (blocking: call it in a worker thread)."""
    data, text = read_log(config.log_path)
    record, record_error = read_record(config)
    return check_text(
        text, data, name=config.log_path.name, repo_root=config.repo_root,
        record=record, record_error=record_error,
    )


def read_record(config: SafetyConfig) -> tuple[EvidenceRecord | None, str | None]:
    """The configured evidence record, or None and the reason it cannot be used."""
    if config.evidence_path is None:
        return None, "no evidence record is configured"
    if not config.evidence_path.exists():
        return None, (
            f"no evidence record at {config.evidence_path.name}: the package was built "
            "without running the test suite first"
        )
    try:
        return load_record(config.evidence_path), None
    except EvidenceRecordError as exc:
        return None, exc.message


def check_text(
    text: str,
    data: bytes,
    *,
    name: str,
    repo_root: Path | None,
    record: EvidenceRecord | None = None,
    record_error: str | None = None,
) -> LogSnapshot:
    """Parse `text` and check its ratings, acceptances and that its evidence tests exist:
    in `repo_root`'s test files (a checkout), else in the evidence record."""
    log = parse_hazard_log(text)
    if repo_root is not None:
        evidence = _check_in_tree(log, repo_root)
    else:
        evidence = _check_in_record(log, record, record_error)
    issues = sorted([*log.issues, *evidence], key=lambda i: i.line)
    return LogSnapshot(
        name, text, content_hash(data), dataclasses.replace(log, issues=tuple(issues)),
        record, record_error,
    )


def _check_in_tree(log: HazardLog, repo_root: Path) -> list[LogIssue]:
    existing, missing_files = static_test_ids(log.test_files(), repo_root)
    # a parametrised test may be cited with its parameters: its function is what must exist
    existing |= {ref for ref in log.test_ids() if ref.split("[", 1)[0] in existing}
    missing_set = set(missing_files)
    file_issues = [
        LogIssue(ev.line, f"{h.id}: evidence names a test file that does not exist: {ev.ref}")
        for h in log.hazards
        for c in h.controls
        for ev in c.evidence
        if ev.kind == "test" and ev.ref.split("::", 1)[0] in missing_set
    ]
    file_lines = {i.line for i in file_issues}
    return [*file_issues, *(i for i in check_evidence(log, existing) if i.line not in file_lines)]


def _check_in_record(
    log: HazardLog, record: EvidenceRecord | None, record_error: str | None
) -> list[LogIssue]:
    issues = []
    known = record.test_ids() if record is not None else set()
    for h in log.hazards:
        for c in h.controls:
            for ev in c.evidence:
                if ev.kind != "test" or ev.ref in known:
                    continue
                if record is None:
                    message = f"{h.id}: cannot confirm that {ev.ref} exists: {record_error}"
                else:
                    message = f"{h.id}: evidence names a test the evidence record does not hold: {ev.ref}"
                issues.append(LogIssue(ev.line, message))
    return issues


def parse_stored(text: str) -> HazardLog:
    """A previously signed-off text, parsed (for comparing versions)."""
    return parse_hazard_log(text)
