"""Two real Chromium pages with a face video and one `confide bot` in one room."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.browser import chromium, grab_tile, until, video_stats
from tests.support.faces import (
    astronaut_frames,
    haar_faces,
    write_y4m,
)
from web.bot import Bot, ColorTrack, ToneTrack

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "astronaut.y4m"
    return write_y4m(path, astronaut_frames("static", 30), fps=15)


async def test_two_browsers_and_a_bot_see_each_other(server, face_video: Path) -> None:  # type: ignore[no-untyped-def]
    bot = Bot(server.link("group", "Bot"), video=ColorTrack("blue"), audio=ToneTrack())
    async with chromium(face_video) as browser_a, chromium(face_video) as browser_b:
        page_a = await browser_a.new_page()
        page_b = await browser_b.new_page()
        await page_a.goto(server.link("group", "Robin"))
        await page_b.goto(server.link("group", "Ash"))
        await bot.connect()
        try:
            ids = {}
            for name, page in (("Robin", page_a), ("Ash", page_b)):
                ids[name] = await until(
                    lambda p=page: p.evaluate("window.confide.me && window.confide.me.id")
                )
            ids["Bot"] = bot.me["id"]

            # each browser decodes both remote videos
            for me, page in (("Robin", page_a), ("Ash", page_b)):
                for other in ids:
                    if other == me:
                        continue

                    async def decoding(page=page, pid=ids[other]):  # type: ignore[no-untyped-def]
                        stats = await video_stats(page, pid)
                        return stats and stats["decoded"] > 10 and stats["w"] > 0

                    await until(decoding, 40.0)

            # an independent detector finds the face in what a browser received
            frame = await grab_tile(page_b, ids["Robin"])
            assert frame is not None and frame.shape[:2] == (480, 640)
            found = haar_faces(frame)
            assert found, "no face found in the received video"
            # the bot is blue in the browsers, and the bot receives both browsers' video
            bot_frame = await grab_tile(page_a, ids["Bot"])
            assert bot_frame is not None
            assert bot_frame[..., 2].mean() > 150 and bot_frame[..., 0].mean() < 90

            async def bot_sees_browsers():  # type: ignore[no-untyped-def]
                return all(
                    bot.peers.get(ids[n]) and bot.peers[ids[n]].video_frames > 10
                    for n in ("Robin", "Ash")
                )

            try:
                await until(bot_sees_browsers, 30.0)
            except AssertionError:
                # what the bot did receive per peer tells a lost keyframe from a lost stream
                raise AssertionError(f"bot did not see both browsers: {bot.report()}") from None
            labels = await page_a.eval_on_selector_all(
                "figcaption", "els => els.map(e => e.textContent)"
            )
            assert any("Ash" in t for t in labels) and any("Bot" in t for t in labels)
        finally:
            await bot.leave()
