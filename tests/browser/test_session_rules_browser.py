"""Session rules in real Chromium: invite, pre-join checklist, lobby, host controls, chat,
text-only participation and reconnecting, against a real server and store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import BrowserContext, Page

from tests.support.browser import chromium, host_room_url, until, video_stats
from tests.support.faces import astronaut_frames, write_y4m
from tests.support.member_page import agree
from tests.support.session import OpenSession, open_session
from web.bot import Bot

pytestmark = pytest.mark.browser

HTML_CHAT = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script><b>bold</b>'


@pytest.fixture(scope="module")
def face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "astronaut.y4m"
    return write_y4m(path, astronaut_frames("static", 15), fps=15)


async def _stage(page: Page, stage: str, timeout_s: float = 20.0) -> None:
    await page.wait_for_function(
        "(s) => window.confide && window.confide.stage === s",
        arg=stage,
        timeout=timeout_s * 1000,
    )


async def _true(value: object) -> bool:
    return bool(value)


async def _js(page: Page, expr: str) -> Any:
    return await page.evaluate(f"() => ({expr})")


def _watch(ctx: BrowserContext, problems: list[str]) -> BrowserContext:
    """Collect uncaught page errors and CSP violations from every page of `ctx`."""

    def on_page(page: Page) -> None:
        page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
        page.on(
            "console",
            lambda msg: (
                problems.append(f"console: {msg.text}")
                if "Content Security Policy" in msg.text
                else None
            ),
        )

    ctx.on("page", on_page)
    return ctx


async def _host_page(ctx: BrowserContext, s: OpenSession) -> Page:
    """The clinician logs in (cookie in this context) and opens the room with a host grant."""
    page = await ctx.new_page()
    await page.goto(await host_room_url(ctx, s))
    await _stage(page, "room")
    return page


async def _redeem(page: Page, s: OpenSession, name: str) -> None:
    await page.goto(s.links[name])
    await page.wait_for_selector("#btn-join")
    await page.click("#btn-join")
    await _stage(page, "prejoin")


async def _agree(page: Page) -> None:
    await agree(page)


async def _decoding(page: Page, video_id: str, frames: int = 5) -> None:
    async def ready() -> bool:
        n = await page.evaluate(
            "(id) => { const v = document.getElementById(id);"
            " return v && v.videoWidth > 0 ? v.getVideoPlaybackQuality().totalVideoFrames : 0 }",
            video_id,
        )
        return bool(n and n > frames)

    await until(ready, 30.0)


async def _alert_kinds(page: Page) -> list[str]:
    return list(await _js(page, "window.confide.alerts.map(a => a.kind)"))


async def test_invite_prejoin_lobby_and_host_controls(server, face_video: Path) -> None:  # type: ignore[no-untyped-def]
    s = open_session(server.app, server.base_url, rules={"unmute_policy": "host_only"})
    robin_id = s.participant_ids["Robin"]
    tile = f'figure[data-participant-id="{robin_id}"]'
    async with chromium(face_video) as browser:
        problems: list[str] = []
        host_ctx, robin_ctx, other_ctx = [
            _watch(await browser.new_context(), problems) for _ in range(3)
        ]
        host = await _host_page(host_ctx, s)
        robin = await robin_ctx.new_page()

        # the link's page hides the token at once and redeems nothing until the click
        await robin.goto(s.links["Robin"])
        await robin.wait_for_selector("#btn-join")
        token = s.links["Robin"].rsplit("/", 1)[1]
        assert token not in robin.url and robin.url.endswith("/i/join")
        assert s.invite_state("Robin") == "active"
        await robin.click("#btn-join")
        await _stage(robin, "prejoin")
        assert s.invite_state("Robin") == "redeemed"
        assert "grant" not in robin.url

        # the same link in a second browser is refused in plain words
        other = await other_ctx.new_page()
        await other.goto(s.links["Robin"])
        await other.click("#btn-join")
        await other.wait_for_function(
            "() => document.getElementById('invite-error').textContent.includes('already been used')"
        )

        # pre-join: the agreement, the pseudonym, profiles within the rules, processed self-view
        assert await robin.locator("#checklist-items input[type=checkbox]").count() == 5
        assert await robin.is_disabled("#btn-agree")
        assert await robin.text_content("#prejoin-name") == "Robin"
        options = await robin.eval_on_selector_all(
            "#prejoin-profile option", "os => os.map(o => o.value)"
        )
        assert options == ["blur", "face_mask", "avatar", "camera_off"]
        assert await robin.text_content("#preview-profile") == "Background blurred"
        await robin.click("#btn-preview")
        await _decoding(robin, "preview-video")
        # the self-view is what the server sent back, not the local camera
        assert await _js(
            robin,
            "window.confide.selfTrack && !window.confide.localStream.getTracks()"
            ".includes(window.confide.selfTrack)",
        )
        await robin.select_option("#prejoin-profile", "face_mask")
        await robin.wait_for_function(
            "() => document.getElementById('preview-profile').textContent.startsWith('Face masked')"
        )
        checks = await robin.locator("#checklist-items input[type=checkbox]").all()
        for box in checks[:-1]:
            await box.check()
        assert await robin.is_disabled("#btn-agree")
        await checks[-1].check()
        # the group asks where they are today (for the clinician only): the button waits
        await robin.wait_for_selector("#location-field", state="visible")
        assert await robin.is_disabled("#btn-agree")
        await robin.fill("#prejoin-location", "At home")
        await robin.click("#btn-agree")
        await _stage(robin, "lobby")

        # the host sees who waits, with the real name beside the pseudonym (host only)
        entry = f'#lobby-list li[data-participant-id="{robin_id}"]'
        await host.wait_for_selector(entry)
        await host.wait_for_function(
            "(sel) => document.querySelector(sel).textContent.includes('Araminta Quillfeather')",
            arg=entry,
        )
        assert "waiting" in await _alert_kinds(host)
        assert "Araminta" not in await robin.content()
        await host.click(f'{entry} button[data-action="admit"]')
        await _stage(robin, "room")
        await _decoding(robin, "self-video")
        assert (await robin.text_content("#self-profile") or "").startswith("Face masked")
        await until(lambda: video_stats(host, robin_id), 20.0)
        assert "Araminta" not in await robin.content()

        # host-only unmute: muted on entry, asked to raise a hand, allowed, then unmuted
        await robin.wait_for_function("() => window.confide.selfState.audio_muted === true")
        await robin.click("#btn-mic")
        await robin.wait_for_function(
            "() => document.getElementById('notice').textContent.includes('raise your hand')"
        )
        assert "raise_hand_to_speak" in await _js(robin, "window.confide.errors")
        await robin.click("#btn-hand")
        await until(lambda: _has(host, "hand_raised"))
        await host.wait_for_function(
            "(sel) => document.querySelector(sel + ' .badges').textContent.includes('hand')",
            arg=tile,
        )
        await host.click(f'{tile} button[data-action="allow_unmute"]')
        await robin.wait_for_function("() => window.confide.selfState.unmute_allowed === true")
        await robin.click("#btn-mic")
        await robin.wait_for_function("() => window.confide.selfState.audio_muted === false")
        assert await _js(robin, "window.confide.localStream.getAudioTracks().every(t => t.enabled)")

        # chat: markup arrives as literal text and runs nothing; a private word to the host
        await robin.select_option("#chat-to", "all")
        await robin.fill("#chat-input", HTML_CHAT)
        await robin.click("#chat-send")
        await host.wait_for_function("() => window.confide.chat.length >= 1")
        last = await host.locator("#chat-log .chat-text").last.text_content()
        assert last == HTML_CHAT
        for page in (host, robin):
            assert await page.locator("#chat-log img, #chat-log script, #chat-log b").count() == 0
            assert await _js(page, "window.pwned === undefined")
        await robin.select_option("#chat-to", "host")
        await robin.fill("#chat-input", "I need a minute, please")
        await robin.click("#chat-send")
        await host.wait_for_function(
            "() => window.confide.chat.some(m => m.to === 'host' && m.text.startsWith('I need'))"
        )
        assert await host.locator("#chat-log .chat-msg.private").count() == 1
        assert await robin.get_attribute("#chat-input", "maxlength") == "1000"
        # a reply that comes late (a slow link) does not wipe the next message being typed
        await robin.evaluate("""() => {
            const sig = window.confide.signaling, real = sig.command.bind(sig);
            sig.command = async (...args) => {
                const reply = await real(...args);
                await new Promise((done) => setTimeout(done, 800));
                return reply;
            };
        }""")
        await robin.fill("#chat-input", "Thank you")
        await robin.click("#chat-send")
        await robin.fill("#chat-input", "And one more thing")
        await host.wait_for_function(
            "() => window.confide.chat.some(m => m.text === 'Thank you')")
        await robin.wait_for_timeout(1200)  # the first message's late reply has come
        assert await robin.input_value("#chat-input") == "And one more thing"
        await robin.click("#chat-send")
        await host.wait_for_function(
            "() => window.confide.chat.some(m => m.text === 'And one more thing')")
        await robin.wait_for_function(
            "() => document.getElementById('chat-input').value === ''")

        # someone came in: the member's devices stop at once, the host alone is told
        await robin.evaluate("() => { window.__tracks = window.confide.localStream.getTracks(); }")
        assert await _js(robin, "window.__tracks.length") == 2
        await robin.click("#btn-came-in")
        assert await _js(robin, "window.__tracks.every(t => t.readyState === 'ended')")
        await until(lambda: _has(host, "someone_came_in"))
        await robin.wait_for_function(
            "() => window.confide.selfState.audio_muted && window.confide.selfState.video_stopped"
        )
        assert "someone_came_in" not in await _js(robin, "JSON.stringify(window.confide.alerts)")

        # sent back to the lobby, then admitted again
        await host.click(f'{tile} button[data-action="send_to_lobby"]')
        await _stage(robin, "lobby")
        await host.wait_for_selector(entry)
        await host.click(f'{entry} button[data-action="admit"]')
        await _stage(robin, "room")
        assert await _js(robin, "window.confide.stageHistory") == [
            "prejoin",
            "lobby",
            "room",
            "lobby",
            "room",
        ]

        # the host holds Robin's video (a hold Robin cannot lift), then allows it again
        await host.click(f'{tile} button[data-action="stop_video"]')
        await robin.wait_for_function("() => window.confide.selfState.video_held_by_host")
        assert await robin.is_disabled("#btn-cam")
        await host.click(f'{tile} button[data-action="allow_video"]')
        await robin.wait_for_function("() => !window.confide.selfState.video_held_by_host")
        assert await robin.is_enabled("#btn-cam")
        # an enforced profile becomes the least Robin can show
        await host.select_option(f"{tile} select.enforce-profile", "avatar")
        await host.click(f'{tile} button[data-action="enforce_profile"]')
        await robin.wait_for_function(
            "() => document.getElementById('self-profile').textContent.startsWith('Avatar')"
        )
        assert await robin.is_disabled('#profile-select option[value="blur"]')
        # removed: out, and the page says so
        await host.click(f'{tile} button[data-action="remove"]')
        await _stage(robin, "ended")
        assert "ended your place" in (await robin.text_content("#ended-text") or "")
        await host.wait_for_function("(sel) => !document.querySelector(sel)", arg=tile)
        assert problems == []


async def _has(page: Page, kind: str) -> bool:
    return kind in await _alert_kinds(page)


async def test_text_only_member_and_declined(server, face_video: Path) -> None:  # type: ignore[no-untyped-def]
    s = open_session(server.app, server.base_url)
    wren_id, kit_id = s.participant_ids["Wren"], s.participant_ids["Kit"]
    async with chromium(face_video) as browser:
        problems: list[str] = []
        host_ctx, wren_ctx, kit_ctx = [
            _watch(await browser.new_context(), problems) for _ in range(3)
        ]
        host = await _host_page(host_ctx, s)
        wren, kit = await wren_ctx.new_page(), await kit_ctx.new_page()

        # Wren takes part by text: no camera or microphone is ever asked for
        await _redeem(wren, s, "Wren")
        await wren.check("#prejoin-text-only")
        assert await wren.is_hidden("#device-check")
        await _agree(wren)
        await _redeem(kit, s, "Kit")
        kit_resume = await _js(kit, "sessionStorage.getItem('confide.invite_resume')")
        assert kit_resume
        await _agree(kit)

        for pid in (wren_id, kit_id):
            await host.wait_for_selector(f'#lobby-list li[data-participant-id="{pid}"]')
        await host.click(
            f'#lobby-list li[data-participant-id="{kit_id}"] button[data-action="decline"]'
        )
        await _stage(kit, "ended")
        assert "not admitted" in (await kit.text_content("#ended-text") or "")
        await host.click(
            f'#lobby-list li[data-participant-id="{wren_id}"] button[data-action="admit"]'
        )
        await _stage(wren, "room")
        await wren.wait_for_function("() => window.confide.selfState.text_only === true")
        assert await _js(wren, "window.confide.mediaCalls") == 0
        assert await _js(wren, "window.confide.localStream.getTracks().length") == 0

        tile = f'figure[data-participant-id="{wren_id}"]'
        await host.wait_for_function(
            "(sel) => { const f = document.querySelector(sel);"
            " return f && f.classList.contains('text-only') }",
            arg=tile,
        )
        await wren.fill("#chat-input", "I'd rather type today <i>thanks</i>")
        await wren.press("#chat-input", "Enter")
        await host.wait_for_function(
            "(sel) => document.querySelector(sel + ' .tile-messages').textContent"
            ".includes('rather type today <i>thanks</i>')",
            arg=tile,
        )
        assert await host.locator(f"{tile} .tile-messages i").count() == 0
        badges = await host.text_content(f"{tile} .badges") or ""
        assert "text only" in badges

        # pause and lock reach the room; the host sees the state on the buttons
        await host.click("#btn-pause")
        await wren.wait_for_selector("#paused-banner", state="visible")
        assert await host.text_content("#btn-pause") == "Resume group"
        await host.click("#btn-pause")
        await wren.wait_for_selector("#paused-banner", state="hidden")
        await host.click("#btn-lock")
        await host.wait_for_function(
            "() => document.getElementById('btn-lock').getAttribute('aria-pressed') === 'true'"
        )

        # a declined invite does not come back by itself: its reconnect secret is refused
        await kit.goto("about:blank")
        await kit_ctx.add_init_script(
            f"if (location.origin === {json.dumps(s.base_url)})"
            f" sessionStorage.setItem('confide.invite_resume', {json.dumps(kit_resume)})"
        )
        kit2 = await kit_ctx.new_page()
        await kit2.goto(f"{s.base_url}/room")
        await _stage(kit2, "error")
        text = await kit2.text_content("#error-text") or ""
        assert "not admitted" in text or "withdrawn" in text, text

        # the host ends the session for everyone (two steps)
        await host.click("#btn-end")
        await host.click("#btn-end-confirm")
        await _stage(wren, "ended")
        assert "ended the session" in (await wren.text_content("#ended-text") or "")
        assert problems == []


async def test_reconnect_within_and_after_the_grace_period(server, face_video: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.support.live_session import ManualClock
    from web import keys

    # the room's clock skips the grace period rather than the test sleeping through it
    clock = ManualClock()
    server.app[keys.ROOMS].clock = clock
    s = open_session(server.app, server.base_url, members=[("Araminta Quillfeather", "Robin")])
    robin_id = s.participant_ids["Robin"]
    host = Bot(
        f"{s.base_url}/room#grant={s.host_grant(server.app)}", publish=False, decode_video=False
    )
    await host.connect()
    try:
        async with chromium(face_video) as browser:
            robin = await (await browser.new_context()).new_page()
            await _redeem(robin, s, "Robin")
            await _agree(robin)
            await host.send({"type": "command", "name": "admit", "target": robin_id})
            await _stage(robin, "room")
            await _decoding(robin, "self-video")

            # a reload within 30 s: straight back into the room, the lobby never shown
            await robin.reload()
            await _stage(robin, "room")
            await _decoding(robin, "self-video")
            assert await _js(robin, "window.confide.stageHistory") == ["room"]
            assert await _js(robin, "window.confide.selfState.lobby_state") == "admitted"

            # away for longer than the grace period: back to the waiting room
            await robin.goto("about:blank")
            room = server.app[keys.ROOMS].rooms[s.session_id]

            async def robin_gone() -> bool:
                return robin_id not in room.participants

            await until(robin_gone, 15.0)
            clock.advance(32.0)
            await robin.goto(f"{s.base_url}/room")
            await _stage(robin, "lobby", 30.0)
            assert "grant_replayed" in await _js(robin, "window.confide.errors")
            assert await _js(robin, "window.confide.stageHistory") == ["lobby"]
            kinds = [m.get("kind") for m in host.messages if m.get("type") == "alert"]
            assert "disconnected" in kinds
            await host.send({"type": "command", "name": "admit", "target": robin_id})
            await _stage(robin, "room")
            assert json.dumps(host.messages).count("Araminta") == 0
    finally:
        await host.leave()


async def test_the_host_returns_to_control_after_the_grace(server, face_video: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.support.live_session import ManualClock
    from tests.support.wire_client import WireClient
    from web import keys

    clock = ManualClock()
    server.app[keys.ROOMS].clock = clock
    s = open_session(server.app, server.base_url, members=[("Araminta Quillfeather", "Robin")])
    problems: list[str] = []
    async with chromium(face_video) as browser:
        ctx = _watch(await browser.new_context(), problems)
        host = await _host_page(ctx, s)
        host_id = await _js(host, "window.confide.me.id")
        # a member waits in the lobby (a signaling-only client)
        status = await ctx.request.post(
            f"{s.base_url}/api/v1/invites/redeem",
            data={"token": s.links["Robin"].rsplit("/", 1)[1]},
        )
        member = WireClient(s.base_url, "Robin")
        try:
            assert (await member.join((await status.json())["grant"]))["type"] == "joined"
            room = server.app[keys.ROOMS].rooms[s.session_id]
            # the clinician locks the room, then their page is closed for longer than the
            # grace period
            await host.click("#btn-lock")
            await until(lambda: _true(room.locked), 10.0)
            await host.goto("about:blank")

            async def host_gone() -> bool:
                return host_id not in room.participants

            await until(host_gone, 15.0)
            clock.advance(60.0)
            # back: the old grant is spent, so the page gets a fresh host grant with its login
            await host.goto(f"{s.base_url}/room")
            await _stage(host, "room", 30.0)
            # "joined" shows the room; the host's own state follows in the next message
            await host.wait_for_function("() => window.confide.selfState !== null")
            assert await _js(host, "window.confide.selfState.lobby_state") == "admitted"
            assert "grant_replayed" in await _js(host, "window.confide.errors")
            # the new page is told the room is locked as it joins: its button says so, and
            # the host can unlock it (a page that thought otherwise would send "lock" again)
            assert await host.get_attribute("#btn-lock", "aria-pressed") == "true"
            # and is in control: the unlock takes effect in the rules and the room
            await host.click("#btn-lock")

            async def unlocked() -> bool:
                return not room.locked and not room.controller.state.locked

            await until(unlocked, 10.0)
            await host.wait_for_function(
                "() => document.getElementById('btn-lock').getAttribute('aria-pressed') === 'false'")
            assert room.controller.disagreements() == []
        finally:
            await member.close()
    assert problems == []
