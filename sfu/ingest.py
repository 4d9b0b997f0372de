"""A publisher's receiver, packet by packet: forwarded as they arrive, frames on their marker.

aiortc's receiver reassembles frames in a jitter buffer that releases a frame only when the
next one begins, which adds a frame interval (67 ms at 15 fps) at every receive hop, and
80 ms to audio (it holds four frames back). A forwarded stream needs no reassembly at all,
so `PacketIngest` stands in for that buffer (sfu/aiortc_compat.py): each packet, once aiortc
has decrypted it, unwrapped a retransmission and noted what is missing for its NACKs, goes
straight on to the subscribers. A processed stream needs whole frames for its decoder;
`FrameAssembler` releases each one as soon as its last packet (marker bit) is in, in order,
and never past a gap: a decoder given a frame whose reference was lost would show a
corrupted picture, so after a lost frame it waits for the next keyframe instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from . import aiortc_compat, vp8
from .media_packet import MediaPacket, new_stream_id, seq_add, seq_newer

# a packet still missing this long after it was last asked for is asked for again: aiortc
# asks once, when it notices the gap, and that NACK or its retransmission may be lost too
RENACK_INTERVAL_S = 0.08
# missing packets are given up after this (the sender's history is about this long)
RENACK_GIVE_UP_S = 1.0
MAX_MISSING = 256
# a processed stream stuck at a gap this long gives the lost frame up and waits for a
# keyframe: long enough for two or three NACK round trips on a poor link
GAP_WAIT_S = 0.35
# packets held while waiting for a gap to fill (about 3 s of 640x480 video)
MAX_HELD_PACKETS = 512
# a chain waiting for a keyframe asks for one again this often
KEYFRAME_RETRY_S = 1.0

# (VP8 frame, RTP timestamp, is a keyframe)
Frame = tuple[bytes, int, bool]
NackSender = Callable[[int, list[int]], None]


class FrameAssembler:
    """Whole frames, in order, as soon as each is complete; none that follows a lost one."""

    def __init__(self, *, need_keyframe: Callable[[], None], gap_wait_s: float = GAP_WAIT_S
                 ) -> None:
        self._need_keyframe = need_keyframe
        self._gap_wait_s = gap_wait_s
        self._held: dict[int, MediaPacket] = {}
        # where the next frame starts; None until a keyframe starts the chain
        self._next: int | None = None
        self._highest: int | None = None
        self._gap_since: float | None = None
        self._asked_s = -1e9  # when a keyframe was last asked for
        self.frames = 0
        self.gaps = 0  # frames given up (lost for good): the chain restarted at a keyframe

    def reset(self) -> None:
        """Forget everything: the next frame must be a keyframe."""
        self._held.clear()
        self._next = self._highest = self._gap_since = None

    def add(self, packet: MediaPacket, now: float) -> list[Frame]:
        if self._next is not None and not (packet.seq == self._next
                                           or seq_newer(packet.seq, self._next)):
            return []  # before the chain's head: released, or given up already
        self._held[packet.seq] = packet
        if self._highest is None or seq_newer(packet.seq, self._highest):
            self._highest = packet.seq
        frames = self._release()
        if self._next is None:
            # waiting for a keyframe to start the chain: ask again now and then (a request
            # or the keyframe itself can be lost), and hold only so much meanwhile
            self._gap_since = None
            if len(self._held) > MAX_HELD_PACKETS:
                for seq in sorted(self._held, key=lambda s: (s - packet.seq) & 0xFFFF)[
                        : len(self._held) // 2]:
                    del self._held[seq]
            if now - self._asked_s >= KEYFRAME_RETRY_S:
                self._asked_s = now
                self._need_keyframe()
        elif self._waiting_at_gap():
            if self._gap_since is None:
                self._gap_since = now
            elif now - self._gap_since > self._gap_wait_s or len(self._held) > MAX_HELD_PACKETS:
                self._give_up(now)
                frames += self._release()
        else:
            self._gap_since = None
        return frames

    def _waiting_at_gap(self) -> bool:
        """Some packet between the chain's head and the newest one held is missing."""
        if self._next is None or self._highest is None or not self._held:
            return False
        span = ((self._highest - self._next) & 0xFFFF) + 1
        return len(self._held) < span

    def _give_up(self, now: float) -> None:
        """The frame at the chain's head is lost: drop it and what depends on it, and start
        again at the next keyframe (held already, or asked for)."""
        self.gaps += 1
        if self._next is not None:
            missing = self._next
            while missing in self._held:
                missing = seq_add(missing, 1)
            for seq in [s for s in self._held if seq_newer(missing, s)]:
                del self._held[seq]
            # nothing before the gap can start the chain again
            self._held = {s: p for s, p in self._held.items() if s != missing}
        self._next = None
        self._gap_since = None
        self._asked_s = now
        self._need_keyframe()

    def _release(self) -> list[Frame]:
        frames: list[Frame] = []
        while True:
            if self._next is None and not self._sync():
                return frames
            frame = self._take_frame()
            if frame is None:
                return frames
            frames.append(frame)

    def _sync(self) -> bool:
        """Start the chain at the oldest keyframe held; drop what came before it."""
        starts = [p for p in self._held.values() if p.keyframe]
        if not starts:
            return False
        first = starts[0]
        for p in starts[1:]:
            if seq_newer(first.seq, p.seq):
                first = p
        for seq in [s for s in self._held if seq_newer(first.seq, s)]:
            del self._held[seq]
        self._next = first.seq
        return True

    def _take_frame(self) -> Frame | None:
        assert self._next is not None
        seq = self._next
        held = self._held
        # padding (no payload) before a frame moves the chain on
        while (p := held.get(seq)) is not None and not p.payload:
            del held[seq]
            seq = seq_add(seq, 1)
        self._next = seq
        first = held.get(seq)
        if first is None:
            return None
        parts = [first]
        end = seq
        while not parts[-1].marker:
            end = seq_add(end, 1)
            p = held.get(end)
            if p is None:
                return None  # not complete yet
            if p.frame_start and p.timestamp != first.timestamp:
                # the next frame began without a marker on this one: it ended before
                end = seq_add(end, -1)
                break
            if p.payload:
                parts.append(p)
            else:
                del held[end]  # padding inside a frame carries nothing
        for p in parts:
            held.pop(p.seq, None)
        self._next = seq_add(end, 1)
        if not first.frame_start:
            # the chain's head is not the start of a frame: nothing here can be decoded
            self._give_up(time.monotonic())
            return None
        self.frames += 1
        data = b"".join(memoryview(p.payload)[p.header_size:] for p in parts)
        return data, first.timestamp, first.keyframe


class _Missing:
    __slots__ = ("first_s", "asked_s")

    def __init__(self, now: float) -> None:
        self.first_s = now
        self.asked_s = now


class PacketIngest:
    """Stands in for a receiver's jitter buffer (`add` is what aiortc calls for each packet)."""

    def __init__(self, kind: str, on_packet: Callable[[MediaPacket], None], *,
                 on_frame: Callable[[Frame], None] | None = None,
                 need_keyframe: Callable[[], None] | None = None,
                 send_nack: NackSender | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.kind = kind
        self.stream = new_stream_id()
        self._on_packet: Callable[[MediaPacket], None] | None = on_packet
        self._on_frame = on_frame
        self._send_nack = send_nack if kind == "video" else None
        self._clock = clock
        self.assembler = FrameAssembler(need_keyframe=need_keyframe or (lambda: None))
        # frames are assembled only while someone decodes this stream (see `assemble`)
        self._assemble = False
        self._highest: int | None = None
        self._missing: dict[int, _Missing] = {}
        self._checked_s = 0.0
        self._ssrc = 0
        self.packets = 0
        self.malformed = 0
        self.nacks_repeated = 0
        # packets that came after they were noted missing (a retransmission, or late)
        self.recovered = 0

    @property
    def assemble(self) -> bool:
        return self._assemble

    @assemble.setter
    def assemble(self, on: bool) -> None:
        if on and not self._assemble:
            self.assembler.reset()  # starts at the next keyframe
        self._assemble = on

    def detach(self) -> None:
        self._on_packet = None
        self._on_frame = None
        self._assemble = False

    # what aiortc's receiver calls: (send a PLI?, a frame for aiortc's own decoder)
    def add(self, packet: Any) -> tuple[bool, None]:
        sink = self._on_packet
        if sink is None:
            return False, None
        self.packets += 1
        payload: bytes = packet.payload
        if self.kind != "video":
            sink(MediaPacket(self.stream, packet.sequence_number, packet.timestamp,
                             bool(packet.marker), payload, keyframe=True, frame_start=True))
            return False, None
        now = self._clock()
        self._ssrc = packet.ssrc
        self._note_sequence(packet.sequence_number, now)
        keyframe = frame_start = False
        header = pid_at = pid_bytes = 0
        if payload:
            descriptor = vp8.parse_descriptor(payload)
            if descriptor is None:
                self.malformed += 1
                return False, None
            header = descriptor.size
            pid_at, pid_bytes = descriptor.picture_id_at, descriptor.picture_id_bytes
            frame_start = descriptor.frame_start
            keyframe = frame_start and vp8.is_vp8_keyframe(payload[header:header + 10])
        unit = MediaPacket(self.stream, packet.sequence_number, packet.timestamp,
                           bool(packet.marker), payload, keyframe=keyframe,
                           frame_start=frame_start, header_size=header,
                           picture_id_at=pid_at, picture_id_bytes=pid_bytes)
        sink(unit)
        if self._assemble and self._on_frame is not None:
            for frame in self.assembler.add(unit, now):
                self._on_frame(frame)
        return False, None

    def _note_sequence(self, seq: int, now: float) -> None:
        """Track what is missing and ask for it again while it may still come."""
        if self._send_nack is None:
            return
        highest = self._highest
        if highest is None:
            self._highest = seq
        elif seq_newer(seq, highest):
            gap = (seq - highest - 1) & 0xFFFF
            if gap < MAX_MISSING:
                for n in range(1, gap + 1):
                    # aiortc's receiver asks for these once, now
                    self._missing[seq_add(highest, n)] = _Missing(now)
            self._highest = seq
        elif self._missing.pop(seq, None) is not None:
            self.recovered += 1
        if not self._missing or now - self._checked_s < RENACK_INTERVAL_S / 4:
            return
        self._checked_s = now
        due = []
        for missing_seq, entry in list(self._missing.items()):
            if now - entry.first_s > RENACK_GIVE_UP_S:
                del self._missing[missing_seq]
            elif now - entry.asked_s >= RENACK_INTERVAL_S:
                entry.asked_s = now
                due.append(missing_seq)
        if len(self._missing) > MAX_MISSING:
            for missing_seq in list(self._missing)[: len(self._missing) - MAX_MISSING]:
                del self._missing[missing_seq]
        if due:
            self.nacks_repeated += len(due)
            self._send_nack(self._ssrc, sorted(due))


class Discard:
    """Stands in for the jitter buffer of a track nobody may receive: drops every packet."""

    def add(self, packet: Any) -> tuple[bool, None]:
        return False, None


def install_ingest(receiver: Any, ingest: PacketIngest | Discard) -> None:
    """Take the receiver's packets as they arrive; must run before the receiver starts."""
    aiortc_compat.replace_jitter_buffer(receiver, ingest)


def nack_sender(receiver: Any) -> NackSender | None:
    """NACKs through the receiver's own RTCP (its SSRC), sent without waiting on them."""
    send = aiortc_compat.nack_sender(receiver)
    if send is None:
        return None

    def nack(media_ssrc: int, lost: list[int]) -> None:
        task = asyncio.ensure_future(send(media_ssrc, lost))
        task.add_done_callback(_quiet)

    return nack


def _quiet(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()  # a NACK to a closing connection is of no matter
