"""How much a subscriber's downlink carries, from what its receiver reports, and when that is
too little for others' video ("audio first").

Every stream a subscriber receives is one stream for the whole room (forwarded as the
publisher sent it, or encoded once), so a slow downlink cannot be given a smaller copy of it.
What the server can do for that one member, without touching anyone else, is stop sending
them other people's video and keep their audio whole: in a group the conversation is the
sound, and a 300 kbps link that carries 500 kbps of video loses audio packets with it.

The estimate comes from the RTCP receiver reports each of the subscriber's streams gets back
(fraction lost since the last report) against the bytes the server sent on that stream: what
arrived is what was sent less what was lost. A link is short of capacity when it loses a
large share of what it is sent; what it then delivers is what it can carry. A receiver
estimate (REMB) is used as well when the subscriber sends one. Pure: the caller passes the
time, so the decision is tested without a network or a clock.

Once paused, only audio crosses the link, so its capacity for video cannot be seen from the
reports. The guard then tries video again after a while if audio arrives clean, backing off
each time the link turns out still too slow; a REMB above the resume threshold resumes at
once.
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Iterable
from dataclasses import dataclass

# a stream that carried less than this in the window says too little about the link's loss
MIN_STREAM_BYTES = 1000


@dataclass(frozen=True, slots=True)
class DownlinkPolicy:
    # what others' video needs: below this delivered while congested, the link is weak
    weak_below_bps: int = 350_000
    weak_for_s: float = 3.0
    # a link is congested when it loses this share of what it is sent (random Wi-Fi loss of
    # a few per cent, which NACK and RTX repair, is not a capacity problem)
    congested_loss: float = 0.15
    # a receiver estimate below what it was sent by this share or more cannot carry it; a
    # browser's estimate of a flat, app-limited stream hovers around what arrives and dips
    # a little under it when a bigger frame comes (a flash), with nothing lost
    remb_short_of_sent: float = 0.25
    # a receiver estimate (REMB) this high for this long resumes video at once
    resume_above_bps: int = 600_000
    resume_for_s: float = 5.0
    # while paused: audio this clean for the back-off lets video try again
    clean_loss: float = 0.02
    retry_after_s: float = 5.0
    retry_after_max_s: float = 20.0
    # video that stays up this long after a try has recovered; the back-off starts over
    confirmed_after_s: float = 8.0
    # reports older than this no longer count
    window_s: float = 2.0


@dataclass(frozen=True, slots=True)
class Estimate:
    sent_bps: float
    delivered_bps: float
    # the share the link itself lost (see DownlinkEstimator.estimate)
    loss: float
    # the subscriber's own receiver estimate, if it sends one
    remb_bps: int | None
    # what was sent on the streams that estimate covers (a browser's leaves audio out);
    # None when it names none of them, and then it is weighed against all that was sent
    remb_covers_sent_bps: float | None = None


class DownlinkEstimator:
    """Bytes sent and lost on one subscriber leg over the last `window_s` seconds."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        # (time, stream, bytes sent, bytes delivered) per report
        self._samples: collections.deque[tuple[float, int, int, float]] = collections.deque()
        # per stream (SSRC): octets sent at its previous report
        self._octets: dict[int, int] = {}
        self._remb: tuple[float, int] | None = None
        self._remb_ssrcs: frozenset[int] = frozenset()

    def on_report(self, now: float, ssrc: int, octets_sent: int, fraction_lost: float,
                  *, meaningful: bool = True) -> None:
        """A receiver report about stream `ssrc`: it lost `fraction_lost` (0..1) of what was
        sent since its last report; `octets_sent` is what the server has sent on it so far.
        A report that is not `meaningful` (its interval spans a leap in the numbering, which
        the receiver counts as loss) only starts the next interval."""
        before = self._octets.get(ssrc)
        self._octets[ssrc] = octets_sent
        if before is None or octets_sent < before or not meaningful:
            return  # the first report of a stream (or a restarted count) has no interval
        sent = octets_sent - before
        lost = min(1.0, max(0.0, fraction_lost))
        self._samples.append((now, ssrc, sent, sent * (1.0 - lost)))
        self._expire(now)

    def on_remb(self, now: float, bps: int, ssrcs: Iterable[int] = ()) -> None:
        """The receiver's estimate, made from the streams `ssrcs`."""
        self._remb = (now, bps)
        self._remb_ssrcs = frozenset(ssrcs)

    def forget(self, ssrc: int) -> None:
        self._octets.pop(ssrc, None)

    def _expire(self, now: float) -> None:
        while self._samples and self._samples[0][0] <= now - self.window_s:
            self._samples.popleft()

    def estimate(self, now: float) -> Estimate:
        self._expire(now)
        sent = sum(s[2] for s in self._samples)
        delivered = sum(s[3] for s in self._samples)
        # the link's loss is the least any stream that carried something lost: a full link
        # drops every stream's packets alike, while a stream that lost packets before it
        # reached the server (its publisher's leg) shows that loss alone
        per_stream: dict[int, list[float]] = {}
        for _, ssrc, stream_sent, stream_delivered in self._samples:
            totals = per_stream.setdefault(ssrc, [0.0, 0.0])
            totals[0] += stream_sent
            totals[1] += stream_delivered
        losses = [1.0 - d / n for n, d in per_stream.values() if n >= MIN_STREAM_BYTES]
        loss = min(losses) if losses else 0.0
        remb = self._remb[1] if self._remb and self._remb[0] >= now - 2 * self.window_s \
            else None
        covered = [s[2] for s in self._samples if s[1] in self._remb_ssrcs]
        covers = sum(covered) * 8 / self.window_s if covered else None
        return Estimate(sent * 8 / self.window_s, delivered * 8 / self.window_s, loss, remb,
                        covers)


class LinkState(enum.StrEnum):
    OK = "ok"
    # others' video paused for this subscriber
    AUDIO_FIRST = "audio_first"
    # video back on, on trial: the link may still be too slow
    TRYING = "trying"


class WeakLinkGuard:
    """The audio-first decision for one subscriber, with hysteresis.

    `update(now, estimate)` returns True to pause others' video, False to resume it, None to
    leave it as it is.
    """

    def __init__(self, policy: DownlinkPolicy | None = None) -> None:
        self.policy = policy or DownlinkPolicy()
        self.state = LinkState.OK
        self._weak_since: float | None = None
        self._strong_since: float | None = None
        self._since = 0.0  # when the current state began
        self._retry_after_s = self.policy.retry_after_s

    @property
    def video_paused(self) -> bool:
        return self.state is LinkState.AUDIO_FIRST

    def is_weak(self, estimate: Estimate) -> bool:
        p = self.policy
        covered = estimate.remb_covers_sent_bps
        sent = covered if covered is not None else estimate.sent_bps
        if (estimate.remb_bps is not None and estimate.remb_bps < p.weak_below_bps
                and estimate.remb_bps < sent * (1 - p.remb_short_of_sent)):
            # a low estimate alone is not a weak link: a browser's estimate follows what it is
            # sent, so a room of still, dim pictures (a few tens of kbps) keeps it low on a
            # perfect link. It is weak when it cannot carry what it is being sent, on the
            # streams it was made from (a browser's leaves audio out), by a clear margin
            return True
        return estimate.loss >= p.congested_loss and estimate.delivered_bps < p.weak_below_bps

    def update(self, now: float, estimate: Estimate) -> bool | None:
        p = self.policy
        weak = self.is_weak(estimate)
        self._weak_since = (self._weak_since if self._weak_since is not None else now) \
            if weak else None
        strong = estimate.remb_bps is not None and estimate.remb_bps >= p.resume_above_bps
        self._strong_since = (self._strong_since if self._strong_since is not None else now) \
            if strong else None

        if self.state is LinkState.AUDIO_FIRST:
            if self._strong_since is not None and now - self._strong_since >= p.resume_for_s:
                self._enter(LinkState.OK, now)
                self._retry_after_s = p.retry_after_s
                return False
            if now - self._since >= self._retry_after_s and estimate.loss <= p.clean_loss:
                self._enter(LinkState.TRYING, now)
                return False
            return None
        if self._weak_since is not None and now - self._weak_since >= p.weak_for_s:
            if self.state is LinkState.TRYING:
                # still too slow: wait longer before the next try
                self._retry_after_s = min(p.retry_after_max_s, self._retry_after_s * 2)
            self._enter(LinkState.AUDIO_FIRST, now)
            return True
        if self.state is LinkState.TRYING and now - self._since >= p.confirmed_after_s:
            self._enter(LinkState.OK, now)
            self._retry_after_s = p.retry_after_s
        return None

    def _enter(self, state: LinkState, now: float) -> None:
        self.state = state
        self._since = now
        self._weak_since = None
        self._strong_since = None
