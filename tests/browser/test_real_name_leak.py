"""A whole session whose members have distinctive real names: nothing a service user's browser
or bot receives, and nothing the server logs, contains a real name. Only the clinician's
roster responses do."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.browser import chromium, until
from tests.support.faces import astronaut_frames, write_y4m
from tests.support.member_page import agree
from tests.support.session import open_session
from web.bot import Bot, ColorTrack, ToneTrack

pytestmark = pytest.mark.browser

MEMBERS = (
    ("Zebedee Quillfeather", "Robin"),
    ("Ottoline Marchbanks", "Wren"),
    ("Peregrine Thistlewood", "Kit"),
)
# every part of every real name, as it might leak (whole, first, last)
NEEDLES = sorted({part.lower() for real, _ in MEMBERS for part in (real, *real.split())})


def _leaks(text: str) -> list[str]:
    low = text.lower()
    return [n for n in NEEDLES if n in low]


async def _stats_json(pcs: list[Any]) -> str:
    out = []
    for pc in pcs:
        if pc is not None:
            report = await pc.getStats()
            out.append({k: getattr(v, "__dict__", str(v)) for k, v in report.items()})
    return json.dumps(out, default=str)


async def test_no_real_name_reaches_service_users_or_logs(server, tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    video = write_y4m(tmp_path / "face.y4m", astronaut_frames("static", 15))
    s = open_session(server.app, server.base_url, members=MEMBERS)
    seen_by_users: list[str] = []  # everything service users received
    roster_bodies: list[str] = []  # what the clinician received from the roster API

    # unsafe=True: keep cookies set by an IP-address host (the loopback server)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        # the clinician signs in, gets a host grant and joins (a bot stands in for their browser)
        async with http.post(
            f"{s.base_url}/api/v1/auth/login",
            json={"username": s.clinician.username, "password": s.password},
        ) as r:
            assert r.status == 200
            csrf = (await r.json())["csrf_token"]
        async with http.post(
            f"{s.base_url}/api/v1/sessions/{s.session_id}/host-grant",
            json={},
            headers={"X-CSRF-Token": csrf},
        ) as r:
            granted = await r.json()
            assert r.status in (200, 201), granted
            host_grant = granted["grant"]
        host = Bot(
            f"{s.base_url}/room#grant={host_grant}", video=ColorTrack("red"), audio=ToneTrack()
        )
        await host.connect()

        # Wren joins with a bot: redeem the invite like the invite page does
        token = s.links["Wren"].rsplit("/", 1)[1]
        async with aiohttp.ClientSession() as user_http:
            async with user_http.post(
                f"{s.base_url}/api/v1/invites/redeem", json={"token": token}
            ) as r:
                body = await r.text()
                assert r.status == 200, body
                seen_by_users.append(body)
        wren = Bot(
            f"{s.base_url}/room#grant={json.loads(body)['grant']}",
            video=ColorTrack("green"),
            audio=ToneTrack(),
        )
        await wren.connect()
        await until(
            lambda: _async(
                any(m.get("type") == "self_state" and m.get("checklist") for m in wren.messages)
            ),
            10,
        )
        await wren.send(
            {
                "type": "command",
                "name": "confirm_checklist",
                "answers": [c["id"] for c in _checklist(wren)],
            }
        )

        async with chromium(video) as browser:
            page = await browser.new_page()
            page.on(
                "websocket",
                lambda ws: ws.on(
                    "framereceived", lambda payload: seen_by_users.append(str(payload))
                ),
            )

            async def on_response(resp: Any) -> None:
                try:
                    seen_by_users.append(await resp.text())
                except Exception:
                    pass  # bodies of redirects and media are not text

            page.on("response", lambda resp: asyncio.ensure_future(on_response(resp)))
            await page.goto(s.links["Robin"])
            await page.click("#btn-join")
            await until(
                lambda: page.evaluate("window.confide && window.confide.stage === 'prejoin'")
            )
            await agree(page)

            # the clinician looks at the roster (real names, for them alone) and admits everyone
            async with http.get(f"{s.base_url}/api/v1/sessions/{s.session_id}/roster") as r:
                roster_bodies.append(await r.text())
            await until(
                lambda: _async(
                    len(
                        [
                            m
                            for m in host.messages
                            if m.get("type") == "lobby" and len(m["waiting"]) == 2
                        ]
                    )
                    > 0
                ),
                20,
            )
            await host.send({"type": "command", "name": "admit_all", "id": "all"})
            await until(lambda: page.evaluate("window.confide.stage === 'room'"), 20)
            await wren.wait_admitted()

            # let media and stats flow: everyone sees everyone
            await until(
                lambda: _async(
                    host.peers.get(wren.me["id"]) is not None
                    and host.peers[wren.me["id"]].video_frames > 5
                ),
                30,
            )
            await until(
                lambda: page.evaluate(
                    "document.querySelectorAll('figure[data-participant-id] video').length >= 2"
                ),
                30,
            )
            await asyncio.sleep(2)
            await host.send(
                {
                    "type": "command",
                    "name": "chat",
                    "to": "all",
                    "text": "Welcome, everyone",
                    "id": "hello",
                }
            )
            await asyncio.sleep(1)
            seen_by_users.append(
                await page.evaluate(
                    """async () => {
                    const out = [];
                    for (const k of ['publisher', 'subscriber']) {
                      const c = window.confide[k];
                      const pc = c && c.pc;
                      if (pc) {
                        out.push(pc.localDescription && pc.localDescription.sdp);
                        out.push(pc.remoteDescription && pc.remoteDescription.sdp);
                        const st = await pc.getStats();
                        st.forEach((v) => out.push(JSON.stringify(v)));
                      }
                    }
                    out.push(document.documentElement.outerHTML);
                    out.push(JSON.stringify(sessionStorage));
                    out.push(document.title);
                    return out.join('\\n');
                }"""
                )
            )
            seen_by_users.append(json.dumps(wren.messages))
            seen_by_users.append(await _stats_json([wren.pub_pc, wren.sub_pc]))
            for pc in (wren.pub_pc, wren.sub_pc):
                if pc is not None:
                    seen_by_users.append(pc.localDescription.sdp + pc.remoteDescription.sdp)
            host_seen = json.dumps(host.messages) + await _stats_json([host.pub_pc, host.sub_pc])
            await page.click("#btn-leave")
        await wren.leave()
        await host.leave()

    server_logs = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    assert len(seen_by_users) > 20 and "Robin" in "".join(seen_by_users)
    assert not _leaks("\n".join(seen_by_users)), "a real name reached a service user"
    assert not _leaks(host_seen), "a real name travelled through the media plane"
    assert "joined" in server_logs  # the server's logs were captured
    assert not _leaks(server_logs), "a real name was logged"
    # the one place they belong: the clinician's own roster, which the test can see
    assert set(_leaks("".join(roster_bodies))) == set(NEEDLES)


def _checklist(bot: Bot) -> list[dict[str, str]]:
    for m in bot.messages:
        if m.get("type") == "self_state" and m.get("checklist"):
            return list(m["checklist"])
    raise AssertionError("no checklist offered")


async def _async(value: Any) -> Any:
    return value
