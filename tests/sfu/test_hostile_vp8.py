"""Hostile VP8: a keyframe may claim any picture size up to 16383x16383, and libvpx allocates
what it claims before it finds out the data does not fit (one such frame cost 3.5 s of CPU and
~830 MiB here). The size is read from the header and refused before any decoder sees it, in
the server's own process and in a media worker; truncated and garbage frames give a
placeholder, never a crash."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import av
import psutil
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from confidentiality.profiles import Profile
from sfu import vp8
from sfu.grants import Permissions, mint_grant
from sfu.ice import rtc_configuration
from sfu.processor import PassThrough, VideoProcessor
from sfu.tap import VIDEO_TIME_BASE
from sfu.workers import MediaWorkers
from tests.support.hostile_media import (
    HostileClient,
    HostileVideoTrack,
    hostile_frame,
    real_clip,
    with_size,
)
from web import keys
from web.bot import Bot, ColorTrack, _vp8_only

MiB = 2**20


async def _wait_for(predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def _packet(data: bytes, i: int) -> av.Packet:
    packet = av.Packet(data)
    packet.pts = packet.dts = i * 6000
    packet.time_base = VIDEO_TIME_BASE
    return packet


class Output:
    """Decodes what a processor emits, as a subscriber would."""

    def __init__(self) -> None:
        self.sizes: list[tuple[int, int]] = []
        self.keyframes = 0
        self._decoder = av.CodecContext.create("libvpx", "r")

    def emit(self, packet: av.Packet, keyframe: bool, epoch: int = 0) -> None:
        self.keyframes += keyframe
        for frame in self._decoder.decode(av.Packet(bytes(packet))):
            self.sizes.append((frame.width, frame.height))


def test_the_header_says_the_size_and_bounds_it() -> None:
    clip = real_clip()
    assert vp8.keyframe_size(clip[0]) == (320, 240)
    assert vp8.keyframe_size(clip[1]) is None  # an inter frame carries no size
    assert vp8.check_frame(clip[0]) is None and vp8.check_frame(clip[1]) is None
    for size in ((16383, 16383), (4096, 4096), (1921, 1089), (0, 0), (8, 8)):
        assert vp8.check_frame(with_size(clip[0], *size)) == "picture_size", size
    assert vp8.check_frame(with_size(clip[0], 1920, 1080)) is None
    assert vp8.check_frame(with_size(clip[0], 1080, 1920)) is None
    assert vp8.check_frame(b"\x00\x01\x02") == "malformed"  # says keyframe, no start code
    assert vp8.check_frame(b"") == "malformed"


async def _feed(submit: Callable[[av.Packet, bool], None], frames: list[bytes], start: int) -> int:
    for i, data in enumerate(frames):
        submit(_packet(data, start + i), vp8.is_vp8_keyframe(data))
        await asyncio.sleep(1 / 30)
    return start + len(frames)


async def _feed_until(submit: Callable[[av.Packet, bool], None], frames: list[bytes],
                      start: int, cond: Callable[[], bool], timeout_s: float = 30.0) -> int:
    """Send `frames` over and over (a processor keeps only the newest of a burst) until
    `cond` holds; returns the next frame number."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        start = await _feed(submit, frames, start)
    return start


async def test_in_process_an_oversized_keyframe_is_refused_before_decoding() -> None:
    clip = real_clip()
    out = Output()
    asked: list[int] = []
    proc = VideoProcessor(transform=PassThrough(), emit=out.emit,
                          request_source_keyframe=lambda: asked.append(1),
                          loop=asyncio.get_running_loop())
    me = psutil.Process()
    try:
        n = await _feed_until(proc.submit, clip, 0, lambda: (320, 240) in out.sizes)
        rss_before = me.memory_info().rss
        hostile = [with_size(clip[0], 16383, 16383), *clip[1:10]] * 3
        n = await _feed(proc.submit, hostile, n)
        await _wait_for(lambda: proc.refused_frames >= 3)
        placeholders = proc.placeholders
        assert placeholders >= 1  # subscribers saw the video stop, not a stale or raw picture
        assert me.memory_info().rss - rss_before < 100 * MiB
        assert asked  # it asked the source for a keyframe it can use
        # a real keyframe: pictures again, at the real size
        got = len(out.sizes)
        await _feed_until(proc.submit, clip, n, lambda: len(out.sizes) > got + 3)
        assert max(w * h for w, h in out.sizes) <= 640 * 480
    finally:
        await proc.aclose()


async def test_in_a_media_worker_hostile_frames_give_placeholders_and_no_growth() -> None:
    clip = real_clip()
    pool = MediaWorkers(1)
    out = Output()
    try:
        proc = pool.open(name="video-test", profile=Profile.NONE, display_name="Robin",
                         bitrate_bps=300_000, max_size=None, emit=out.emit,
                         request_source_keyframe=lambda: None, on_event=lambda e: None)
        n = await _feed_until(proc.submit, clip, 0, lambda: len(out.sizes) >= 5)
        worker = psutil.Process(pool.workers[0].pid)
        rss_before, threads_before = worker.memory_info().rss, worker.num_threads()
        rng = random.Random(3)
        hostile = [with_size(clip[0], *size) for size in ((16383, 16383), (8192, 8192))]
        hostile += [hostile_frame(rng, clip)[1] for _ in range(120)]
        got = len(out.sizes)
        n = await _feed(proc.submit, hostile, n)
        # output went on through all of it (placeholders, then pictures again)
        await _feed_until(proc.submit, clip, n, lambda: len(out.sizes) > got + 10)
        assert worker.pid == pool.workers[0].pid  # the worker never died
        assert worker.memory_info().rss - rss_before < 100 * MiB
        assert worker.num_threads() <= threads_before + 1
        assert all(vp8.size_allowed(w, h) for w, h in out.sizes)
        await proc.aclose()
    finally:
        await pool.aclose()


@pytest.mark.parametrize("profile", [Profile.BLUR, Profile.NONE])
async def test_a_member_sending_oversized_keyframes_is_told_and_nobody_else_notices(  # type: ignore[no-untyped-def]
        server, profile: Profile) -> None:
    # blur: processed in a media worker (placeholders); none: forwarded (refused frames dropped)
    witness = Bot(server.link("g", "Robin", profile=Profile.BLUR), video=ColorTrack("red"))
    host = Bot(server.link("g", "Clinician", role="host"), publish=False)
    await witness.connect()
    await host.connect()
    grant = mint_grant(server.settings.grant_secret, room="g", display_name="Mallory",
                       profile=profile, permissions=Permissions(subscribe=False))
    hostile = HostileClient(server.base_url.replace("http", "ws") + "/rtc", grant)
    pc = RTCPeerConnection(rtc_configuration([]))
    try:
        await _wait_for(lambda: witness.me["id"] in host.peers
                        and host.peers[witness.me["id"]].video_frames > 5, 30)
        await hostile.join()
        clip = real_clip()
        count = [0]

        def frames() -> tuple[str, bytes]:
            count[0] += 1
            # a real picture now and then, an oversized claim the rest of the time
            if count[0] % 10 == 1:
                return "valid", clip[0]
            return "oversized", with_size(clip[0], 16383, 16383)

        track = HostileVideoTrack(frames)
        _vp8_only(pc.addTransceiver(track, direction="sendonly"))
        await pc.setLocalDescription(await pc.createOffer())
        reply = await hostile.request({"type": "publish_offer", "sdp": pc.localDescription.sdp})
        assert reply["type"] == "publish_answer", reply
        await pc.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
        notice = await hostile.wait_for(lambda m: m.get("code") == "video_refused", 30)
        assert "not shown" in notice["message"]
        room = server.app[keys.ROOMS].rooms["g"]
        pub = room.participants[hostile.me["id"]].publications["video"]
        await _wait_for(lambda: pub.refused_frames >= 20, 30)
        # nothing bigger than allowed reached the host, the witness kept streaming
        before = host.peers[witness.me["id"]].video_frames
        await _wait_for(lambda: host.peers[witness.me["id"]].video_frames > before + 10)
        seen = host.peers.get(hostile.me["id"])
        if seen is not None and seen.width:
            assert vp8.size_allowed(seen.width, seen.height)
        assert not witness.errors and not host.errors
    finally:
        await pc.close()
        await hostile.close()
        await witness.leave()
        await host.leave()
