"""A real browser publishing a face under `face_mask`, watched from another real browser."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from tests.support.browser import chromium, grab_tile, until
from tests.support.faces import (
    astronaut_frames,
    face_box_in_source,
    faces_overlapping,
    haar_faces,
    write_y4m,
)

pytestmark = pytest.mark.browser

FACE = face_box_in_source("static", 0, 30)


def _face(img: np.ndarray | None) -> bool:
    return img is not None and bool(faces_overlapping(haar_faces(img), FACE))


@pytest.fixture(scope="module")
def face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_y4m(tmp_path_factory.mktemp("v") / "face.y4m", astronaut_frames("static", 30))


async def test_face_mask_in_a_real_browser_and_switching_profile(server, face_video: Path) -> None:  # type: ignore[no-untyped-def]
    async with chromium(face_video) as pub_browser, chromium(face_video) as view_browser:
        publisher = await pub_browser.new_page()
        viewer = await view_browser.new_page()
        await publisher.goto(server.link("g", "Robin", profile="face_mask"))
        await viewer.goto(server.link("g", "Ash"))
        pid = await until(lambda: publisher.evaluate("window.confide.me && window.confide.me.id"))

        async def grabbed():  # type: ignore[no-untyped-def]
            return (await grab_tile(viewer, pid)) is not None

        await until(grabbed, 60)

        # a clip of what the other browser shows: no face anywhere it should be
        frames = []
        for _ in range(20):
            frames.append(await grab_tile(viewer, pid))
            await asyncio.sleep(0.1)
        assert all(f is not None for f in frames)
        assert not any(_face(f) for f in frames), "a face reached the other browser"

        await publisher.evaluate(
            """() => { window.acks = [];
                 window.confide.signaling.addEventListener('ok',
                   (e) => window.acks.push(e.detail.ref)); }"""
        )

        async def command(profile: str) -> None:
            # returns once the server has applied it (its `ok` reached the page)
            ref = f"switch-{profile}-{time.monotonic()}"
            await publisher.evaluate(
                """([p, ref]) => window.confide.signaling.send(
                     {type: 'command', name: 'set_own_profile', profile: p, id: ref})""",
                [profile, ref],
            )
            await until(lambda: publisher.evaluate("(r) => window.acks.includes(r)", ref), 20)

        # switch to `none`: the face appears (the forwarded stream starts at the next keyframe)
        started = time.monotonic()
        await command("none")

        async def face_visible():  # type: ignore[no-untyped-def]
            return _face(await grab_tile(viewer, pid))

        await until(face_visible, 20, 0.05)
        took_none = time.monotonic() - started
        # and back to `face_mask`: the server stops forwarding at once; once what was already on
        # the wire has played out, no grabbed frame shows the face again
        await command("face_mask")
        # what was already on the wire or in the browser's jitter buffer plays out first
        await asyncio.sleep(1.0)
        after = []
        for _ in range(20):
            after.append(await grab_tile(viewer, pid))
            await asyncio.sleep(0.1)
        assert not any(_face(f) for f in after), "a raw frame slipped through after switching back"
        print(f"profile none took effect in the other browser after {took_none:.2f} s")
