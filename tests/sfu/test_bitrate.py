"""The encode-once bitrate policy: a subscriber's downlink shared among the room's streams."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import av
import numpy as np

from sfu.bitrate import BitratePolicy
from sfu.encoder import Vp8EncodeOnce
from web import keys
from web.bot import Bot, ColorTrack, ToneTrack


def test_small_rooms_get_the_full_rate_and_large_ones_share_the_budget() -> None:
    policy = BitratePolicy()
    assert [policy.stream_bps(n) for n in (1, 2, 4, 7)] == [600_000] * 4
    rates = [policy.stream_bps(n) for n in range(7, 20)]
    assert rates == sorted(rates, reverse=True)  # never more per stream as the room grows
    for n in range(2, 30):
        bps = policy.stream_bps(n)
        assert 300_000 <= bps <= 600_000
        if bps > policy.min_stream_bps:
            # what a subscriber receives stays within the budget
            assert bps * (n - 1) <= policy.downlink_budget_bps
    assert policy.stream_bps(12) == 4_000_000 // 11


def _frame(n: int) -> av.VideoFrame:
    rng = np.random.default_rng(n)
    img = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(img, format="rgb24")
    frame.pts = n * 6000
    return frame


def test_a_new_rate_starts_a_new_stream_at_a_keyframe() -> None:
    encoder = Vp8EncodeOnce(bitrate_bps=600_000)
    first = encoder.encode(_frame(0))
    assert first and first[0][1]  # the stream starts with a keyframe
    assert not any(key for _, key in encoder.encode(_frame(1)))
    encoder.set_bitrate(600_000)  # unchanged: the stream goes on
    assert not any(key for _, key in encoder.encode(_frame(2)))
    encoder.set_bitrate(350_000)
    assert any(key for _, key in encoder.encode(_frame(3)))
    assert encoder.bitrate_bps == 350_000


async def test_a_room_shares_the_downlink_budget_as_publishers_come_and_go(server) -> None:  # type: ignore[no-untyped-def]
    # every video is encoded once here (pass-through transform), under a 1 Mbps budget
    registry = server.app[keys.ROOMS]
    earlier_setup = registry.room_setup

    async def setup(room, grant):  # type: ignore[no-untyped-def]
        if earlier_setup is not None:
            await earlier_setup(room, grant)
        room.policy = replace(room.policy, always_process=True,
                              bitrate=BitratePolicy(downlink_budget_bps=1_000_000))

    registry.room_setup = setup
    bots = [Bot(server.link("budget", name), video=ColorTrack(color), audio=ToneTrack())
            for name, color in (("Robin", "red"), ("Ash", "green"), ("Wren", "blue"))]

    def encoders() -> dict[str, int]:
        room = registry.rooms["budget"]
        out = {}
        for p in room.admitted():
            pub = p.publications.get("video")
            if pub is not None and pub.processor is not None:
                out[p.display_name] = pub.processor._encoder.bitrate_bps
        return out

    async def until(cond) -> None:  # type: ignore[no-untyped-def]
        deadline = asyncio.get_running_loop().time() + 20
        while not cond():
            assert asyncio.get_running_loop().time() < deadline, encoders()
            await asyncio.sleep(0.1)

    try:
        for bot in bots:
            await bot.connect()
        ids = [b.me["id"] for b in bots]
        await until(lambda: all(
            (peer := bots[0].peers.get(pid)) is not None and peer.video_frames > 10
            for pid in ids[1:]))
        # three publishers: each subscriber receives two streams of 1 Mbps / 2
        await until(lambda: encoders() == {"Robin": 500_000, "Ash": 500_000, "Wren": 500_000})
        # and the streams still flow at the new rate
        before = bots[0].peers[ids[1]].video_frames
        await until(lambda: bots[0].peers[ids[1]].video_frames > before + 10)
        await bots[2].leave()
        # two publishers left: one stream each way, capped at 600 kbps
        await until(lambda: encoders() == {"Robin": 600_000, "Ash": 600_000})
        before = bots[1].peers[ids[0]].video_frames
        await until(lambda: bots[1].peers[ids[0]].video_frames > before + 10)
    finally:
        for bot in bots:
            await bot.leave()
