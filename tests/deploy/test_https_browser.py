"""Confide behind the shipped nginx configuration: TLS with a certificate the test makes, the
SNI router on the "443" port, Chromium joining through an invite link (page, WebSocket upgrade,
media), HSTS and Secure cookies, real client addresses, and no token in the proxy's log."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import RunningServer, free_port
from tests.support.browser import chromium, until, video_stats
from tests.support.member_page import agree
from tests.support.nginx import TEST_WEB_NAME, Nginx, running_nginx
from tests.support.session import PASSWORD, open_session
from tests.support.tls import Certificates, make_certificates
from web.app import create_app
from web.bot import Bot, ColorTrack, ToneTrack
from web.control import keys as control_keys
from web.settings import load_settings
from web.store import audit

pytestmark = pytest.mark.browser


@pytest.fixture
async def behind_nginx(tmp_path: Path) -> AsyncIterator[tuple[RunningServer, Nginx, Certificates]]:
    certs = make_certificates(tmp_path / "certs")
    port = free_port()
    with running_nginx(certs, confide_port=port) as nginx:
        settings = load_settings(
            tmp_path / "var", host="127.0.0.1", port=port, ice_loopback=True,
            public_base_url=nginx.base_url, trusted_proxies=["127.0.0.1/32"],
            media_processes=0,
        )
        app = create_app(settings)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            yield RunningServer(app, runner, settings), nginx, certs
        finally:
            await runner.cleanup()


async def _admit_when_waiting(host: Bot, participant_id: str) -> None:
    """Admit the member once the host's lobby list shows them waiting (past the checklist)."""
    for _ in range(300):
        lobbies = [m for m in host.messages if m.get("type") == "lobby"]
        if lobbies and any(w["id"] == participant_id and w.get("lobby_state") == "waiting"
                           for w in lobbies[-1].get("waiting", [])):
            await host.send({"type": "command", "name": "admit", "target": participant_id})
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the member never reached the lobby")


async def test_a_member_joins_through_nginx_over_https(
    behind_nginx: tuple[RunningServer, Nginx, Certificates],
) -> None:
    server, nginx, certs = behind_nginx
    s = open_session(server.app, nginx.base_url, members=(("Araminta Quillfeather", "Robin"),))
    link = s.links["Robin"]
    token = link.rsplit("/", 1)[1]
    robin_id = s.participant_ids["Robin"]
    assert link.startswith(f"https://{TEST_WEB_NAME}:{nginx.https_port}/i/")
    # the clinician's media client joins the server directly; the member comes through nginx
    direct = f"http://127.0.0.1:{server.settings.port}"
    host = Bot(f"{direct}/room#grant={s.host_grant(server.app)}",
               video=ColorTrack("green"), audio=ToneTrack())
    try:
        await host.connect()
        flags = (f"--host-resolver-rules=MAP {TEST_WEB_NAME} 127.0.0.1",
                 "--ignore-certificate-errors")
        async with chromium(extra_flags=flags) as browser:
            page = await browser.new_page()
            response = await page.goto(link)
            assert response is not None and response.status == 200
            assert response.url.startswith("https://")
            # HSTS: Confide believes nginx's X-Forwarded-Proto and says so
            assert response.headers["strict-transport-security"] == "max-age=63072000"
            await page.wait_for_selector("#btn-join")
            await page.click("#btn-join")
            await page.wait_for_function("() => window.confide && window.confide.stage === 'prejoin'",
                                         timeout=30_000)
            # the agreement, and where they are today (the group asks by default)
            await agree(page)
            await _admit_when_waiting(host, robin_id)
            await page.wait_for_function("() => window.confide.stage === 'room'", timeout=30_000)
            # signaling went through nginx's WebSocket upgrade, over TLS
            ws_url = await page.evaluate("() => window.confide.signaling.ws.url")
            assert ws_url.startswith(f"wss://{TEST_WEB_NAME}:{nginx.https_port}/rtc")

            async def decoding() -> Any:
                stats = await video_stats(page, host.me["id"])
                return stats is not None and stats["decoded"] > 20

            await until(decoding, 45.0)
            # and the clinician receives the member's camera
            await until(lambda: _true(any(
                p.video_frames > 10 for pid, p in host.peers.items() if pid == robin_id)), 30.0)
    finally:
        await host.leave()

    # the proxy's log: JSON lines, the invite path redacted, the upgrade logged, no token
    log = nginx.access_log()
    entries = [json.loads(line) for line in log.splitlines()]
    assert token not in log and "grant" not in log
    assert any(e["path"] == "/i/[redacted]" and e["status"] == 200 for e in entries)
    assert any(e["path"] == "/rtc" and e["status"] == 101 for e in entries)
    assert all(e["client"] == "127.0.0.1" for e in entries)


async def _true(value: object) -> bool:
    return bool(value)


async def test_through_nginx_the_client_address_cookies_and_headers(
    behind_nginx: tuple[RunningServer, Nginx, Certificates],
) -> None:
    server, nginx, certs = behind_nginx
    s = open_session(server.app, nginx.base_url, members=())
    url = f"https://127.0.0.1:{nginx.https_port}"
    headers = {"Host": TEST_WEB_NAME}
    # a client on another address, claiming yet another in its own X-Forwarded-For
    connector = aiohttp.TCPConnector(ssl=certs.client_context(), local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as http:
        kwargs: dict[str, Any] = {"server_hostname": TEST_WEB_NAME}
        async with http.post(url + "/api/v1/auth/login", headers={
            **headers, "X-Forwarded-For": "6.6.6.6"},
            json={"username": s.clinician.username, "password": PASSWORD}, **kwargs) as resp:
            assert resp.status == 200
            assert resp.headers["Strict-Transport-Security"] == "max-age=63072000"
            cookies = resp.headers.getall("Set-Cookie")
        assert cookies and all("Secure" in c for c in cookies)
        # metrics are not for the outside world
        async with http.get(url + "/metrics", headers=headers, **kwargs) as resp:
            assert resp.status == 404
    events = await server.app[control_keys.STORE].run(
        audit.list_events, limit=20, before_id=None, action="login.succeeded")
    assert [e.detail["address"] for e in events] == ["127.0.0.2"]
    # plain HTTP is only redirected, and its log line is redacted too
    async with aiohttp.ClientSession() as http, http.get(
        f"http://127.0.0.1:{nginx.http_port}/i/sometoken123", headers=headers,
        allow_redirects=False,
    ) as resp:
        assert resp.status == 301
        assert resp.headers["Location"].startswith(f"https://{TEST_WEB_NAME}")
    assert "sometoken123" not in nginx.access_log()
