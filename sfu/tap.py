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

from .aiortc_compat import replace_decoder_queue
from .vp8 import is_vp8_keyframe

VIDEO_TIME_BASE = Fraction(1, 90000)
AUDIO_TIME_BASE = Fraction(1, 48000)

PacketSink = Callable[[av.Packet, bool], None]


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
    replace_decoder_queue(receiver, tap)
    return tap
