"""The safety gate: no lobby opens and no session goes live until every item is met."""

from __future__ import annotations

import re

from session_rules.checklists import HOST_PRE_SESSION
from session_rules.hazard_log import content_hash
from web.control import all_routes

from .conftest import Caller, SafetyApi

ALL_HOST_ITEMS = [i.id for i in HOST_PRE_SESSION]


async def _session(api: SafetyApi, clinician: Caller) -> tuple[str, str]:
    status, body = await clinician.call("POST", "/groups", {"name": "Thursday"})
    assert status == 201, body
    gid = body["group"]["id"]
    status, body = await clinician.call(
        "POST",
        f"/groups/{gid}/sessions",
        {"starts_at": api.store.clock().isoformat(), "duration_min": 60},
    )
    assert status == 201, body
    return gid, body["session"]["id"]


async def _sign_off_and_answer_workshop(api: SafetyApi, cso: Caller) -> None:
    status, body = await cso.call(
        "POST",
        "/safety/sign-offs",
        {"content_hash": content_hash(api.read_log().encode()), "comment": "reviewed"},
    )
    assert status == 201, body
    status, body = await cso.call("GET", "/safety/workshop")
    for q in body["questions"]:
        status, _ = await cso.call(
            "PUT", f"/safety/workshop/{q['id']}", {"answer": "Agreed at the hazard workshop."}
        )
        assert status == 200


async def _move(clinician: Caller, sid: str, to: str) -> tuple[int, dict[str, object]]:
    status, body = await clinician.call("POST", f"/sessions/{sid}/status", {"status": to})
    return status, body


async def test_lobby_refused_with_every_unmet_item_until_all_are_met(api: SafetyApi) -> None:
    clinician = await api.user("dr.g", "clinician")
    cso = await api.user("cso.g", "cso")
    _gid, sid = await _session(api, clinician)

    status, body = await _move(clinician, sid, "open")
    assert status == 409 and body["error"]["code"] == "gate_closed"  # type: ignore[index]
    unmet = body["error"]["unmet"]  # type: ignore[index]
    assert len(unmet) == 3, unmet
    assert "has not been signed off by a clinical safety officer" in unmet[0]
    assert unmet[1].startswith("hazard-workshop questions not answered: non_members")
    assert unmet[2] == (
        "the host's pre-session checklist is not done: "
        "private_space, headphones, crisis_plan, group_agreement"
    )
    status, body = await clinician.call("GET", f"/sessions/{sid}/safety-gate")
    assert [u["code"] for u in body["unmet"]] == [
        "log_not_signed_off",
        "workshop_incomplete",
        "host_checklist_incomplete",
    ]

    await _sign_off_and_answer_workshop(api, cso)
    status, body = await clinician.call(
        "PUT", f"/sessions/{sid}/host-checklist", {"confirmed": ALL_HOST_ITEMS[:3]}
    )
    assert status == 200 and body["checklist"]["missing"] == ["group_agreement"]
    status, body = await _move(clinician, sid, "open")
    assert status == 409
    assert body["error"]["unmet"] == [  # type: ignore[index]
        "the host's pre-session checklist is not done: group_agreement"
    ]

    status, body = await clinician.call(
        "PUT", f"/sessions/{sid}/host-checklist", {"confirmed": ALL_HOST_ITEMS}
    )
    assert status == 200 and body["checklist"]["complete"] is True
    status, body = await _move(clinician, sid, "open")
    assert status == 200 and body["session"]["status"] == "open"  # type: ignore[index]

    # an edit to the log (a new hash) closes the gate until the next sign-off
    api.write_log(api.read_log() + "\n")
    status, body = await _move(clinician, sid, "live")
    assert status == 409 and body["error"]["code"] == "gate_closed"  # type: ignore[index]
    (only,) = body["error"]["unmet"]  # type: ignore[index]
    assert "has not been signed off" in only
    status, body = await cso.call(
        "POST",
        "/safety/sign-offs",
        {"content_hash": content_hash(api.read_log().encode()), "comment": "newline only"},
    )
    assert status == 201
    status, body = await _move(clinician, sid, "live")
    assert status == 200 and body["session"]["status"] == "live"  # type: ignore[index]


async def test_no_api_path_gets_a_session_past_the_gate(api: SafetyApi) -> None:
    clinician = await api.user("dr.p", "clinician")
    gid, sid = await _session(api, clinician)
    status, body = await clinician.call(
        "POST", f"/groups/{gid}/members", {"real_name": "Ottoline Fernsby", "pseudonym": "Kite"}
    )
    assert status == 201
    ids = {"session_id": sid, "group_id": gid, "member_id": body["member"]["id"]}
    tried = 0
    for route in all_routes():
        if route.method == "GET" or route.path.startswith("/auth/"):
            continue
        path = re.sub(r"{(\w+)}", lambda m: ids.get(m.group(1), "x"), route.path)
        for to in ("open", "live"):
            # every state-changing route, with bodies that ask for the lobby or going live
            payloads: list[dict[str, object]] = [{"status": to}, {"status": to, "confirmed": []}]
            for payload in payloads:
                status, _ = await clinician.call(route.method, path, payload)
                tried += 1
                assert status != 500, (route.method, path)
        status, body = await clinician.call("GET", f"/sessions/{sid}")
        assert body["session"]["status"] == "scheduled", (route.method, route.path)
    assert tried >= 40
    status, body = await clinician.call("GET", f"/sessions/{sid}/attendance")
    assert status == 200


async def test_host_checklist_bad_input_and_access(api: SafetyApi) -> None:
    clinician = await api.user("dr.h", "clinician")
    other = await api.user("dr.other", "clinician")
    cso = await api.user("cso.h", "cso")
    _gid, sid = await _session(api, clinician)
    status, body = await clinician.call("GET", f"/sessions/{sid}/host-checklist")
    assert status == 200
    assert [i["id"] for i in body["checklist"]["items"]] == ALL_HOST_ITEMS
    assert body["checklist"]["complete"] is False and body["checklist"]["updated_at"] is None
    for payload, code in (
        ({"confirmed": ["private_space", "kettle_on"]}, "invalid_checklist"),
        ({"confirmed": "private_space"}, "invalid_checklist"),
        ({"confirmed": [1, 2]}, "invalid_checklist"),
        ({}, "invalid_checklist"),
    ):
        status, body = await clinician.call("PUT", f"/sessions/{sid}/host-checklist", payload)
        assert status == 400 and body["error"]["code"] == code, payload
    status, body = await other.call(
        "PUT", f"/sessions/{sid}/host-checklist", {"confirmed": ALL_HOST_ITEMS}
    )
    assert status == 403
    status, body = await cso.call(
        "PUT", f"/sessions/{sid}/host-checklist", {"confirmed": ALL_HOST_ITEMS}
    )
    assert status == 403 and body["error"]["code"] == "forbidden_role"
    status, body = await clinician.call("GET", f"/sessions/{sid}/host-checklist")
    assert body["checklist"]["confirmed"] == [] and body["checklist"]["updated_at"] is None


async def test_one_sessions_host_checklist_does_not_open_another(api: SafetyApi) -> None:
    clinician = await api.user("dr.t", "clinician")
    cso = await api.user("cso.t", "cso")
    _gid, first = await _session(api, clinician)
    _gid2, second = await _session(api, clinician)
    await _sign_off_and_answer_workshop(api, cso)
    await clinician.call("PUT", f"/sessions/{first}/host-checklist", {"confirmed": ALL_HOST_ITEMS})
    status, body = await _move(clinician, second, "open")
    assert status == 409 and body["error"]["unmet"] == [  # type: ignore[index]
        "the host's pre-session checklist is not done: "
        "private_space, headphones, crisis_plan, group_agreement"
    ]
    status, body = await _move(clinician, first, "open")
    assert status == 200


async def test_unreadable_log_keeps_the_gate_shut(api: SafetyApi) -> None:
    clinician = await api.user("dr.u", "clinician")
    cso = await api.user("cso.u", "cso")
    _gid, sid = await _session(api, clinician)
    await _sign_off_and_answer_workshop(api, cso)
    await clinician.call("PUT", f"/sessions/{sid}/host-checklist", {"confirmed": ALL_HOST_ITEMS})
    api.log_path.write_bytes(b"\xff\xfe not text")
    status, body = await _move(clinician, sid, "open")
    assert status == 409
    assert body["error"]["unmet"] == [  # type: ignore[index]
        "the hazard log hazard_log.md is not UTF-8 text"
    ]
    status, body = await cso.call("GET", "/safety/hazard-log")
    assert status == 503 and body["error"]["code"] == "hazard_log_unreadable"
    api.log_path.unlink()
    status, body = await _move(clinician, sid, "open")
    assert status == 409 and "cannot read the hazard log" in body["error"]["unmet"][0]  # type: ignore[index]
