"""Pre-join in real Chromium when the camera or microphone will not start: refused, missing,
busy, or a page opened over plain HTTP on a non-local address. Each gets plain words and a
way forward (microphone only, or text only), and no page ever shows an error code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from tests.support.browser import chromium, until
from tests.support.faces import astronaut_frames, write_y4m
from tests.support.member_page import agree
from tests.support.session import OpenSession, open_session
from tests.support.wire_client import WireClient
from web import keys

pytestmark = pytest.mark.browser

MEMBERS = (
    ("Araminta Quillfeather", "Robin"),
    ("Barnaby Thistlewood", "Wren"),
    ("Cordelia Ravensworth", "Kit"),
    ("Dorian Applethwaite", "Sol"),
)
# a refusal code, a browser error name or a server message in what a person can read
CODE_LIKE = re.compile(r"\b[a-z]+_[a-z_]+\b|Error\b|\bcode\b")
# this Chromium's fake devices cannot be made busy: the camera answers as a busy device does
# (the DOMException a browser raises when another app holds the camera)
BUSY_CAMERA = """
(() => {
  const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (c) => {
    if (c && c.video) throw new DOMException("Could not start video source", "NotReadableError");
    return real(c);
  };
})();
"""


@pytest.fixture(scope="module")
def face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "astronaut.y4m"
    return write_y4m(path, astronaut_frames("static", 15), fps=15)


async def _readable_text(page: Page) -> str:
    return str(await page.evaluate("() => document.body.innerText"))


async def _stage(page: Page, stage: str) -> None:
    await page.wait_for_function(
        "(s) => window.confide && window.confide.stage === s", arg=stage, timeout=20000
    )


async def _to_prejoin(browser: Browser, link: str) -> Page:
    page = await (await browser.new_context()).new_page()
    await page.goto(link)
    await page.click("#btn-join")
    await _stage(page, "prejoin")
    return page


async def _check_devices(page: Page, expect: str) -> str:
    await page.click("#btn-preview")
    await page.wait_for_function(
        "(t) => document.getElementById('device-status').textContent.includes(t)", arg=expect
    )
    return str(await page.text_content("#device-status"))


async def _agree_and_enter(page: Page, host: WireClient, pid: str) -> None:
    # the agreement, and where they are today (the group asks by default)
    await agree(page)
    reply = await host.command("admit", target=pid)
    assert reply["type"] == "ok", reply
    await _stage(page, "room")


def _published(server, s: OpenSession, name: str) -> set[str]:  # type: ignore[no-untyped-def]
    room = server.app[keys.ROOMS].rooms[s.session_id]
    return {pub.kind for pub in room.participants[s.participant_ids[name]].publications.values()}


async def test_prejoin_device_failures_have_a_way_forward(server, face_video: Path) -> None:  # type: ignore[no-untyped-def]
    s = open_session(server.app, server.base_url, members=MEMBERS)
    host = WireClient(server.base_url, "host")
    joined = await host.join(s.host_grant(server.app))
    assert joined["type"] == "joined", joined
    readable: dict[str, str] = {}
    try:
        # refused: no fake-UI flag, so headless Chromium denies both devices; text only
        async with chromium(face_video, without_flags=("--use-fake-ui-for-media-stream",)) as b:
            robin = await _to_prejoin(b, s.links["Robin"])
            said = await _check_devices(robin, "not allowing")
            assert "Check again" in said
            assert await robin.text_content("#btn-preview") == "Check again"
            readable["refused, pre-join"] = await _readable_text(robin)
            await _agree_and_enter(robin, host, s.participant_ids["Robin"])
            await robin.wait_for_function("() => window.confide.selfState.text_only === true")
            await robin.wait_for_function(
                "() => document.getElementById('notice').textContent.includes('by text')"
            )
            await robin.fill("#chat-input", "here by text")
            await robin.click("#chat-send")
            await host.wait_for(lambda m: m.get("type") == "chat" and m["text"] == "here by text")
            assert _published(server, s, "Robin") == set()
            readable["refused, room"] = await _readable_text(robin)

        # no camera (fake devices, none of them a camera): joins with the microphone only
        no_camera = ("--use-fake-device-for-media-stream=device-count=0",)
        async with chromium(extra_flags=no_camera) as b:
            wren = await _to_prejoin(b, s.links["Wren"])
            said = await _check_devices(wren, "microphone only")
            assert "could not find a camera" in said
            readable["no camera, pre-join"] = await _readable_text(wren)
            await _agree_and_enter(wren, host, s.participant_ids["Wren"])

            async def audio_only() -> bool:
                return _published(server, s, "Wren") == {"audio"}

            await until(audio_only, 20.0)
            assert not await wren.evaluate("() => window.confide.selfState.text_only")
            readable["no camera, room"] = await _readable_text(wren)

            # camera busy in another app: told to close it and check again
            context = await b.new_context()
            await context.add_init_script(BUSY_CAMERA)
            kit = await context.new_page()
            await kit.goto(s.links["Kit"])
            await kit.click("#btn-join")
            await _stage(kit, "prejoin")
            said = await _check_devices(kit, "in use by another app")
            assert "microphone only" in said
            readable["camera busy, pre-join"] = await _readable_text(kit)

        # plain HTTP on an address that is not this machine: no device can work, so the page
        # says why at once and has already chosen text only
        insecure = ("--host-resolver-rules=MAP confide.test 127.0.0.1",)
        async with chromium(face_video, extra_flags=insecure) as b:
            link = s.links["Sol"].replace("127.0.0.1", "confide.test")
            assert link.startswith("http://confide.test:")
            sol = await _to_prejoin(b, link)
            assert not await sol.evaluate("() => window.isSecureContext")
            await sol.wait_for_function(
                "() => document.getElementById('device-status').textContent.includes('https')"
            )
            assert await sol.is_disabled("#btn-preview")
            assert await sol.is_checked("#prejoin-text-only")
            readable["plain HTTP, pre-join"] = await _readable_text(sol)
            await _agree_and_enter(sol, host, s.participant_ids["Sol"])
            await sol.wait_for_function("() => window.confide.selfState.text_only === true")
            readable["plain HTTP, room"] = await _readable_text(sol)
    finally:
        await host.close()

    # never an error code, a browser error name or a server message on any of these screens
    for where, text in readable.items():
        assert not CODE_LIKE.search(text), (where, CODE_LIKE.findall(text))
