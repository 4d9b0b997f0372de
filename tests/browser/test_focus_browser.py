"""Focus in real Chromium: the member's page says so before joining and in the room, receives
the clinician's picture and never another member's; the clinician switches it from the host
panel and sees everyone throughout. What the members receive is checked with an independent
Haar detector (a bot member's decoded frames) and the member page's own decoder counts."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from playwright.async_api import BrowserContext, Page

from tests.support.browser import chromium, host_room_url, until, video_stats
from tests.support.faces import astronaut_frames, haar_faces, write_y4m
from tests.support.member_bot import agree as agree_as_bot
from tests.support.member_bot import checklist_arrived
from tests.support.member_page import agree
from tests.support.session import OpenSession, open_session
from web.bot import Bot, ColorTrack, ToneTrack

pytestmark = pytest.mark.browser

RULES = {"focus": True, "minimum_profile": "none", "muted_on_entry": False,
         "allowed_profiles": ["none", "blur", "camera_off"]}


async def _host_page(ctx: BrowserContext, s: OpenSession) -> Page:
    page = await ctx.new_page()
    await page.goto(await host_room_url(ctx, s))
    await page.wait_for_function("() => window.confide && window.confide.stage === 'room'")
    return page


async def _decoded(page: Page, pid: str) -> int:
    stats = await video_stats(page, pid)
    return int(stats["decoded"]) if stats and stats["w"] > 0 else 0


def _with_faces(frames: list[np.ndarray]) -> int:
    return sum(bool(haar_faces(img)) for img in frames)


async def test_focus_in_the_browser(server: Any, tmp_path: Path) -> None:
    face = write_y4m(tmp_path / "face.y4m", astronaut_frames("static", 15), fps=15)
    s = open_session(server.app, server.base_url, rules=RULES)
    robin_id, wren_id = s.participant_ids["Robin"], s.participant_ids["Wren"]
    wren_frames: dict[str, list[np.ndarray]] = defaultdict(list)
    async with aiohttp.ClientSession() as http:
        token = s.links["Wren"].rsplit("/", 1)[1]
        async with http.post(f"{s.base_url}/api/v1/invites/redeem", json={"token": token}) as r:
            body = await r.text()
            assert r.status == 200, body
    wren = Bot(f"{s.base_url}/room#grant={json.loads(body)['grant']}", video=ColorTrack("green"),
               audio=ToneTrack(), on_video_frame=lambda pid, img: wren_frames[pid].append(img))
    async with chromium(face) as browser:
        host = await _host_page(await browser.new_context(), s)
        host_id = await host.evaluate("() => window.confide.me.id")
        robin = await (await browser.new_context()).new_page()
        await robin.goto(s.links["Robin"])
        await robin.click("#btn-join")
        await robin.wait_for_function("() => window.confide && window.confide.stage === 'prejoin'")
        # said plainly before joining
        assert await robin.is_visible("#prejoin-focus")
        assert "only your clinician's video" in await robin.text_content("#prejoin-focus")
        await agree(robin)
        try:
            await wren.connect()
            await checklist_arrived(wren)
            await agree_as_bot(wren)
            await until(lambda: host.evaluate(
                "() => document.querySelectorAll('#lobby-list li').length >= 2"), 20)
            await host.click("#btn-admit-all")
            await robin.wait_for_function("() => window.confide.stage === 'room'")
            assert await robin.is_visible("#focus-banner")
            assert await host.get_attribute("#btn-focus", "aria-pressed") == "true"

            # the clinician sees both members; both members see the clinician...
            await until(lambda: _at_least(host, robin_id, 20), 60)
            await until(lambda: _at_least(host, wren_id, 20), 60)
            await until(lambda: _at_least(robin, host_id, 20), 60)
            await until(lambda: _now(len(wren_frames[host_id]) >= 30), 60)
            assert _with_faces(wren_frames[host_id][-20:]) >= 4
            # ...and no member receives the other: not a decoded frame, not a slot
            assert await _decoded(robin, wren_id) == 0
            assert wren_frames[robin_id] == []
            assert not [t for m in wren.messages if m.get("type") == "subscribe_offer"
                        for t in m["tracks"].values()
                        if t["participant_id"] == robin_id and t["kind"] == "video"]

            # the clinician ends Focus from the panel: the members see each other (Robin's
            # face reaches Wren, so the silence before was Focus, not a broken camera)
            await host.click("#btn-focus")
            await robin.wait_for_function(
                "() => document.getElementById('focus-banner').hidden")
            await until(lambda: _at_least(robin, wren_id, 10), 60)
            await until(lambda: _now(len(wren_frames[robin_id]) >= 30), 60)
            assert _with_faces(wren_frames[robin_id][-20:]) >= 4

            # and on again: Robin's picture stops reaching Wren while the clinician's goes on
            await host.click("#btn-focus")
            await robin.wait_for_function(
                "() => !document.getElementById('focus-banner').hidden")
            await until(lambda: _now(any(m.get("type") == "room_focus" and m["focus"]
                                         for m in wren.messages)), 10)
            await asyncio.sleep(1.0)  # packets already on the wire when the slot was detached
            settled, before = len(wren_frames[robin_id]), len(wren_frames[host_id])
            await until(lambda: _now(len(wren_frames[host_id]) >= before + 30), 60)
            assert len(wren_frames[robin_id]) == settled
        finally:
            await wren.leave()


async def _now(value: Any) -> Any:
    return value


async def _at_least(page: Page, pid: str, frames: int) -> bool:
    return await _decoded(page, pid) >= frames

