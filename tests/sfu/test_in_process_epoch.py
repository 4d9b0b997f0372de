"""In-process media mode (CONFIDE_MEDIA_PROCESSES=0) follows the worker path's epoch rule: a
frame whose transform began under the old profile never goes out after a profile switch.

The transform here is slow on purpose (a frame is always in flight when the host switches),
paints each picture the colour of the profile it ran under, and stamps the time it began; the
subscriber, a real aiortc peer, reads both back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from confidentiality.profiles import Profile
from sfu.publication import Publication
from tests.conftest import free_port
from web import keys
from web.bot import COLORS, Bot, ColorTrack, classify_color, read_stamp, write_stamp
from web.settings import Settings, load_settings

TRANSFORM_S = 0.4
PAINT = {Profile.BLUR: "blue", Profile.AVATAR: "magenta"}


class SlowPaint:
    """Paints the frame its profile's colour, stamped with the time the work began."""

    def __init__(self, profile: Profile) -> None:
        self._profile = profile

    def set_profile(self, profile: Profile) -> None:
        self._profile = profile

    def process(self, frame: av.VideoFrame) -> av.VideoFrame:
        began_ms = _ms(time.time())
        colour = PAINT[self._profile]  # the profile this frame is made under
        time.sleep(TRANSFORM_S)
        img = np.empty((frame.height, frame.width, 3), np.uint8)
        img[:, :] = COLORS[colour]
        write_stamp(img, began_ms)
        out = av.VideoFrame.from_ndarray(img, format="rgb24")
        out.pts = frame.pts
        return out

    def close(self) -> None:
        pass


def slow_paint_factory(profile: Profile, display_name: str, on_event: Callable[[Any], None]) -> SlowPaint:
    return SlowPaint(profile)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # the transforms run in threads of the server's own process
    return load_settings(tmp_path / "var", host="127.0.0.1", port=free_port(), dev=True,
                         ice_loopback=True, media_processes=0)


def _ms(t: float) -> int:
    return int(t * 1000) & 0xFFFFFFFF


def _ms_between(a_ms: int, b_ms: int) -> int:
    """a - b for two 32-bit millisecond stamps."""
    d = (a_ms - b_ms) & 0xFFFFFFFF
    return d - 2**32 if d >= 2**31 else d


async def _wait_for(predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_no_frame_made_under_the_old_profile_goes_out_after_a_switch(server) -> None:  # type: ignore[no-untyped-def]
    registry = server.app[keys.ROOMS]
    assert registry.media_workers is None
    registry.transform_factory = slow_paint_factory
    received: list[tuple[float, str, int]] = []  # (arrived, colour, transform began ms)

    def on_frame(pid: str, img: np.ndarray) -> None:
        stamp = read_stamp(img)
        colour = classify_color(img[32:].reshape(-1, 3).mean(axis=0))
        if stamp is not None:
            received.append((time.time(), colour, stamp))

    member = Bot(server.link("e", "Robin", profile=Profile.BLUR), video=ColorTrack("green"))
    host = Bot(server.link("e", "Clinician", role="host"), publish=False, on_video_frame=on_frame)
    await member.connect()
    await host.connect()
    try:
        room = registry.rooms["e"]
        await _wait_for(lambda: sum(c == "blue" for _, c, _ in received) >= 3)
        pub = room.participants[member.me["id"]].publications["video"]
        assert isinstance(pub, Publication) and pub.mode == "process"
        switches: list[tuple[float, float, str]] = []
        profile = Profile.BLUR
        for i in range(4):
            old = PAINT[profile]
            profile = Profile.AVATAR if profile is Profile.BLUR else Profile.BLUR
            sent = time.time()
            await host.send({"type": "command", "name": "enforce_profile", "id": f"p{i}",
                             "target": member.me["id"], "profile": profile.value})
            await _wait_for(lambda i=i: any(m.get("ref") == f"p{i}" for m in host.messages))  # type: ignore[misc]
            assert next(m for m in host.messages if m.get("ref") == f"p{i}")["type"] == "ok"
            done = time.time()
            switches.append((sent, done, old))
            mark = len(received)
            # the new profile's pictures arrive (its first output is a keyframe)
            await _wait_for(lambda p=profile, mark=mark: sum(  # type: ignore[misc]
                c == PAINT[p] for _, c, _ in received[mark:]) >= 2)
        assert not any(c == "green" for _, c, _ in received)  # never the camera
        ends = [s for s, _, _ in switches[1:]] + [time.time()]
        for (sent, done, old), end in zip(switches, ends, strict=True):
            # an old-profile frame may still arrive after the switch only if it was finished
            # (handed to the encoder) before it: began + TRANSFORM_S <= the switch
            finished_after_ms = [
                _ms_between(began, _ms(done)) + TRANSFORM_S * 1000
                for arrived, colour, began in received
                if colour == old and sent < arrived < end
            ]
            assert all(ms <= 50 for ms in finished_after_ms), (old, finished_after_ms)
    finally:
        await member.leave()
        await host.leave()
