"""The CSO's pages: served under the strict CSP, every control named, and working in Chromium."""

from __future__ import annotations

import asyncio
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import RunningServer
from tests.support.browser import chromium
from web.control import hooks, keys
from web.store import accounts, safety

from .conftest import PASSWORD, SafetyApi

CSO_DIR = Path(__file__).resolve().parents[2] / "web" / "static" / "cso"


class _Controls(HTMLParser):
    """Collects form controls and whether each has an accessible name."""

    def __init__(self) -> None:
        super().__init__()
        self.labels: set[str] = set()
        self.controls: list[dict[str, str | None]] = []
        self.inline: list[str] = []
        self._open_button: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "label" and a.get("for"):
            self.labels.add(str(a["for"]))
        if tag in ("input", "select", "textarea", "button"):
            self.controls.append({"tag": tag, **a, "text": None})
            if tag == "button":
                self._open_button = self.controls[-1]
        if (
            tag == "style"
            or (tag == "script" and not a.get("src"))
            or "style" in a
            or any(k.startswith("on") for k in a)
        ):
            self.inline.append(tag)

    def handle_data(self, data: str) -> None:
        if self._open_button is not None and data.strip():
            self._open_button["text"] = data.strip()

    def handle_endtag(self, tag: str) -> None:
        if tag == "button":
            self._open_button = None


def test_every_control_on_the_cso_pages_has_an_accessible_name() -> None:
    for page in ("index.html", "host-checklist.html"):
        parser = _Controls()
        parser.feed((CSO_DIR / page).read_text(encoding="utf-8"))
        assert parser.inline == [], (page, parser.inline)  # the CSP allows no inline code
        assert parser.controls, page
        for control in parser.controls:
            named = (
                control.get("aria-label")
                or control.get("text")
                or control.get("id") in parser.labels
            )
            assert named, (page, control)


async def test_cso_pages_are_served(api: SafetyApi) -> None:
    resp = await api.client.get("/cso/")
    assert resp.status == 200 and "Hazard log" in await resp.text()
    assert resp.headers["Cache-Control"] == "no-store"
    resp = await api.client.get("/cso", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/cso/"
    for name in ("app.js", "host-checklist.js", "style.css", "host-checklist.html"):
        resp = await api.client.get(f"/cso/{name}")
        assert resp.status == 200, name
    status, doc = await api.call("GET", "/api/v1/openapi.json")
    assert {
        "/api/v1/safety/sign-offs",
        "/api/v1/safety/incidents.csv",
        "/api/v1/sessions/{session_id}/host-checklist",
    } <= set(doc["paths"])
    assert "put" in doc["paths"]["/api/v1/safety/workshop/{question_id}"]


@pytest.mark.browser
async def test_a_cso_logs_in_reviews_and_signs_off_in_chromium(server: RunningServer) -> None:
    store = server.app[keys.STORE]
    await store.run(
        lambda tx: accounts.create_user(
            tx, username="cso.browser", role="cso", password=PASSWORD, display_name="Dr Safety"
        )
    )
    await hooks.record_incident(server.app, "s_demo", "someone_came_in", "p_77aa", "pressed")
    async with chromium() as browser:
        page = await browser.new_page()
        problems: list[str] = []
        # every script, style sheet and API call the page makes must succeed under the CSP
        page.on(
            "console",
            lambda m: (
                problems.append(m.text) if m.type == "error" and "404" not in m.text else None
            ),
        )
        page.on(
            "response",
            lambda r: (
                problems.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico")
                else None
            ),
        )
        await page.goto(f"{server.base_url}/login")
        await page.get_by_label("Username").fill("cso.browser")
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Log in").click()
        await page.wait_for_url(f"{server.base_url}/cso/")
        await page.wait_for_selector("#log-body tr")
        rows = await page.locator("#log-body tr").count()
        assert rows >= 11
        assert "NOT signed off" in (await page.locator("#log-summary").text_content() or "")
        await page.wait_for_selector("#incident-body tr")
        assert "HAZ-011" in (await page.locator("#incident-body").text_content() or "")
        await page.get_by_label("Status").select_option("transferred")
        # the strict CSP forbids evaluated strings: poll the count instead
        for _ in range(100):
            if await page.locator("#log-body tr").count() < rows:
                break
            await asyncio.sleep(0.05)
        statuses = await page.locator("#log-body tr td:nth-child(5)").all_text_contents()
        assert statuses and set(statuses) == {"transferred"}
        await page.get_by_label("Comment (what you reviewed").fill("Reviewed in the browser")
        await page.get_by_role("button", name="Sign off this version").click()
        await page.wait_for_selector("#history-body tr")
        assert problems == [], problems
    (record,) = await store.run(safety.list_sign_offs)
    assert record.signed_by_username == "cso.browser"
    assert record.comment == "Reviewed in the browser"
