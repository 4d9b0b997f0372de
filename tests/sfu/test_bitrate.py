"""The encode-once layer policy: each stream's size and rate from the room's gallery."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import av
import numpy as np

from sfu.bitrate import DEFAULT_LAYERS, BitratePolicy, Layer
from sfu.encoder import Vp8EncodeOnce
from sfu.processor import _fit_within
from web import keys
from web.bot import Bot, ColorTrack, ToneTrack


def test_small_rooms_get_the_full_picture_and_large_ones_smaller_layers() -> None:
    policy = BitratePolicy()
    assert [policy.max_size(n) for n in (1, 2, 6)] == [(640, 480)] * 3
    assert [policy.stream_bps(n) for n in (1, 2, 6)] == [600_000] * 3
    assert policy.max_size(8) == (480, 360)
    # a full group of twelve: a 4x3 gallery of 320x240 tiles, well within the budget
    assert policy.max_size(12) == (320, 240)
    assert policy.stream_bps(12) == 250_000
    sizes = [policy.max_size(n) for n in range(1, 30)]
    rates = [policy.stream_bps(n) for n in range(1, 30)]
    # never a bigger picture or a higher rate per stream as the room grows
    assert sizes == sorted(sizes, reverse=True)
    assert rates == sorted(rates, reverse=True)
    for n in range(2, 30):
        layer, bps = policy.layer(n), policy.stream_bps(n)
        assert layer.min_bps <= bps <= layer.max_bps
        if bps > layer.min_bps:
            # what a subscriber receives stays within the budget
            assert bps * (n - 1) <= policy.downlink_budget_bps
    assert policy.layer(10**7) is DEFAULT_LAYERS[-1]


def test_a_picture_is_fitted_within_the_layer_keeping_its_shape() -> None:
    frame = av.VideoFrame(1280, 720, "yuv420p")
    frame.pts = 6000
    fitted = _fit_within(frame, (320, 240))
    assert (fitted.width, fitted.height) == (320, 180)
    assert fitted.pts == 6000
    odd = _fit_within(av.VideoFrame(641, 481, "yuv420p"), (480, 360))
    assert (odd.width % 2, odd.height % 2) == (0, 0) and odd.width <= 480 and odd.height <= 360
    small = av.VideoFrame(320, 240, "yuv420p")
    assert _fit_within(small, (640, 480)) is small  # never scaled up
    assert _fit_within(frame, None) is frame


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


async def test_a_room_picks_its_layer_as_publishers_come_and_go(server) -> None:  # type: ignore[no-untyped-def]
    # every video is encoded once here (pass-through transform), under a 1 Mbps budget, with
    # two layers: 640x480 for two publishers, 320x240 from three
    registry = server.app[keys.ROOMS]
    earlier_setup = registry.room_setup

    async def setup(room, grant):  # type: ignore[no-untyped-def]
        if earlier_setup is not None:
            await earlier_setup(room, grant)
        room.policy = replace(room.policy, always_process=True,
                              bitrate=BitratePolicy(downlink_budget_bps=1_000_000, layers=(
                                  Layer(2, 640, 480, 600_000, 300_000),
                                  Layer(99, 320, 240, 450_000, 150_000))))

    registry.room_setup = setup
    bots = [Bot(server.link("budget", name), video=ColorTrack(color), audio=ToneTrack())
            for name, color in (("Robin", "red"), ("Ash", "green"), ("Wren", "blue"))]

    def encoders() -> dict[str, int]:
        room = registry.rooms["budget"]
        out = {}
        for p in room.admitted():
            pub = p.publications.get("video")
            if pub is not None and pub.processor is not None:
                out[p.display_name] = pub.stream[0]
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
        # three publishers: each subscriber receives two 320x240 streams at 1 Mbps / 2, capped
        await until(lambda: encoders() == {"Robin": 450_000, "Ash": 450_000, "Wren": 450_000})
        # and the streams still flow, at the smaller picture
        before = bots[0].peers[ids[1]].video_frames
        await until(lambda: bots[0].peers[ids[1]].video_frames > before + 10
                    and bots[0].peers[ids[1]].width == 320)
        assert (bots[0].peers[ids[1]].width, bots[0].peers[ids[1]].height) == (320, 240)
        await bots[2].leave()
        # two publishers left: one stream each way, the full picture at 600 kbps
        await until(lambda: encoders() == {"Robin": 600_000, "Ash": 600_000})
        before = bots[1].peers[ids[0]].video_frames
        await until(lambda: bots[1].peers[ids[0]].video_frames > before + 10
                    and bots[1].peers[ids[0]].width == 640)
        assert (bots[1].peers[ids[0]].width, bots[1].peers[ids[0]].height) == (640, 480)
    finally:
        for bot in bots:
            await bot.leave()


async def test_publishers_are_asked_for_the_gallery_layer_and_a_forwarded_stream_follows(
        server) -> None:  # type: ignore[no-untyped-def]
    # forwarded video (no privacy transform): the server can only pass on what it is sent, so
    # the gallery's layer reaches subscribers when the publisher's own encoder sends it.
    # Robin's bot ignores the ask, as an old client would: its stream is forwarded as sent
    registry = server.app[keys.ROOMS]
    earlier_setup = registry.room_setup

    async def setup(room, grant):  # type: ignore[no-untyped-def]
        if earlier_setup is not None:
            await earlier_setup(room, grant)
        room.policy = replace(room.policy, bitrate=BitratePolicy(
            downlink_budget_bps=1_000_000, layers=(
                Layer(2, 640, 480, 600_000, 300_000), Layer(99, 320, 240, 450_000, 150_000))))

    registry.room_setup = setup
    bots = [Bot(server.link("layers", name, profile="none"), video=ColorTrack(color),
                audio=ToneTrack())
            for name, color in (("Robin", "red"), ("Ash", "green"), ("Wren", "blue"))]
    bots[0].follow_publish_layer = False

    def asked(bot: Bot) -> list[tuple[int, int, int]]:
        return [(m["max_width"], m["max_height"], m["max_bps"]) for m in bot.messages
                if m.get("type") == "publish_layer"]

    async def until(cond, what: str) -> None:  # type: ignore[no-untyped-def]
        deadline = asyncio.get_running_loop().time() + 20
        while not cond():
            assert asyncio.get_running_loop().time() < deadline, what
            await asyncio.sleep(0.1)

    def size(viewer: Bot, pid: str) -> tuple[int, int]:
        peer = viewer.peers.get(pid)
        return (peer.width, peer.height) if peer is not None else (0, 0)

    try:
        for bot in bots:
            await bot.connect()
        ids = [b.me["id"] for b in bots]
        await until(lambda: all(asked(b)[-1:] == [(320, 240, 450_000)] for b in bots),
                    f"asked {[asked(b) for b in bots]}")
        # Ash follows the ask: the others receive its picture at the gallery's size, forwarded
        await until(lambda: size(bots[0], ids[1]) == (320, 240), f"{size(bots[0], ids[1])}")
        await until(lambda: size(bots[1], ids[2]) == (320, 240), f"{size(bots[1], ids[2])}")
        # Robin does not: forwarded as sent, and nothing else is disturbed
        await until(lambda: size(bots[1], ids[0]) == (640, 480), f"{size(bots[1], ids[0])}")
        before = bots[0].peers[ids[1]].video_frames
        await until(lambda: bots[0].peers[ids[1]].video_frames > before + 10, "frames stopped")
        await bots[2].leave()
        # two publishers: the full layer again, asked once and followed
        await until(lambda: asked(bots[1])[-1:] == [(640, 480, 600_000)], f"{asked(bots[1])}")
        await until(lambda: size(bots[0], ids[1]) == (640, 480), f"{size(bots[0], ids[1])}")
        assert asked(bots[1]) == [(320, 240, 450_000), (640, 480, 600_000)] or asked(
            bots[1]) == [(640, 480, 600_000), (320, 240, 450_000), (640, 480, 600_000)]
    finally:
        for bot in bots:
            await bot.leave()
