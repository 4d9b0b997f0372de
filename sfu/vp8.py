"""What the server reads of a VP8 frame without decoding it: is it a keyframe, and how big.

A member's keyframe may claim any picture size up to 16383x16383, and a decoder allocates
what the header claims before it finds the data does not fit. So the size is read from the
header (RFC 6386 §9.1) and checked before any decoder sees the frame.
"""

from __future__ import annotations

VP8_START_CODE = b"\x9d\x01\x2a"
# a keyframe's header: 3-byte frame tag, 3-byte start code, then 16-bit width and height
# (14 bits of size, 2 of an upscaling hint the decoder does not act on)
KEYFRAME_HEADER_BYTES = 10

# the largest picture a member may send: 1080p (coded as 1920x1088) or its portrait turn.
# A gallery tile is at most 640x480; anything bigger costs every later step for nothing
MAX_PICTURE_PIXELS = 1920 * 1088
MAX_PICTURE_SIDE = 4096
# no camera sends less; below this the transforms' and encoder's odd-size paths are all
# that a picture would exercise
MIN_PICTURE_SIDE = 16


def is_keyframe_tag(data: bytes) -> bool:
    """Bit 0 of the frame tag is 0: the frame says it is a keyframe (true or not)."""
    return len(data) >= 1 and (data[0] & 0x01) == 0


def is_vp8_keyframe(data: bytes) -> bool:
    """RFC 6386 §9.1: bit 0 of the frame tag is 0 for a key frame, and a key frame's tag is
    followed by the start code 9d 01 2a.

    The start code matters: after packet loss the receive buffer can hand on a frame that
    begins mid-frame, and its first bit alone would call it a keyframe half the time; a
    subscriber started on such a "keyframe" could decode nothing until the next real one.
    """
    return (
        len(data) >= KEYFRAME_HEADER_BYTES
        and is_keyframe_tag(data)
        and data[3:6] == VP8_START_CODE
    )


def keyframe_size(data: bytes) -> tuple[int, int] | None:
    """The (width, height) a keyframe claims, or None for anything that is not one."""
    if not is_vp8_keyframe(data):
        return None
    width = (data[6] | data[7] << 8) & 0x3FFF
    height = (data[8] | data[9] << 8) & 0x3FFF
    return width, height


def size_allowed(width: int, height: int) -> bool:
    """A picture size the server will decode or forward."""
    return (
        MIN_PICTURE_SIDE <= width <= MAX_PICTURE_SIDE
        and MIN_PICTURE_SIDE <= height <= MAX_PICTURE_SIDE
        and width * height <= MAX_PICTURE_PIXELS
    )


def check_frame(data: bytes) -> str | None:
    """Why a frame must not reach a decoder, or None if it may: "picture_size" for a
    keyframe whose size is out of bounds, "malformed" for one that is not a frame.

    Only keyframes carry a size; an inter frame is judged by the keyframe it follows.
    """
    if not data:
        return "malformed"
    if not is_keyframe_tag(data):
        return None
    size = keyframe_size(data)
    if size is None:
        # says keyframe, has no start code: a decoder refuses it anyway
        return "malformed"
    return None if size_allowed(*size) else "picture_size"


# --- RTP payload (RFC 7741): what the server reads and writes of each packet
# the largest payload a packet carries: a 1200-byte path MTU minus RTP, SRTP and extension
# headers, as browsers packetize
MAX_PAYLOAD_BYTES = 1100
PICTURE_ID_MODULO = 1 << 15


class Descriptor:
    """The parts of a VP8 payload descriptor the server acts on."""

    __slots__ = ("start", "partition", "size", "picture_id_at", "picture_id_bytes")

    def __init__(self, start: bool, partition: int, size: int, picture_id_at: int,
                 picture_id_bytes: int) -> None:
        self.start = start  # S: the first packet of a partition
        self.partition = partition  # PID
        self.size = size  # bytes before the VP8 data
        # where the picture id sits (0 when absent) and its width, 1 or 2 bytes
        self.picture_id_at = picture_id_at
        self.picture_id_bytes = picture_id_bytes

    @property
    def frame_start(self) -> bool:
        """The first packet of a frame: partition 0 begins here."""
        return self.start and self.partition == 0


def parse_descriptor(payload: bytes) -> Descriptor | None:
    """The payload descriptor at the start of an RTP payload, or None if it is malformed."""
    n = len(payload)
    if n < 1:
        return None
    first = payload[0]
    start, partition = bool(first & 0x10), first & 0x0F
    pos = 1
    pid_at = pid_bytes = 0
    if first & 0x80:
        if n < 2:
            return None
        ext = payload[1]
        pos = 2
        if ext & 0x80:  # I: a picture id
            if n < pos + 1:
                return None
            pid_at = pos
            pid_bytes = 2 if payload[pos] & 0x80 else 1
            pos += pid_bytes
        if ext & 0x40:  # L: TL0PICIDX
            pos += 1
        if ext & 0x30:  # T or K: one byte holds both
            pos += 1
        if n < pos:
            return None
    return Descriptor(start, partition, pos, pid_at, pid_bytes)


def picture_id(payload: bytes, at: int, width: int) -> int | None:
    """The picture id at `at` (`width` bytes, from `parse_descriptor`), or None if absent."""
    if not at:
        return None
    if width == 2:
        return ((payload[at] & 0x7F) << 8) | payload[at + 1]
    return payload[at] & 0x7F


def with_picture_id(payload: bytes, at: int, width: int, value: int) -> bytes:
    """The payload with its picture id replaced (same width: a 7-bit id wraps at 128)."""
    if width == 2:
        value %= PICTURE_ID_MODULO
        return b"".join((payload[:at], bytes(((value >> 8) | 0x80, value & 0xFF)),
                         payload[at + 2:]))
    return b"".join((payload[:at], bytes((value & 0x7F,)), payload[at + 1:]))


def packetize(frame: bytes, picture_id_value: int,
              max_payload: int = MAX_PAYLOAD_BYTES) -> list[bytes]:
    """One encoded frame as RTP payloads: a descriptor with a 15-bit picture id, then data."""
    pid = picture_id_value % PICTURE_ID_MODULO
    pid_bytes = bytes(((pid >> 8) | 0x80, pid & 0xFF))
    first, rest = b"\x90\x80" + pid_bytes, b"\x80\x80" + pid_bytes
    step = max_payload - len(first)
    payloads = []
    for pos in range(0, len(frame), step):
        payloads.append((first if pos == 0 else rest) + frame[pos:pos + step])
    return payloads
