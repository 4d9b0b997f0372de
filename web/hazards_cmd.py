"""`confide hazards check | evidence | record`: the hazard log against the suite's evidence.

None of these runs a test. `check` finds the cited tests in a checkout's test files, or in
the evidence record an installed package carries; `record` is what CI runs after the suite
to turn its JUnit XML into that record; `evidence` prints the record per control.
"""

from __future__ import annotations

from pathlib import Path

from session_rules.hazard_log import content_hash

from .safety.config import RECORD_NAME, SHIPPED_DIR, SafetyConfig, load_config
from .safety.errors import EvidenceRecordError, HazardLogUnreadable
from .safety.evidence import control_status, from_junit, git_commit, write_record
from .safety.logfile import LogSnapshot, read_log, snapshot


def _config(path: Path | None, repo_root: Path | None, record: Path | None) -> SafetyConfig:
    base = load_config()
    return SafetyConfig(
        log_path=path if path is not None else (
            repo_root / "hazard_log.md" if repo_root is not None else base.log_path
        ),
        repo_root=repo_root if repo_root is not None else base.repo_root,
        evidence_path=record if record is not None else base.evidence_path,
        questions=base.questions,
    )


def _snapshot(config: SafetyConfig) -> LogSnapshot | None:
    try:
        return snapshot(config)
    except HazardLogUnreadable as exc:
        print(f"{config.log_path}: {exc.message}")
        return None


def _where(config: SafetyConfig, snap: LogSnapshot) -> str:
    if config.repo_root is not None:
        return f"cited tests found in {config.repo_root / 'tests'}"
    if snap.record is not None:
        return (f"cited tests found in the evidence record of {snap.record.commit[:12]} "
                f"({snap.record.created_at})")
    return "no evidence record"


def check(
    path: Path | None = None, *, repo_root: Path | None = None, record: Path | None = None
) -> int:
    """Check the log: parse, ratings, acceptances, and that every evidence test exists."""
    config = _config(path, repo_root, record)
    snap = _snapshot(config)
    if snap is None:
        return 2
    for issue in snap.log.issues:
        print(f"{snap.name}:{issue.line}: {issue.message}")
    print(_where(config, snap))
    if snap.log.issues:
        print(f"hazard log has {len(snap.log.issues)} problem(s)")
        return 1
    print(f"hazard log OK: {len(snap.log.hazards)} hazards, hash {snap.hash}")
    return 0


def evidence(
    path: Path | None = None, *, repo_root: Path | None = None, record: Path | None = None
) -> int:
    """Print each cited test's outcome in the evidence record; 1 when any is not a pass."""
    config = _config(path, repo_root, record)
    snap = _snapshot(config)
    if snap is None:
        return 2
    if snap.record is None:
        print(f"no usable evidence record: {snap.record_error}")
        return 2
    rec = snap.record
    print(f"evidence record: commit {rec.commit}, {rec.created_at}, hash {rec.record_hash}")
    if rec.hazard_log_hash != snap.hash:
        print("note: the record was made against another version of the hazard log")
    bad = 0
    cited = 0
    for control in control_status(snap.log, rec):
        for ev in control["evidence"]:
            status = ev["status"]
            word = status if status in ("pass", "procedure") else status.upper()
            if ev["kind"] == "test":
                cited += 1
                bad += ev["status"] != "pass"
            print(f"{control['hazard_id']}  {word}  {ev['ref']}")
    print(f"evidence: {cited - bad} of {cited} cited tests passed")
    return 1 if bad else 0


def record(
    junits: list[Path], *, out: Path | None = None, repo_root: Path, commit: str | None = None
) -> int:
    """Turn the suite's JUnit XML reports into the evidence record the service ships and
    shows."""
    target = out if out is not None else SHIPPED_DIR / RECORD_NAME
    reports: list[bytes] = []
    for junit in junits:
        try:
            reports.append(junit.read_bytes())
        except OSError as exc:
            print(f"{junit}: cannot read: {exc.strerror}")
            return 2
    try:
        log_hash: str | None = content_hash(read_log(repo_root / "hazard_log.md")[0])
    except HazardLogUnreadable:
        log_hash = None
    try:
        made = from_junit(
            reports, repo_root=repo_root, commit=commit or git_commit(repo_root),
            hazard_log_hash=log_hash,
        )
    except EvidenceRecordError as exc:
        print(f"{' '.join(map(str, junits))}: {exc.message}")
        return 2
    write_record(made, target)
    counts = ", ".join(f"{n} {o}" for o, n in made.summary().items())
    print(f"evidence record {target}: {len(made.results)} tests ({counts}), "
          f"hash {made.record_hash}")
    return 0
