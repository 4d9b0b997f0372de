"""A member's page when the connection goes, and when the browser holds the group's sound
back, in real Chromium.

For the connection, a real `confide serve` is killed and started again, and the page's clock
is Playwright's: a minute, or five, of trying to reconnect passes in a moment, while the
sockets, the server and the media are real. For the sound, Chromium is run as a phone's
browser behaves: sound starts only after a person's tap on the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeout

from tests.support.browser import chromium, host_room_url
from tests.support.faces import astronaut_frames, write_y4m
from tests.support.live import ConfideProcess, session_in, wait_for
from tests.support.member_page import agree
from web.bot import Bot, ToneTrack
from web.store import live_state
from web.store.db import sha256_hex

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# as a phone does: sound starts only after a tap on the page showing it
SOUND_NEEDS_A_TAP = "--autoplay-policy=document-user-activation-required"
SOUND_BY_ITSELF = "--autoplay-policy=no-user-gesture-required"


@pytest.fixture(scope="module")
def face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "astronaut.y4m"
    return write_y4m(path, astronaut_frames("static", 15), fps=15)


async def _js(page: Page, expr: str) -> Any:
    return await page.evaluate(f"() => ({expr})")


# polled on an interval, not on animation frames: those belong to the page's clock, which the
# test stops and jumps
POLL_MS = 100


async def _where(page: Page) -> str:
    """What the page shows and has been told, for a failure's message."""
    return str(await _js(page, "{stage: window.confide.stage, joins: window.confide.joins, "
                               "reconnects: window.confide.reconnects, "
                               "errors: window.confide.errors, "
                               "status: document.getElementById('status').textContent, "
                               "banner: document.getElementById('reconnect-text').textContent}"))


async def _until(page: Page, expr: str, arg: object, timeout_s: float) -> None:
    try:
        await page.wait_for_function(expr, arg=arg, timeout=timeout_s * 1000, polling=POLL_MS)
    except PlaywrightTimeout:
        raise AssertionError(f"{expr} ({arg}) not in {timeout_s} s: {await _where(page)}") from None


async def _stage(page: Page, stage: str, timeout_s: float = 30.0) -> None:
    await _until(page, "(s) => window.confide && window.confide.stage === s", stage, timeout_s)


async def _joins(page: Page, at_least: int, timeout_s: float = 30.0) -> None:
    await _until(page, "(n) => window.confide.joins >= n", at_least, timeout_s)


async def _kept(page: Page, store: Any, session_id: str, pid: str) -> None:
    """Until the store holds the member as admitted with the page's current reconnect token:
    the room writes behind, and a kill a moment after an admission would lose it (the
    restart tests show what is kept once written)."""
    token = await _js(page, "sessionStorage.getItem('confide.resume')")
    assert token

    def written() -> bool:
        room = store.call(live_state.load_room, session_id)
        people = {p.pid: p for p in room.participants} if room else {}
        return bool(room and pid in people and people[pid].state.value == "admitted"
                    and room.resume_hashes.get(pid) == sha256_hex(token))

    await wait_for(written, 15, "the member's place in the store")


async def _text(page: Page, selector: str) -> str:
    return (await page.text_content(selector)) or ""


async def test_a_lost_connection_says_what_is_happening_and_never_ends_in_a_dead_end(  # type: ignore[no-untyped-def]
    tmp_path, face_video: Path
) -> None:
    server = ConfideProcess(tmp_path / "data")
    await server.start()
    s, store = session_in(server, members=[("Araminta Quillfeather", "Robin")])
    robin_id = s.participant_ids["Robin"]
    try:
        async with chromium(face_video) as browser:
            host_ctx, robin_ctx = [await browser.new_context() for _ in range(2)]
            host = await host_ctx.new_page()
            await host.goto(await host_room_url(host_ctx, s))
            await _stage(host, "room")

            robin = await robin_ctx.new_page()
            await robin.clock.install()
            await robin.goto(s.links["Robin"])
            await robin.click("#btn-join")
            await _stage(robin, "prejoin")
            # Robin takes part by text (the page is the same when it sends camera and sound)
            await robin.check("#prejoin-text-only")
            # the agreement, and where they are today (the group asks by default)
            await agree(robin)
            entry = f'#lobby-list li[data-participant-id="{robin_id}"]'
            await host.wait_for_selector(entry)
            await host.click(f'{entry} button[data-action="admit"]')
            await _stage(robin, "room")

            # --- the connection goes: the page says what is happening, in words
            joins = await _js(robin, "window.confide.joins")
            await _kept(robin, store, s.session_id, robin_id)
            server.kill()
            await robin.wait_for_selector("#reconnect", state="visible", timeout=15_000)
            said = await _text(robin, "#reconnect-text")
            assert "The connection to the group was lost." in said
            assert "Trying again in" in said and "(attempt" in said
            assert "Reconnecting" in await _text(robin, "#status")
            assert await robin.is_hidden("#btn-retry"), "offered before a minute had passed"

            # a minute on, still down: a way to try at once, and the status line says so
            await robin.clock.fast_forward(61_000)
            await robin.wait_for_selector("#btn-retry", state="visible", timeout=15_000)
            assert "you can try again now" in await _text(robin, "#status")

            # the service comes back while the page's timers are stopped, so it is the tap that
            # brings the member back, not the next scheduled attempt
            now_ms = await _js(robin, "Date.now()")
            await robin.clock.pause_at((now_ms + 200) / 1000)  # seconds since the epoch
            server.spawn()
            await server.ready()
            assert await robin.is_visible("#btn-retry")
            await robin.click("#btn-retry")
            await _joins(robin, joins + 1)
            assert await robin.is_hidden("#reconnect")
            await robin.clock.resume()
            await _stage(robin, "room")
            assert await _js(robin, "window.confide.selfState.lobby_state") == "admitted"

            # --- five minutes without the service: the page stops trying, says so, and a
            # "Try again" brings the member back to their place once the service is there
            await _kept(robin, store, s.session_id, robin_id)
            server.kill()
            await robin.wait_for_selector("#reconnect", state="visible", timeout=15_000)
            for _ in range(6):
                await robin.clock.fast_forward(61_000)
            await _stage(robin, "error")
            assert "connection was lost" in await _text(robin, "#error-text")
            assert await robin.is_visible("#btn-error-retry")
            assert await robin.is_hidden("#reconnect")
            server.spawn()
            await server.ready()
            await robin.click("#btn-error-retry")
            await _stage(robin, "room")
            assert await _js(robin, "window.confide.selfState.lobby_state") == "admitted"

            # no raw codes or real names on the member's screen at any point above
            body = await robin.inner_text("body")
            assert "Araminta" not in body
            for code in ("grant_replayed", "grant_expired", "service_unavailable", "1006"):
                assert code not in body
    finally:
        server.stop()
        store.dispose()


async def test_sound_the_browser_holds_back_is_one_tap_away(server) -> None:  # type: ignore[no-untyped-def]
    # the clinician speaks (a tone, as a real aiortc peer); the member's page captures nothing
    # (no camera or microphone on this machine: it takes part by text), and nobody has touched
    # it, so the browser will not start the group's sound by itself
    speaker = Bot(server.link("sound", "Clinician", role="host"), audio=ToneTrack())
    await speaker.connect()
    try:
        async with chromium(
            without_flags=(SOUND_BY_ITSELF, "--use-fake-device-for-media-stream",
                           "--use-fake-ui-for-media-stream"),
            extra_flags=(SOUND_NEEDS_A_TAP,),
        ) as browser:
            page = await (await browser.new_context()).new_page()
            # nothing may look into the page until the sound is held back: Playwright's own
            # evaluations count as a person's gesture, so the wait is on what the page logs
            async with page.expect_console_message(
                lambda m: "held back the group's sound" in m.text, timeout=30_000
            ):
                await page.goto(server.link("sound", "Robin"))
            assert await page.is_visible("#btn-hear")
            assert "holding back the group's sound" in await _text(page, "#hear-text")
            assert await _js(page, "window.confide.audioBlocked") is True
            await page.click("#btn-hear")
            await page.wait_for_selector("#hear", state="hidden")
            playing = await _js(page, "[...document.querySelectorAll('#tiles audio')]"
                                      ".some((a) => a.srcObject && !a.paused)")
            assert playing, "the tap did not start the group's sound"
            assert await _js(page, "window.confide.audioBlocked") is False
    finally:
        await speaker.leave()
