"""`confide hazards check | evidence | record` on the real log and on small logs in a temp
repo; none of them runs a test."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from session_rules.hazard_log import content_hash, parse_hazard_log
from web.hazards_cmd import check, evidence, record
from web.safety.errors import EvidenceRecordError
from web.safety.evidence import load_record
from web.safety.logfile import check_text

from .test_hazard_log import GOOD

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_real_hazard_log_passes_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert check(repo_root=REPO_ROOT) == 0
    out = capsys.readouterr().out
    digest = content_hash((REPO_ROOT / "hazard_log.md").read_bytes())
    log = parse_hazard_log((REPO_ROOT / "hazard_log.md").read_text(encoding="utf-8"))
    assert f"hazard log OK: {len(log.hazards)} hazards, hash {digest}" in out
    assert len(log.hazards) >= 11
    # every hazard names test evidence, and every residual risk is below 4
    for hazard in log.hazards:
        assert any(e.kind == "test" for c in hazard.controls for e in c.evidence), hazard.id
        assert hazard.residual is not None and hazard.residual.risk < 4


def _repo(tmp_path: Path, log: str) -> Path:
    (tmp_path / "tests").mkdir(parents=True)
    (tmp_path / "tests" / "test_x.py").write_text(textwrap.dedent("""\
        import pytest

        def test_checklist():
            assert 1 + 1 == 2

        def test_broken():
            assert 1 + 1 == 3

        @pytest.mark.parametrize("n", [1, 2])
        def test_cases(n):
            assert n < 3
        """))
    (tmp_path / "hazard_log.md").write_text(log)
    return tmp_path


def test_check_reports_missing_test_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = GOOD.replace("tests/rules/test_x.py::test_checklist", "tests/test_x.py::test_gone")
    root = _repo(tmp_path, log)
    assert check(repo_root=root) == 1
    out = capsys.readouterr().out
    assert ("hazard_log.md:18: HAZ-001: evidence names a test that does not exist: "
            "tests/test_x.py::test_gone") in out


def test_check_reports_missing_test_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _repo(tmp_path, GOOD)  # names tests/rules/test_x.py, which is not there
    assert check(root / "hazard_log.md", repo_root=root) == 1
    assert "test file that does not exist" in capsys.readouterr().out


def test_check_of_unreadable_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check(tmp_path / "absent.md", repo_root=tmp_path) == 2
    assert "cannot read" in capsys.readouterr().out


def _junit(root: Path, tmp_path: Path) -> Path:
    """What CI does: run the suite (here the temp repo's tests) with a JUnit XML report."""
    junit = tmp_path / "junit.xml"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         f"--junitxml={junit}", "tests/test_x.py"],
        cwd=root, capture_output=True, text=True, check=False, timeout=120,
    )
    assert done.returncode == 1, done.stdout  # test_broken fails, as it should
    return junit


@pytest.mark.parametrize(
    ("test_id", "code", "word"),
    [("tests/test_x.py::test_checklist", 0, "pass"),
     ("tests/test_x.py::test_cases", 0, "pass"),
     ("tests/test_x.py::test_broken", 1, "FAIL")],
)
def test_evidence_reports_the_record_per_control(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], test_id: str, code: int, word: str
) -> None:
    root = _repo(tmp_path / "repo", GOOD.replace("tests/rules/test_x.py::test_checklist", test_id))
    assert check(repo_root=root) == 0
    record_path = tmp_path / "record.json"
    assert record([_junit(root, tmp_path)], out=record_path, repo_root=root, commit="abc123") == 0
    capsys.readouterr()
    assert evidence(repo_root=root, record=record_path) == code
    out = capsys.readouterr().out
    assert "evidence record: commit abc123" in out
    assert f"HAZ-001  {word}  {test_id}" in out
    assert "HAZ-001  procedure  pre-group confidentiality conversation" in out


def test_the_record_holds_each_outcome_and_refuses_tampering(tmp_path: Path) -> None:
    root = _repo(tmp_path / "repo", GOOD)
    record_path = tmp_path / "record.json"
    assert record([_junit(root, tmp_path)], out=record_path, repo_root=root, commit="c1") == 0
    made = load_record(record_path)
    assert made.results == {
        "tests/test_x.py::test_checklist": "passed",
        "tests/test_x.py::test_broken": "failed",
        "tests/test_x.py::test_cases[1]": "passed",
        "tests/test_x.py::test_cases[2]": "passed",
    }
    assert made.hazard_log_hash == content_hash((root / "hazard_log.md").read_bytes())
    assert made.outcome("tests/test_x.py::test_cases") == "passed"
    assert made.outcome("tests/test_x.py::test_gone") is None
    data = json.loads(record_path.read_text())
    data["results"]["tests/test_x.py::test_broken"] = "passed"
    record_path.write_text(json.dumps(data))
    with pytest.raises(EvidenceRecordError, match="does not match its hash"):
        load_record(record_path)


def test_without_a_tests_tree_the_cited_tests_are_found_in_the_record(tmp_path: Path) -> None:
    # an installed package: no tests/ beside the code, only the record CI made
    root = _repo(tmp_path / "repo", GOOD.replace(
        "tests/rules/test_x.py::test_checklist", "tests/test_x.py::test_checklist"))
    record_path = tmp_path / "record.json"
    assert record([_junit(root, tmp_path)], out=record_path, repo_root=root, commit="c1") == 0
    text = (root / "hazard_log.md").read_text()
    made = load_record(record_path)
    snap = check_text(text, text.encode(), name="hazard_log.md", repo_root=None, record=made)
    assert snap.log.ok, snap.issues_json()
    gone = text.replace("tests/test_x.py::test_checklist", "tests/test_x.py::test_gone")
    snap = check_text(gone, gone.encode(), name="hazard_log.md", repo_root=None, record=made)
    assert [i["message"] for i in snap.issues_json()] == [
        "HAZ-001: evidence names a test the evidence record does not hold: "
        "tests/test_x.py::test_gone"]
    snap = check_text(text, text.encode(), name="hazard_log.md", repo_root=None, record=None,
                      record_error="no evidence record")
    assert [i["message"] for i in snap.issues_json()] == [
        "HAZ-001: cannot confirm that tests/test_x.py::test_checklist exists: "
        "no evidence record"]
