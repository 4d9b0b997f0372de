"""A processed stream's encoded frames as RTP packets, made once for every subscriber."""

from __future__ import annotations

import random

from . import vp8
from .media_packet import MediaPacket, new_stream_id, seq_add

# the descriptor `vp8.packetize` writes: X, then I with a 15-bit picture id at byte 2
_HEADER_BYTES = 4
_PICTURE_ID_AT = 2


class Vp8Packetizer:
    """Packetizes one encoder's output; its packets share one numbering (one stream id)."""

    def __init__(self) -> None:
        self.stream = new_stream_id()
        self._seq = random.randrange(1 << 15)
        self._picture_id = random.randrange(vp8.PICTURE_ID_MODULO)

    def packetize(self, frame: bytes, timestamp: int, keyframe: bool) -> list[MediaPacket]:
        payloads = vp8.packetize(frame, self._picture_id)
        self._picture_id = (self._picture_id + 1) % vp8.PICTURE_ID_MODULO
        last = len(payloads) - 1
        timestamp &= 0xFFFFFFFF
        packets = []
        for i, payload in enumerate(payloads):
            packets.append(MediaPacket(
                self.stream, self._seq, timestamp, i == last, payload,
                keyframe=keyframe and i == 0, frame_start=i == 0, header_size=_HEADER_BYTES,
                picture_id_at=_PICTURE_ID_AT, picture_id_bytes=2))
            self._seq = seq_add(self._seq, 1)
        return packets
