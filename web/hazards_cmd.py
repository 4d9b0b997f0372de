"""`confide hazards check` and `confide hazards evidence`: the hazard log against the suite."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from session_rules.hazard_log import (
    HazardLog,
    LogIssue,
    check_evidence,
    content_hash,
    parse_hazard_log,
)

LOG_NAME = "hazard_log.md"


def _pytest(args: list[str], repo_root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=repo_root, capture_output=True, text=True, check=False,
    )


def collect_test_ids(files: Iterable[str], *, repo_root: Path) -> set[str]:
    """Node ids pytest collects from `files` (only those, to stay fast)."""
    present = sorted(f for f in files if (repo_root / f).is_file())
    if not present:
        return set()
    done = _pytest(["--collect-only", "-q", *present], repo_root)
    return {line.strip() for line in done.stdout.splitlines() if "::" in line}


def _load(path: Path | None, repo_root: Path) -> tuple[Path, bytes, HazardLog] | None:
    log_path = path if path is not None else repo_root / LOG_NAME
    try:
        data = log_path.read_bytes()
        text = data.decode("utf-8")
    except OSError as exc:
        print(f"{log_path}: cannot read: {exc.strerror}")
        return None
    except UnicodeDecodeError:
        print(f"{log_path}: not UTF-8 text")
        return None
    return log_path, data, parse_hazard_log(text)


def check(path: Path | None = None, *, repo_root: Path) -> int:
    """Check the log: parse, ratings, acceptances, and that every evidence test exists."""
    loaded = _load(path, repo_root)
    if loaded is None:
        return 2
    log_path, data, log = loaded
    missing_files = [
        LogIssue(ev.line, f"{h.id}: evidence names a test file that does not exist: {ev.ref}")
        for h in log.hazards for c in h.controls for ev in c.evidence
        if ev.kind == "test" and not (repo_root / ev.ref.split("::", 1)[0]).is_file()
    ]
    missing_lines = {i.line for i in missing_files}
    existing = collect_test_ids(log.test_files(), repo_root=repo_root)
    evidence = [i for i in check_evidence(log, existing) if i.line not in missing_lines]
    issues = sorted([*log.issues, *missing_files, *evidence], key=lambda i: i.line)
    for issue in issues:
        print(f"{log_path.name}:{issue.line}: {issue.message}")
    if issues:
        print(f"hazard log has {len(issues)} problem(s)")
        return 1
    print(f"hazard log OK: {len(log.hazards)} hazards, hash {content_hash(data)}")
    return 0


def evidence(path: Path | None = None, *, repo_root: Path) -> int:
    """Run every test named as evidence and report pass/fail per control."""
    loaded = _load(path, repo_root)
    if loaded is None:
        return 2
    _, _, log = loaded
    ids = sorted(log.test_ids())
    failed: set[str] = set()
    if ids:
        present = [i for i in ids if (repo_root / i.split("::", 1)[0]).is_file()]
        # one missing id would make pytest run nothing at all: run only the ones that exist
        collected = collect_test_ids({i.split("::", 1)[0] for i in present}, repo_root=repo_root)
        known = collected | {c.split("[", 1)[0] for c in collected}
        present = [i for i in present if i in known]
        failed |= set(ids) - set(present)
        if present:
            done = _pytest(["-q", "-rA", *present], repo_root)
            outcome = _outcomes(done.stdout)
            for node in present:
                if outcome.get(node) != "PASSED":
                    failed.add(node)
    bad = 0
    for hazard in log.hazards:
        for control in hazard.controls:
            for ev in control.evidence:
                if ev.kind == "procedure":
                    print(f"{hazard.id}  procedure  {ev.ref}")
                    continue
                ok = ev.ref not in failed
                bad += not ok
                print(f"{hazard.id}  {'pass' if ok else 'FAIL'}  {ev.ref}")
    print(f"evidence: {len(ids) - len(failed & set(ids))} of {len(ids)} tests pass")
    return 1 if bad else 0


def _outcomes(stdout: str) -> dict[str, str]:
    # "-rA" prints one "PASSED node" / "FAILED node - reason" line per test
    out: dict[str, str] = {}
    for line in stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word in ("PASSED", "FAILED", "ERROR", "SKIPPED", "XFAIL", "XPASS") and "::" in rest:
            node = rest.split(" - ", 1)[0].strip()
            out[node] = word
            # a parametrised test passes as a whole only if every case passed
            base = node.split("[", 1)[0]
            if base != node and out.get(base, "PASSED") == "PASSED":
                out[base] = word
    return out
