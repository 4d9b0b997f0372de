"""`confide hazards check` / `evidence` on the real log and on small logs in a temp repo."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from session_rules.hazard_log import content_hash, parse_hazard_log
from web.hazards_cmd import check, evidence

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
    (tmp_path / "tests").mkdir()
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


@pytest.mark.parametrize(
    ("test_id", "code", "word"),
    [("tests/test_x.py::test_checklist", 0, "pass"),
     ("tests/test_x.py::test_cases", 0, "pass"),
     ("tests/test_x.py::test_broken", 1, "FAIL")],
)
def test_evidence_runs_the_tests_and_reports_per_control(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], test_id: str, code: int, word: str
) -> None:
    root = _repo(tmp_path, GOOD.replace("tests/rules/test_x.py::test_checklist", test_id))
    assert check(repo_root=root) == 0
    capsys.readouterr()
    assert evidence(repo_root=root) == code
    out = capsys.readouterr().out
    assert f"HAZ-001  {word}  {test_id}" in out
    assert "HAZ-001  procedure  pre-group confidentiality conversation" in out
