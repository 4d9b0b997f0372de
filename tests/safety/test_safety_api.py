"""The CSO's view of the hazard log, sign-off, workshop, incidents and evidence over HTTP."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from session_rules.hazard_log import content_hash
from web.cli import main as confide
from web.control import hooks

from .conftest import MakeApi, SafetyApi

REPO_ROOT = Path(__file__).resolve().parents[2]

HAZARD = """## {hid}: {title}
- description: d
- causes: c
- effect: e
- harm: h
- existing controls: x
- initial severity: Considerable
- initial likelihood: High
- initial risk: {initial_risk}
- additional controls:
  - control: A control
    type: design
    evidence: test: {evidence}
  - control: A procedure
    type: business process
    evidence: procedure: pre-group confidentiality conversation
- residual severity: {residual_severity}
- residual likelihood: Low
- residual risk: {residual_risk}
- status: {status}
- owner: Clinical safety officer
"""
PASSING_TEST = "tests/rules/test_risk.py::test_labels_read_as_in_the_log"
MISSING_TEST = "tests/rules/test_risk.py::test_that_was_never_written"


def hazard(hid: str, title: str = "A hazard", **kw: Any) -> str:
    values = {
        "initial_risk": 3,
        "evidence": PASSING_TEST,
        "residual_severity": "Considerable",
        "residual_risk": 2,
        "status": "open",
    }
    values.update(kw)
    return HAZARD.format(hid=hid, title=title, **values)


def small_log(*hazards: str) -> str:
    return "# Test hazard log\n\n- version: 1\n\n" + "\n".join(hazards)


def line_of(text: str, needle: str, nth: int = 0) -> int:
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[nth]


async def test_hazard_log_is_shown_sorted_by_risk_and_filtered_by_status(
    make_api: MakeApi,
) -> None:
    text = small_log(
        hazard("HAZ-001", "Low", residual_risk=1, residual_severity="Minor"),
        hazard(
            "HAZ-002", "Highest", residual_severity="Major", residual_risk=3, status="transferred"
        ).replace("- owner:", "- transferred to: the deploying trust\n- owner:"),
        hazard("HAZ-003", "Middle", status="closed"),
    )
    api = await make_api(log_text=text)
    cso = await api.user("cso.s", "cso")
    status, body = await cso.call("GET", "/safety/hazard-log")
    assert status == 200 and body["ok"] and body["issues"] == []
    assert [h["id"] for h in body["hazards"]] == ["HAZ-002", "HAZ-003", "HAZ-001"]
    assert body["hash"] == content_hash(text.encode()) and body["signed_off"] is False
    assert body["hazards"][0]["residual"] == {"severity": "Major", "likelihood": "Low", "risk": 3}
    status, body = await cso.call("GET", "/safety/hazard-log?sort=id")
    assert [h["id"] for h in body["hazards"]] == ["HAZ-001", "HAZ-002", "HAZ-003"]
    status, body = await cso.call("GET", "/safety/hazard-log?status=closed")
    assert [h["id"] for h in body["hazards"]] == ["HAZ-003"]
    for query in ("status=maybe", "sort=colour"):
        status, body = await cso.call("GET", f"/safety/hazard-log?{query}")
        assert status == 400 and body["error"]["code"] == "invalid_query"
    clinician = await api.user("dr.s", "clinician")
    status, body = await clinician.call("GET", "/safety/hazard-log")
    assert status == 403


async def test_the_repository_log_is_valid_through_the_api(api: SafetyApi) -> None:
    cso = await api.user("cso.r", "cso")
    status, body = await cso.call("GET", "/safety/hazard-log")
    assert status == 200
    assert body["issues"] == [] and body["ok"], body["issues"]
    assert len(body["hazards"]) >= 11


async def test_malformed_log_gives_line_numbered_errors_via_api_and_cli(
    make_api: MakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    text = small_log(
        hazard("HAZ-001", initial_risk=5, evidence=MISSING_TEST),
        "## HAZ-001: The same id again\n- description: only this\n",
    )
    api = await make_api(log_text=text)
    cso = await api.user("cso.m", "cso")
    status, body = await cso.call("GET", "/safety/hazard-log")
    assert status == 200 and body["ok"] is False
    issues = {(i["line"], i["message"]) for i in body["issues"]}
    off_matrix = line_of(text, "- initial risk: 5")
    missing = line_of(text, MISSING_TEST)
    duplicate = line_of(text, "## HAZ-001", 1)
    expected = {
        (off_matrix, "HAZ-001: initial risk 5 disagrees with the matrix: Considerable x High = 3"),
        (missing, f"HAZ-001: evidence names a test that does not exist: {MISSING_TEST}"),
        (duplicate, f"duplicate hazard id HAZ-001 (first on line {line_of(text, '## HAZ-001')})"),
        (duplicate, 'HAZ-001: missing field "causes"'),
        (duplicate, 'HAZ-001: missing field "residual risk"'),
    }
    assert expected <= issues, issues
    # the CLI names the same lines
    assert confide(["hazards", "check", str(api.log_path)]) == 1
    printed = capsys.readouterr().out
    for line, message in expected:
        assert f"hazard_log.md:{line}: {message}" in printed
    # a log that does not check cannot be signed off, and keeps the gate shut
    status, body = await cso.call(
        "POST",
        "/safety/sign-offs",
        {"content_hash": content_hash(text.encode()), "comment": "looks fine"},
    )
    assert status == 409 and body["error"]["code"] == "log_invalid"
    assert {(i["line"], i["message"]) for i in body["error"]["issues"]} == issues
    status, body = await cso.call("GET", "/safety/status")
    assert body["open"] is False and "log_invalid" in {u["code"] for u in body["unmet"]}
    status, body = await cso.call("GET", "/safety/sign-offs")
    assert body["sign_offs"] == []


async def test_residual_risk_4_needs_a_written_acceptance(make_api: MakeApi) -> None:
    text = small_log(hazard("HAZ-001", residual_severity="Catastrophic", residual_risk=4))
    api = await make_api(log_text=text)
    cso = await api.user("cso.a", "cso")
    status, body = await cso.call("GET", "/safety/hazard-log")
    assert body["hazards"][0]["needs_acceptance"] is True
    assert [i["line"] for i in body["issues"]] == [line_of(text, "- residual risk: 4")]
    status, body = await cso.call(
        "POST", "/safety/sign-offs", {"content_hash": content_hash(text.encode()), "comment": "ok"}
    )
    assert status == 409 and body["error"]["code"] == "log_invalid"
    accepted = text.replace(
        "- status:",
        "- acceptance: Further reduction is impractical "
        "because only the deploying service can act.\n- status:",
    )
    api.write_log(accepted)
    status, body = await cso.call(
        "POST",
        "/safety/sign-offs",
        {"content_hash": content_hash(accepted.encode()), "comment": "accepted risk reviewed"},
    )
    assert status == 201, body


async def test_only_a_cso_can_sign_off(api: SafetyApi) -> None:
    current = content_hash(api.read_log().encode())
    for name, role in (("dr.n", "clinician"), ("admin.n", "admin")):
        who = await api.user(name, role)
        status, body = await who.call(
            "POST", "/safety/sign-offs", {"content_hash": current, "comment": "me too"}
        )
        assert status == 403 and body["error"]["code"] == "forbidden", body
    status, body = await api.call(
        "POST", "/api/v1/safety/sign-offs", None, {"content_hash": current, "comment": "x"}
    )
    assert status == 401
    cso = await api.user("cso.n", "cso")
    status, body = await cso.call("GET", "/safety/sign-offs")
    assert body["sign_offs"] == []


async def test_sign_off_records_who_when_hash_and_comment_and_an_edit_reopens_it(
    api: SafetyApi,
) -> None:
    cso = await api.user("cso.k", "cso")
    text = api.read_log()
    current = content_hash(text.encode())
    status, body = await cso.call(
        "POST", "/safety/sign-offs", {"content_hash": "0" * 64, "comment": "stale"}
    )
    assert status == 409 and body["error"]["code"] == "log_changed"
    status, body = await cso.call(
        "POST", "/safety/sign-offs", {"content_hash": current, "comment": "Reviewed v0.1.0"}
    )
    assert status == 201, body
    record = body["sign_off"]
    assert (record["content_hash"], record["signed_by_username"], record["comment"]) == (
        current,
        "cso.k",
        "Reviewed v0.1.0",
    )
    assert record["signed_at"] == api.store.clock().isoformat()
    status, body = await cso.call(
        "POST", "/safety/sign-offs", {"content_hash": current, "comment": "again"}
    )
    assert status == 409 and body["error"]["code"] == "already_signed_off"
    status, body = await cso.call("GET", "/safety/hazard-log/changes")
    assert body["unchanged"] is True and body["changed"] == [] and body["added"] == []

    # edit: one rating changes, one hazard goes, one arrives
    edited = text.replace(
        "- initial likelihood: High\n- initial risk: 3",
        "- initial likelihood: Very high\n- initial risk: 4",
        1,
    )
    start = edited.index("## HAZ-005:")
    end = edited.index("## HAZ-006:")
    edited = edited[:start] + edited[end:] + "\n" + hazard("HAZ-099", "A new hazard")
    api.write_log(edited)
    status, body = await cso.call("GET", "/safety/hazard-log")
    assert body["ok"], body["issues"]
    assert body["signed_off"] is False
    status, body = await cso.call("GET", "/safety/hazard-log/changes")
    assert body["unchanged"] is False and body["base"]["content_hash"] == current
    assert body["added"] == [{"id": "HAZ-099", "title": "A new hazard"}]
    assert [h["id"] for h in body["removed"]] == ["HAZ-005"]
    (changed,) = body["changed"]
    assert changed["id"] == "HAZ-001"
    assert {(f["field"], f["before"], f["after"]) for f in changed["fields"]} == {
        ("initial likelihood", "High", "Very high"),
        ("initial risk", "3", "4"),
    }
    status, body = await cso.call("GET", "/safety/status")
    assert "log_not_signed_off" in {u["code"] for u in body["unmet"]}


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
async def test_two_sign_offs_at_once_leave_one_consistent_record(
    make_api: MakeApi, backend: str, request: pytest.FixtureRequest
) -> None:
    url = ""
    if backend == "postgresql":
        url = str(request.getfixturevalue("postgres_server").create_database())
    api = await make_api(url)
    first, second = await api.user("cso.one", "cso"), await api.user("cso.two", "cso")
    current = content_hash(api.read_log().encode())
    results = await asyncio.gather(
        *(
            who.call("POST", "/safety/sign-offs", {"content_hash": current, "comment": name})
            for who, name in ((first, "one"), (second, "two"))
        )
    )
    statuses = sorted(status for status, _ in results)
    assert statuses == [201, 409], results
    won = next(body for status, body in results if status == 201)["sign_off"]
    lost = next(body for status, body in results if status == 409)
    assert lost["error"]["code"] == "already_signed_off"
    status, body = await first.call("GET", "/safety/sign-offs")
    assert body["sign_offs"] == [won]
    status, body = await first.call("GET", "/safety/hazard-log")
    assert body["signed_off"] is True


async def test_workshop_checklist_answers_with_who_and_when(api: SafetyApi) -> None:
    cso = await api.user("cso.w", "cso")
    admin = await api.user("admin.w", "admin")
    clinician = await api.user("dr.w", "clinician")
    status, body = await cso.call("GET", "/safety/workshop")
    assert status == 200 and body["complete"] is False
    ids = [q["id"] for q in body["questions"]]
    assert "crisis_protocol" in ids and all(q["answer"] is None for q in body["questions"])
    status, body = await cso.call(
        "PUT",
        "/safety/workshop/crisis_protocol",
        {"answer": "Named duty clinician; call list checked."},
    )
    assert status == 200
    assert body["answer"]["answered_by_username"] == "cso.w"
    assert body["answer"]["answered_at"] == api.store.clock().isoformat()
    status, body = await admin.call("PUT", "/safety/workshop/consent", {"answer": "At intake."})
    assert status == 200
    status, body = await clinician.call("PUT", "/safety/workshop/consent", {"answer": "no"})
    assert status == 403
    status, body = await cso.call("PUT", "/safety/workshop/made_up", {"answer": "x"})
    assert status == 404 and body["error"]["code"] == "unknown_question"
    status, body = await cso.call("PUT", "/safety/workshop/consent", {"answer": "  "})
    assert status == 400 and body["error"]["code"] == "invalid_answer"
    status, body = await cso.call("GET", "/safety/workshop")
    answered = {q["id"]: q["answer"] for q in body["questions"] if q["answer"]}
    assert set(answered) == {"crisis_protocol", "consent"}
    assert answered["consent"]["answer"] == "At intake."
    for qid in ids:
        await cso.call("PUT", f"/safety/workshop/{qid}", {"answer": "Agreed at the workshop."})
    status, body = await cso.call("GET", "/safety/workshop")
    assert body["complete"] is True


async def test_incidents_recorded_by_the_hook_are_listed_filtered_and_exported(
    api: SafetyApi,
) -> None:
    await hooks.record_incident(
        api.app, "s_room1", "fail_closed_placeholder", "p_1a2b", "transform stalled"
    )
    await hooks.record_incident(api.app, "s_room1", "lobby_decline", "p_3c4d", "declined")
    await hooks.record_incident(api.app, "s_room2", "bystander_alert", None, "second face")
    cso = await api.user("cso.i", "cso")
    status, body = await cso.call("GET", "/safety/incidents")
    assert status == 200
    assert [(i["kind"], i["hazard_ids"]) for i in body["incidents"]] == [
        ("bystander_alert", ["HAZ-001", "HAZ-002"]),
        ("lobby_decline", ["HAZ-003", "HAZ-007"]),
        ("fail_closed_placeholder", ["HAZ-004"]),
    ]
    status, body = await cso.call("GET", "/safety/incidents?kind=lobby_decline")
    assert [i["participant_id"] for i in body["incidents"]] == ["p_3c4d"]
    status, body = await cso.call("GET", "/safety/incidents?hazard=HAZ-004")
    assert [i["detail"] for i in body["incidents"]] == ["transform stalled"]
    status, body = await cso.call("GET", "/safety/incidents?session=s_room2")
    assert len(body["incidents"]) == 1
    status, text = await cso.call("GET", "/safety/incidents.csv?hazard=HAZ-001")
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["kind"], r["hazard_ids"]) for r in rows] == [("bystander_alert", "HAZ-001 HAZ-002")]
    for query in ("kind=spilt_tea", "hazard=DROP TABLE"):
        status, body = await cso.call("GET", f"/safety/incidents?{query}")
        assert status == 400 and body["error"]["code"] == "invalid_query"
    clinician = await api.user("dr.i", "clinician")
    status, _ = await clinician.call("GET", "/safety/incidents")
    assert status == 403
    with pytest.raises(Exception) as bad:
        await hooks.record_incident(api.app, "s_room1", "not_a_kind", "p_1", "x")
    assert getattr(bad.value, "code", "") == "unknown_incident_kind"


PROBE_FILE = "tests/safety/evidence_probe.py"
PROBE_PASS = PROBE_FILE + "::test_probe_passes"
PROBE_FAIL = PROBE_FILE + "::test_probe_fails_on_demand"


async def test_evidence_shows_the_record_ci_made_per_control(
    make_api: MakeApi, tmp_path: Path
) -> None:
    # what CI does, for real: run the tests with a JUnit report (one of them fails on
    # demand), then turn the report into the evidence record
    junit = tmp_path / "junit.xml"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
         PROBE_FILE],
        cwd=REPO_ROOT, env={**os.environ, "CONFIDE_EVIDENCE_PROBE": "fail"},
        capture_output=True, text=True, check=False, timeout=300,
    )
    assert done.returncode == 1, done.stdout
    # the suite runs in parts, one report each: a test that failed in any part stays failed
    again = tmp_path / "junit-again.xml"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={again}",
         PROBE_FILE],
        cwd=REPO_ROOT, env={k: v for k, v in os.environ.items() if k != "CONFIDE_EVIDENCE_PROBE"},
        capture_output=True, text=True, check=False, timeout=300,
    )
    assert done.returncode == 0, done.stdout
    record_path = tmp_path / "evidence-record.json"
    assert confide(["hazards", "record", str(junit), str(again), "--out", str(record_path),
                    "--repo-root", str(REPO_ROOT), "--commit", "0123456789abcdef"]) == 0
    text = small_log(hazard("HAZ-001", evidence=PROBE_PASS), hazard("HAZ-002", evidence=PROBE_FAIL))
    api = await make_api(log_text=text, evidence_path=record_path)
    cso = await api.user("cso.e", "cso")
    status, body = await cso.call("GET", "/safety/evidence")
    assert status == 200
    record = body["record"]
    assert record["commit"] == "0123456789abcdef"
    assert record["summary"] == {"passed": 1, "skipped": 0, "failed": 1, "error": 0}
    assert record["record_hash"] == json.loads(record_path.read_text())["record_hash"]
    # the record ran against the repository's log, not this small one: the CSO is told
    assert body["record_matches_log"] is False and body["record_error"] is None
    assert [(c["hazard_id"], c["type"], c["status"]) for c in body["controls"]] == [
        ("HAZ-001", "design", "pass"),
        ("HAZ-001", "business process", "procedure"),
        ("HAZ-002", "design", "fail"),
        ("HAZ-002", "business process", "procedure"),
    ]
    # the service runs no tests: there is nothing to start
    status, _ = await cso.call("POST", "/safety/evidence/run", {})
    assert status in (404, 405)

    # no record at all: every cited test is "missing", and the page says why
    bare = await make_api(log_text=text)
    cso = await bare.user("cso.f", "cso")
    status, body = await cso.call("GET", "/safety/evidence")
    assert body["record"] is None and "no evidence record" in body["record_error"]
    assert {c["status"] for c in body["controls"]} == {"missing", "procedure"}
