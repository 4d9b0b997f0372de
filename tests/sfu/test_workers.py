"""Processed video in worker processes: packets in and out, epochs, a worker that dies."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

import av
import numpy as np
import pytest

from confidentiality.events import PrivacyEvent
from confidentiality.profiles import Profile
from sfu.tap import VIDEO_TIME_BASE
from sfu.workers import (
    HEADER,
    MAX_MESSAGE_BYTES,
    PACKET,
    STALL_S,
    MediaWorkers,
    RemoteProcessor,
    encode_message,
    packet_body,
    read_message,
)
from web.bot import encode_clip

FPS = 15


def _clip(frames: int = 30) -> list[bytes]:
    # moving colour bars, a keyframe every 15 frames
    out = []
    for i in range(frames):
        img = np.zeros((480, 640, 3), np.uint8)
        img[:, (i * 8) % 640:, 0] = 200
        img[:, :, 1] = 40 + i
        out.append(img)
    return encode_clip(out, keyframe_every=15)


def _packet(data: bytes, i: int) -> av.Packet:
    packet = av.Packet(data)
    packet.pts = packet.dts = i * 90000 // FPS
    packet.time_base = VIDEO_TIME_BASE
    return packet


def _keyframe(data: bytes) -> bool:
    return (data[0] & 1) == 0 and data[3:6] == b"\x9d\x01\x2a"


class Output:
    """What the server side of one publication received from its worker."""

    def __init__(self) -> None:
        self.packets: list[tuple[bytes, bool]] = []
        self.events: list[PrivacyEvent] = []
        self.source_keyframe_requests = 0
        self._decoder = av.CodecContext.create("libvpx", "r")
        self.sizes: list[tuple[int, int]] = []

    def emit(self, packet: av.Packet, keyframe: bool, epoch: int = 0) -> None:
        data = bytes(packet)
        self.packets.append((data, keyframe))
        if keyframe or self.sizes:
            for frame in self._decoder.decode(av.Packet(data)):
                self.sizes.append((frame.width, frame.height))

    def ask_keyframe(self) -> None:
        self.source_keyframe_requests += 1


async def _until(cond: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _feed(proc: RemoteProcessor, clip: list[bytes], start: int = 0) -> None:
    for i, data in enumerate(clip):
        proc.submit(_packet(data, start + i), _keyframe(data))
        await asyncio.sleep(1 / FPS)


async def _feed_until(proc: RemoteProcessor, clip: list[bytes], cond: Callable[[], bool],
                      timeout_s: float = 30.0) -> None:
    """Send the clip over and over at its frame rate (a worker keeps only the newest frame of
    a burst) until `cond` holds."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    i = 0
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        data = clip[i % len(clip)]
        proc.submit(_packet(data, i), _keyframe(data))
        i += 1
        await asyncio.sleep(1 / FPS)


def _open(pool: MediaWorkers, out: Output, *, max_size: tuple[int, int] | None = None,
          profile: Profile = Profile.NONE) -> RemoteProcessor:
    return pool.open(name="video-test", profile=profile, display_name="Robin",
                     bitrate_bps=500_000, max_size=max_size, emit=out.emit,
                     request_source_keyframe=out.ask_keyframe, on_event=out.events.append)


async def test_the_wire_frames_messages_and_refuses_oversized_ones() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(encode_message(PACKET, 7, packet_body(3, b"abc", 6000, True)))
    reader.feed_data(encode_message(9, 1))
    kind, handle, body = await read_message(reader)
    assert (kind, handle) == (PACKET, 7) and body.endswith(b"abc")
    assert await read_message(reader) == (9, 1, b"")
    with pytest.raises(ValueError):
        encode_message(PACKET, 1, b"x" * (MAX_MESSAGE_BYTES + 1))
    reader.feed_data(HEADER.pack(MAX_MESSAGE_BYTES + 1, PACKET, 1))
    with pytest.raises(ValueError):
        await read_message(reader)


async def test_a_worker_process_decodes_encodes_once_and_fits_the_layer() -> None:
    pool = MediaWorkers(1)
    out = Output()
    try:
        proc = _open(pool, out)
        clip = _clip()
        await _feed_until(proc, clip, lambda: len(out.sizes) >= 10)
        assert out.packets[0][1]  # the stream starts with a keyframe
        assert set(out.sizes) == {(640, 480)}
        worker_pid = pool.workers[0].pid
        assert worker_pid is not None and worker_pid != os.getpid()
        # a smaller layer applies from the next frame, as a new stream (a keyframe)
        proc.set_stream(250_000, (320, 240))
        before = len(out.sizes)
        await _feed_until(proc, clip, lambda: (320, 240) in out.sizes[before:])
        # the new size came in on a keyframe: nothing between the two sizes failed to decode
        assert sum(key for _, key in out.packets) == 2
        await proc.aclose()
    finally:
        await pool.aclose()
    assert pool.workers == []


async def test_output_made_under_an_older_profile_is_dropped() -> None:
    pool = MediaWorkers(1)
    out = Output()
    try:
        proc = _open(pool, out)
        await _feed_until(proc, _clip(15), lambda: len(out.packets) >= 5)
        # a profile change opens a new epoch: anything still tagged with the old one, such as
        # a frame made under `none` before the worker heard of the change, never goes out
        epoch = proc.spec.epoch
        proc.set_profile(Profile.NONE)  # unchanged: same epoch, the stream goes on
        assert proc.spec.epoch == epoch
        proc.set_profile(Profile.BLUR)
        assert proc.spec.epoch == epoch + 1
        stale = _packet(out.packets[-1][0], 99)
        got = len(out.packets)
        proc.on_packet(packet_body(proc.spec.epoch - 1, stale, 0, True))
        assert len(out.packets) == got
        proc.on_packet(packet_body(proc.spec.epoch, stale, 0, True))
        assert len(out.packets) == got + 1
        await proc.aclose()
    finally:
        await pool.aclose()


async def test_a_worker_that_dies_alerts_and_a_new_one_takes_over() -> None:
    pool = MediaWorkers(1)
    out = Output()
    try:
        proc = _open(pool, out)
        clip = _clip()
        await _feed_until(proc, clip, lambda: len(out.packets) >= 10)
        worker = pool.workers[0]
        old_pid = worker.pid
        assert old_pid is not None
        os.kill(old_pid, signal.SIGKILL)
        await _until(lambda: any(e.kind == "fail_closed" for e in out.events))
        assert "Robin" in out.events[-1].detail
        await _until(lambda: worker.pid not in (None, old_pid))
        asked = out.source_keyframe_requests
        assert asked >= 1  # the new worker's decoder needs a keyframe
        got = len(out.packets)
        await _feed_until(proc, clip, lambda: len(out.packets) > got + 5)
        assert any(e.kind == "recovered" for e in out.events)
        assert worker.restarts == 1
        await proc.aclose()
    finally:
        await pool.aclose()


async def test_publications_spread_over_the_workers() -> None:
    pool = MediaWorkers(2)
    outs = [Output() for _ in range(4)]
    try:
        procs = [_open(pool, o) for o in outs]
        assert len(pool.workers) == 2
        assert sorted(len(w.processors) for w in pool.workers) == [2, 2]
        clip = _clip(15)
        await asyncio.gather(*(_feed_until(p, clip, lambda o=o: len(o.packets) >= 5)  # type: ignore[misc]
                               for p, o in zip(procs, outs, strict=True)))
        for proc in procs:
            await proc.aclose()
        assert all(not w.processors for w in pool.workers)
    finally:
        await pool.aclose()


async def test_a_worker_that_cannot_start_is_given_up_and_the_host_told() -> None:
    # a factory that cannot be imported: the worker exits at once, every time
    pool = MediaWorkers(1, factory="sfu.no_such_module:factory")
    out = Output()
    try:
        proc = _open(pool, out, profile=Profile.BLUR)
        worker = pool.workers[0]
        await _feed(proc, _clip(5))
        await _until(lambda: worker.given_up, 60)
        assert worker.restarts == 2
        assert pool.workers == []  # the next publication gets a fresh worker
        assert out.packets == []  # nothing was ever sent on: no picture at all
        assert [e.kind for e in out.events][:1] == ["fail_closed"]
        # what the publication still sends is not kept for a worker that will never come
        await _feed(proc, _clip(3))
        proc.request_keyframe()
        assert worker._early_bytes == 0  # noqa: SLF001
        await proc.aclose()
    finally:
        await pool.aclose()


async def test_a_starved_worker_pauses_the_video_and_says_so() -> None:
    # a worker that is alive but gets no CPU makes nothing at all, not even a placeholder:
    # the server notices from its side (the source sends, nothing comes back)
    pool = MediaWorkers(1)
    out = Output()
    try:
        proc = _open(pool, out)
        clip = _clip()
        await _feed_until(proc, clip, lambda: len(out.packets) >= 5)
        assert not any(e.kind == "fail_closed" for e in out.events)
        pid = pool.workers[0].pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # as starved as it gets
        try:
            stalled_at = len(out.packets)
            await _feed_until(proc, clip, lambda: any(e.kind == "fail_closed" for e in out.events),
                              timeout_s=STALL_S + 5)
            paused = [e for e in out.events if e.kind == "fail_closed"]
            assert len(paused) == 1 and paused[0].late and "Robin" in paused[0].detail
            assert len(out.packets) == stalled_at
            # reported once per pause, however long it lasts
            await _feed(proc, clip[:15])
            assert [e.kind for e in out.events].count("fail_closed") == 1
        finally:
            os.kill(pid, signal.SIGCONT)
        got = len(out.packets)
        await _feed_until(proc, clip, lambda: len(out.packets) > got + 3)
        assert out.events[-1].kind == "recovered"
        assert pool.workers[0].pid == pid  # the same worker, not a restart
        await proc.aclose()
    finally:
        await pool.aclose()


async def test_a_source_that_stops_is_not_a_stall() -> None:
    pool = MediaWorkers(1)
    out = Output()
    try:
        proc = _open(pool, out)
        await _feed_until(proc, _clip(), lambda: len(out.packets) >= 5)
        # the camera goes quiet (turned off, held): nothing is missing from the worker
        pid = pool.workers[0].pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            proc.submit(_packet(_clip(1)[0], 1000), True)
            await asyncio.sleep(STALL_S + 1.5)
        finally:
            os.kill(pid, signal.SIGCONT)
        assert not any(e.kind == "fail_closed" for e in out.events)
        await proc.aclose()
    finally:
        await pool.aclose()


async def test_a_keyframe_dropped_while_congested_is_asked_for_again() -> None:
    # A source that sends a keyframe only when asked (aiortc's sender; a browser's stream
    # between its rare periodic ones): the keyframe it sends in answer to a congested
    # worker's request may itself arrive while the worker is still congested, and be
    # dropped. The worker must ask again, or the member's video stays paused for good.
    pool = MediaWorkers(1)
    out = Output()
    clip = _clip(60)
    keyframe, deltas = clip[0], [c for c in clip[1:] if not _keyframe(c)]
    try:
        proc = _open(pool, out)
        await _feed_until(proc, clip[:15], lambda: len(out.packets) >= 5)
        worker = pool.workers[0]
        pid = worker.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            asked = out.source_keyframe_requests
            i = 0
            while out.source_keyframe_requests == asked:  # until congested
                proc.submit(_packet(deltas[i % len(deltas)], 100 + i), False)
                i += 1
                if i % 20 == 0:
                    await asyncio.sleep(0)
                assert i < 200_000, "the worker never became congested"
            # the source answers at once, while the worker is still stopped
            dropped = proc.dropped_packets
            proc.submit(_packet(keyframe, 100 + i), True)
            assert proc.dropped_packets == dropped + 1, "the keyframe should have been dropped"
        finally:
            os.kill(pid, signal.SIGCONT)
        await _until(lambda: not worker.congested(), 20)
        got = len(out.packets)
        answered = out.source_keyframe_requests
        # from here the source sends a keyframe only when asked again
        deadline = asyncio.get_running_loop().time() + 10
        n = 0
        while len(out.packets) < got + 5:
            assert asyncio.get_running_loop().time() < deadline, \
                "the video stayed paused: no keyframe was asked for again"
            if out.source_keyframe_requests > answered:
                answered = out.source_keyframe_requests
                data, key = keyframe, True
            else:
                data, key = deltas[n % len(deltas)], False
            proc.submit(_packet(data, 10_000 + n), key)
            n += 1
            await asyncio.sleep(1 / FPS)
        await proc.aclose()
    finally:
        await pool.aclose()
