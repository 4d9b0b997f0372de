"""Decode → transform → encode once, for one published video track, off the event loop.

Packets arrive on the event loop; a worker thread decodes every packet in order (an
inter-coded stream cannot skip one), transforms only the newest decoded picture (latest
frame wins, so a slow transform lowers the frame rate instead of raising latency), encodes
it once and hands the packets back to the loop for fan-out. In the server this runs inside a
media worker process (sfu/workers.py), whose own loop carries the packets to and from it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import av
import cv2
import numpy as np

from confidentiality import yuv
from confidentiality.frames import fit_size

from . import vp8
from .encoder import DEFAULT_BITRATE_BPS, Vp8EncodeOnce
from .stats import MEDIA

logger = logging.getLogger(__name__)

# packets waiting for the decoder before we give up on the backlog and restart at a keyframe.
# Generous: decoding is the cheap step (~1 ms a frame; only the newest picture is transformed),
# so a worker that was starved for a moment catches up at once, whereas dropping the backlog
# leaves subscribers frozen until the source's next keyframe (up to seconds). 150 packets is
# about 2 s of a 640x480 source at 15 fps
MAX_PENDING_PACKETS = 150
# how long closing waits for the thread to finish the frame it is on
STOP_TIMEOUT_S = 5.0


class FrameTransform(Protocol):
    """What the processor needs of a privacy pipeline (see confidentiality.pipeline).

    A transform may also count the placeholder frames it made in `placeholder_frames`
    (an int attribute): they are counted with the processor's own in sfu.stats.
    """

    def process(self, frame: av.VideoFrame) -> av.VideoFrame: ...

    def close(self) -> None: ...


class PassThrough:
    """Decode and re-encode unchanged (used for measurements and the `none` profile)."""

    def process(self, frame: av.VideoFrame) -> av.VideoFrame:
        return frame

    def close(self) -> None:
        pass


def blank_frame(width: int, height: int, pts: int) -> av.VideoFrame:
    """A plain dark frame: what subscribers see while no safe picture exists."""
    width, height = max(16, width - width % 2), max(16, height - height % 2)
    y = np.full((height, width), 32, np.uint8)
    uv = np.full((height // 2, width // 2), 128, np.uint8)
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane, data in zip(frame.planes, (y, uv, uv), strict=True):
        stride = plane.line_size
        rows = data.shape[0]
        buf = np.zeros((rows, stride), np.uint8)
        buf[:, : data.shape[1]] = data
        plane.update(buf.tobytes())
    frame.pts = pts
    return frame


def _fit_within(frame: av.VideoFrame, max_size: tuple[int, int] | None) -> av.VideoFrame:
    """The frame scaled down (aspect kept, even sides) to fit `max_size`, before the transform:
    a smaller layer then costs less at every later step, not only at the encoder."""
    if max_size is None:
        return frame
    width, height = fit_size(frame.width, frame.height, *max_size)
    if (width, height) == (frame.width, frame.height):
        return frame
    if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
        # plane by plane with OpenCV: PyAV's reformat builds a new scaler for every decoded
        # frame, which costs ~1 ms at 640x480; this costs ~0.15 ms (linear: OpenCV's area
        # filter is slow at a fractional scale such as 640 -> 480)
        out = np.empty((height * 3 // 2, width), np.uint8)
        for src, dst in zip(yuv.planes(np.ascontiguousarray(frame.to_ndarray())),
                            yuv.planes(out), strict=True):
            cv2.resize(src, (dst.shape[1], dst.shape[0]), dst=dst, interpolation=cv2.INTER_LINEAR)
        fitted = av.VideoFrame.from_ndarray(out, format="yuv420p")
    else:
        fitted = frame.reformat(width=width, height=height, format="yuv420p")
    fitted.pts = frame.pts
    if frame.time_base is not None:
        fitted.time_base = frame.time_base
    return fitted


# (packet, is a keyframe, epoch of the profile it was made under; see `VideoProcessor.epoch`)
PacketEmit = Callable[[av.Packet, bool, int], None]


class VideoProcessor:
    """Owns one worker thread: decoder, transform and the single encoder of a publication."""

    def __init__(
        self,
        *,
        transform: FrameTransform,
        emit: PacketEmit,
        request_source_keyframe: Callable[[], None],
        loop: asyncio.AbstractEventLoop,
        name: str = "video",
        placeholder: Callable[[int, int, int], av.VideoFrame] = blank_frame,
        bitrate_bps: int = DEFAULT_BITRATE_BPS,
        max_size: tuple[int, int] | None = None,
    ) -> None:
        self._transform = transform
        self._emit = emit
        self._request_source_keyframe = request_source_keyframe
        self._loop = loop
        self._placeholder = placeholder
        self._pending: collections.deque[tuple[av.Packet, bool]] = collections.deque()
        self._cond = threading.Condition()
        self._stopped = False
        self._force_keyframe = False
        self._resync = False
        self._encoder = Vp8EncodeOnce(bitrate_bps=bitrate_bps)
        self._bitrate_bps = bitrate_bps
        self._max_size = max_size
        self._size = (640, 480)
        # bumped by whoever changes the transform's profile (a worker process): each output
        # carries the epoch read before its transform ran, so a frame made under an older
        # profile can be told apart and dropped by the server
        self.epoch = 0
        self.frames_in = 0
        self.frames_out = 0
        self.placeholders = 0
        # frames never given to the decoder: a picture too large, or not VP8 at all
        self.refused_frames = 0
        self.process_ms_total = 0.0
        self._thread = threading.Thread(target=self._run, name=f"confide-{name}", daemon=True)
        self._thread.start()

    # --- event loop side
    def submit(self, packet: av.Packet, keyframe: bool) -> None:
        with self._cond:
            if self._stopped:
                return
            if len(self._pending) >= MAX_PENDING_PACKETS and not keyframe:
                # bounded: drop the backlog; the decoder restarts at the next keyframe
                self._pending.clear()
                self._pending.append((packet, False))
                self._cond.notify()
                self._loop.call_soon(self._request_source_keyframe)
                return
            if keyframe:
                # nothing before a keyframe is needed to decode what follows it
                self._pending.clear()
            self._pending.append((packet, keyframe))
            self._cond.notify()

    def resync(self) -> None:
        """Forget decoder state: the next picture must come from a fresh source keyframe."""
        with self._cond:
            self._pending.clear()
            self._resync = True

    def request_keyframe(self) -> None:
        """A subscriber needs a keyframe: ask our own encoder for one."""
        self._force_keyframe = True

    def set_stream(self, bps: int, max_size: tuple[int, int] | None) -> None:
        """Bitrate and largest picture of the output; both apply from the next encoded frame
        (the worker reopens its encoder, so the new stream starts at a keyframe)."""
        self._bitrate_bps = bps
        self._max_size = max_size

    def set_transform(self, transform: FrameTransform) -> None:
        self._transform = transform

    def stop(self) -> None:
        with self._cond:
            if self._stopped:
                return
            self._stopped = True
            self._pending.clear()
            self._cond.notify()

    async def aclose(self) -> None:
        self.stop()
        # polled rather than joined in an executor thread: a worker process closing many
        # publications at once would otherwise keep a pool of idle threads for good
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while self._thread.is_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        self._encoder.close()

    @property
    def mean_process_ms(self) -> float:
        return self.process_ms_total / self.frames_out if self.frames_out else 0.0

    # --- worker thread
    def _run(self) -> None:
        decoder = av.CodecContext.create("libvpx", "r")
        synced = False
        while True:
            with self._cond:
                while not self._pending and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    break
                batch = list(self._pending)
                self._pending.clear()
                if self._resync:
                    self._resync = False
                    synced = False
            latest: av.VideoFrame | None = None
            last_pts = 0
            for packet, keyframe in batch:
                self.frames_in += 1
                last_pts = packet.pts or 0
                # a decoder allocates what a keyframe claims before it finds out the data
                # does not fit: refuse from the header, before decoding
                if vp8.check_frame(bytes(memoryview(packet)[:vp8.KEYFRAME_HEADER_BYTES])):
                    self.refused_frames += 1
                    # what follows refers to a picture we never decoded
                    synced = False
                    self._ask_source_keyframe()
                    continue
                if not synced and not keyframe:
                    continue
                try:
                    frames = decoder.decode(packet)
                    synced = True
                except Exception:  # av.FFmpegError, or anything else a member's bytes cause
                    # a corrupt or missing reference: wait for the next keyframe
                    synced = False
                    self._ask_source_keyframe()
                    continue
                for frame in frames:
                    if not vp8.size_allowed(frame.width, frame.height):
                        # the header said otherwise: never transform or encode it
                        self.refused_frames += 1
                        synced = False
                        continue
                    frame.pts = packet.pts
                    latest = frame
            if latest is None:
                if not synced:
                    # fail closed: keep subscribers' pictures moving with a placeholder, never
                    # with anything we could not run through the transform
                    self._ask_source_keyframe()
                    out = self._placeholder(*self._size, last_pts)
                    self.placeholders += 1
                    MEDIA.placeholder()
                    self._encode_and_emit(out, self.epoch)
                continue
            latest = _fit_within(latest, self._max_size)
            self._size = (latest.width, latest.height)
            epoch = self.epoch
            transform = self._transform
            placeholders_before = getattr(transform, "placeholder_frames", 0)
            started = time.perf_counter()
            try:
                out = transform.process(latest)
            except Exception:
                # fail closed: the transform's own guard should never let this happen
                logger.exception("video transform raised; sending placeholder")
                out = self._placeholder(latest.width, latest.height, latest.pts or 0)
                self.placeholders += 1
                MEDIA.placeholder()
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.process_ms_total += elapsed_ms
            MEDIA.transformed(elapsed_ms)
            made = getattr(transform, "placeholder_frames", 0) - placeholders_before
            if isinstance(made, int) and made > 0:
                self.placeholders += made
                for _ in range(made):
                    MEDIA.placeholder()
            out.pts = latest.pts
            self._encode_and_emit(out, epoch)
        self._transform.close()

    def _ask_source_keyframe(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._request_source_keyframe)
        except RuntimeError:
            pass  # loop closed during shutdown

    def _encode_and_emit(self, frame: av.VideoFrame, epoch: int) -> None:
        keyframe = False
        if epoch == self.epoch:
            # a keyframe asked for after a profile change belongs to the new epoch's output
            keyframe, self._force_keyframe = self._force_keyframe, False
        self._encoder.set_bitrate(self._bitrate_bps)
        try:
            packets = self._encoder.encode(frame, keyframe=keyframe)
        except Exception:
            logger.exception("video encode failed")
            return
        self.frames_out += 1
        for packet, is_key in packets:
            try:
                self._loop.call_soon_threadsafe(self._emit, packet, is_key, epoch)
            except RuntimeError:
                return  # loop closed during shutdown
