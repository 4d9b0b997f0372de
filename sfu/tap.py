"""Take encoded frames from an aiortc receiver instead of letting it decode them.

aiortc's receiver always decodes. A published track that is only forwarded must not be
decoded at all, and one that is transformed is decoded by our own worker, so we replace
the receiver's decoder queue with a tap that hands each reassembled frame on as an
`av.Packet`. The swap is per receiver: other receivers in the process are untouched.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import av
from aiortc import RTCRtpReceiver

VIDEO_TIME_BASE = Fraction(1, 90000)
AUDIO_TIME_BASE = Fraction(1, 48000)

PacketSink = Callable[[av.Packet, bool], None]


VP8_START_CODE = b"\x9d\x01\x2a"


def is_vp8_keyframe(data: bytes) -> bool:
    """RFC 6386 §9.1: bit 0 of the frame tag is 0 for a key frame, and a key frame's tag is
    followed by the start code 9d 01 2a.

    The start code matters: after packet loss the receive buffer can hand on a frame that
    begins mid-frame, and its first bit alone would call it a keyframe half the time; a
    subscriber started on such a "keyframe" could decode nothing until the next real one.
    """
    return len(data) >= 10 and (data[0] & 0x01) == 0 and data[3:6] == VP8_START_CODE


class PacketTap(queue.Queue[Any]):
    """Stands in for the receiver's decoder queue; runs on the event loop."""

    def __init__(self, kind: str, sink: PacketSink) -> None:
        super().__init__()
        self.kind = kind
        self._sink: PacketSink | None = sink
        self._time_base = VIDEO_TIME_BASE if kind == "video" else AUDIO_TIME_BASE

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            # end of stream: let the (idle) decoder thread finish
            self._sink = None
            super().put(None)
            return
        sink = self._sink
        if sink is None:
            return
        codec, encoded_frame = item
        data: bytes = encoded_frame.data
        if not data:
            return
        packet = av.Packet(data)
        packet.pts = encoded_frame.timestamp
        packet.dts = encoded_frame.timestamp
        packet.time_base = self._time_base
        keyframe = is_vp8_keyframe(data) if codec.name == "VP8" else True
        sink(packet, keyframe)

    def detach(self) -> None:
        self._sink = None


def install_tap(receiver: RTCRtpReceiver, sink: PacketSink) -> PacketTap:
    """Replace the receiver's decoder queue; must run before the receiver starts."""
    tap = PacketTap(receiver.track.kind if receiver.track else "video", sink)
    # name-mangled private attribute of RTCRtpReceiver (aiortc 1.16)
    attr = "_RTCRtpReceiver__decoder_queue"
    if not hasattr(receiver, attr):
        raise RuntimeError("unsupported aiortc version: receiver has no decoder queue")
    if getattr(receiver, "_RTCRtpReceiver__decoder_thread", None) is not None:
        raise RuntimeError("receiver already started: tap must be installed on the track event")
    setattr(receiver, attr, tap)
    return tap
