"""Media over a lossy link: the member on it recovers, nobody else notices; sound stays with lips.

Each test puts a userspace relay (tests/support/impaired_link.py) on one leg of a real room
between aiortc peers, and checks every decoded picture against what the publisher sent as
that frame (tests/support/frame_check.py). Stalls and lip sync are counted in the source's
own frame numbers and capture times, never against the test machine's clock, so a busy
machine slows the run down but does not change what is checked.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from sfu.grants import Permissions
from sfu.publication import Publication
from sfu.room import Room
from tests.support.frame_check import (
    FrameChecker,
    StampedClipTrack,
    longest_skip,
    shown_share,
)
from tests.support.impaired_link import ImpairedLink, Impairment, LinkedBot, open_links
from tests.support.lip_sync import ClapTrack, OnsetTimer
from web import keys
from web.bot import Bot

pytestmark = pytest.mark.slow

RECEIVE_ONLY = Permissions(publish_audio=False, publish_video=False, subscribe=True)
FPS = 15
# the window of source frames each test looks at, after everyone has started
WINDOW_FRAMES = 120
# a tile never stands still for more than a second of the source's frames
MOST_FRAMES_SKIPPED = FPS
# 12 of the source's 15 frames a second shown
LEAST_SHARE_SHOWN = 12 / FPS
# lip sync: sound no more than this early or late against the picture
SYNC_MS = 80.0


class Viewer:
    """A receive-only member whose every picture and audio burst is checked."""

    def __init__(self, video: StampedClipTrack, audio: ClapTrack) -> None:
        self.checker = FrameChecker(video)
        self.onsets = OnsetTimer(audio, on_screen=self.checker.on_screen_captured_at)

    def on_video(self, _pid: str, img: np.ndarray) -> None:
        self.checker.on_frame(img)

    def on_audio(self, _pid: str, rms: float) -> None:
        self.onsets.on_rms(rms)


async def _until(predicate: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s")
        await asyncio.sleep(0.1)


def _room(server: Any, name: str) -> Room:
    return server.app[keys.ROOMS].rooms[name]


def _video_publication(room: Room, pid: str) -> Publication:
    return room.participants[pid].publications["video"]


def _slot_retransmissions(room: Room, subscriber_id: str) -> int:
    """Packets the server sent this subscriber again (as RTX) when it asked."""
    return sum(s.track.writer.retransmitted for s in room.participants[subscriber_id].subscriptions)


async def _run(server: Any, room: str, links: dict[str, dict[str, ImpairedLink]]
               ) -> tuple[dict[str, Viewer], dict[str, Bot], StampedClipTrack]:
    """A publisher and two viewers ("clean", "lossy"), each bot on its links, until the
    viewers have shown WINDOW_FRAMES of the source's frames after a warm-up."""
    video, audio = StampedClipTrack(fps=FPS), ClapTrack()
    viewers = {name: Viewer(video, audio) for name in ("clean", "lossy")}
    bots: dict[str, Bot] = {
        name: LinkedBot(server.link(room, name, permissions=RECEIVE_ONLY),
                        links=links.get(name, {}), publish=False,
                        on_video_frame=v.on_video, on_audio_frame=v.on_audio)
        for name, v in viewers.items()
    }
    bots["publisher"] = LinkedBot(server.link(room, "Publisher"),
                                  links=links.get("publisher", {}), video=video, audio=audio)
    for bot in bots.values():
        await bot.connect()
    await _until(lambda: all(v.checker.shown for v in viewers.values()), "video at both viewers")
    return viewers, bots, video


async def _watch(viewers: dict[str, Viewer], video: StampedClipTrack) -> tuple[float, float]:
    """Let the source run two seconds, then WINDOW_FRAMES more: the window, in arrival times."""
    first = video.frames_sent + 2 * FPS
    await _until(lambda: video.frames_sent >= first, "source running")
    start = time.monotonic()
    await _until(lambda: video.frames_sent >= first + WINDOW_FRAMES, "source window", 120.0)
    await asyncio.sleep(0.5)  # the window's last frames on their way
    return start, time.monotonic()


def _stalls(viewer: Viewer, start: float, end: float) -> tuple[int, float, int]:
    numbers = viewer.checker.numbers(start, end)
    return longest_skip(numbers), shown_share(numbers), len(numbers)


async def test_a_member_on_a_lossy_downlink_recovers_and_nobody_else_notices(server) -> None:  # type: ignore[no-untyped-def]
    # 5 % of datagrams lost and up to 50 ms of jitter (so reordered) both ways on one
    # viewer's leg: DTLS, RTP and RTCP all cross it
    lossy = Impairment(loss=0.05, jitter_ms=50.0)
    links = {"lossy": await open_links(subscribe=(lossy, lossy))}
    viewers, bots, video = await _run(server, "lossy-down", links)
    try:
        start, end = await _watch(viewers, video)
        room = _room(server, "lossy-down")
        relay = links["lossy"]["subscribe"]
        assert relay.to_client.stats.dropped_loss > 20, relay.to_client.stats
        assert relay.to_server.stats.dropped_loss > 0, relay.to_server.stats

        # the lossy viewer asked for what it lost and the server sent it again; the clean
        # one, on loopback, next to nothing (a busy machine's socket may drop a few)
        lossy_id, clean_id = (str(bots[n].me["id"]) for n in ("lossy", "clean"))
        resent = _slot_retransmissions(room, lossy_id)
        assert resent > 10
        assert _slot_retransmissions(room, clean_id) * 5 < resent

        for name, viewer in viewers.items():
            skipped, share, shown = _stalls(viewer, start, end)
            assert shown > WINDOW_FRAMES // 2, (name, shown)
            assert skipped <= MOST_FRAMES_SKIPPED, (name, skipped)
            assert share >= LEAST_SHARE_SHOWN, (name, share)
        clean = viewers["clean"].checker.window(start, end)
        # nothing broken reached the clean viewer, and it saw the source's every frame
        assert clean.corrupted == 0 and clean.checked > WINDOW_FRAMES // 2, clean
        assert shown_share(viewers["clean"].checker.numbers(start, end)) > 0.95
        for bot in bots.values():
            assert not bot.errors, bot.errors
    finally:
        await asyncio.gather(*(b.leave() for b in bots.values()), return_exceptions=True)
        video.stop()


def _process_every_video(server: Any) -> None:
    """Rooms decode and encode each video once (a pass-through transform), as a privacy
    profile does: the server's decoder then takes frames assembled from the lossy leg."""
    registry = server.app[keys.ROOMS]
    earlier = registry.room_setup

    async def setup(room: Room, grant: Any) -> None:
        if earlier is not None:
            await earlier(room, grant)
        room.policy = replace(room.policy, always_process=True)

    registry.room_setup = setup


@pytest.mark.parametrize("path", ["forwarded", "processed"])
async def test_a_lossy_uplink_is_recovered_by_the_server_and_no_viewer_sees_a_broken_picture(server, path: str) -> None:  # type: ignore[no-untyped-def]
    if path == "processed":
        _process_every_video(server)
    lossy = Impairment(loss=0.05)
    links = {"publisher": await open_links(publish=(lossy, lossy))}
    viewers, bots, video = await _run(server, "lossy-up", links)
    try:
        start, end = await _watch(viewers, video)
        room = _room(server, "lossy-up")
        relay = links["publisher"]["publish"]
        assert relay.to_server.stats.dropped_loss > 20, relay.to_server.stats

        pub = _video_publication(room, str(bots["publisher"].me["id"]))
        assert (pub.processor is not None) == (path == "processed")
        # the server asked the publisher for what its leg lost, and got it
        assert pub.ingest.recovered > 0
        for name, viewer in viewers.items():
            window = viewer.checker.window(start, end)
            # every picture decoded is the frame it claims to be: a hole the server could
            # not fill never reaches a decoder as a broken picture
            assert window.corrupted == 0 and window.checked > WINDOW_FRAMES // 2, (name, window)
            skipped, share, _ = _stalls(viewer, start, end)
            assert skipped <= MOST_FRAMES_SKIPPED, (name, skipped)
            assert share >= LEAST_SHARE_SHOWN, (name, share)
        for bot in bots.values():
            assert not bot.errors, bot.errors
    finally:
        await asyncio.gather(*(b.leave() for b in bots.values()), return_exceptions=True)
        video.stop()


async def test_sound_stays_with_the_picture_at_every_viewer(server) -> None:  # type: ignore[no-untyped-def]
    # what is on screen as each tone burst sounds, by the source's capture times (see
    # tests/support/lip_sync.py): in sync it was captured within one frame interval before
    # the burst; the target allows the sound 80 ms either way
    viewers, bots, video = await _run(server, "in-sync", {})
    interval_ms = 1000 / FPS
    try:
        await _watch(viewers, video)
        for name, viewer in viewers.items():
            leads = viewer.onsets.screen_leads_ms
            assert len(leads) >= 5, (name, leads)
            lead = statistics.median(leads)
            assert -SYNC_MS - interval_ms <= lead <= SYNC_MS, (name, lead, leads)
    finally:
        await asyncio.gather(*(b.leave() for b in bots.values()), return_exceptions=True)
        video.stop()
