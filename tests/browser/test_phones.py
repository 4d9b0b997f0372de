"""A full group on phone screens in real Chromium: 390×844 and 412×915, twelve people (two
phones and ten aiortc bots). The controls, "Someone came in" and Leave included, are on screen
without scrolling, the tiles shrink so everyone fits above them, and screenshots are saved for
a person to review."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from tests.support.axe import ARTIFACTS
from tests.support.browser import chromium, until
from tests.support.faces import astronaut_frames, write_y4m
from web.bot import Bot, ColorTrack

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONES = {"390x844": (390, 844), "412x915": (412, 915)}
BOTS = 10
ALWAYS_IN_REACH = ("btn-came-in", "btn-leave", "btn-mic", "btn-cam", "btn-hand")

BOXES = """
(ids) => {
  const box = (el) => { const r = el.getBoundingClientRect();
    return { x: r.x, y: r.y, w: r.width, h: r.height }; };
  return {
    scrollY: window.scrollY, scrollWidth: document.documentElement.scrollWidth,
    vw: window.innerWidth, vh: window.innerHeight,
    controls: box(document.querySelector('.controls')),
    buttons: Object.fromEntries(ids.map((id) => [id, box(document.getElementById(id))])),
    tiles: [...document.querySelectorAll('#tiles .tile')].map(box),
  };
}
"""


@pytest.fixture(scope="module")
def face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "astronaut.y4m"
    return write_y4m(path, astronaut_frames("static", 15), fps=15)


async def _phone(browser: Browser, link: str, size: tuple[int, int]) -> Page:
    width, height = size
    ctx = await browser.new_context(
        viewport={"width": width, "height": height},
        screen={"width": width, "height": height},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )
    page = await ctx.new_page()
    await page.goto(link)
    return page


def _inside(box: dict[str, float], width: float, height: float) -> bool:
    return (
        box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["w"] <= width + 0.5
        and box["y"] + box["h"] <= height + 0.5
    )


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (
        a["x"] + a["w"] <= b["x"]
        or b["x"] + b["w"] <= a["x"]
        or a["y"] + a["h"] <= b["y"]
        or b["y"] + b["h"] <= a["y"]
    )


async def test_a_full_group_on_two_phone_screens(server, face_video: Path) -> None:  # type: ignore[no-untyped-def]
    # two of the bots send a small picture; the rest are present without video, which lays
    # out the same tiles at a fraction of the machine's effort
    bots = [
        Bot(
            server.link("group", f"Member {i + 1}"),
            video=ColorTrack("blue", width=160, height=120, fps=5) if i < 2 else None,
            publish=i < 2,
            decode_video=False,
        )
        for i in range(BOTS)
    ]
    await asyncio.gather(*(bot.connect() for bot in bots))
    shots: list[Path] = []
    try:
        async with chromium(face_video) as browser:
            pages = {
                name: await _phone(browser, server.link("group", f"Phone {name}"), size)
                for name, size in PHONES.items()
            }
            people = BOTS + len(PHONES)
            for page in pages.values():
                # everyone else has a tile, and the phone's own picture is playing
                async def full(page: Page = page) -> bool:
                    return bool(
                        await page.evaluate(
                            "(n) => window.confide.stage === 'room' && "
                            "window.confide.tiles.size === n",
                            people - 1,
                        )
                    )

                await until(full, 40.0)
                await page.wait_for_function(
                    "() => document.getElementById('self-video').videoWidth > 0", timeout=30000
                )

            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            for name, page in pages.items():
                width, height = PHONES[name]
                found: dict[str, Any] = await page.evaluate(BOXES, list(ALWAYS_IN_REACH))
                assert (found["vw"], found["vh"]) == (width, height)
                assert found["scrollY"] == 0
                # nothing spills sideways
                assert found["scrollWidth"] <= width, found["scrollWidth"]
                for button, box in found["buttons"].items():
                    assert _inside(box, width, height), (name, button, box)
                    assert box["h"] >= 44, (name, button, box)  # a thumb's reach
                controls = found["controls"]
                assert _inside(controls, width, height), (name, controls)
                tiles = found["tiles"]
                assert len(tiles) == people
                for tile in tiles:
                    # every tile shrinks to fit on screen, clear of the controls
                    assert _inside(tile, width, height), (name, tile)
                    assert not _overlap(tile, controls), (name, tile, controls)
                    assert tile["w"] <= width / 2, (name, tile)
                shot = ARTIFACTS / f"phone-{name}-12-people.png"
                await page.screenshot(path=str(shot))
                shots.append(shot)
                # "Someone came in" works by touch on the phone
                await page.tap("#btn-came-in")
                await page.wait_for_function(
                    "() => window.confide.selfState && window.confide.selfState.audio_muted"
                    " && window.confide.selfState.video_stopped"
                )
    finally:
        await asyncio.gather(*(bot.leave() for bot in bots), return_exceptions=True)
    assert all(shot.stat().st_size > 10_000 for shot in shots)
