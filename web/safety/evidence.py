"""Run `confide hazards evidence` in a subprocess and read its per-control verdicts."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from dataclasses import dataclass
from typing import Any

from session_rules.hazard_log import HazardLog

from .config import SafetyConfig

# "HAZ-001  pass  tests/rules/test_x.py::test_y" (see web.hazards_cmd.evidence)
_LINE = re.compile(r"^(HAZ-\d{3,})\s{2}(pass|FAIL|procedure)\s{2}(\S.*?)\s*$")
_SUMMARY = re.compile(r"^evidence: .*$", re.MULTILINE)


@dataclass(frozen=True)
class EvidenceOutcome:
    """A finished run: per test node id "pass" or "fail", and its state."""

    state: str  # passed, failed, error
    results: dict[str, str]
    summary: str


def parse_output(stdout: str, returncode: int) -> EvidenceOutcome:
    """The verdicts printed by `confide hazards evidence`."""
    results: dict[str, str] = {}
    for line in stdout.splitlines():
        found = _LINE.match(line)
        if found and found.group(2) != "procedure":
            ref = found.group(3)
            # a test cited twice fails if any line says so
            if results.get(ref) != "fail":
                results[ref] = "pass" if found.group(2) == "pass" else "fail"
    summary_match = _SUMMARY.search(stdout)
    summary = summary_match.group(0) if summary_match else ""
    if returncode not in (0, 1) or (not results and not summary):
        return EvidenceOutcome("error", results, summary or f"evidence run exited {returncode}")
    state = "passed" if returncode == 0 and "fail" not in results.values() else "failed"
    return EvidenceOutcome(state, results, summary)


async def run_evidence(config: SafetyConfig) -> EvidenceOutcome:
    """Run the tests the log cites, in a child process (the event loop only waits)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "web.cli",
        "hazards",
        "evidence",
        str(config.log_path),
        cwd=str(config.repo_root),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        stdout, _ = await asyncio.wait_for(proc.communicate(), config.evidence_timeout_s)
    except (TimeoutError, asyncio.CancelledError) as exc:
        # never leave a test run behind a stopped server or a timed-out request
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        return EvidenceOutcome(
            "error", {}, f"evidence run stopped after {config.evidence_timeout_s:.0f} s"
        )
    return parse_output(stdout.decode("utf-8", "replace"), proc.returncode or 0)


def control_status(log: HazardLog, results: dict[str, str]) -> list[dict[str, Any]]:
    """Each control of each hazard with its evidence's status: pass, fail, not_run, procedure."""
    out: list[dict[str, Any]] = []
    for hazard in log.hazards:
        for index, control in enumerate(hazard.controls):
            evidence = []
            for ev in control.evidence:
                if ev.kind == "procedure":
                    status = "procedure"
                else:
                    status = results.get(ev.ref, "not_run")
                evidence.append({"kind": ev.kind, "ref": ev.ref, "status": status})
            statuses = {e["status"] for e in evidence}
            overall = (
                "fail"
                if "fail" in statuses
                else "not_run"
                if "not_run" in statuses
                else "pass"
                if "pass" in statuses
                else "procedure"
            )
            out.append(
                {
                    "hazard_id": hazard.id,
                    "control_index": index,
                    "control": control.text,
                    "type": control.type,
                    "status": overall,
                    "evidence": evidence,
                }
            )
    return out
