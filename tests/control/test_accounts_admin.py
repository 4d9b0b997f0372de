"""Leavers and forgotten passwords: an admin disables an account or resets its password (API
and command line), both audited; login sessions expire and are purged."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import func, select

from web.control import keys, setup_control_plane
from web.control.admin_cli import _store
from web.settings import Settings, load_settings
from web.store import accounts, audit
from web.store.errors import AuthFailed
from web.store.models import LoginSession, LoginThrottle

from .conftest import PASSWORD, Api, Clock

NEW_PASSWORD = "a brand new long password"


async def _as(api: Api, username: str) -> tuple[str, str]:
    csrf = await api.login(username)
    cookie = api.client.session.cookie_jar.filter_cookies(api.client.make_url("/"))
    token = cookie["confide_session"].value
    api.client.session.cookie_jar.clear()
    return token, csrf


async def _call(api: Api, who: tuple[str, str], method: str, path: str,
                json: Any = None) -> tuple[int, Any]:
    token, csrf = who
    resp = await api.client.request(method, path, json=json, headers={
        "Cookie": f"confide_session={token}", "X-CSRF-Token": csrf})
    return resp.status, await resp.json()


def _sessions(tx: Any, user_id: str) -> int:
    return int(tx.db.scalar(select(func.count()).select_from(LoginSession)
                            .where(LoginSession.user_id == user_id)))


async def test_an_admin_disables_a_leaver_and_resets_a_password(api: Api) -> None:
    store = api.store
    admin = await store.run(accounts.create_user, username="it.admin", role="admin",
                            password=PASSWORD)
    leaver = await store.run(accounts.create_user, username="dr.leaver", role="clinician",
                             password=PASSWORD)
    as_admin = await _as(api, "it.admin")
    as_leaver = await _as(api, "dr.leaver")
    assert (await _call(api, as_leaver, "GET", "/api/v1/auth/me"))[0] == 200

    # disabled: the open session ends at once and no new login succeeds
    status, body = await _call(api, as_admin, "POST", f"/api/v1/users/{leaver.id}/disable", {})
    assert status == 200 and body["user"]["disabled"] is True
    assert (await _call(api, as_leaver, "GET", "/api/v1/auth/me"))[0] == 401
    resp = await api.client.post("/api/v1/auth/login",
                                 json={"username": "dr.leaver", "password": PASSWORD})
    assert resp.status == 401
    # nobody locks themselves out
    status, body = await _call(api, as_admin, "POST", f"/api/v1/users/{admin.id}/disable", {})
    assert status == 409 and body["error"]["code"] == "cannot_disable_self"
    # a clinician cannot do any of it
    other = await store.run(accounts.create_user, username="dr.other", role="clinician",
                            password=PASSWORD)
    as_other = await _as(api, "dr.other")
    status, _ = await _call(api, as_other, "POST", f"/api/v1/users/{admin.id}/disable", {})
    assert status == 403
    status, body = await _call(api, as_admin, "GET", "/api/v1/users")
    assert {u["username"]: u["disabled"] for u in body["users"]} == {
        "it.admin": False, "dr.leaver": True, "dr.other": False}

    # enabled again, then a password reset: old sessions end, old password fails
    await _call(api, as_admin, "POST", f"/api/v1/users/{leaver.id}/enable", {})
    as_leaver = await _as(api, "dr.leaver")
    status, body = await _call(api, as_admin, "POST", f"/api/v1/users/{leaver.id}/password",
                               {"password": "short"})
    assert status == 400 and body["error"]["code"] == "invalid_password"
    status, _ = await _call(api, as_admin, "POST", f"/api/v1/users/{leaver.id}/password",
                            {"password": NEW_PASSWORD})
    assert status == 200
    assert (await _call(api, as_leaver, "GET", "/api/v1/auth/me"))[0] == 401
    assert await store.run(_sessions, leaver.id) == 0
    resp = await api.client.post("/api/v1/auth/login",
                                 json={"username": "dr.leaver", "password": PASSWORD})
    assert resp.status == 401
    await api.login("dr.leaver", NEW_PASSWORD)

    # all of it in the audit log, by whom, and never the password
    events = await store.run(audit.all_events)
    done = [(e.actor, e.action, e.target) for e in events
            if e.action in ("user.disabled", "user.enabled", "user.password_reset")]
    assert done == [
        (f"user:{admin.id}", "user.disabled", leaver.id),
        (f"user:{admin.id}", "user.enabled", leaver.id),
        (f"user:{admin.id}", "user.password_reset", leaver.id),
    ]
    assert NEW_PASSWORD not in str([e.to_json() for e in events])
    assert other.id  # (created only to try)


def test_the_same_from_the_command_line(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    store = _store(settings)
    try:
        store.call(accounts.create_user, username="dr.cli", role="clinician", password=PASSWORD)
    finally:
        store.dispose()

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "web.cli", "admin", *args,
                               "--data-dir", str(tmp_path)],
                              input=stdin, capture_output=True, text=True, timeout=120)

    assert cli("disable-user", "--username", "dr.cli").returncode == 0
    store = _store(settings)
    try:
        with pytest.raises(AuthFailed):
            accounts.login(store, username="dr.cli", password=PASSWORD, address="cli")
    finally:
        store.dispose()
    assert cli("enable-user", "--username", "dr.cli").returncode == 0
    done = cli("reset-password", "--username", "dr.cli", stdin=NEW_PASSWORD + "\n")
    assert done.returncode == 0 and "their sessions have ended" in done.stdout
    assert cli("disable-user", "--username", "nobody.here").returncode == 2
    store = _store(settings)
    try:
        accounts.login(store, username="dr.cli", password=NEW_PASSWORD, address="cli")
        actions = [(e.actor, e.action) for e in store.call(audit.all_events)
                   if e.action.startswith("user.") and e.action != "user.created"]
        assert actions == [("cli", "user.disabled"), ("cli", "user.enabled"),
                           ("cli", "user.password_reset")]
    finally:
        store.dispose()


async def test_expired_login_sessions_stop_working_and_are_purged(
    api: Api, clock: Clock
) -> None:
    store = api.store
    user = await store.run(accounts.create_user, username="dr.tired", role="clinician",
                           password=PASSWORD)
    who = await _as(api, "dr.tired")
    for i in range(3):
        with pytest.raises(AuthFailed):
            await asyncio.to_thread(accounts.login, store, username="dr.tired", password="wrong password!",
                            address=f"192.0.2.{i}")
    clock.advance(hours=accounts.LOGIN_TTL.total_seconds() / 3600 + 1)
    assert (await _call(api, who, "GET", "/api/v1/auth/me"))[0] == 401
    # still in the table until purged; then gone, with the stale backoff rows
    assert await store.run(_sessions, user.id) == 1
    sessions, throttles = await store.run(accounts.purge_expired)
    assert sessions == 1 and throttles >= 1
    assert await store.run(_sessions, user.id) == 0
    assert not await store.run(lambda tx: tx.db.scalars(select(LoginThrottle)).all())


async def test_the_service_purges_on_its_own(
    aiohttp_client: Callable[..., Any], settings: Settings, clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import web.control as control

    monkeypatch.setattr(control, "PURGE_INTERVAL_S", 0.05)
    app = web.Application()
    setup_control_plane(app, settings)
    store = app[keys.STORE]
    store.clock = clock
    await asyncio.to_thread(store.migrate)
    user = await store.run(accounts.create_user, username="dr.gone", role="clinician",
                           password=PASSWORD)
    await asyncio.to_thread(accounts.login, store, username="dr.gone", password=PASSWORD,
                            address="x")
    clock.advance(hours=13)
    await aiohttp_client(app)  # starts the service's background work
    for _ in range(100):
        if await store.run(_sessions, user.id) == 0:
            break
        await asyncio.sleep(0.05)
    assert await store.run(_sessions, user.id) == 0
