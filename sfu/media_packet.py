"""One RTP packet of a published stream, as the server forwards it.

Packets go from a publisher's receiver (or a processed stream's packetizer) to every
subscriber as they arrive, never waiting for the rest of their frame. Each subscriber's
slot renumbers them into its own sequence (sfu/rtp_writer.py); what it needs to do that is
here: which numbering the packet belongs to, and whether a decoder can start at it.
"""

from __future__ import annotations

import itertools

_streams = itertools.count(1)


def new_stream_id() -> int:
    """A fresh id for a packet numbering (a source, or one processed encode)."""
    return next(_streams)


class MediaPacket:
    """What is forwarded of an RTP packet; the payload is never copied per subscriber."""

    __slots__ = ("stream", "seq", "timestamp", "marker", "payload", "keyframe", "frame_start",
                 "header_size", "picture_id_at", "picture_id_bytes")

    def __init__(self, stream: int, seq: int, timestamp: int, marker: bool, payload: bytes,
                 *, keyframe: bool, frame_start: bool, header_size: int = 0,
                 picture_id_at: int = 0, picture_id_bytes: int = 0) -> None:
        # packets of one stream share one sequence and timestamp numbering
        self.stream = stream
        self.seq = seq
        self.timestamp = timestamp
        self.marker = marker
        self.payload = payload
        # a decoder can start here: the first packet of a keyframe (every audio packet)
        self.keyframe = keyframe
        self.frame_start = frame_start
        # bytes of payload descriptor before the codec's data (VP8: 1-6; Opus: none)
        self.header_size = header_size
        # the VP8 picture id's place in the payload (0: none), renumbered per subscriber
        self.picture_id_at = picture_id_at
        self.picture_id_bytes = picture_id_bytes

    def __repr__(self) -> str:
        return (f"MediaPacket(stream={self.stream}, seq={self.seq}, ts={self.timestamp}, "
                f"marker={self.marker}, keyframe={self.keyframe}, {len(self.payload)} B)")


def seq_newer(a: int, b: int) -> bool:
    """16-bit sequence number `a` comes after `b` (RFC 3550 arithmetic, with wrap)."""
    return 0 < ((a - b) & 0xFFFF) < 0x8000


def seq_add(a: int, n: int) -> int:
    return (a + n) & 0xFFFF
