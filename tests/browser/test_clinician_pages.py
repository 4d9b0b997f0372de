"""The clinician's pages in Chromium: log in, create a group, add members, schedule a session,
issue, copy and revoke links, and a clinician of another group sees none of it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from playwright.async_api import BrowserContext, ConsoleMessage, Page, Response, expect

from sfu.grants import verify_grant
from tests.conftest import RunningServer
from tests.support.browser import chromium
from web.control import keys
from web.store import Store, accounts, groups, invites, sessions

pytestmark = pytest.mark.browser

PASSWORD = "a long enough password for tests"
GROUP = "Thursday evening group"
MEMBERS = (
    ("Araminta Quillfeather", "Robin"),
    ("Barnaby Thistlewood", "Wren"),
    ("Cordelia Ravensworth", "Kit"),
)
# "Robin" with a Cyrillic o: looks the same on screen, so it must be refused
LOOK_ALIKE = "R\u043ebin"
TAKEN_MESSAGE = "this pseudonym is already used in the group, or looks too like one that is"
NOT_YOURS = "only this group's clinicians may do this"
CONTACT = "07700 900111"
EMERGENCY = "Brother, Osric Quillfeather, 07700 900222"

# installed before any page script runs (CDP, outside the page's CSP): every CSP violation
# is handed to the test through a binding
CSP_WATCH = """
window.__cspWatch = true;
document.addEventListener('securitypolicyviolation', (e) => {
  window.reportCsp(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


class Watch:
    """What went wrong in one browser context: console errors, CSP violations, HTTP errors."""

    def __init__(self) -> None:
        self.console: list[str] = []
        self.csp: list[str] = []
        self.http: list[tuple[int, str, str]] = []

    async def attach(self, context: BrowserContext) -> None:
        await context.expose_function("reportCsp", self._csp)
        await context.add_init_script(CSP_WATCH)

    def _csp(self, report: str) -> None:
        self.csp.append(report)

    def page(self, page: Page) -> Page:
        page.on("console", self._console)
        page.on("response", self._response)
        return page

    def _console(self, msg: ConsoleMessage) -> None:
        # a failed request is also logged to the console; those are judged exactly by
        # `http` (expected refusals are allowed there), everything else is a problem
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            self.console.append(msg.text)

    def _response(self, resp: Response) -> None:
        path = urlsplit(resp.url).path
        if resp.status >= 400 and path != "/favicon.ico":
            self.http.append((resp.status, resp.request.method, path))


async def _log_in(page: Page, base_url: str, username: str) -> None:
    await page.goto(f"{base_url}/login")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(f"{base_url}/clinician/")
    await expect(page.get_by_role("heading", name="My groups", level=1)).to_be_visible()


async def _new_context(browser: Any, base_url: str, watch: Watch) -> BrowserContext:
    context: BrowserContext = await browser.new_context(timezone_id="UTC", base_url=base_url)
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    await watch.attach(context)
    return context


async def test_a_clinician_runs_a_group_in_chromium_and_another_sees_none_of_it(
    server: RunningServer,
) -> None:
    store: Store = server.app[keys.STORE]
    base = server.base_url.rstrip("/")
    hale = await store.run(
        accounts.create_user,
        username="dr.hale",
        role="clinician",
        password=PASSWORD,
        display_name="Dr Hale",
    )
    other = await store.run(
        accounts.create_user, username="dr.other", role="clinician", password=PASSWORD
    )
    await store.run(groups.create_group, other, name="Monday group")
    starts = (datetime.now(UTC) + timedelta(hours=2)).replace(second=0, microsecond=0)

    async with chromium() as browser:
        watch = Watch()
        context = await _new_context(browser, base, watch)
        page = watch.page(await context.new_page())
        await _log_in(page, base, "dr.hale")
        await expect(page.get_by_text("Dr Hale (clinician)")).to_be_visible()
        await expect(page.locator("#group-list")).to_have_text("No groups yet.")

        # create the group on the page
        await page.get_by_label("New group name").fill(GROUP)
        await page.get_by_role("button", name="Create group").click()
        await expect(page.get_by_role("heading", name=GROUP, level=1)).to_be_visible()
        group_id = page.url.rsplit("/", 1)[1]
        assert re.fullmatch(r"g_[\w-]+", group_id), page.url

        # add the members with the pseudonyms agreed with them (Robin with her contacts)
        for real_name, pseudonym in MEMBERS:
            await page.get_by_label("Real name").fill(real_name)
            await page.get_by_label("Agreed pseudonym").fill(pseudonym)
            if pseudonym == "Robin":
                await page.get_by_label("Contact (phone or email)").fill(CONTACT)
                await page.get_by_label("Emergency contact (name and number)").fill(EMERGENCY)
            await page.get_by_role("button", name="Add member").click()
            await expect(page.get_by_role("cell", name=pseudonym, exact=True)).to_be_visible()
            # the form is cleared for the next member
            await expect(page.get_by_label("Real name")).to_have_value("")

        # a look-alike of a pseudonym in use is refused, with the reason on the page
        await page.get_by_label("Real name").fill("Desmond Oakenshaw")
        await page.get_by_label("Agreed pseudonym").fill(LOOK_ALIKE)
        await page.get_by_role("button", name="Add member").click()
        await expect(page.get_by_role("alert")).to_have_text(TAKEN_MESSAGE)
        # what was typed stays, to be corrected
        await expect(page.get_by_label("Agreed pseudonym")).to_have_value(LOOK_ALIKE)

        # the roster shows each real name beside its pseudonym, and nothing else
        roster = page.get_by_role("table", name="Roster")
        rows = roster.locator("tbody").get_by_role("row")
        await expect(rows).to_have_count(len(MEMBERS))
        for real_name, pseudonym in MEMBERS:
            row = rows.filter(has=page.get_by_role("cell", name=pseudonym, exact=True))
            contacts = [CONTACT, EMERGENCY] if pseudonym == "Robin" else ["", ""]
            await expect(row.get_by_role("cell")).to_have_text(
                [pseudonym, real_name, *contacts, "Change pseudonymEdit contacts"]
            )
            await expect(
                row.get_by_role("button", name=f"Change pseudonym of {pseudonym}")
            ).to_be_visible()
        assert "Desmond" not in (await roster.text_content() or "")

        # the group's measures and safeguarding settings
        settings = page.get_by_role("form", name="Measures and safeguarding")
        await expect(settings.get_by_label("Ask each member where they are before admission")
                     ).to_be_checked()
        await settings.get_by_label("PHQ-9 (before the session)").check()
        await settings.get_by_label("GAD-7 (before the session)").check()
        await settings.get_by_label("Asked, anonymous to me").check()
        await settings.get_by_label("Close the waiting room this many minutes after the start"
                                    ).fill("10")
        await settings.get_by_role("button", name="Save settings").click()
        await expect(page.get_by_role("status").filter(has_text="Settings saved.")).to_be_visible()
        (saved,) = [g for g in await store.run(groups.list_groups, hale) if g.id == group_id]
        assert (saved.rules["measures"], saved.rules["feedback"],
                saved.rules["late_join_cutoff_min"], saved.rules["ask_location"]) == (
            ["phq9", "gad7"], "anonymous", 10, True)
        export = page.get_by_role("link", name="Export this group's measures (CSV)")
        exported = await context.request.get(await export.get_attribute("href") or "")
        assert exported.ok and exported.headers["content-type"].startswith("text/csv")
        assert (await exported.text()).startswith("member_id,pseudonym,date,session_id,")

        # suggestions leave out the pseudonyms in use
        await page.get_by_role("button", name="Suggest pseudonyms").click()
        await expect(page.locator("#suggestions")).to_have_text(re.compile(r"^Suggestions: \w"))
        suggested = (await page.locator("#suggestions").text_content() or "").split(": ", 1)[1]
        assert not {"Robin", "Wren", "Kit"} & set(suggested.split(", ")), suggested

        # schedule a session (the browser's zone is UTC, so local time is UTC)
        await page.get_by_label("Start (your local time)").fill(starts.strftime("%Y-%m-%dT%H:%M"))
        await page.get_by_label("Duration in minutes").fill("75")
        await page.get_by_role("button", name="Schedule").click()
        sessions_table = page.get_by_role("table", name="Sessions")
        session_rows = sessions_table.locator("tbody").get_by_role("row")
        await expect(session_rows).to_have_count(1)
        await expect(session_rows.get_by_role("cell").nth(1)).to_have_text("75")
        await expect(session_rows.get_by_role("cell").nth(2)).to_have_text("scheduled")
        await sessions_table.get_by_role("link", name=re.compile("^Open session of ")).click()
        await expect(page.get_by_role("heading", name=re.compile("^Session on "))).to_be_visible()
        session_id = page.url.rsplit("/", 1)[1]
        (booked,) = await store.run(sessions.list_sessions, hale, group_id)
        assert (booked.id, booked.starts_at, booked.duration_min) == (session_id, starts, 75)
        await expect(page.locator("#session-summary")).to_have_text("75 minutes, status: scheduled")

        # issue a link for everyone: each shown once, in its row
        invite_table = page.get_by_role("table", name="Invite links")
        await page.get_by_role("button", name="Issue links for everyone").click()
        invite_rows = invite_table.locator("tbody").get_by_role("row")
        await expect(invite_rows).to_have_count(len(MEMBERS))
        links: dict[str, str] = {}
        for _, pseudonym in MEMBERS:
            row = invite_rows.filter(has=page.get_by_role("cell", name=pseudonym, exact=True))
            await expect(row.get_by_role("cell").nth(1)).to_have_text("active")
            links[pseudonym] = await row.get_by_role("cell").nth(2).inner_text()
            assert re.fullmatch(rf"{re.escape(base)}/i/[\w-]{{40,}}", links[pseudonym])
        assert len(set(links.values())) == len(MEMBERS)

        # copy Robin's link: it is on the clipboard and the page says so
        await page.get_by_role("button", name="Copy link for Robin").click()
        await expect(page.get_by_role("alert")).to_have_text("Link for Robin copied.")
        assert await page.evaluate("navigator.clipboard.readText()") == links["Robin"]

        # revoke Wren's link: the row says revoked and offers no second revoke
        await page.get_by_role("button", name="Revoke link for Wren").click()
        wren = invite_rows.filter(has=page.get_by_role("cell", name="Wren", exact=True))
        await expect(wren.get_by_role("cell").nth(1)).to_have_text("revoked")
        await expect(page.get_by_role("button", name="Revoke link for Wren")).to_have_count(0)
        await expect(page.get_by_role("button", name="Issue a new link for Wren")).to_be_visible()
        await expect(page.get_by_role("button", name="Revoke link for Robin")).to_be_visible()

        # the host's way in
        checklist = page.get_by_role("link", name="Pre-session checklist")
        await expect(checklist).to_be_visible()
        assert await checklist.get_attribute("href") == f"/cso/host-checklist.html#{session_id}"
        host_button = page.get_by_role("button", name="Enter the room as host")
        await expect(host_button).to_be_visible()
        async with (
            page.expect_response(lambda r: r.url.endswith("/host-grant")) as granted,
            context.expect_page() as opened,
        ):
            await host_button.click()
        room_page = await opened.value
        await room_page.wait_for_url(lambda url: urlsplit(url).path == "/room")
        answer = await (await granted.value).json()
        grant = verify_grant(answer["grant"], server.app[keys.CONTROL_SETTINGS].grant_secret)
        assert (grant.room, grant.role, grant.display_name) == (session_id, "host", "Dr Hale")
        await room_page.close()

        assert await page.evaluate("window.__cspWatch") is True  # the CSP watch was running
        assert watch.csp == [], watch.csp
        assert watch.console == [], watch.console
        # the one refusal the clinician met was the look-alike pseudonym
        assert watch.http == [(409, "POST", f"/api/v1/groups/{group_id}/members")], watch.http
        await context.close()

        # a clinician of another group: the page shows nothing of it, the API refuses
        watch2 = Watch()
        context2 = await _new_context(browser, base, watch2)
        page2 = watch2.page(await context2.new_page())
        await _log_in(page2, base, "dr.other")
        await expect(page2.get_by_role("link", name="Monday group")).to_be_visible()
        await expect(page2.get_by_role("link", name=GROUP)).to_have_count(0)
        for route in (f"#/groups/{group_id}", f"#/sessions/{session_id}"):
            # a fresh load each time, so nothing is left over from a view before
            probe = watch2.page(await context2.new_page())
            await probe.goto(f"{base}/clinician/{route}")
            await expect(probe.get_by_role("alert")).to_have_text(NOT_YOURS)
            for view in ("groups-view", "group-view", "session-view"):
                await expect(probe.locator(f"#{view}")).to_be_hidden()
            html = await probe.content()
            for secret in (GROUP, *(part for m in MEMBERS for part in m), *links.values()):
                assert secret not in html, (route, secret)
            await probe.close()
        # the page's own calls were refused, nothing else failed
        assert watch2.http and {s for s, _, _ in watch2.http} == {403}, watch2.http
        cookies = {c["name"]: c["value"] for c in await context2.cookies()}
        csrf = {"X-CSRF-Token": cookies["confide_csrf"]}
        robin_invite = next(
            i
            for i in await store.run(invites.list_for_session, hale, session_id)
            if i.pseudonym == "Robin"
        )
        codes: set[str] = set()
        for method, path, headers in (
            ("GET", f"/api/v1/groups/{group_id}", {}),
            ("GET", f"/api/v1/groups/{group_id}/members", {}),
            ("GET", f"/api/v1/groups/{group_id}/sessions", {}),
            ("GET", f"/api/v1/sessions/{session_id}", {}),
            ("GET", f"/api/v1/sessions/{session_id}/invites", {}),
            ("POST", f"/api/v1/invites/{robin_invite.id}/revoke", csrf),
        ):
            resp = await context2.request.fetch(
                path, method=method, headers=headers, data={} if method == "POST" else None
            )
            body = await resp.text()
            assert resp.status in (403, 404), (method, path, resp.status, body)
            assert "Quillfeather" not in body and "Robin" not in body, body
            codes.add((await resp.json())["error"]["code"])
        # refused for not being the group's clinician (not for a missing CSRF token)
        assert codes <= {"not_group_clinician", "invite_not_found"}, codes
        assert watch2.csp == [], watch2.csp
        assert watch2.console == [], watch2.console
        await context2.close()

    # the store agrees with what the page showed; the other clinician changed nothing
    listed = await store.run(invites.list_for_session, hale, session_id)
    states = {i.pseudonym: i.state for i in listed}
    assert states == {"Robin": "active", "Wren": "revoked", "Kit": "active"}
    stored = await store.run(groups.group_roster, hale, group_id)
    assert len(stored) == len(MEMBERS)
    # the links are real: the revoked one is refused as revoked, the copied one is live but
    # not open yet (the session starts in two hours)
    async with aiohttp.ClientSession() as http:
        for pseudonym, status, code in (
            ("Wren", 410, "invite_revoked"),
            ("Robin", 403, "invite_not_yet_valid"),
        ):
            token = links[pseudonym].rsplit("/", 1)[1]
            async with http.post(f"{base}/api/v1/invites/redeem", json={"token": token}) as answer:
                assert answer.status == status, await answer.text()
                assert (await answer.json())["error"]["code"] == code
