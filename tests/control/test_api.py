"""The HTTP API end to end with aiohttp's test client, on SQLite."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from sfu.grants import verify_grant
from web.control import keys
from web.control.admin_cli import DEMO_MEMBERS, create_user, seed_demo
from web.settings import Settings
from web.store import audit
from web.store.errors import Conflict

from .conftest import Api, Clock, make_user

REAL_NAMES = ("Araminta Quillfeather", "Barnaby Thistlewood")


async def _group_with_members(api: Api) -> tuple[str, str, list[dict[str, Any]]]:
    make_user(api.store, "dr.ash")
    csrf = await api.login("dr.ash")
    status, body = await api.call("POST", "/api/v1/groups", csrf, {"name": "Tuesday"})
    assert status == 201, body
    gid = body["group"]["id"]
    members = []
    for real, pseudo in zip(REAL_NAMES, ("Robin", "Wren"), strict=True):
        status, body = await api.call(
            "POST", f"/api/v1/groups/{gid}/members", csrf, {"real_name": real, "pseudonym": pseudo}
        )
        assert status == 201, body
        members.append(body["member"])
    return csrf, gid, members


async def _session_with_invites(api: Api, clock: Clock) -> tuple[str, str, str, list[Any]]:
    csrf, gid, members = await _group_with_members(api)
    status, body = await api.call(
        "POST",
        f"/api/v1/groups/{gid}/sessions",
        csrf,
        {"starts_at": clock.now.isoformat(), "duration_min": 60},
    )
    assert status == 201, body
    sid = body["session"]["id"]
    status, body = await api.call("POST", f"/api/v1/sessions/{sid}/invites", csrf, {"all": True})
    assert status == 201, body
    # Robin first: members added at one instant have no inherent order
    return csrf, gid, sid, sorted(body["invites"], key=lambda i: i["pseudonym"] != "Robin")


def _token(invite: dict[str, Any]) -> str:
    return str(invite["url"].rsplit("/i/", 1)[1])


async def test_openapi_lists_every_api_route(api: Api) -> None:
    status, doc = await api.call("GET", "/api/v1/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    registered = set()
    for resource in api.app.router.resources():
        for route in resource:
            info = route.resource.get_info() if route.resource else {}
            path = info.get("path") or info.get("formatter")
            if path and path.startswith("/api/v1") and route.method != "HEAD":
                registered.add((route.method.lower(), path))
    assert len(registered) > 25
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert registered - documented == set()


async def test_login_cookie_flags_me_and_logout(api: Api) -> None:
    make_user(api.store, "dr.ash")
    resp = await api.client.post(
        "/api/v1/auth/login", json={"username": "dr.ash", "password": "a long enough password"}
    )
    assert resp.status == 200
    cookies = resp.headers.getall("Set-Cookie")
    session_cookie = next(c for c in cookies if c.startswith("confide_session="))
    assert "HttpOnly" in session_cookie and "SameSite=Strict" in session_cookie
    csrf = (await resp.json())["csrf_token"]
    status, me = await api.call("GET", "/api/v1/auth/me")
    assert status == 200 and me["user"]["role"] == "clinician" and me["csrf_token"] == csrf
    status, _ = await api.call("POST", "/api/v1/auth/logout", csrf, {})
    assert status == 200
    status, body = await api.call("GET", "/api/v1/groups")
    assert status == 401 and body["error"]["code"] == "not_authenticated"


async def test_failed_logins_back_off(api: Api) -> None:
    make_user(api.store, "dr.ash")
    codes = []
    for _ in range(7):
        resp = await api.client.post(
            "/api/v1/auth/login", json={"username": "dr.ash", "password": "not my password"}
        )
        codes.append((resp.status, (await resp.json())["error"]["code"]))
    assert codes[0] == (401, "invalid_credentials")
    assert codes[-1] == (429, "login_throttled")
    assert int(resp.headers["Retry-After"]) >= 1


async def test_state_change_without_csrf_token_is_refused(api: Api) -> None:
    csrf, gid, _members = await _group_with_members(api)
    for token in (None, "wrong-token"):
        status, body = await api.call("POST", "/api/v1/groups", token, {"name": "Sneaky"})
        assert status == 403 and body["error"]["code"] == "csrf_failed"
        status, body = await api.call("PATCH", f"/api/v1/groups/{gid}", token, {"name": "X"})
        assert status == 403
    status, body = await api.call("GET", "/api/v1/groups")
    assert [g["name"] for g in body["groups"]] == ["Tuesday"]


async def test_roster_for_the_groups_clinicians_only(api: Api) -> None:
    csrf, gid, members = await _group_with_members(api)
    status, body = await api.call("GET", f"/api/v1/groups/{gid}/members")
    assert status == 200
    assert {(m["pseudonym"], m["real_name"]) for m in body["members"]} == {
        ("Robin", REAL_NAMES[0]),
        ("Wren", REAL_NAMES[1]),
    }
    viewed = api.store.call(audit.list_events, action="roster.viewed")
    assert viewed and viewed[0].actor.startswith("user:")
    make_user(api.store, "dr.other")
    make_user(api.store, "safety", role="cso")
    other_csrf = await api.login("dr.other")
    for method, path, payload in [
        ("GET", f"/api/v1/groups/{gid}/members", None),
        ("GET", f"/api/v1/groups/{gid}/sessions", None),
        ("POST", f"/api/v1/groups/{gid}/members", {"real_name": "Z Y", "pseudonym": "Fern"}),
        ("PATCH", f"/api/v1/groups/{gid}/members/{members[0]['id']}", {"pseudonym": "Fern"}),
    ]:
        status, body = await api.call(method, path, other_csrf, payload)
        assert status == 403 and body["error"]["code"] == "not_group_clinician", (path, body)
        assert "Araminta" not in json.dumps(body)
    await api.login("safety")
    status, body = await api.call("GET", f"/api/v1/groups/{gid}/members")
    assert status == 403 and body["error"]["code"] == "forbidden_role"


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"real_name": "Q" * 500, "pseudonym": "Fern"}, 400, "field_too_long"),
        ({"real_name": "Carys Pennywhistle", "pseudonym": "R\u043ebin"}, 409, "pseudonym_taken"),
        ({"real_name": "Carys Pennywhistle", "pseudonym": "W R E N"}, 409, "pseudonym_taken"),
        (
            {"real_name": "Carys Pennywhistle", "pseudonym": "Carys"},
            400,
            "pseudonym_contains_real_name",
        ),
        ({"real_name": "Carys", "pseudonym": "x'; DROP TABLE y"}, 400, "pseudonym_characters"),
        ({"real_name": 42, "pseudonym": "Fern"}, 400, "invalid_field"),
    ],
)
async def test_bad_member_input_is_refused_and_nothing_changes(
    api: Api, payload: dict[str, Any], status: int, code: str
) -> None:
    csrf, gid, _members = await _group_with_members(api)
    got, body = await api.call("POST", f"/api/v1/groups/{gid}/members", csrf, payload)
    assert (got, body["error"]["code"]) == (status, code)
    assert "Pennywhistle" not in body["error"]["message"]
    _s, roster = await api.call("GET", f"/api/v1/groups/{gid}/members")
    assert len(roster["members"]) == 2


async def test_invalid_unicode_and_malformed_bodies(api: Api) -> None:
    csrf, gid, _members = await _group_with_members(api)
    headers = {"X-CSRF-Token": csrf, "Content-Type": "application/json"}
    url = f"/api/v1/groups/{gid}/members"
    cases = [
        (b'{"real_name": "A \\ud800 B", "pseudonym": "Fern"}', 400, "invalid_unicode"),
        (b'{"real_name": "A \xff B", "pseudonym": "Fern"}', 400, "invalid_unicode"),
        (b'{"real_name": ', 400, "invalid_json"),
        (b'["not", "an", "object"]', 400, "invalid_json"),
        (b"{" + b'"a":"' + b"x" * 70000 + b'"}', 413, "body_too_large"),
    ]
    for raw, status, code in cases:
        resp = await api.client.post(url, data=raw, headers=headers)
        assert resp.status == status, raw[:40]
        assert (await resp.json())["error"]["code"] == code
    resp = await api.client.post(
        url,
        data="real_name=x",
        headers={"X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status == 415
    _s, roster = await api.call("GET", url)
    assert len(roster["members"]) == 2


async def test_sql_injection_in_group_name_is_stored_literally(api: Api) -> None:
    csrf, _gid, _m = await _group_with_members(api)
    evil = "x'); DELETE FROM groups; --"
    status, body = await api.call("POST", "/api/v1/groups", csrf, {"name": evil})
    assert status == 201
    _s, listed = await api.call("GET", "/api/v1/groups")
    assert sorted(g["name"] for g in listed["groups"]) == sorted(["Tuesday", evil])


async def test_redeem_gives_a_pseudonymous_grant_once(api: Api, clock: Clock) -> None:
    csrf, gid, sid, issued = await _session_with_invites(api, clock)
    assert len(issued) == 2
    status, body = await api.call(
        "POST", "/api/v1/invites/redeem", None, {"token": _token(issued[0])}
    )
    assert status == 200, body
    settings = api.app[keys.CONTROL_SETTINGS]
    grant = verify_grant(body["grant"], settings.grant_secret, room=body["room"])
    assert (grant.display_name, grant.role, grant.session_id) == ("Robin", "participant", sid)
    assert grant.participant_id.startswith("p_") and grant.profile.value == "blur"
    for name in REAL_NAMES:
        assert name.split()[0] not in json.dumps(body)
    # a second browser with the same link: refused, audited; the holder can still resume
    status, again = await api.call(
        "POST", "/api/v1/invites/redeem", None, {"token": _token(issued[0])}
    )
    assert status == 409 and again["error"]["code"] == "invite_already_redeemed"
    assert api.store.call(audit.list_events, action="invite.refused")
    status, resumed = await api.call(
        "POST", "/api/v1/invites/resume", None, {"resume": body["resume"]}
    )
    assert status == 200 and resumed["participant_id"] == grant.participant_id
    # revoked: neither resume nor redeem works
    status, _ = await api.call("POST", f"/api/v1/invites/{issued[0]['id']}/revoke", csrf, {})
    assert status == 200
    status, resumed = await api.call(
        "POST", "/api/v1/invites/resume", None, {"resume": body["resume"]}
    )
    assert status == 410 and resumed["error"]["code"] == "invite_revoked"
    # expired
    clock.advance(hours=3)
    status, late = await api.call(
        "POST", "/api/v1/invites/redeem", None, {"token": _token(issued[1])}
    )
    assert status == 410 and late["error"]["code"] == "invite_expired"


async def test_participant_id_is_stable_across_sessions(api: Api, clock: Clock) -> None:
    csrf, gid, sid, issued = await _session_with_invites(api, clock)
    _s, first = await api.call("POST", "/api/v1/invites/redeem", None, {"token": _token(issued[0])})
    _s, body = await api.call(
        "POST",
        f"/api/v1/groups/{gid}/sessions",
        csrf,
        {"starts_at": clock.now.isoformat(), "duration_min": 90},
    )
    _s, again = await api.call(
        "POST",
        f"/api/v1/sessions/{body['session']['id']}/invites",
        csrf,
        {"member_id": issued[0]["member_id"]},
    )
    _s, second = await api.call(
        "POST", "/api/v1/invites/redeem", None, {"token": _token(again["invites"][0])}
    )
    assert first["participant_id"] == second["participant_id"]
    assert first["room"] != second["room"]


async def test_invite_holder_cannot_call_clinician_endpoints(api: Api, clock: Clock) -> None:
    csrf, gid, sid, issued = await _session_with_invites(api, clock)
    _s, redeemed = await api.call(
        "POST", "/api/v1/invites/redeem", None, {"token": _token(issued[0])}
    )
    api.client.session.cookie_jar.clear()
    for method, path in [
        ("GET", f"/api/v1/groups/{gid}/members"),
        ("GET", f"/api/v1/sessions/{sid}/roster"),
        ("POST", f"/api/v1/sessions/{sid}/host-grant"),
        ("POST", f"/api/v1/sessions/{sid}/invites"),
    ]:
        for headers in (
            {"Authorization": f"Bearer {redeemed['grant']}"},
            {"Cookie": f"confide_session={redeemed['resume']}"},
        ):
            resp = await api.client.request(method, path, headers=headers, json={"all": True})
            assert resp.status == 401, path
            assert (await resp.json())["error"]["code"] == "not_authenticated"


async def test_host_grant_and_lobby_gate(api: Api, clock: Clock) -> None:
    csrf, gid, sid, _issued = await _session_with_invites(api, clock)
    status, body = await api.call("POST", f"/api/v1/sessions/{sid}/host-grant", csrf, {})
    assert status == 200
    grant = verify_grant(body["grant"], api.app[keys.CONTROL_SETTINGS].grant_secret)
    assert grant.role == "host" and grant.room == sid

    async def closed_gate(session_id: str) -> list[str]:
        return ["hazard log version not signed off"]

    api.app[keys.LOBBY_GATES].clear()
    api.app[keys.LOBBY_GATES].append(closed_gate)
    status, body = await api.call(
        "POST", f"/api/v1/sessions/{sid}/status", csrf, {"status": "open"}
    )
    assert status == 409 and body["error"]["code"] == "gate_closed"
    assert body["error"]["unmet"] == ["hazard log version not signed off"]
    api.app[keys.LOBBY_GATES].clear()
    status, body = await api.call(
        "POST", f"/api/v1/sessions/{sid}/status", csrf, {"status": "live"}
    )
    assert status == 409 and body["error"]["code"] == "invalid_transition"
    for to in ("open", "live", "ended"):
        status, body = await api.call(
            "POST", f"/api/v1/sessions/{sid}/status", csrf, {"status": to}
        )
        assert status == 200 and body["session"]["status"] == to
    make_user(api.store, "dr.other")
    other = await api.login("dr.other")
    status, body = await api.call("POST", f"/api/v1/sessions/{sid}/host-grant", other, {})
    assert status == 403


async def test_audit_for_admin_and_cso_with_safe_csv(api: Api, clock: Clock) -> None:
    await _session_with_invites(api, clock)
    status, _ = await api.call("GET", "/api/v1/audit")
    assert status == 403
    api.store.call(audit.append, "user:x", "test.event", '=HYPERLINK("http://evil")', {})
    make_user(api.store, "safety", role="cso")
    await api.login("safety")
    status, body = await api.call("GET", "/api/v1/audit?limit=500")
    actions = {e["action"] for e in body["events"]}
    assert {"login.succeeded", "group.created", "member.added", "invite.issued"} <= actions
    resp = await api.client.get("/api/v1/audit.csv")
    assert resp.status == 200 and resp.content_type == "text/csv"
    csv_text = await resp.text()
    assert "'=HYPERLINK" in csv_text
    for name in REAL_NAMES:
        assert name not in csv_text
    status, body = await api.call("GET", "/api/v1/audit?limit=abc")
    assert status == 400 and body["error"]["code"] == "invalid_query"


async def test_real_names_never_reach_logs_or_non_roster_answers(
    api: Api, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    csrf, gid, sid, issued = await _session_with_invites(api, clock)
    seen: list[str] = []
    for method, path, payload in [
        ("GET", "/api/v1/groups", None),
        ("GET", f"/api/v1/groups/{gid}", None),
        ("GET", f"/api/v1/groups/{gid}/sessions", None),
        ("GET", f"/api/v1/sessions/{sid}/invites", None),
        ("GET", f"/api/v1/sessions/{sid}/attendance", None),
        ("GET", f"/api/v1/groups/{gid}/pseudonym-suggestions", None),
        ("POST", "/api/v1/invites/redeem", {"token": _token(issued[0])}),
        ("POST", "/api/v1/invites/redeem", {"token": _token(issued[0])}),
        (
            "POST",
            f"/api/v1/groups/{gid}/members",
            {"real_name": "Barnaby Thistlewood", "pseudonym": "Thistlewood"},
        ),
    ]:
        _status, body = await api.call(method, path, csrf, payload)
        seen.append(json.dumps(body))
    everything = " ".join(seen) + caplog.text
    everything += json.dumps([e.to_json() for e in api.store.call(audit.all_events)])
    for name in REAL_NAMES:
        for part in name.split():
            assert part not in everything, part


async def test_pages_and_invite_landing_does_not_use_the_link(api: Api, clock: Clock) -> None:
    _csrf, _gid, _sid, issued = await _session_with_invites(api, clock)
    for path in ("/login", "/clinician/", "/clinician/app.js", "/clinician/style.css"):
        resp = await api.client.get(path)
        assert resp.status == 200, path
    resp = await api.client.get(f"/i/{_token(issued[0])}")
    assert resp.status == 200 and "text/html" in resp.content_type
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    status, _ = await api.call("POST", "/api/v1/invites/redeem", None, {"token": _token(issued[0])})
    assert status == 200


async def test_unknown_api_path_is_a_json_error(api: Api) -> None:
    status, body = await api.call("GET", "/api/v1/nothing-here")
    assert status == 404 and body["error"]["code"] == "not_found"


def test_seed_demo_once_and_create_user(settings: Settings) -> None:
    info = seed_demo(settings)
    assert info is not None and len(info.invite_links) == len(DEMO_MEMBERS)
    assert all(link.startswith("http://confide.test/i/") for link in info.invite_links.values())
    assert seed_demo(settings) is None
    create_user(settings, "clinician", "dr.new", "another long password")
    with pytest.raises(Conflict):
        create_user(settings, "clinician", "dr.new", "another long password")


async def test_demo_links_and_logins_work(aiohttp_client: Any, settings: Settings) -> None:
    from aiohttp import web

    from web.control import setup_control_plane

    info = seed_demo(settings)
    assert info is not None
    app = web.Application()
    setup_control_plane(app, settings)
    client = await aiohttp_client(app)
    resp = await client.post(
        "/api/v1/auth/login",
        json={"username": info.clinician_username, "password": info.clinician_password},
    )
    assert resp.status == 200
    token = info.invite_links["Robin"].rsplit("/i/", 1)[1]
    resp = await client.post("/api/v1/invites/redeem", json={"token": token})
    assert resp.status == 200 and (await resp.json())["display_name"] == "Robin"
