"""The HTTP API's typed boundary: bodies, access, answers and the OpenAPI document are one."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import threading
from typing import Any

import pytest

from web.control import all_routes, api_admin, keys
from web.control.routes import ANY, PUBLIC
from web.store import Store, accounts, audit
from web.store.errors import AuthFailed, Throttled

from .conftest import PASSWORD, Api, Clock, make_user


def _concrete(path: str) -> str:
    return "/api/v1" + path.replace("{", "x_").replace("}", "")


async def test_every_route_enforces_the_access_it_declares(api: Api) -> None:
    make_user(api.store, "some.cso", "cso")
    routes = all_routes()
    for route in routes:
        if route.public:
            continue
        # nobody logged in: refused before anything else, whatever the body; a member's
        # route without the member's link secret likewise
        expected = "member_not_authenticated" if route.member else "not_authenticated"
        status, body = await api.call(route.method, _concrete(route.path), None, {})
        assert (status, body["error"]["code"]) == (401, expected), route.path
    csrf = await api.login("some.cso")
    for route in routes:
        if route.public or route.access == ANY or "cso" in route.access:
            continue
        status, body = await api.call(route.method, _concrete(route.path), csrf, {})
        if route.member:
            # a login is no member's link: staff cannot answer a member's forms
            assert (status, body["error"]["code"]) == (401, "member_not_authenticated")
            continue
        assert status == 403 and body["error"]["code"] == route.role_error, route.path


async def test_openapi_is_made_from_the_models(api: Api) -> None:
    status, doc = await api.call("GET", "/api/v1/openapi.json")
    assert status == 200 and doc["openapi"] == "3.1.0"
    schemas = doc["components"]["schemas"]

    def resolve(ref: dict[str, Any]) -> dict[str, Any]:
        name = ref["$ref"].rsplit("/", 1)[1]
        return dict(schemas[name])

    for route in all_routes():
        op = doc["paths"]["/api/v1" + route.path][route.method.lower()]
        assert op["x-access"] == list(route.access)
        assert ("security" in op) == (route.access != PUBLIC)
        if route.body is not None:
            body = resolve(op["requestBody"]["content"]["application/json"]["schema"])
            required = {n for n, f in route.body.model_fields.items() if f.is_required()}
            assert set(body.get("required", [])) == required, route.path
            assert body.get("additionalProperties") is False, route.path
        answer = op["responses"][str(route.status)]["content"]
        if route.response is not None:
            schema = resolve(answer["application/json"]["schema"])
            assert set(schema["required"]) == set(route.response.model_fields), route.path
        else:
            assert route.media_type in answer
    login = resolve(doc["paths"]["/api/v1/auth/login"]["post"]["requestBody"]["content"][
        "application/json"]["schema"])
    assert login["required"] == ["username", "password"]


@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        ({"real_name": "Carys", "pseudonym": "Fern", "nickname": "x"}, "unknown_field",
         "nickname"),
        ({"real_name": "Carys"}, "field_required", "pseudonym"),
        ({"real_name": ["Carys"], "pseudonym": "Fern"}, "invalid_field", "real_name"),
        ({"real_name": "Carys", "pseudonym": True}, "invalid_field", "pseudonym"),
    ],
)
async def test_bodies_are_typed_before_any_logic(
    api: Api, payload: dict[str, Any], code: str, field: str
) -> None:
    make_user(api.store, "dr.ash")
    csrf = await api.login("dr.ash")
    status, body = await api.call("POST", "/api/v1/groups", csrf, {"name": "Tuesday"})
    gid = body["group"]["id"]
    status, body = await api.call("POST", f"/api/v1/groups/{gid}/members", csrf, payload)
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, code, field)
    _s, roster = await api.call("GET", f"/api/v1/groups/{gid}/members")
    assert roster["members"] == []


async def test_deeply_nested_json_is_a_typed_400(api: Api) -> None:
    for depth in (40, 100_000):
        raw = '{"username": "x", "password": ' + "[" * depth + "]" * depth + "}"
        resp = await api.client.post("/api/v1/auth/login", data=raw,
                                     headers={"Content-Type": "application/json"})
        body = await resp.json()
        assert resp.status in (400, 413), depth
        if resp.status == 400:
            assert body["error"]["code"] == "too_deep"
    status, _ = await api.call("GET", "/api/v1/auth/me")
    assert status == 401  # the service is still answering


async def test_concurrent_wrong_passwords_are_counted_before_any_is_checked(api: Api) -> None:
    make_user(api.store, "dr.ash")

    async def attempt() -> int:
        resp = await api.client.post(
            "/api/v1/auth/login", json={"username": "dr.ash", "password": "not my password"}
        )
        return resp.status

    statuses = await asyncio.gather(*(attempt() for _ in range(24)))
    # five free failures and the one that set the lock; every other attempt waited
    assert statuses.count(401) == accounts.FREE_FAILURES_PER_USER + 1, statuses
    assert statuses.count(429) == 24 - statuses.count(401)


def test_login_throttle_is_atomic_across_threads(store: Store) -> None:
    make_user(store, "dr.ash")
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        try:
            accounts.login(store, username="dr.ash", password="wrong guess!", address="a")
        except AuthFailed:
            result = "failed"
        except Throttled:
            result = "throttled"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("failed") == accounts.FREE_FAILURES_PER_USER + 1, outcomes
    # and the right password, once the lock has passed, still works
    with pytest.raises(Throttled):
        accounts.login(store, username="dr.ash", password=PASSWORD, address="b")


async def test_a_redeem_flood_is_throttled_and_barely_audited(api: Api, clock: Clock) -> None:
    before = len(await api.store.run(audit.all_events))
    codes = []
    retry_after = []
    for i in range(200):
        resp = await api.client.post("/api/v1/invites/redeem", json={"token": f"guess-{i}"})
        codes.append(resp.status)
        if resp.status == 429:
            body = await resp.json()
            assert body["error"]["code"] == "too_many_requests"
            retry_after.append(int(resp.headers["Retry-After"]))
    assert codes[:20] == [404] * 20
    assert codes.count(429) >= 175 and min(retry_after) >= 1
    written = await api.store.run(audit.all_events)
    new = written[before:]
    # refused links are each audited while allowed through; the flood adds one row
    assert len(new) <= 25, [e.action for e in new]
    throttled = [e for e in new if e.action.endswith(".throttled")]
    assert len(throttled) == 1 and throttled[0].detail["refused"] >= 1
    # resuming shares nothing with the flood's tokens, but the same address waits too
    resp = await api.client.post("/api/v1/invites/resume", json={"resume": "x" * 43})
    assert resp.status == 429


async def test_the_audit_export_streams_in_pages(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_admin, "EXPORT_BATCH", 7)
    make_user(api.store, "admin.a", "admin")
    for i in range(50):
        await api.store.run(audit.append, "system", "test.event", f"t{i}", {"i": i})
    await api.login("admin.a")
    resp = await api.client.get("/api/v1/audit.csv")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/csv")
    # streamed: no length known in advance
    assert "Content-Length" not in resp.headers
    rows = list(csv.reader(io.StringIO(await resp.text())))
    assert rows[0] == audit.CSV_HEADER
    ids = [int(r[0]) for r in rows[1:]]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    targets = [r[4] for r in rows[1:] if r[3] == "test.event"]
    assert targets == [f"t{i}" for i in range(50)]
    # the export itself is audited, after what it exported
    exported = await api.store.run(audit.list_events, action="audit.exported")
    assert exported and exported[0].id > max(ids)
    assert json.dumps(exported[0].detail)


async def test_the_throttle_is_keyed_on_the_client_address(api: Api) -> None:
    throttle = api.app[keys.ANONYMOUS_THROTTLE]
    for _ in range(20):
        assert throttle.take("192.0.2.1") == 0
    assert throttle.take("192.0.2.1") > 0
    assert throttle.take("192.0.2.2") == 0
