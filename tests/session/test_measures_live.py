"""Measures and safeguarding through the real server, its HTTP API and its signaling socket:
a risk flag reaches the host at once and is an incident; a member who drops out and does not
come back within the grace gives the host their contact details and where they are; a late
member is turned away kindly and the host is told; bad answers get typed errors. Members'
sockets never carry any of it."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from session_rules.checklists import GROUP_AGREEMENT
from session_rules.lobby import RECONNECT_GRACE_S
from tests.support.browser import until
from tests.support.live_session import LiveSession, live_session
from tests.support.member_forms import MemberForms, clinical_view
from tests.support.wire_client import WireClient
from web.ops.logs import JsonFormatter
from web.store import groups, safety

CONTACT = "07700 900461"
EMERGENCY = "Partner, Sam Okonkwo, 07700 900999"
WHERE = "In my car outside 22 Harrowgate Road"
MEASURES = {"measures": ["phq9", "gad7"]}


def _phq9(item9: int) -> dict[str, Any]:
    return {"instrument": "phq9", "answers": [1, 1, 1, 1, 1, 1, 1, 1, item9]}


GAD7 = {"instrument": "gad7", "answers": [1, 0, 1, 0, 1, 0, 1]}


async def _host(live: LiveSession) -> WireClient:
    host = live.client("host")
    joined = await host.join(await live.host_grant())
    assert joined["type"] == "joined", joined
    return host


async def _member(live: LiveSession, pseudonym: str) -> tuple[WireClient, MemberForms]:
    redeemed = await live.redeem(pseudonym)
    member = live.client(pseudonym)
    joined = await member.join(redeemed["grant"])
    assert joined["type"] == "joined", joined
    return member, MemberForms(live, redeemed["resume"])


async def _agree(member: WireClient) -> None:
    reply = await member.command("confirm_checklist", answers=[i.id for i in GROUP_AGREEMENT])
    assert reply["type"] == "ok", reply


async def _admitted(live: LiveSession, host: WireClient, pseudonym: str
                    ) -> tuple[WireClient, MemberForms]:
    member, forms = await _member(live, pseudonym)
    await _agree(member)
    assert member.me is not None
    assert (await host.command("admit", target=member.me["id"]))["type"] == "ok"
    await member.wait_for(lambda m: m.get("type") == "admitted")
    return member, forms


async def _incidents(live: LiveSession, kind: str) -> list[Any]:
    async def found() -> list[Any]:
        return list(live.session.store.call(safety.list_incidents, kind=kind))

    return list(await until(found, 5.0))


def _leaks(messages: list[dict[str, Any]], *needles: str) -> list[str]:
    text = json.dumps(messages)
    return [n for n in needles if n in text]


async def test_item_9_gives_the_host_a_flag_an_alert_and_an_incident(server: Any) -> None:
    live = await live_session(server, rules=MEASURES)
    try:
        host = await _host(live)
        wren, _ = await _admitted(live, host, "Wren")
        robin, forms = await _member(live, "Robin")
        assert robin.me is not None
        robin_id = robin.me["id"]
        offered = await forms.forms()
        assert [m["id"] for m in offered["measures_before"]] == ["phq9", "gad7"]
        status, body = await forms.measures([_phq9(2), GAD7])
        # the member is told what was kept, never a score, a band or a flag
        assert (status, body) == (201, {"saved": ["phq9", "gad7"]})
        alert = await host.wait_for(lambda m: m.get("type") == "alert"
                                    and m.get("kind") == "risk_indicator")
        assert alert["participant_id"] == robin_id
        assert "Robin" in alert["message"] and "PHQ-9 question 9" in alert["message"]
        found = live.session.store.call(safety.list_incidents, kind="risk_indicator")
        assert [(i.participant_id, i.hazard_ids, i.session_id) for i in found] == [
            (robin_id, ("HAZ-017",), live.session.session_id)]
        view = await clinical_view(live)
        mine = view[robin_id]
        assert mine["risk_flag"] is True
        assert [(m["instrument"], m["total"], m["band"]) for m in mine["measures"]] == [
            ("phq9", 10, "Moderate"), ("gad7", 4, "Minimal")]
        assert view[wren.me["id"]]["risk_flag"] is False  # type: ignore[index]
        # then Robin waits in the lobby and is admitted like anyone else
        await _agree(robin)
        assert (await host.command("admit", target=robin_id))["type"] == "ok"
        await robin.sync()
        await wren.sync()
        for member in (robin, wren):
            assert not member.of_type("alert")
            assert not _leaks(member.messages, "risk", "PHQ", "Moderate", '"total"')
        assert not _leaks([{"r": forms.received}], "risk", "Moderate", '"total"', '"band"')
        assert live.disagreements() == []
    finally:
        await live.aclose()


async def test_a_risk_flag_with_no_host_present_waits_for_the_host(server: Any) -> None:
    live = await live_session(server, rules=MEASURES)
    try:
        robin, forms = await _member(live, "Robin")
        status, _ = await forms.measures([_phq9(1), GAD7])
        assert status == 201
        host = await _host(live)
        alert = await host.wait_for(lambda m: m.get("type") == "alert"
                                    and m.get("kind") == "risk_indicator")
        assert robin.me is not None and alert["participant_id"] == robin.me["id"]
    finally:
        await live.aclose()


async def test_a_member_who_drops_out_gives_the_host_their_contacts_after_the_grace(
        server: Any) -> None:
    live = await live_session(server)
    try:
        store, s = live.session.store, live.session
        for name in ("Robin", "Wren"):
            store.call(groups.update_member, s.clinician, s.group_id, s.member_ids[name],
                       contact=CONTACT, emergency_contact=EMERGENCY)
        host = await _host(live)
        robin, robin_forms = await _member(live, "Robin")
        await robin_forms.location(WHERE)
        await _agree(robin)
        assert robin.me is not None
        robin_id = robin.me["id"]
        assert (await host.command("admit", target=robin_id))["type"] == "ok"
        await robin.wait_for(lambda m: m.get("type") == "admitted")
        wren, _ = await _admitted(live, host, "Wren")
        assert live.controller is not None
        live.controller.return_poll_s = 0.1

        # Robin's connection goes (a closed lid): the host hears at once, privately
        mark = len(host.messages)
        await robin.drop()
        await host.wait_for(lambda m: m.get("type") == "alert" and m.get("kind") == "disconnected"
                            and m.get("participant_id") == robin_id, start=mark)
        # within the grace nothing more: they may come straight back
        live.clock.advance(RECONNECT_GRACE_S - 5)
        await host.sync()
        assert not [m for m in host.messages[mark:] if m.get("kind") == "not_returned"]
        # the grace ends and Robin has not come back
        live.clock.advance(6)
        alert = await host.wait_for(lambda m: m.get("type") == "alert"
                                    and m.get("kind") == "not_returned", start=mark)
        assert alert["participant_id"] == robin_id and "Robin" in alert["message"]
        details = alert["details"]
        assert (details["contact"], details["emergency_contact"], details["location"]) == (
            CONTACT, EMERGENCY, WHERE)
        assert details["location_at"]
        # no real name travels with it
        assert s.real_names["Robin"] not in json.dumps(alert)
        # the alert goes first; the incident is written just after it
        found = await _incidents(live, "member_not_returned")
        assert [(i.participant_id, i.hazard_ids) for i in found] == [(robin_id, ("HAZ-006",))]
        await wren.sync()
        assert not wren.of_type("alert")
        assert not _leaks(wren.messages, CONTACT, "Okonkwo", "Harrowgate")
        assert live.disagreements() == []
    finally:
        await live.aclose()


async def test_a_member_back_within_the_grace_raises_no_contact_alert(server: Any) -> None:
    live = await live_session(server)
    try:
        host = await _host(live)
        robin, forms = await _admitted(live, host, "Robin")
        assert live.controller is not None and robin.me is not None
        live.controller.return_poll_s = 0.1
        socket_resume = robin.resume
        await robin.drop()
        await host.wait_for(lambda m: m.get("kind") == "disconnected")
        live.clock.advance(5)
        # the page comes back: a fresh grant from its link's secret, then the socket's resume
        status, fresh = await live.resume(forms.secret)
        assert status == 200, fresh
        again = await live.client("Robin again").join(fresh["grant"], resume=socket_resume)
        assert again["type"] == "joined" and again["participant"]["state"] == "admitted"
        live.clock.advance(RECONNECT_GRACE_S + 10)
        await asyncio.sleep(0.5)
        await host.sync()
        assert not [m for m in host.messages if m.get("kind") == "not_returned"]
        assert not live.session.store.call(safety.list_incidents, kind="member_not_returned")
    finally:
        await live.aclose()


async def test_a_late_member_is_told_kindly_and_the_host_is_told(server: Any) -> None:
    live = await live_session(server, rules={"late_join_cutoff_min": 5})
    try:
        host = await _host(live)
        live.clock.advance(5 * 60 + 1)
        redeemed = await live.redeem("Kit")
        kit = live.client("Kit")
        refused = await kit.join(redeemed["grant"])
        assert (refused["type"], refused["code"]) == ("error", "late_join_closed")
        assert "waiting room has closed" in refused["message"]
        assert "clinician has been told" in refused["message"]
        assert kit.close_code == 1008
        alert = await host.wait_for(lambda m: m.get("kind") == "late_arrival")
        assert alert["participant_id"] == live.session.participant_ids["Kit"]
        assert "Kit" in alert["message"]
        found = await _incidents(live, "late_arrival")
        assert [i.hazard_ids for i in found] == [("HAZ-020",)]
    finally:
        await live.aclose()


@pytest.mark.parametrize(("responses", "code"), [
    # out of range
    ([{"instrument": "phq9", "answers": [0] * 8 + [4]}, GAD7], "answer_out_of_range"),
    # a partial form
    ([{"instrument": "phq9", "answers": [0] * 8}, GAD7], "measure_incomplete"),
    # one questionnaire left out
    ([GAD7], "measure_missing"),
    # a type the boundary refuses before the store sees it
    ([{"instrument": "phq9", "answers": ["1"] * 9}, GAD7], "invalid_field"),
])
async def test_bad_answers_get_typed_errors_over_http(server: Any, responses: list[Any],
                                                      code: str) -> None:
    live = await live_session(server, rules=MEASURES)
    try:
        _, forms = await _member(live, "Robin")
        status, body = await forms.measures(responses)
        assert (status, body["error"]["code"]) == (400, code), body
        # nothing was kept: the right answers are still taken
        assert (await forms.measures([_phq9(0), GAD7]))[0] == 201
    finally:
        await live.aclose()


async def test_replays_and_strangers_get_typed_errors_over_http(server: Any) -> None:
    live = await live_session(server, rules=MEASURES)
    other = await live_session(server, rules=MEASURES, username="dr.other",
                               members=(("Hyacinth Brightwater", "Fern"),))
    try:
        _, forms = await _member(live, "Robin")
        status, _ = await forms.measures([_phq9(0), GAD7], submission_id="page-0001")
        assert status == 201
        status, body = await forms.measures([_phq9(0), GAD7], submission_id="page-0001")
        assert (status, body["error"]["code"]) == (409, "submission_replayed")
        status, body = await forms.measures([_phq9(3), GAD7], submission_id="page-0002")
        assert (status, body["error"]["code"]) == (409, "measure_already_submitted")
        # a member of another group's session answering for this session
        fern = MemberForms(other, (await other.redeem("Fern"))["resume"])
        status, body = await fern.call("POST", "/measures", {
            "submission_id": "page-0003", "responses": [_phq9(0), GAD7]},
            session_id=live.session.session_id)
        assert (status, body["error"]["code"]) == (403, "not_in_session")
        # nobody's link at all, and no link header
        stranger = MemberForms(live, "made-up-secret")
        status, body = await stranger.measures([_phq9(0), GAD7])
        assert (status, body["error"]["code"]) == (401, "resume_invalid")
        async with live.http.post(forms.base + "/measures", json={}) as resp:
            assert (resp.status, (await resp.json())["error"]["code"]) == (
                401, "member_not_authenticated")
        view = await clinical_view(live)
        robin = view[live.session.participant_ids["Robin"]]
        assert [m["total"] for m in robin["measures"]] == [8, 4]
    finally:
        await other.aclose()
        await live.aclose()


async def test_no_real_name_in_member_traffic_alerts_errors_or_logs(
        server: Any, caplog: pytest.LogCaptureFixture) -> None:
    # measures, a risk flag, safeguarding details, a drop-out alert, refused forms and
    # feedback, end to end: real names stay with the roster and the clinical view
    caplog.set_level(logging.DEBUG)
    live = await live_session(server, rules={**MEASURES, "feedback": "named"})
    try:
        store, s = live.session.store, live.session
        needles = sorted({part for real in s.real_names.values()
                          for part in (real, *real.split())})
        for name in s.member_ids:
            store.call(groups.update_member, s.clinician, s.group_id, s.member_ids[name],
                       contact=CONTACT, emergency_contact=EMERGENCY)
        host = await _host(live)
        robin, robin_forms = await _member(live, "Robin")
        await robin_forms.location(WHERE)
        assert (await robin_forms.measures([_phq9(3), GAD7]))[0] == 201
        await host.wait_for(lambda m: m.get("kind") == "risk_indicator")
        await _agree(robin)
        assert robin.me is not None
        assert (await host.command("admit", target=robin.me["id"]))["type"] == "ok"
        await robin.wait_for(lambda m: m.get("type") == "admitted")
        wren, wren_forms = await _admitted(live, host, "Wren")
        # refusals: out of range, partial, replayed, and a stranger's secret
        refused = [await wren_forms.measures([{"instrument": "phq9", "answers": [9] * 9}, GAD7]),
                   await wren_forms.measures([GAD7]),
                   await robin_forms.measures([_phq9(0), GAD7]),
                   await MemberForms(live, "not-a-real-secret").measures([_phq9(0), GAD7])]
        assert all(status >= 400 for status, _ in refused)
        # the clinician's own view has the names (the only place they go)
        view = await clinical_view(live)
        assert robin.me["id"] in view
        assert live.controller is not None
        live.controller.return_poll_s = 0.1
        mark = len(host.messages)
        await robin.drop()
        live.clock.advance(RECONNECT_GRACE_S + 1)
        await host.wait_for(lambda m: m.get("kind") == "not_returned", start=mark)
        status, _ = await live.end_through_api()
        assert status == 200
        status, _ = await wren_forms.call("POST", "/feedback", {"answers": {"listened": 3}})
        assert status == 201
    finally:
        await live.aclose()
    formatter = JsonFormatter()
    logged = "\n".join(formatter.format(r) for r in caplog.records)
    sockets = json.dumps([c.messages for c in live.clients])
    member_http = json.dumps([robin_forms.received, wren_forms.received])
    for where, text in (("logs", logged), ("signaling, the host's included", sockets),
                        ("member HTTP answers and errors", member_http)):
        assert not [n for n in needles if n in text], where
    # and the checks above could see them: the scans are over real traffic
    assert "Robin" in sockets and "not_returned" in sockets and "participant" in logged
