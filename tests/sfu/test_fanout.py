"""The fan-out's bounded queues and keyframe routing, without a network."""

from __future__ import annotations

import asyncio

import av
import numpy as np

from sfu import fanout as fanout_module
from sfu.encoder import Vp8EncodeOnce
from sfu.fanout import AUDIO_QUEUE_FRAMES, VIDEO_QUEUE_FRAMES, Fanout, KeyframeLimiter, PacketTrack
from sfu.tap import is_vp8_keyframe


def _packet(n: int) -> av.Packet:
    p = av.Packet(bytes([n % 256]) * 10)
    p.pts = n
    return p


async def test_video_subscriber_starts_at_a_keyframe_and_asks_for_one() -> None:
    requests: list[int] = []
    fanout = Fanout("video", lambda: requests.append(1))
    track = PacketTrack("video")
    track.attach(fanout)
    assert requests == [1]  # a late joiner asks for a keyframe straight away
    fanout.publish(_packet(1), keyframe=False)
    fanout.publish(_packet(2), keyframe=True)
    fanout.publish(_packet(3), keyframe=False)
    assert (await track.recv()).pts == 2
    assert (await track.recv()).pts == 3
    assert track.packets_dropped == 1


async def test_a_slot_still_waiting_for_a_keyframe_asks_again(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # the first request (or the keyframe it produced) is lost: the tile must not stay frozen
    monkeypatch.setattr(fanout_module, "KEYFRAME_RETRY_S", 0.2)
    requests: list[float] = []
    fanout = Fanout("video", lambda: requests.append(asyncio.get_running_loop().time()))
    track = PacketTrack("video")
    track.attach(fanout)
    assert len(requests) == 1
    fanout.publish(_packet(1), keyframe=False)
    assert len(requests) == 1  # asked a moment ago: no second request yet
    for n in range(2, 30):
        await asyncio.sleep(0.05)
        fanout.publish(_packet(n), keyframe=False)
    await asyncio.sleep(0.6)  # a deferred request fires within the limiter's interval
    # asked again, but still within the limiter's bound (at most one per 0.5 s)
    assert 2 <= len(requests) <= 4, requests
    assert all(b - a >= 0.45 for a, b in zip(requests, requests[1:], strict=False))
    fanout.publish(_packet(50), keyframe=True)
    assert (await track.recv()).pts == 50
    fanout.publish(_packet(51), keyframe=False)
    before = len(requests)
    await asyncio.sleep(0.6)
    assert len(requests) == before  # started: no more requests
    fanout.close()


async def test_video_backlog_is_dropped_whole_and_restarts_at_a_keyframe() -> None:
    requests: list[int] = []
    fanout = Fanout("video", lambda: requests.append(1))
    track = PacketTrack("video")
    track.attach(fanout)
    fanout.publish(_packet(0), keyframe=True)
    for n in range(1, VIDEO_QUEUE_FRAMES + 5):
        fanout.publish(_packet(n), keyframe=False)
    # never more than the bound, and never a broken chain: nothing until the next keyframe
    assert len(track._queue) <= VIDEO_QUEUE_FRAMES
    await asyncio.sleep(0.6)  # the keyframe limiter's interval
    assert len(requests) >= 2
    fanout.publish(_packet(100), keyframe=True)
    assert (await track.recv()).pts == 100


async def test_audio_drops_the_oldest_frame() -> None:
    fanout = Fanout("audio", lambda: None)
    track = PacketTrack("audio")
    track.attach(fanout)
    for n in range(AUDIO_QUEUE_FRAMES + 3):
        fanout.publish(_packet(n), keyframe=True)
    assert len(track._queue) == AUDIO_QUEUE_FRAMES
    assert (await track.recv()).pts == 3


async def test_keyframe_requests_are_rate_limited_but_not_lost() -> None:
    sent: list[float] = []
    loop = asyncio.get_running_loop()
    limiter = KeyframeLimiter(lambda: sent.append(loop.time()), min_interval_s=0.5)
    for _ in range(20):  # eleven subscribers losing pictures at once, twice
        limiter.request()
    assert len(sent) == 1
    await asyncio.sleep(0.7)
    assert len(sent) == 2  # the deferred one went out after the interval
    assert sent[1] - sent[0] >= 0.45
    limiter.close()


async def test_a_slot_moves_between_publications_and_ends_cleanly() -> None:
    a = Fanout("video", lambda: None)
    b = Fanout("video", lambda: None)
    track = PacketTrack("video")
    track.attach(a)
    a.publish(_packet(1), keyframe=True)
    track.attach(b)  # the publisher left; the slot now carries someone else
    assert a.subscriber_count == 0 and b.subscriber_count == 1
    assert not track._queue  # nothing of the old publisher is left to send
    b.publish(_packet(7), keyframe=True)
    assert (await track.recv()).pts == 7
    b.close()
    assert track.readyState == "live" and track.fanout is None
    track.stop()
    assert track.readyState == "ended"


def test_keyframes_are_told_from_frames_that_start_mid_frame() -> None:
    # real VP8 from the encode-once encoder: a keyframe, then inter frames
    encoder = Vp8EncodeOnce()
    datas: list[tuple[bytes, bool]] = []
    for n in range(5):
        frame = av.VideoFrame.from_ndarray(
            np.full((480, 640, 3), 40 * n, np.uint8), format="rgb24"
        )
        frame.pts = n * 6000
        datas += [(bytes(p), key) for p, key in encoder.encode(frame, keyframe=n == 0)]
    assert [is_vp8_keyframe(d) for d, _ in datas] == [key for _, key in datas]
    assert datas[0][1] and not any(key for _, key in datas[1:])
    # what loss can hand on: the tail of a keyframe, or bytes that only look like a frame tag
    key = datas[0][0]
    tails = [key[k:] for k in range(1, min(len(key), 400))]
    assert not any(is_vp8_keyframe(t) for t in tails)
    assert not is_vp8_keyframe(b"\x00" * 64)
