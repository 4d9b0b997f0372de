"""Video whose every frame can be checked at the receiver: was it this frame, and whole?

The publisher sends a real moving picture (the astronaut clip panning over a brick wall, so
frames span several packets and inter frames really depend on their references) with the
frame's number drawn into its top row. A receiver in the same process reads the number back
and compares what it decoded with what was sent as that frame: a frame decoded from a broken
chain (a lost packet, a missing reference) shows the wrong picture there and scores far
lower than coding loss alone. It also gives frame rate, freezes and latency at the receiver.
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import math
import time
from dataclasses import dataclass, field

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from tests.support.faces import astronaut_frames
from web.bot import STAMP_BLOCK, read_stamp, write_stamp

VIDEO_CLOCK = 90000
# what VP8 at our rates keeps of this clip (measured: 31-36 dB); a frame decoded against the
# wrong reference scores below 20 dB on a pan
CORRUPT_BELOW_DB = 24.0
# frames a receiver may look back at
KEPT_FRAMES = 900
# a tile that shows no new frame for longer than this is frozen
FREEZE_S = 1.0


class StampedClipTrack(MediaStreamTrack):
    """The astronaut pan, there and back, each frame numbered; remembers what it sent."""

    kind = "video"

    def __init__(self, *, fps: int = 15, frames: int = 24,
                 size: tuple[int, int] = (640, 480)) -> None:
        super().__init__()
        pan = astronaut_frames("pan", frames, size)
        self._clip = pan + pan[::-1]
        self.fps = fps
        self.width = size[0]
        # when each recent frame was captured, by its number
        self.sent_at: collections.OrderedDict[int, float] = collections.OrderedDict()
        self._start: float | None = None
        self._count = 0

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self._count / self.fps - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        index = self._count
        img = self._clip[index % len(self._clip)].copy()
        write_stamp(img, index)
        self.sent_at[index] = time.monotonic()
        while len(self.sent_at) > KEPT_FRAMES:
            self.sent_at.popitem(last=False)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = int(index * VIDEO_CLOCK / self.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        return frame

    @property
    def frames_sent(self) -> int:
        return self._count

    def reference(self, index: int) -> np.ndarray | None:
        """What frame `index` showed (below its number), if it was sent lately."""
        if index not in self.sent_at:
            return None
        return self._clip[index % len(self._clip)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two RGB pictures, below the stamp rows."""
    diff = a[STAMP_BLOCK:].astype(np.float32) - b[STAMP_BLOCK:].astype(np.float32)
    mse = float(np.mean(diff * diff))
    return 99.0 if mse == 0 else 10 * math.log10(255 * 255 / mse)


@dataclass
class FrameChecker:
    """What one receiver decoded of one StampedClipTrack."""

    source: StampedClipTrack
    frames: int = 0
    corrupted: int = 0
    unreadable: int = 0
    corrupted_at: list[float] = field(default_factory=list)
    checked_at: list[float] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    # (arrival, capture -> decoded ms) of every checked frame
    latencies: list[tuple[float, float]] = field(default_factory=list)
    scores_db: list[float] = field(default_factory=list)
    # (arrival, frame number) of every frame whose number could be read, in arrival order
    shown: list[tuple[float, int]] = field(default_factory=list)
    sizes: collections.Counter[tuple[int, int]] = field(default_factory=collections.Counter)

    def on_frame(self, img: np.ndarray) -> None:
        now = time.monotonic()
        self.frames += 1
        self.arrivals.append(now)
        self.sizes[(img.shape[1], img.shape[0])] += 1
        if img.shape[1] != self.source.width:
            return  # a smaller layer: its number is scaled away; only full-size frames count
        self.checked_at.append(now)
        index = read_stamp(img)
        sent = self.source.reference(index) if index is not None else None
        if sent is None or index is None:
            # the number itself was garbled: a broken picture
            self.unreadable += 1
            self.corrupted += 1
            self.corrupted_at.append(now)
            return
        self.shown.append((now, index))
        score = psnr(sent, img)
        self.scores_db.append(score)
        if score < CORRUPT_BELOW_DB:
            self.corrupted += 1
            self.corrupted_at.append(now)
        self.latencies.append((now, (now - self.source.sent_at[index]) * 1000))

    def on_screen_captured_at(self) -> float | None:
        """When the frame now on screen (the last one decoded) was captured."""
        if not self.shown:
            return None
        return self.source.sent_at.get(self.shown[-1][1])

    def numbers(self, start: float, end: float) -> list[int]:
        """The frame numbers shown between `start` and `end`, in arrival order."""
        return [index for t, index in self.shown if start <= t <= end]

    def window(self, start: float, end: float) -> WindowStats:
        times = [t for t in self.arrivals if start <= t <= end]
        gaps = [b - a for a, b in zip([start, *times], [*times, end], strict=True)]
        return WindowStats(
            fps=(len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0,
            frames=len(times),
            longest_gap_s=max(gaps) if gaps else end - start,
            freezes=sum(1 for g in gaps if g > FREEZE_S),
            corrupted=sum(1 for t in self.corrupted_at if start <= t <= end),
            checked=sum(1 for t in self.checked_at if start <= t <= end),
        )


@dataclass
class WindowStats:
    fps: float
    frames: int
    longest_gap_s: float
    freezes: int
    corrupted: int = 0
    checked: int = 0


def longest_skip(numbers: list[int]) -> int:
    """The most source frames never shown between two frames shown one after the other: how
    long the tile stood still, counted in the source's frames rather than on a clock."""
    return max((b - a - 1 for a, b in zip(numbers, numbers[1:], strict=False)), default=0)


def shown_share(numbers: list[int]) -> float:
    """The share of the source's frames over the span of `numbers` that were shown."""
    if len(numbers) < 2:
        return 0.0
    return len(set(numbers)) / (max(numbers) - min(numbers) + 1)
