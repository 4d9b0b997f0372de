"""Measures in the waiting room, in real Chromium against a real server and store.

Robin, on a phone, says where she is, answers the PHQ-9 one question per screen (question 9
above 0), skips the GAD-7 with a reason and answers the WSAS; Wren, on a laptop, answers
whole questionnaires. The clinician sees totals, bands, the risk flag, where each member is
and their emergency contact before admitting anyone, and the host is alerted at once. When
Wren drops out and does not come back, the host's alert carries her contacts and location.
After the session Robin gives anonymous feedback. Every byte either member's browser
receives (WebSocket frames and HTTP bodies) is scanned: no score, answer, location or
contact of anyone reaches a member.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from playwright.async_api import BrowserContext, Page

from session_rules.lobby import RECONNECT_GRACE_S
from tests.support.browser import chromium, host_room_url
from tests.support.live_session import ManualClock
from tests.support.member_page import agree
from tests.support.session import OpenSession, open_session
from web import keys
from web.session_control import SessionController
from web.store import groups

pytestmark = pytest.mark.browser

WHERE = {"Robin": "Staying at my aunt's, 9 Quenby Mews", "Wren": "Library study room 4, Ostley"}
CONTACT = {"Robin": "07700 900123", "Wren": "wren.contact@example.org"}
EMERGENCY = {"Robin": "Aunt, Marguerite Fenwick, 07700 900321",
             "Wren": "Flatmate, Tobias Ainsworth, 07700 900654"}
RULES = {"measures": ["phq9", "gad7", "wsas"], "feedback": "anonymous"}
ROBIN_PHQ9 = [2, 1, 2, 1, 1, 2, 1, 0, 1]  # 11, Moderate; question 9 "Several days"
# what only the clinician may ever receive: data, and the keys of the payloads carrying it
# (the page's own scripts name alert kinds and fields too: the needles are as they appear in
# data, which the scripts never hold)
PRIVATE = [*WHERE.values(), *CONTACT.values(), "Marguerite", "Tobias", '"total"', '"band"',
           '"risk_flag"', '"kind":"risk_indicator"', '"kind": "risk_indicator"', '"details"',
           '"Moderate"', '"Mild"', '"Minimal"', '"Significant impairment"', "not_returned"]
# a member's answers as a list of numbers (the forms' answer labels are words)
ANSWERS = re.compile(r'"answers":\s*\[\s*(\d|null)')


def _record(page: Page, into: list[str]) -> None:
    """Keep every WebSocket frame and HTTP body this page receives."""
    page.on("websocket", lambda ws: ws.on("framereceived", lambda p: into.append(str(p))))

    async def body(resp: Any) -> None:
        try:
            into.append(await resp.text())
        except Exception:
            pass  # redirects and media have no text body

    page.on("response", lambda resp: asyncio.ensure_future(body(resp)))


def _watch(ctx: BrowserContext, problems: list[str]) -> BrowserContext:
    def on_page(page: Page) -> None:
        page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
        page.on("console", lambda msg: problems.append(f"console: {msg.text}")
                if "Content Security Policy" in msg.text else None)

    ctx.on("page", on_page)
    return ctx


async def _host_page(ctx: BrowserContext, s: OpenSession, into: list[str]) -> Page:
    url = await host_room_url(ctx, s)
    page = await ctx.new_page()
    _record(page, into)
    await page.goto(url)
    await _stage(page, "room")
    return page


async def _stage(page: Page, stage: str, timeout_s: float = 20.0) -> None:
    await page.wait_for_function("(s) => window.confide && window.confide.stage === s",
                                 arg=stage, timeout=timeout_s * 1000)


async def _heading(page: Page) -> str:
    await page.wait_for_function(
        "() => document.activeElement && document.activeElement.id === 'measures-screen-title'")
    return str(await page.text_content("#measures-screen-title"))


async def _button(page: Page, name: str) -> None:
    await page.get_by_role("button", name=name, exact=True).click()


async def _robin_on_a_phone(robin: Page) -> None:
    await agree(robin, location=WHERE["Robin"], wait_for="measures")
    assert await _heading(robin) == "A few questions before the session"
    await robin.click("#btn-measures-start")
    for number, value in enumerate(ROBIN_PHQ9, start=1):
        # one question per screen, the heading focused for a screen reader
        assert await _heading(robin) == f"PHQ-9: question {number} of 9"
        assert await robin.locator("fieldset.question").count() == 1
        if number == 1:
            await _button(robin, "Next")
            await robin.wait_for_function(
                "() => document.getElementById('measures-error').textContent"
                ".includes('choose an answer')")
        await robin.click(f'label[for="q-phq9_{number}-{value}"]')
        await _button(robin, "Next" if number < 9 else "Done")
    # the GAD-7 skipped, with a reason
    assert await _heading(robin) == "GAD-7: question 1 of 7"
    await _button(robin, "Skip this questionnaire")
    assert await _heading(robin) == "Skip the GAD-7?"
    await robin.click('label[for="skip-gad7-talk_first"]')
    await _button(robin, "Skip it")
    # the WSAS: retired ("not applicable" to work), then the rest
    for number, value in enumerate(["na", "4", "4", "2", "2"], start=1):
        assert await _heading(robin) == f"WSAS: question {number} of 5"
        await robin.click(f'label[for="q-wsas_{number}-{value}"]')
        await _button(robin, "Next" if number < 5 else "Done")
    assert await _heading(robin) == "Thank you"
    await robin.click("#btn-measures-done")
    await _stage(robin, "lobby")


async def _wren_on_a_laptop(wren: Page) -> None:
    await agree(wren, location=WHERE["Wren"], wait_for="measures")
    await wren.click("#btn-measures-start")
    # whole questionnaires on a wide screen
    assert await _heading(wren) == "Patient Health Questionnaire (PHQ-9)"
    assert await wren.locator("fieldset.question").count() == 9
    await _button(wren, "Continue")
    await wren.wait_for_function(
        "() => document.getElementById('measures-error').textContent.includes('question 1')")
    for form, count, value in (("phq9", 9, 0), ("gad7", 7, 1), ("wsas", 5, 2)):
        for number in range(1, count + 1):
            await wren.click(f'label[for="q-{form}_{number}-{value}"]')
        await _button(wren, "Continue")
    assert await _heading(wren) == "Thank you"
    await wren.click("#btn-measures-done")
    await _stage(wren, "lobby")


async def test_measures_in_the_waiting_room_reach_the_clinician_and_no_member(server) -> None:  # type: ignore[no-untyped-def]
    clock = ManualClock()
    server.app[keys.ROOMS].clock = clock
    s = open_session(server.app, server.base_url, rules=RULES)
    for name in ("Robin", "Wren"):
        s.store.call(groups.update_member, s.clinician, s.group_id, s.member_ids[name],
                     contact=CONTACT[name], emergency_contact=EMERGENCY[name])
    robin_id, wren_id = s.participant_ids["Robin"], s.participant_ids["Wren"]
    seen = {"Robin": [], "Wren": [], "host": []}  # type: dict[str, list[str]]
    problems: list[str] = []
    async with chromium() as browser:
        host_ctx = _watch(await browser.new_context(), problems)
        phone = _watch(await browser.new_context(
            viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True), problems)
        laptop = _watch(await browser.new_context(viewport={"width": 1280, "height": 900}),
                        problems)
        host = await _host_page(host_ctx, s, seen["host"])
        robin, wren = await phone.new_page(), await laptop.new_page()
        _record(robin, seen["Robin"])
        _record(wren, seen["Wren"])
        for page, name in ((robin, "Robin"), (wren, "Wren")):
            await page.goto(s.links[name])
            await page.click("#btn-join")
            await _stage(page, "prejoin")
        await asyncio.gather(_robin_on_a_phone(robin), _wren_on_a_laptop(wren))

        # the host is alerted at once, privately, of Robin's answer to question 9
        await host.wait_for_function(
            "(pid) => window.confide.alerts.some(a => a.kind === 'risk_indicator'"
            " && a.participant_id === pid)", arg=robin_id)
        # before admitting: totals, bands, the flag, where each is, their emergency contact
        robin_li = f'#lobby-list li[data-participant-id="{robin_id}"]'
        wren_li = f'#lobby-list li[data-participant-id="{wren_id}"]'
        for sel, needles in (
            (robin_li, ["Risk flag", "PHQ-9 11 Moderate", "GAD-7: skipped",
                        "talk about it with my clinician", "WSAS 12 Significant impairment",
                        WHERE["Robin"], EMERGENCY["Robin"], CONTACT["Robin"]]),
            (wren_li, ["PHQ-9 0 Minimal", "GAD-7 7 Mild", WHERE["Wren"], EMERGENCY["Wren"]]),
        ):
            await host.wait_for_function(
                "([sel, words]) => { const li = document.querySelector(sel);"
                " return li && words.every(w => li.textContent.includes(w)); }",
                arg=[sel, needles])
        assert "Risk flag" not in (await host.text_content(wren_li) or "")
        flagged = await host.text_content("#clinical-panel li.flagged")
        assert flagged and "Robin" in flagged
        await host.click("#btn-admit-all")
        await asyncio.gather(_stage(robin, "room"), _stage(wren, "room"))

        # Wren's page goes and does not come back: after the grace, how to reach her
        room = server.app[keys.ROOMS].rooms[s.session_id]
        assert isinstance(room.controller, SessionController)
        room.controller.return_poll_s = 0.1
        await wren.close()
        await host.wait_for_function(
            "(pid) => window.confide.alerts.some(a => a.kind === 'disconnected'"
            " && a.participant_id === pid)", arg=wren_id)
        clock.advance(RECONNECT_GRACE_S + 1)
        alert = "#alerts li.alert-not_returned"
        await host.wait_for_selector(alert)
        text = await host.text_content(alert) or ""
        assert all(w in text for w in ("Wren", WHERE["Wren"], CONTACT["Wren"], EMERGENCY["Wren"]))

        # the host ends the session; Robin gives anonymous feedback on the page she ends on
        await host.click("#btn-end")
        await host.click("#btn-end-confirm")
        await _stage(robin, "ended")
        await robin.wait_for_function(
            "() => document.activeElement && document.activeElement.id === 'after-title'")
        assert "will not know which answers are yours" in (
            await robin.text_content("#after-session") or "")
        await robin.click('label[for="fb-listened-4"]')
        await robin.click('label[for="fb-online-2"]')
        await robin.fill("#fb-comment", "Hard today, but glad I came.")
        await _button(robin, "Send")
        await robin.wait_for_function(
            "() => document.getElementById('after-title').textContent === 'Thank you'")
        await asyncio.sleep(0.5)  # the last responses' bodies
    resp_status, listed = await _clinician_feedback(server, s)
    assert resp_status == 200
    assert listed == [{"member_id": None, "pseudonym": None, "date": listed[0]["date"],
                       "answers": {"listened": "At all times", "online": "Sometimes"},
                       "comment": "Hard today, but glad I came."}]

    assert not problems, problems
    # the scan works: the clinician's page received all of it
    host_bytes = "\n".join(seen["host"])
    for needle in (WHERE["Robin"], EMERGENCY["Wren"], '"total"', '"kind":"risk_indicator"',
                   '"details"'):
        assert needle in host_bytes, needle
    assert ANSWERS.search(host_bytes)
    for name in ("Robin", "Wren"):
        received = "\n".join(seen[name])
        assert len(seen[name]) > 20 and '"self_state"' in received
        leaked = [n for n in PRIVATE if n in received]
        assert not leaked, f"{name}'s browser received {leaked}"
        assert not ANSWERS.search(received), f"{name}'s browser received answers"


async def _clinician_feedback(server: Any, s: OpenSession) -> tuple[int, Any]:
    import aiohttp

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(f"{s.base_url}/api/v1/auth/login", json={
                "username": s.clinician.username, "password": s.password}) as r:
            assert r.status == 200
        async with http.get(f"{s.base_url}/api/v1/sessions/{s.session_id}/feedback") as r:
            body = json.loads(await r.text())
            return r.status, body.get("feedback")
