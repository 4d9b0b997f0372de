"""Watches one subscriber leg's RTCP and carries out the audio-first decision for it.

Each slot's sender sees the receiver reports (and REMB) about its own stream; the watch adds
them up for the whole leg (sfu/downlink.py decides) and tells the room when others' video
should stop or start again for this subscriber. It runs in aiortc's RTCP handling, on the
event loop, so it only adds a few numbers per report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import aiortc_compat
from .downlink import DownlinkEstimator, DownlinkPolicy, Estimate, WeakLinkGuard

if TYPE_CHECKING:
    from .fanout import PacketTrack
    from .participant import Subscription

logger = logging.getLogger(__name__)

# a report reaches the server this long after the receiver made it, at most (loopback to a
# slow home link): a leap in the numbering this soon before the previous report may still
# fall in the next report's interval
REPORT_DELAY_S = 0.5

# (pause others' video?, the estimate that decided it)
OnChange = Callable[[bool, Estimate], None]


class DownlinkWatch:
    def __init__(self, on_change: OnChange, policy: DownlinkPolicy | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or DownlinkPolicy()
        self.estimator = DownlinkEstimator(self.policy.window_s)
        self.guard = WeakLinkGuard(self.policy)
        self._on_change = on_change
        self._clock = clock
        # when the previous report about each stream arrived
        self._reported_at: dict[int, float] = {}
        self.closed = False

    @property
    def video_paused(self) -> bool:
        return self.guard.video_paused

    def watch(self, sub: Subscription) -> None:
        """Read the reports about this slot's stream from now on (once per transceiver)."""
        track = sub.track
        aiortc_compat.observe_rtcp(sub.transceiver.sender,
                                   lambda packet: self._observe(track, packet))

    def _observe(self, track: PacketTrack, packet: Any) -> None:
        if self.closed:
            return
        try:
            self._read(track, packet)
        except Exception:
            # a bad report must never break the leg's RTCP handling
            logger.exception("downlink estimate failed")

    def _read(self, track: PacketTrack, packet: Any) -> None:
        now = self._clock()
        remb = aiortc_compat.remb(packet)
        if remb is not None:
            self.estimator.on_remb(now, remb[0], remb[1])
        reported = False
        for ssrc, lost in aiortc_compat.loss_reports(packet):
            # the same report reaches every slot it covers: each counts its own stream
            if ssrc == track.writer.ssrc:
                previous = self._reported_at.get(ssrc, -1e9)
                self._reported_at[ssrc] = now
                # the subscriber counts the numbers a slot leaps over as lost (RtpWriter.leap)
                meaningful = track.writer.leaped_at < previous - REPORT_DELAY_S
                self.estimator.on_report(now, ssrc, track.writer.octets_sent, lost,
                                         meaningful=meaningful)
                reported = True
        if not reported and remb is None:
            return
        estimate = self.estimator.estimate(now)
        decision = self.guard.update(now, estimate)
        if decision is not None:
            self._on_change(decision, estimate)

    def close(self) -> None:
        self.closed = True
