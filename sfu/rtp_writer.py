"""One subscriber slot's outgoing RTP stream: its own numbering, and what it sent, for NACKs.

A slot carries one publication at a time, and over its life several (publishers come and
go, a processed stream switches to forwarding at a keyframe, a weak downlink moves to a
smaller layer). Whatever it carries, the subscriber sees one continuous stream: sequence
numbers, timestamps and VP8 picture ids are offset at each switch, which happens only at a
packet a decoder can start from. Within a stream the offsets stay fixed, so a gap the
publisher's leg left stays a gap (the subscriber asks for it, and gets it when the server's
own NACK to the publisher brings it), and a late retransmission lands where it belongs. A
NACK for a packet from before the current stream is not answered: the subscriber starts
that stream at its keyframe.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Coroutine
from typing import Any

from aiortc import RTCRtpTransceiver

from . import aiortc_compat, vp8
from .media_packet import MediaPacket, seq_add, seq_newer

# packets kept for retransmission: ~4 s of a 640x480 stream, ~5 s of audio
HISTORY_PACKETS = 256
# how far the numbering leaps when video comes back to a slot after a pause: a whole
# receiver's reorder window (aiortc's video jitter buffer holds 512 packets, and a packet
# that far ahead of what it waits for empties it)
SEQ_LEAP = 512
CLOCK_RATE = {"video": 90000, "audio": 48000}
_HEADER = struct.Struct("!BBHII")

# (sequence number, timestamp, marker, payload) as this slot numbers them
Outgoing = tuple[int, int, bool, bytes]
SendRtp = Callable[[bytes], Coroutine[Any, Any, None]]


def _mid_extension(ext_id: int | None, mid: str | None) -> bytes:
    """The RFC 8285 one-byte header extension block carrying the MID (empty without one)."""
    if not ext_id or not mid or not 1 <= len(mid.encode()) <= 16 or not 1 <= ext_id <= 14:
        return b""
    value = mid.encode()
    body = bytes(((ext_id << 4) | (len(value) - 1),)) + value
    body += b"\x00" * (-len(body) % 4)
    return b"\xbe\xde" + struct.pack("!H", len(body) // 4) + body


class RtpWriter:
    """Numbers, builds and sends one slot's packets; answers the subscriber's NACKs."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.clock_rate = CLOCK_RATE.get(kind, 90000)
        self._transceiver: RTCRtpTransceiver | None = None
        self._send_rtp: SendRtp | None = None
        self._payload_type = 0
        self._ssrc = 0
        self._rtx_payload_type: int | None = None
        self._rtx_ssrc = 0
        self._extension = b""
        # numbering: the stream being carried and its offsets
        self._stream: int | None = None
        self._start_seq = 0
        self._seq_offset = 0
        self._ts_offset = 0
        self._pid_offset = 0
        # what this slot numbered last (random starts, as a fresh sender's)
        self._next_seq = random.randrange(1 << 15)
        self._last_ts = random.randrange(1 << 32)
        self._last_time = 0.0
        self._last_pid: int | None = None
        self._last_sent_seq: int | None = None
        self._leap = False
        # when (monotonic) a stream last began after a leap: the subscriber counts the
        # numbers skipped as lost, so its next report's loss says nothing of its link
        self.leaped_at = -1e9
        self._history: list[Outgoing | None] = [None] * HISTORY_PACKETS
        self._rtx_seq = random.randrange(1 << 15)
        self.packets_sent = 0
        self.octets_sent = 0
        self.retransmitted = 0
        self.nacks_unanswered = 0
        self.nacks_stale = 0

    # --- set up
    def bind(self, transceiver: RTCRtpTransceiver) -> None:
        """The transceiver whose sender this slot writes through (its SSRCs, its NACKs)."""
        self._transceiver = transceiver
        self._ssrc, self._rtx_ssrc = aiortc_compat.sender_ssrcs(transceiver.sender)
        aiortc_compat.answer_nacks(transceiver.sender, self.retransmit)

    def start(self) -> None:
        """The sender has started (negotiation done): take its payload types and MID."""
        transceiver = self._transceiver
        if transceiver is None:
            raise RuntimeError("slot is not bound to a transceiver")
        self._payload_type, self._rtx_payload_type = aiortc_compat.send_payload_types(
            transceiver)
        self._extension = _mid_extension(aiortc_compat.mid_extension_id(transceiver),
                                         transceiver.mid)
        self._send_rtp = aiortc_compat.rtp_sender(transceiver.sender)

    @property
    def ssrc(self) -> int:
        """The media SSRC this slot sends with (0 until bound)."""
        return self._ssrc

    @property
    def started(self) -> bool:
        return self._send_rtp is not None

    @property
    def stream(self) -> int | None:
        return self._stream

    @property
    def last_timestamp(self) -> int:
        """The RTP timestamp of the newest packet numbered: whatever is carried next, after a
        switch too, is stamped later than this (modulo 2**32)."""
        return self._last_ts

    # --- numbering (on the event loop, as packets are published)
    def restart(self) -> None:
        """The next packet carried starts a new mapping (it must be one a decoder can start
        at); nothing numbered but not sent is kept, so the numbering has no hole."""
        self._stream = None
        if self._last_sent_seq is not None:
            self._next_seq = seq_add(self._last_sent_seq, 1 + (SEQ_LEAP if self._leap else 0))

    def leap(self) -> None:
        """The next stream carried starts well past the last packet sent, not right after it.

        After a pause (a slot detached while its subscriber's link lost packets, which were
        then never resent) the subscriber's receiver may still wait for that hole and hold
        the new keyframe behind it, then let it go and decode what follows against a stale
        picture. A leap past its reorder window makes it start afresh at the keyframe:
        aiortc's jitter buffer empties when a packet lands twice its size ahead, and a
        browser decodes a keyframe after any gap (the skipped numbers cost a NACK, unanswered).
        """
        self._leap = True
        self.restart()

    def map(self, packet: MediaPacket, now: float) -> Outgoing | None:
        """The packet numbered for this slot, or None if it cannot be carried (a new stream
        that does not start at a keyframe, or a packet from before this stream started)."""
        if packet.stream != self._stream:
            if not packet.keyframe:
                return None
            self._remap(packet, now)
        elif packet.seq != self._start_seq and not seq_newer(packet.seq, self._start_seq):
            return None
        seq = (packet.seq + self._seq_offset) & 0xFFFF
        timestamp = (packet.timestamp + self._ts_offset) & 0xFFFFFFFF
        newest = seq == self._next_seq or seq_newer(seq, self._next_seq)
        if newest:
            self._next_seq = seq_add(seq, 1)
            self._last_time = now
            self._last_ts = timestamp
        payload = packet.payload
        if packet.picture_id_at:
            pid = vp8.picture_id(payload, packet.picture_id_at, packet.picture_id_bytes)
            if pid is not None:
                if self._pid_offset:
                    pid = (pid + self._pid_offset) % vp8.PICTURE_ID_MODULO
                    payload = vp8.with_picture_id(payload, packet.picture_id_at,
                                                  packet.picture_id_bytes, pid)
                if newest:
                    self._last_pid = pid
        return seq, timestamp, packet.marker, payload

    def _remap(self, packet: MediaPacket, now: float) -> None:
        if self._leap:
            self.leaped_at = now
        self._leap = False
        self._stream = packet.stream
        self._start_seq = packet.seq
        self._seq_offset = (self._next_seq - packet.seq) & 0xFFFF
        # time moves on across a switch as it did on the wall clock (at least one tick)
        elapsed = max(1, int((now - self._last_time) * self.clock_rate)) if self._last_time \
            else 0
        self._ts_offset = (self._last_ts + elapsed - packet.timestamp) & 0xFFFFFFFF
        self._pid_offset = 0
        if packet.picture_id_at and self._last_pid is not None:
            source_pid = vp8.picture_id(packet.payload, packet.picture_id_at,
                                        packet.picture_id_bytes)
            if source_pid is not None:
                # the new stream's first picture follows the last one this subscriber saw
                self._pid_offset = (self._last_pid + 1 - source_pid) % vp8.PICTURE_ID_MODULO

    # --- sending (from the slot's send loop)
    def serialize(self, seq: int, timestamp: int, marker: bool, payload: bytes) -> bytes:
        first = 0x90 if self._extension else 0x80
        second = (0x80 if marker else 0) | self._payload_type
        return b"".join((_HEADER.pack(first, second, seq, timestamp, self._ssrc),
                         self._extension, payload))

    async def send(self, out: Outgoing) -> None:
        """Send one numbered packet; ConnectionError if the transport is not up (yet)."""
        send_rtp = self._send_rtp
        if send_rtp is None:
            raise ConnectionError("sender not started")
        seq, timestamp, marker, payload = out
        self._history[seq % HISTORY_PACKETS] = out
        self._last_sent_seq = seq
        await send_rtp(self.serialize(seq, timestamp, marker, payload))
        self.packets_sent += 1
        self.octets_sent += len(payload)
        if self._transceiver is not None:
            # aiortc's sender reports (SR) what was sent: keep them true
            aiortc_compat.count_sent(self._transceiver.sender, timestamp, len(payload))

    async def retransmit(self, seq: int) -> None:
        """A subscriber's NACK: send the packet again, as RTX when negotiated."""
        # this slot's number for the current stream's first packet (its keyframe)
        first = (self._start_seq + self._seq_offset) & 0xFFFF
        if self._stream is None or (seq != first and not seq_newer(seq, first)):
            # from before the stream the slot now carries, which the subscriber starts at its
            # keyframe: no use to it, and harmful to some. aiortc's receiver takes a packet
            # that far behind a leap for a reordering reset, throws away the keyframe it is
            # assembling and decodes the rest of it, which fails; it then decodes the new
            # stream's frames over the old stream's last picture until the next keyframe
            # (after a member withdrew consent to the clinician's copy: their face)
            self.nacks_stale += 1
            return
        entry = self._history[seq % HISTORY_PACKETS]
        send_rtp = self._send_rtp
        if entry is None or entry[0] != seq or send_rtp is None:
            # never sent: lost on the publisher's leg; it comes when the publisher resends
            self.nacks_unanswered += 1
            return
        _, timestamp, marker, payload = entry
        if self._rtx_payload_type is not None:
            second = (0x80 if marker else 0) | self._rtx_payload_type
            first = 0x90 if self._extension else 0x80
            data = b"".join((_HEADER.pack(first, second, self._rtx_seq, timestamp,
                                          self._rtx_ssrc),
                             self._extension, struct.pack("!H", seq), payload))
            self._rtx_seq = seq_add(self._rtx_seq, 1)
        else:
            data = self.serialize(seq, timestamp, marker, payload)
        self.retransmitted += 1
        try:
            await send_rtp(data)
        except ConnectionError:
            pass
