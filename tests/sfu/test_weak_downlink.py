"""A member whose downlink carries only 300 kbps gets audio first; nobody else notices.

Real aiortc peers in a real room: a publisher (the numbered astronaut pan and tone bursts),
a viewer on loopback and a viewer whose subscriber leg goes through a userspace relay
(tests/support/impaired_link.py). The relay caps what reaches that viewer at 300 kbps with a
home router's drop-tail queue; the server must see it from the viewer's own receiver reports,
pause others' video to that viewer alone and tell its page, keep its sound flowing, and
bring the video back, whole, once the cap is lifted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from sfu.grants import Permissions
from sfu.room import Room
from sfu.stats import MEDIA
from tests.support.frame_check import FrameChecker, StampedClipTrack, longest_skip, shown_share
from tests.support.impaired_link import Impairment, LinkedBot, open_links
from tests.support.lip_sync import ClapTrack
from web import keys
from web.bot import Bot

pytestmark = pytest.mark.slow

FPS = 15
RECEIVE_ONLY = Permissions(publish_audio=False, publish_video=False, subscribe=True)
CAP_BPS = 300_000
# the server decides after 3 s of a weak link; reports come about once a second
SWITCH_WITHIN_S = 10.0
# video tries again 5 s after the pause if the sound arrives clean
RESUME_WITHIN_S = 12.0


async def _until(predicate: Callable[[], bool], what: str, timeout_s: float) -> float:
    """Wait for `predicate`; returns when (monotonic) it held."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s")
        await asyncio.sleep(0.05)
    return time.monotonic()


def _link_weak(bot: Bot, video: str) -> bool:
    return any(m.get("type") == "link_weak" and m.get("video") == video for m in bot.messages)


class Viewer:
    def __init__(self, video: StampedClipTrack) -> None:
        self.checker = FrameChecker(video)
        self.audio_at: list[float] = []

    def on_video(self, _pid: str, img: np.ndarray) -> None:
        self.checker.on_frame(img)

    def on_audio(self, _pid: str, _rms: float) -> None:
        self.audio_at.append(time.monotonic())

    def longest_audio_gap(self, start: float, end: float) -> float:
        times = [t for t in self.audio_at if start <= t <= end]
        return max(np.diff([start, *times, end]).tolist())


def _video_octets(room: Room, subscriber_id: str) -> int:
    return sum(s.track.writer.octets_sent for s in room.participants[subscriber_id].subscriptions
               if s.track.kind == "video")


async def test_a_member_on_a_300_kbps_downlink_gets_audio_first_and_the_others_keep_video(server) -> None:  # type: ignore[no-untyped-def]
    name = "weak-down"
    video, audio = StampedClipTrack(fps=FPS), ClapTrack()
    relay = (await open_links(subscribe=(Impairment(), Impairment())))["subscribe"]
    viewers = {n: Viewer(video) for n in ("clean", "weak")}
    receive_only: dict[str, Any] = {"publish": False}
    bots: dict[str, Bot] = {
        "clean": Bot(server.link(name, "Clean", permissions=RECEIVE_ONLY), on_video_frame=viewers["clean"].on_video,
                     on_audio_frame=viewers["clean"].on_audio, **receive_only),
        "weak": LinkedBot(server.link(name, "Weak", permissions=RECEIVE_ONLY), links={"subscribe": relay},
                          on_video_frame=viewers["weak"].on_video,
                          on_audio_frame=viewers["weak"].on_audio, **receive_only),
        "publisher": Bot(server.link(name, "Publisher"), video=video, audio=audio),
        # the clinician hears of it (signaling only here)
        "host": Bot(server.link(name, "Clinician", role="host"), publish=False,
                    decode_video=False),
    }
    try:
        for bot in bots.values():
            await bot.connect()
        await _until(lambda: all(len(v.checker.shown) > FPS for v in viewers.values()),
                     "video at both viewers", 30.0)
        room: Room = server.app[keys.ROOMS].rooms[name]
        weak_id = str(bots["weak"].me["id"])

        switches = MEDIA.audio_first
        capped = time.monotonic()
        relay.set_impairment(to_client=Impairment(rate_bps=CAP_BPS))
        paused = await _until(lambda: _link_weak(bots["weak"], "paused"),
                              "audio first for the weak viewer", SWITCH_WITHIN_S)
        assert MEDIA.audio_first == switches + 1
        # the relay really was the bottleneck
        assert relay.to_client.stats.dropped_queue > 0, relay.to_client.stats

        # audio first: no video goes to the weak viewer, its sound keeps coming
        await asyncio.sleep(1.0)
        octets = _video_octets(room, weak_id)
        frames = viewers["weak"].checker.frames
        await asyncio.sleep(2.5)
        held_until = time.monotonic()
        assert _video_octets(room, weak_id) == octets
        assert viewers["weak"].checker.frames == frames
        gap = viewers["weak"].longest_audio_gap(paused + 0.5, held_until)
        assert gap <= 1.0, gap

        relay.set_impairment(to_client=Impairment())
        lifted = time.monotonic()
        resumed = await _until(lambda: _link_weak(bots["weak"], "resumed"),
                               "video again for the weak viewer", RESUME_WITHIN_S)
        await _until(lambda: viewers["weak"].checker.frames >= frames + 3 * FPS,
                     "resumed video decoded", 10.0)
        end = time.monotonic()
        print(f"\nswitch to audio first: {paused - capped:.1f} s after the cap; "
              f"video back {resumed - lifted:.1f} s after the cap was lifted")

        # back at a keyframe: every picture the weak viewer decodes is whole
        back = viewers["weak"].checker.window(resumed, end)
        assert back.checked >= 2 * FPS and back.corrupted == 0, back

        # the clean viewer kept its video throughout, untouched
        clean = viewers["clean"].checker
        numbers = clean.numbers(capped, end)
        assert shown_share(numbers) >= 12 / FPS, shown_share(numbers)
        assert longest_skip(numbers) <= FPS, longest_skip(numbers)
        assert clean.window(capped, end).corrupted == 0
        assert not any(m.get("type") == "link_weak" for m in bots["clean"].messages)
        told = [m for m in bots["host"].messages
                if m.get("type") == "alert" and m.get("kind") == "link_weak"]
        assert len(told) == 1 and told[0]["participant_id"] == weak_id, told
        assert "Weak's connection is weak" in str(told[0]["message"])
        assert not any(m.get("type") == "alert" for m in bots["weak"].messages)
        for bot in bots.values():
            assert not bot.errors, bot.errors
    finally:
        await asyncio.gather(*(b.leave() for b in bots.values()), return_exceptions=True)
        video.stop()
        relay.close()
