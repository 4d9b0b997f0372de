"""Two real Chromium pages with a face video and one `confide bot` in one room."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from sfu.bitrate import BitratePolicy, Layer
from tests.support.browser import chromium, grab_tile, until, video_stats
from tests.support.faces import (
    astronaut_frames,
    haar_faces,
    write_y4m,
)
from web import keys
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


async def test_a_page_sends_no_more_than_the_gallery_shows(server, face_video: Path) -> None:  # type: ignore[no-untyped-def]
    # two video publishers already make this room's gallery 320x240 (a small policy, so the
    # test needs no crowd). Robin's page publishes forwarded video (`none`): the server passes
    # on what it is sent, so the bot sees the page's own encoder's size, 640x480 from its
    # camera unless the page followed `publish_layer`
    registry = server.app[keys.ROOMS]
    earlier_setup = registry.room_setup

    async def setup(room, grant):  # type: ignore[no-untyped-def]
        if earlier_setup is not None:
            await earlier_setup(room, grant)
        room.policy = replace(room.policy, bitrate=BitratePolicy(layers=(
            Layer(1, 640, 480, 600_000, 300_000), Layer(99, 320, 240, 250_000, 150_000))))

    registry.room_setup = setup
    bot = Bot(server.link("layers", "Bot"), video=ColorTrack("blue"), audio=ToneTrack())
    async with chromium(face_video) as browser:
        page = await browser.new_page()
        await page.goto(server.link("layers", "Robin", profile="none"))
        await bot.connect()
        try:
            robin = await until(lambda: page.evaluate("window.confide.me && window.confide.me.id"))

            async def received() -> tuple[int, int] | None:
                peer = bot.peers.get(robin)
                return (peer.width, peer.height) if peer and peer.video_frames > 5 else None

            await until(received, 40.0)

            async def scaled() -> bool:
                peer = bot.peers[robin]
                return 0 < peer.width <= 320 and 0 < peer.height <= 240

            try:
                await until(scaled, 20.0)
            except AssertionError:
                raise AssertionError(f"the page still sends {await received()}") from None
            # and the picture goes on at that size
            before = bot.peers[robin].video_frames

            async def flowing() -> bool:
                return bot.peers[robin].video_frames > before + 15

            await until(flowing, 20.0)
            assert bot.peers[robin].width <= 320
        finally:
            await bot.leave()
