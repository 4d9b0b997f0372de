"""The clinician's own view in real Chromium: the member's page offers it plainly at pre-join
("Your clinician sees … / The group sees …"), the member ticks it, and the clinician's page
receives the member's face while a peer receives only the face mask. Checked with an
independent Haar detector on pictures taken from the clinician's page and on a bot peer's
decoded frames; unticked in the room, the clinician's page sees the mask too."""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest
from playwright.async_api import BrowserContext, Page

from tests.support.browser import chromium, host_room_url, until, video_stats
from tests.support.faces import (
    astronaut_frames,
    face_box_in_source,
    faces_overlapping,
    haar_faces,
    write_y4m,
)
from tests.support.member_bot import agree as agree_as_bot
from tests.support.member_bot import checklist_arrived
from tests.support.member_page import agree
from tests.support.session import OpenSession, open_session
from web.bot import Bot, ColorTrack, ToneTrack

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RULES = {"minimum_profile": "face_mask", "allowed_profiles": ["face_mask", "avatar", "camera_off"],
         "clinician_profile": "blur", "muted_on_entry": False}
FACE = face_box_in_source("static", 0, 30)


async def _host_page(ctx: BrowserContext, s: OpenSession) -> Page:
    page = await ctx.new_page()
    await page.goto(await host_room_url(ctx, s))
    await page.wait_for_function("() => window.confide && window.confide.stage === 'room'")
    return page


async def _picture(page: Page, pid: str) -> np.ndarray | None:
    """What the page shows in `pid`'s tile now, as RGB (None before it has a picture)."""
    data = await page.evaluate(
        """(pid) => {
          const v = document.querySelector(`figure[data-participant-id="${pid}"] video`);
          if (!v || !v.videoWidth) return null;
          const c = document.createElement('canvas');
          c.width = v.videoWidth; c.height = v.videoHeight;
          c.getContext('2d').drawImage(v, 0, 0);
          return c.toDataURL('image/png');
        }""", pid)
    if not data:
        return None
    raw = np.frombuffer(base64.b64decode(data.split(",", 1)[1]), np.uint8)
    bgr = cv2.imdecode(raw, cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


async def _faces_on_page(page: Page, pid: str, shots: int) -> int:
    found = 0
    for _ in range(shots):
        img = await _picture(page, pid)
        assert img is not None and img.shape[:2] == (480, 640), None if img is None else img.shape
        found += bool(faces_overlapping(haar_faces(img), FACE))
        await page.wait_for_timeout(150)
    return found


async def _now(value: Any) -> Any:
    return value


async def test_clinician_view_in_the_browser(server: Any, tmp_path: Path) -> None:
    face = write_y4m(tmp_path / "face.y4m", astronaut_frames("static", 15), fps=15)
    s = open_session(server.app, server.base_url, rules=RULES)
    robin_id = s.participant_ids["Robin"]
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
        robin = await (await browser.new_context()).new_page()
        await robin.goto(s.links["Robin"])
        await robin.click("#btn-join")
        await robin.wait_for_function("() => window.confide && window.confide.stage === 'prejoin'")
        # offered plainly, unticked: both lines say the same until the member agrees
        await robin.wait_for_selector("#prejoin-clinician-view", state="visible")
        text = await robin.text_content("#prejoin-clinician-view")
        assert "Your clinician sees:" in text and "The group sees:" in text
        assert not await robin.is_checked("#prejoin-clinician-consent")
        assert await robin.text_content("#prejoin-clinician-view .cv-clinician") == \
            await robin.text_content("#prejoin-clinician-view .cv-group")
        await robin.check("#prejoin-clinician-consent")
        await robin.wait_for_function(
            "() => window.confide.selfState.clinician_consent === true")
        assert await robin.text_content("#prejoin-clinician-view .cv-clinician") != \
            await robin.text_content("#prejoin-clinician-view .cv-group")
        await agree(robin)
        try:
            await wren.connect()
            await checklist_arrived(wren)
            await agree_as_bot(wren)
            await until(lambda: host.evaluate(
                "() => document.querySelectorAll('#lobby-list li').length >= 2"), 20)
            await host.click("#btn-admit-all")
            await robin.wait_for_function("() => window.confide.stage === 'room'")
            assert await robin.is_checked("#room-clinician-consent")

            async def decoded(n: int) -> bool:
                stats = await video_stats(host, robin_id)
                return bool(stats and stats["w"] > 0 and stats["decoded"] >= n)

            await until(lambda: decoded(30), 90)
            await until(lambda: _now(len(wren_frames[robin_id]) >= 40), 90)
            # the clinician's page shows Robin's face; the peer never receives it
            assert await _faces_on_page(host, robin_id, 12) >= 3
            leaks = sum(bool(faces_overlapping(haar_faces(i), FACE))
                        for i in wren_frames[robin_id])
            assert leaks == 0, f"Robin's face reached a peer in {leaks} frames"

            # withdrawn from the room: the clinician's page shows the mask like everyone's
            await robin.uncheck("#room-clinician-consent")
            await robin.wait_for_function(
                "() => window.confide.selfState.clinician_consent === false")
            before = (await video_stats(host, robin_id) or {}).get("decoded", 0)
            await until(lambda: decoded(int(before) + 45), 60)
            assert await _faces_on_page(host, robin_id, 12) == 0
        finally:
            await wren.leave()
