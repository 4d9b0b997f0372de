"""The fan-out's bounded slots, their numbering, keyframe routing and frame assembly, without
a network (the same paths on real sockets: test_room_loopback.py, test_lossy_link.py)."""

from __future__ import annotations

import asyncio
import struct

import av
import numpy as np
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from sfu import fanout as fanout_module
from sfu import vp8
from sfu.encoder import Vp8EncodeOnce
from sfu.fanout import AUDIO_QUEUE_FRAMES, VIDEO_QUEUE_PACKETS, Fanout, KeyframeLimiter, PacketTrack
from sfu.ingest import GAP_WAIT_S, FrameAssembler
from sfu.media_packet import MediaPacket
from sfu.packetizer import Vp8Packetizer
from sfu.rtp_writer import RtpWriter
from sfu.tap import is_vp8_keyframe

KEY = b"\x10\x02\x00\x9d\x01\x2a\x40\x01\xf0\x00"  # a VP8 keyframe header: 320x240


def _unit(seq: int, *, stream: int = 1, keyframe: bool = False, ts: int | None = None,
          marker: bool = True, start: bool = True, pid: int | None = None) -> MediaPacket:
    """A VP8 packet: descriptor (with a 15-bit picture id when `pid` is given), then data."""
    head = b"\x90" if start else b"\x80"
    at = 0
    if pid is not None:
        head = bytes((head[0] | 0x80,)) + b"\x80" + bytes(((pid >> 8) | 0x80, pid & 0xFF))
        at = 2
    data = KEY if keyframe else bytes((0x01, seq % 256)) * 5
    return MediaPacket(stream, seq & 0xFFFF, ts if ts is not None else seq * 100, marker,
                       head + data, keyframe=keyframe, frame_start=start,
                       header_size=len(head), picture_id_at=at, picture_id_bytes=2 if at else 0)


def _seqs(track: PacketTrack) -> list[int]:
    return [out[0] for out in track._queue]  # noqa: SLF001


async def test_video_subscriber_starts_at_a_keyframe_and_asks_for_one() -> None:
    requests: list[int] = []
    fanout = Fanout("video", lambda: requests.append(1))
    track = PacketTrack("video")
    track.attach(fanout)
    assert requests == [1]  # a late joiner asks for a keyframe straight away
    fanout.publish(_unit(1))
    fanout.publish(_unit(2, keyframe=True))
    fanout.publish(_unit(3))
    queued = list(track._queue)  # noqa: SLF001
    assert len(queued) == 2 and queued[0][3].endswith(KEY)
    assert queued[1][0] == (queued[0][0] + 1) & 0xFFFF  # renumbered, contiguous
    assert track.packets_dropped == 1


async def test_a_slot_still_waiting_for_a_keyframe_asks_again(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # the first request (or the keyframe it produced) is lost: the tile must not stay frozen
    monkeypatch.setattr(fanout_module, "KEYFRAME_RETRY_S", 0.2)
    requests: list[float] = []
    fanout = Fanout("video", lambda: requests.append(asyncio.get_running_loop().time()))
    track = PacketTrack("video")
    track.attach(fanout)
    assert len(requests) == 1
    fanout.publish(_unit(1))
    assert len(requests) == 1  # asked a moment ago: no second request yet
    for n in range(2, 30):
        await asyncio.sleep(0.05)
        fanout.publish(_unit(n))
    await asyncio.sleep(0.6)  # a deferred request fires within the limiter's interval
    # asked again, but still within the limiter's bound (at most one per 0.5 s)
    assert 2 <= len(requests) <= 4, requests
    assert all(b - a >= 0.45 for a, b in zip(requests, requests[1:], strict=False))
    fanout.publish(_unit(50, keyframe=True))
    assert len(track._queue) == 1  # noqa: SLF001
    fanout.publish(_unit(51))
    before = len(requests)
    await asyncio.sleep(0.6)
    assert len(requests) == before  # started: no more requests
    fanout.close()


async def test_video_backlog_is_dropped_whole_and_restarts_at_a_keyframe() -> None:
    requests: list[int] = []
    fanout = Fanout("video", lambda: requests.append(1))
    track = PacketTrack("video")
    track.attach(fanout)
    fanout.publish(_unit(0, keyframe=True))
    for n in range(1, VIDEO_QUEUE_PACKETS + 5):
        fanout.publish(_unit(n))
    # never more than the bound, and never a broken chain: nothing until the next keyframe
    assert len(track._queue) <= VIDEO_QUEUE_PACKETS  # noqa: SLF001
    await asyncio.sleep(0.6)  # the keyframe limiter's interval
    assert len(requests) >= 2
    fanout.publish(_unit(300, keyframe=True))
    fanout.publish(_unit(301))
    # nothing was sent, so the numbering goes on without a hole from where it was
    first = track._queue[0][0]  # noqa: SLF001
    assert _seqs(track) == [first, (first + 1) & 0xFFFF]


async def test_audio_drops_the_oldest_frame() -> None:
    fanout = Fanout("audio", lambda: None)
    track = PacketTrack("audio")
    track.attach(fanout)
    for n in range(AUDIO_QUEUE_FRAMES + 3):
        fanout.publish(MediaPacket(1, n, n * 960, False, b"opus", keyframe=True,
                                   frame_start=True))
    assert len(track._queue) == AUDIO_QUEUE_FRAMES  # noqa: SLF001
    seqs = _seqs(track)
    assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(AUDIO_QUEUE_FRAMES)]


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
    a.publish(_unit(1, keyframe=True))
    track.attach(b)  # the publisher left; the slot now carries someone else
    assert a.subscriber_count == 0 and b.subscriber_count == 1
    assert not track._queue  # noqa: SLF001  (nothing of the old publisher is left to send)
    b.publish(_unit(7, stream=2, keyframe=True))
    assert len(track._queue) == 1  # noqa: SLF001
    b.close()
    assert track.readyState == "live" and track.fanout is None
    track.stop()
    assert track.readyState == "ended"


def test_a_subscriber_sees_one_continuous_stream_across_switches() -> None:
    writer = RtpWriter("video")
    t = 100.0
    # stream 1 from its keyframe: seq 1000.., picture ids 500..
    outs = [writer.map(_unit(1000 + i, keyframe=i == 0, ts=9000 + 3000 * i, pid=500 + i),
                       t + i / 30) for i in range(3)]
    assert all(o is not None for o in outs)
    seq0, ts0 = outs[0][0], outs[0][1]  # type: ignore[index]
    assert [o[0] for o in outs] == [(seq0 + i) & 0xFFFF for i in range(3)]  # type: ignore[index]
    assert [o[1] for o in outs] == [(ts0 + 3000 * i) & 0xFFFFFFFF for i in range(3)]  # type: ignore[index]
    # a gap the publisher's leg left stays a gap; its retransmission lands where it belongs
    late = writer.map(_unit(1004, ts=21000, pid=504), t + 0.2)
    filled = writer.map(_unit(1003, ts=18000, pid=503), t + 0.25)
    assert late is not None and filled is not None
    assert late[0] == (seq0 + 4) & 0xFFFF and filled[0] == (seq0 + 3) & 0xFFFF
    # another stream mid-picture cannot be carried; at its keyframe it continues the numbering
    assert writer.map(_unit(70, stream=2, ts=123), t + 0.3) is None
    switched = writer.map(_unit(71, stream=2, keyframe=True, ts=456, pid=9), t + 0.4)
    assert switched is not None
    assert switched[0] == (seq0 + 5) & 0xFFFF
    assert switched[1] - late[1] > 0  # time goes forward
    desc = vp8.parse_descriptor(switched[3])
    assert desc is not None
    assert vp8.picture_id(switched[3], desc.picture_id_at, desc.picture_id_bytes) == 505
    after = writer.map(_unit(72, stream=2, ts=3456, pid=10), t + 0.45)
    assert after is not None
    desc = vp8.parse_descriptor(after[3])
    assert desc is not None and vp8.picture_id(after[3], 2, 2) == 506
    # a packet of the new stream from before its keyframe is not carried
    assert writer.map(_unit(69, stream=2, ts=0), t + 0.5) is None


async def test_a_nack_is_answered_from_the_slots_history_as_rtx() -> None:
    writer = RtpWriter("video")
    sent: list[bytes] = []

    async def send(data: bytes) -> None:
        sent.append(data)

    writer._send_rtp = send  # noqa: SLF001  (what start() takes from the sender)
    writer._payload_type, writer._rtx_payload_type = 97, 98  # noqa: SLF001
    writer._ssrc, writer._rtx_ssrc = 1111, 2222  # noqa: SLF001
    out = writer.map(_unit(5, keyframe=True, ts=777), 1.0)
    assert out is not None
    await writer.send(out)
    await writer.retransmit(out[0])
    await writer.retransmit((out[0] + 10) & 0xFFFF)  # never sent: lost before the server
    assert len(sent) == 2 and writer.retransmitted == 1 and writer.nacks_unanswered == 1
    original, rtx = sent
    _, pt, seq, ts, ssrc = struct.unpack_from("!BBHII", original)
    assert (pt & 0x7F, seq, ts, ssrc) == (97, out[0], out[1], 1111)
    _, pt, _, ts, ssrc = struct.unpack_from("!BBHII", rtx)
    assert (pt & 0x7F, ts, ssrc) == (98, out[1], 2222)
    # RFC 4588: the original sequence number, then the original payload
    assert rtx[12:14] == struct.pack("!H", out[0]) and rtx[14:] == original[12:]


async def test_a_nack_from_before_a_switch_is_not_answered() -> None:
    """A subscriber starts a new stream at its keyframe: a packet of the old one is no use to
    it, and aiortc's receiver, given one that far behind the leap, drops the keyframe it is
    assembling and decodes the new stream over the old picture (checked on aiortc's own
    jitter buffer below, with what the slot sends)."""
    writer = RtpWriter("video")
    sent: list[bytes] = []

    async def send(data: bytes) -> None:
        sent.append(data)

    writer._send_rtp = send  # noqa: SLF001
    writer._payload_type = 97  # noqa: SLF001 (no RTX: a retransmission is the packet again)
    old = [writer.map(_unit(5 + i, keyframe=i == 0, ts=777 + 3000 * i, marker=False), 1.0)
           for i in range(3)]
    for out in old:
        assert out is not None
        await writer.send(out)
    # the slot moves to another publication (the clinician's copy withdrawn): a leap, then
    # the new stream's keyframe in three packets and an inter frame
    writer.leap()
    new = [writer.map(_unit(70 + i, stream=2, keyframe=i == 0, ts=456 + (3000 if i == 3 else 0),
                            start=i in (0, 3)), 1.5) for i in range(4)]
    assert all(out is not None for out in new)
    for out in new[:2]:
        await writer.send(out)  # type: ignore[arg-type]
    # a NACK the subscriber sent for the old stream before the switch, answered after it
    await writer.retransmit(old[1][0])  # type: ignore[index]
    for out in new[2:]:
        await writer.send(out)  # type: ignore[arg-type]
    await writer.retransmit(new[1][0])  # type: ignore[index]
    assert writer.nacks_stale == 1 and writer.retransmitted == 1

    # what aiortc's receiver makes of it: the new keyframe whole, from its first packet
    def frames(wire: list[bytes]) -> list[bytes]:
        buffer = JitterBuffer(capacity=512, is_video=True)
        out = []
        for data in wire:
            packet = RtpPacket.parse(data)
            packet._data = packet.payload  # type: ignore[attr-defined]  # noqa: SLF001
            _, frame = buffer.add(packet)
            if frame is not None:
                out.append(frame.data)
        return out

    keyframe = b"".join(out[3] for out in new[:3])  # type: ignore[index]
    assert keyframe in frames(sent)
    # had the old packet been sent again, the keyframe would have lost its first packets
    stale = writer.serialize(*old[1])  # type: ignore[misc]
    assert keyframe not in frames([*sent[:5], stale, *sent[5:]])


def _frames_of(packets: list[MediaPacket], assembler: FrameAssembler, now: float
               ) -> list[tuple[bytes, int, bool]]:
    out = []
    for p in packets:
        out += assembler.add(p, now)
    return out


def test_a_frame_is_released_on_its_marker_and_never_past_a_gap() -> None:
    asked: list[int] = []
    assembler = FrameAssembler(need_keyframe=lambda: asked.append(1))
    packetizer = Vp8Packetizer()
    frames = [bytes([i]) * 2500 for i in range(6)]  # three packets each
    key = KEY + b"\x00" * 2490
    packets = [packetizer.packetize(key if i == 0 else f, 3000 * i, i == 0)
               for i, f in enumerate(frames)]
    # not before a keyframe; then each frame as soon as its last packet is in
    assert _frames_of(packets[0][:2], assembler, 0.0) == []
    assert [f[2] for f in _frames_of(packets[0][2:], assembler, 0.0)] == [True]
    assert _frames_of(packets[1], assembler, 0.1)[0][0] == frames[1]
    # frame 2 loses its middle packet: frame 3 waits behind it until the retransmission
    assert _frames_of([packets[2][0], packets[2][2], *packets[3]], assembler, 0.2) == []
    got = _frames_of([packets[2][1]], assembler, 0.25)
    assert [f[0] for f in got] == [frames[2], frames[3]]
    # frame 4 is lost for good: frame 5 is never decoded after it; a keyframe restarts
    assert _frames_of([packets[4][0], *packets[5]], assembler, 0.3) == []
    assert _frames_of([], assembler, 0.3) == []
    gave_up = _frames_of([packetizer.packetize(b"\x01" * 10, 18000, False)[0]], assembler,
                         0.31 + GAP_WAIT_S)
    assert gave_up == [] and assembler.gaps == 1 and asked
    restart = packetizer.packetize(key, 21000, True)
    assert [f[2] for f in _frames_of(restart, assembler, 0.8)] == [True]


def test_the_packetizer_writes_what_the_descriptor_parser_reads() -> None:
    packetizer = Vp8Packetizer()
    packets = packetizer.packetize(KEY + b"\x55" * 3000, 1234, True)
    assert len(packets) == 3 and [p.marker for p in packets] == [False, False, True]
    assert [p.frame_start for p in packets] == [True, False, False]
    assert packets[0].keyframe and not packets[1].keyframe
    for p in packets:
        desc = vp8.parse_descriptor(p.payload)
        assert desc is not None and desc.size == p.header_size == 4
        assert len(p.payload) <= vp8.MAX_PAYLOAD_BYTES
    assert b"".join(p.payload[4:] for p in packets) == KEY + b"\x55" * 3000
    assert vp8.parse_descriptor(b"") is None and vp8.parse_descriptor(b"\x80") is None


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
