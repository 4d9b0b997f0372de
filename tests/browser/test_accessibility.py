"""Accessibility in real Chromium: axe-core on every page and stage, a keyboard-only walk from
the link to leaving, focus on each new stage's heading, and each event announced once. The
same walk has the host write to the waiting room (one person, then everyone) and a waiting
member answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page

from tests.support.axe import axe_violations, blocking, save_report
from tests.support.browser import chromium
from tests.support.faces import astronaut_frames, write_y4m
from tests.support.member_page import agree
from tests.support.session import PASSWORD, OpenSession, open_session
from web.control import keys
from web.store import accounts

pytestmark = pytest.mark.browser

# what a screen reader would be handed: every text change inside a live region, as it happens
ANNOUNCEMENTS = """
window.__announced = [];
new MutationObserver((changes) => {
  const LIVE = '[aria-live]:not([aria-live="off"]), [role="status"], [role="alert"], [role="log"]';
  for (const c of changes) {
    const el = c.target.nodeType === 1 ? c.target : c.target.parentElement;
    const region = el && el.closest(LIVE);
    if (!region || region.closest("[hidden]")) continue;
    const text = c.type === "characterData" ? c.target.data
      : [...c.addedNodes].map((n) => n.textContent).join(" ");
    if (text.trim()) window.__announced.push({ region: region.id || region.className, text });
  }
}).observe(document, { subtree: true, childList: true, characterData: true });
"""


@pytest.fixture(scope="module")
def face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "astronaut.y4m"
    return write_y4m(path, astronaut_frames("static", 15), fps=15)


async def _stage(page: Page, stage: str) -> None:
    await page.wait_for_function(
        "(s) => window.confide && window.confide.stage === s", arg=stage, timeout=20000
    )


async def _focused(page: Page) -> str:
    return str(
        await page.evaluate(
            "() => { const a = document.activeElement; return a ? (a.id || a.tagName) : ''; }"
        )
    )


async def _tab_to(page: Page, element_id: str, limit: int = 60) -> None:
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await _focused(page) == element_id:
            return
    raise AssertionError(f"Tab never reached #{element_id}")


async def _context(browser: Browser) -> BrowserContext:
    # axe is added by the test; the pages' CSP forbids that, rightly, for everything else
    return await browser.new_context(bypass_csp=True)


async def _log_in(page: Page, base_url: str, username: str) -> None:
    await page.goto(f"{base_url}/login")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()


async def _host_room(ctx: BrowserContext, s: OpenSession) -> Page:
    page = await ctx.new_page()
    await _log_in(page, s.base_url, s.clinician.username)
    await page.wait_for_url(f"{s.base_url}/clinician/")
    csrf = next(c["value"] for c in await ctx.cookies() if c["name"] == "confide_csrf")
    resp = await ctx.request.post(
        f"{s.base_url}/api/v1/sessions/{s.session_id}/host-grant",
        data={},
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.ok, await resp.text()
    room = await ctx.new_page()
    await room.goto(f"{s.base_url}/room#grant={(await resp.json())['grant']}")
    await _stage(room, "room")
    return room


async def _admit(host: Page, pid: str) -> None:
    button = f'#lobby-list li[data-participant-id="{pid}"] button[data-action="admit"]'
    await host.wait_for_selector(button)
    await host.click(button)


async def test_axe_keyboard_focus_and_announcements(server, face_video: Path) -> None:  # type: ignore[no-untyped-def]
    s = open_session(server.app, server.base_url)
    store = server.app[keys.STORE]
    store.call(accounts.create_user, username="cso.axe", role="cso", password=PASSWORD)
    results: dict[str, list[dict[str, Any]]] = {}

    async def check(name: str, page: Page) -> None:
        results[name] = await axe_violations(page)

    async with chromium(face_video) as browser:
        host_ctx = await _context(browser)
        host = await _host_room(host_ctx, s)
        await check("room (host)", host)
        clinician = await host_ctx.new_page()
        await clinician.goto(f"{s.base_url}/clinician/")
        await clinician.wait_for_selector("#groups-title")
        await clinician.get_by_role("link", name="Thursday group").first.click()
        await clinician.wait_for_selector("#group-title:not(:empty)")
        await check("clinician: group", clinician)
        # the clinician sets the names-hidden and sound-only rules for the group's next rooms
        await clinician.check("#rule-names-hidden")
        await clinician.check("#rule-audio-only")
        await clinician.click("#rules-save")
        await clinician.wait_for_selector("#rules-status:has-text('Saved')")
        resp = await host_ctx.request.get(f"{s.base_url}/api/v1/groups/{s.group_id}")
        rules = (await resp.json())["group"]["rules"]
        assert rules["names_hidden"] is True and rules["audio_only_default"] is True
        assert rules["chat_enabled"] is True  # the other rules kept

        # Robin, by keyboard alone, from the link to leaving
        robin_ctx = await _context(browser)
        await robin_ctx.add_init_script(ANNOUNCEMENTS)
        robin = await robin_ctx.new_page()
        await robin.goto(s.links["Robin"])
        await robin.wait_for_selector("#btn-join")
        await check("invite", robin)
        await _tab_to(robin, "btn-join")
        await robin.keyboard.press("Enter")
        await _stage(robin, "prejoin")
        await robin.wait_for_selector("#checklist-items input")
        assert await _focused(robin) == "prejoin-title"
        # the group asks where they are today; the field is part of what is checked
        await robin.wait_for_selector("#location-field", state="visible")
        await check("pre-join", robin)
        for _ in range(40):
            await robin.keyboard.press("Tab")
            focused = await _focused(robin)
            if focused.startswith("agree-") and not await robin.is_checked(f"#{focused}"):
                await robin.keyboard.press("Space")
            if focused == "prejoin-location" and not await robin.input_value("#prejoin-location"):
                await robin.keyboard.type("At home, in the kitchen")
            if focused == "btn-agree" and await robin.is_enabled("#btn-agree"):
                await robin.keyboard.press("Enter")
                break
        else:
            raise AssertionError("the agreement could not be completed by keyboard")
        await _stage(robin, "lobby")
        assert await _focused(robin) == "lobby-title"

        # talking to people who wait: Wren is still reading the agreement, Robin waits
        wren_ctx = await _context(browser)
        wren = await wren_ctx.new_page()
        await wren.goto(s.links["Wren"])
        await wren.click("#btn-join")
        await _stage(wren, "prejoin")
        robin_id = s.participant_ids["Robin"]
        await host.wait_for_selector(f'#lobby-msg-to option[value="{robin_id}"]', state="attached")
        await host.select_option("#lobby-msg-to", robin_id)
        await host.fill("#lobby-msg-input", "Robin, we are nearly ready for you")
        await host.click("#lobby-msg-send")
        await robin.wait_for_selector("#lobby-log li:has-text('nearly ready for you')")
        await host.select_option("#lobby-msg-to", "")
        await host.fill("#lobby-msg-input", "We will start in five minutes")
        await host.click("#lobby-msg-send")
        await robin.wait_for_selector("#lobby-log li:has-text('five minutes')")
        await wren.wait_for_selector("#prejoin-note:has-text('five minutes')")
        # the word to Robin alone reached Robin alone
        assert "nearly ready" not in await wren.content()
        # Robin answers, privately, by keyboard
        await _tab_to(robin, "lobby-input")
        await robin.keyboard.type("Thank you, I am here")
        await robin.keyboard.press("Enter")
        await host.wait_for_selector("#chat-log .chat-msg.private:has-text('I am here')")
        await robin.wait_for_selector("#lobby-log li:has-text('I am here')")
        await check("lobby", robin)
        await _admit(host, s.participant_ids["Robin"])
        await _stage(robin, "room")
        assert await _focused(robin) == "room-title"
        await check("room (member)", robin)

        # Wren takes part by text only; what Wren writes is announced to Robin once
        await wren.check("#prejoin-text-only")
        await agree(wren)
        await _admit(host, s.participant_ids["Wren"])
        await _stage(wren, "room")
        await wren.wait_for_function("() => window.confide.selfState.text_only === true")
        await check("room (text only)", wren)
        said = "I would rather type today"
        await robin.wait_for_selector(f'figure[data-participant-id="{s.participant_ids["Wren"]}"]')
        await wren.fill("#chat-input", said)
        await wren.click("#chat-send")
        tile = f'figure[data-participant-id="{s.participant_ids["Wren"]}"] .tile-messages li'
        await robin.wait_for_selector(tile)
        await robin.wait_for_timeout(300)
        heard = await robin.evaluate(
            "(t) => window.__announced.filter((a) => a.text.includes(t))", said
        )
        assert len(heard) == 1, heard

        # the host sees each member's connection, from getStats, on their tile
        await host.wait_for_function(
            "(pid) => { const m = window.confide.link.members[pid];"
            " return m && m.grade !== 'unknown' && m.fps !== null; }",
            arg=robin_id,
            timeout=20000,
        )
        badge = f'figure[data-participant-id="{robin_id}"] .badges'
        assert (await host.get_attribute(badge, "data-link") or "").startswith("link ")
        await robin.wait_for_selector("#link-quality:not([hidden])")

        await _tab_to(robin, "btn-leave")
        await robin.keyboard.press("Enter")
        await _stage(robin, "ended")
        assert await _focused(robin) == "ended-title"
        await check("ended", robin)

        # a page opened without a link: the error stage
        lost = await (await _context(browser)).new_page()
        await lost.goto(f"{s.base_url}/room")
        await _stage(lost, "error")
        await check("error", lost)

        # the staff pages and the statement
        staff_ctx = await _context(browser)
        staff = await staff_ctx.new_page()
        await staff.goto(f"{s.base_url}/login")
        await check("login", staff)
        await _log_in(staff, s.base_url, "cso.axe")
        await staff.wait_for_url(f"{s.base_url}/cso/")
        await staff.wait_for_selector("#log-body tr")
        await check("clinical safety", staff)
        await staff.goto(f"{s.base_url}/cso/host-checklist.html#{s.session_id}")
        await staff.wait_for_load_state("networkidle")
        await check("host checklist", staff)
        await clinician.goto(f"{s.base_url}/clinician/")
        await clinician.wait_for_selector("#groups-title")
        await check("clinician: groups", clinician)
        await staff.goto(f"{s.base_url}/accessibility")
        await check("accessibility statement", staff)
        assert "WCAG 2.2" in await staff.inner_text("main")

    report = save_report("axe.json", results)
    worst = {page: blocking(found) for page, found in results.items() if blocking(found)}
    assert not worst, f"serious or critical accessibility findings (all in {report}): {worst}"
