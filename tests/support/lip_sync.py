"""Audio with events a receiver can time: a tone burst every second from silence.

Lip sync is measured as (audio latency) − (video latency) at the same receiver, each from
capture to decoded output in the same process: the burst's onset against the time its first
frame was captured, the video against its numbered frames (tests/support/frame_check.py).
Positive: sound arrives after the picture.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time
from collections.abc import Callable

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

RATE = 48000
FRAME_SAMPLES = 960  # 20 ms
BURST_EVERY_FRAMES = 50  # a burst each second
BURST_FRAMES = 10  # 200 ms of tone
# a decoded frame this loud after this many quiet ones is an onset (the burst's RMS is ~0.35)
ONSET_RMS = 0.1
QUIET_FRAMES = 5


class ClapTrack(MediaStreamTrack):
    """Silence, then a 1 kHz burst, once a second; remembers when each burst was captured."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._start: float | None = None
        self._count = 0
        self.bursts: list[float] = []

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self._count * FRAME_SAMPLES / RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        phase = self._count % BURST_EVERY_FRAMES
        if phase < BURST_FRAMES:
            if phase == 0:
                self.bursts.append(time.monotonic())
            t = (np.arange(FRAME_SAMPLES) + self._count * FRAME_SAMPLES) / RATE
            pcm = (np.sin(2 * math.pi * 1000 * t) * 0.5 * 32767).astype(np.int16)
        else:
            pcm = np.zeros(FRAME_SAMPLES, np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._count * FRAME_SAMPLES
        frame.time_base = fractions.Fraction(1, RATE)
        self._count += 1
        return frame

    def burst_before(self, t: float) -> float | None:
        for when in reversed(self.bursts):
            if when <= t:
                return when
        return None


class OnsetTimer:
    """Times each burst's arrival at one receiver (decoded audio frame RMS in, ms out).

    With `on_screen` (when the picture now on screen was captured, from its stamp), each
    onset also notes what the viewer sees as the burst sounds: the on-screen picture's
    capture time minus the burst's. Both are the source's own capture times, so the
    receiver's clock and scheduling cancel out. In sync, that picture is the one captured
    with the burst or just before it: between minus one frame interval and zero. Sound late
    by d moves it up by d; sound early by d, down by d.
    """

    def __init__(self, source: ClapTrack,
                 on_screen: Callable[[], float | None] | None = None) -> None:
        self.source = source
        self._on_screen = on_screen
        self._quiet = 0
        self.samples: list[tuple[float, float]] = []  # (arrival, latency ms)
        self.screen_leads_ms: list[float] = []

    def on_rms(self, rms: float) -> None:
        now = time.monotonic()
        if rms < ONSET_RMS:
            self._quiet += 1
            return
        if self._quiet >= QUIET_FRAMES:
            captured = self.source.burst_before(now)
            if captured is not None and now - captured < 0.9:
                self.samples.append((now, (now - captured) * 1000))
                seen = self._on_screen() if self._on_screen is not None else None
                if seen is not None:
                    self.screen_leads_ms.append((seen - captured) * 1000)
        self._quiet = 0
