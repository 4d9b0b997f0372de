"""The downlink estimate and the audio-first decision, on a clock the test moves."""

from __future__ import annotations

from sfu.downlink import DownlinkEstimator, DownlinkPolicy, Estimate, LinkState, WeakLinkGuard

VIDEO, AUDIO = 1111, 2222


def _feed(est: DownlinkEstimator, t: float, octets: dict[int, int], bps: dict[int, int],
          lost: float, dt: float = 0.5) -> None:
    """Each stream sent `bps` over the last `dt` seconds and lost `lost` of it."""
    for ssrc, rate in bps.items():
        octets[ssrc] = octets.get(ssrc, 0) + int(rate * dt / 8)
        est.on_report(t, ssrc, octets[ssrc], lost)


def test_the_estimate_is_what_was_sent_less_what_was_lost() -> None:
    est = DownlinkEstimator(window_s=2.0)
    octets: dict[int, int] = {}
    t = 0.0
    for _ in range(10):
        t += 0.5
        _feed(est, t, octets, {VIDEO: 500_000, AUDIO: 64_000}, lost=0.4)
    e = est.estimate(t)
    assert abs(e.sent_bps - 564_000) < 60_000, e
    assert abs(e.delivered_bps - 0.6 * 564_000) < 40_000, e
    assert abs(e.loss - 0.4) < 0.01 and e.remb_bps is None
    # the first report of a stream has no interval; a count that goes back is not a negative
    est.on_report(t, 3333, 10_000, 0.0)
    est.on_report(t, VIDEO, 0, 0.0)
    assert est.estimate(t).sent_bps == e.sent_bps
    # a stream that lost packets before the server had them (its publisher's leg) does not
    # make the subscriber's link lossy: the link's loss is the least any stream lost
    upstream = DownlinkEstimator(window_s=2.0)
    counts: dict[int, int] = {}
    for i in range(1, 6):
        _feed(upstream, i * 0.5, counts, {VIDEO: 500_000}, lost=0.5)
        _feed(upstream, i * 0.5, counts, {AUDIO: 64_000}, lost=0.0)
    assert upstream.estimate(2.5).loss == 0.0
    # a report across a leap in the numbering (counted as lost by the receiver) is left out
    est.on_report(t, VIDEO, 10**6, 0.9, meaningful=False)
    assert est.estimate(t).loss == e.loss
    # old reports leave the window
    assert est.estimate(t + 10).sent_bps == 0
    est.on_remb(t, 250_000)
    assert est.estimate(t).remb_bps == 250_000


def _est(delivered: float, loss: float, remb: int | None = None) -> Estimate:
    return Estimate(delivered / (1 - loss) if loss < 1 else delivered, delivered, loss, remb)


CAPPED = _est(290_000, 0.45)
CLEAN_AUDIO = _est(64_000, 0.0)
FULL = _est(700_000, 0.0)


def _run(guard: WeakLinkGuard, start: float, end: float, estimate: Estimate,
         step: float = 0.5) -> list[tuple[float, bool]]:
    changes = []
    t = start
    while t <= end + 1e-9:
        decision = guard.update(t, estimate)
        if decision is not None:
            changes.append((t, decision))
        t += step
    return changes


def test_a_capped_link_pauses_video_after_three_seconds_not_before() -> None:
    guard = WeakLinkGuard()
    assert _run(guard, 0.0, 2.5, CAPPED) == []
    assert _run(guard, 3.0, 3.0, CAPPED) == [(3.0, True)]
    assert guard.state is LinkState.AUDIO_FIRST


def test_a_short_dip_or_random_loss_does_not_pause() -> None:
    guard = WeakLinkGuard()
    # 2.5 s congested, then fine: the clock starts again
    assert _run(guard, 0.0, 2.5, CAPPED) == []
    assert _run(guard, 3.0, 4.0, FULL) == []
    assert _run(guard, 4.5, 7.0, CAPPED) == []
    # Wi-Fi's few per cent of random loss on a slow stream is repaired, not a weak link
    assert _run(guard, 7.5, 30.0, _est(250_000, 0.06)) == []
    # nor is a quiet link (little sent, nothing lost)
    assert _run(guard, 30.5, 60.0, CLEAN_AUDIO) == []
    assert guard.state is LinkState.OK


def test_video_is_tried_again_with_back_off_and_stays_once_the_link_carries_it() -> None:
    policy = DownlinkPolicy()
    guard = WeakLinkGuard(policy)
    assert _run(guard, 0.0, 3.0, CAPPED)[-1] == (3.0, True)
    # audio arrives clean: video is tried again after the back-off, not before
    assert _run(guard, 3.5, 7.5, CLEAN_AUDIO) == []
    assert _run(guard, 8.0, 8.0, CLEAN_AUDIO) == [(8.0, False)]
    assert guard.state is LinkState.TRYING
    # still capped: paused again, and the next try waits twice as long
    assert _run(guard, 8.5, 11.5, CAPPED) == [(11.5, True)]
    assert _run(guard, 12.0, 21.0, CLEAN_AUDIO) == []
    assert _run(guard, 21.5, 21.5, CLEAN_AUDIO) == [(21.5, False)]
    assert _run(guard, 22.0, 25.0, CAPPED) == [(25.0, True)]
    # the back-off stops growing at its limit
    assert _run(guard, 25.5, 44.5, CLEAN_AUDIO) == []
    assert _run(guard, 45.0, 45.0, CLEAN_AUDIO) == [(45.0, False)]
    # the link recovered: video stays, and after a while the back-off starts over
    assert _run(guard, 45.5, 45.0 + policy.confirmed_after_s, FULL) == []
    assert guard.state is LinkState.OK
    assert _run(guard, 60.0, 63.0, CAPPED) == [(63.0, True)]
    assert _run(guard, 63.5, 68.0, CLEAN_AUDIO) == [(68.0, False)]


def test_a_lossy_paused_link_is_not_tried_again() -> None:
    guard = WeakLinkGuard()
    _run(guard, 0.0, 3.0, CAPPED)
    # even audio loses a lot: the link is worse than weak; video stays off
    assert _run(guard, 3.5, 60.0, _est(40_000, 0.2)) == []
    assert guard.video_paused


def test_the_receivers_own_estimate_pauses_and_resumes() -> None:
    guard = WeakLinkGuard()
    # sent 500 kbps of others' video; the receiver says it can take 200
    low = Estimate(500_000, 490_000, 0.02, 200_000)
    assert _run(guard, 0.0, 3.0, low) == [(3.0, True)]
    # a REMB above the resume threshold for 5 s brings video back at once, and only then
    # (hysteresis: 350 kbps to pause, 600 kbps for 5 s to resume)
    mid = _est(40_000, 0.1, remb=500_000)
    assert _run(guard, 3.5, 30.0, mid) == []
    high = _est(40_000, 0.1, remb=900_000)
    assert _run(guard, 30.5, 35.0, high) == []
    assert _run(guard, 35.5, 35.5, high) == [(35.5, False)]
    assert guard.state is LinkState.OK


def test_a_low_estimate_over_a_light_stream_is_not_a_weak_link() -> None:
    # a browser's estimate follows what it is sent: a room of still, dim pictures sends a few
    # tens of kbps and the estimate stays below the threshold on a link that loses nothing
    guard = WeakLinkGuard()
    light = Estimate(17_000, 17_000, 0.0, 120_000)
    assert _run(guard, 0.0, 30.0, light) == []
    assert not guard.video_paused
    # the same estimate against more than it can carry is weak
    assert _run(guard, 30.5, 34.0, Estimate(400_000, 390_000, 0.02, 120_000)) == [(33.5, True)]


def test_a_browsers_estimate_is_weighed_against_the_streams_it_covers() -> None:
    # Chromium's REMB names the video streams it was made from and leaves audio out: a flat
    # 20 kbps picture beside 64 kbps of sound, estimated at 21 kbps, is a link that carries
    # all it is sent (this paused a page's video on a loopback that lost nothing)
    est = DownlinkEstimator(window_s=2.0)
    octets: dict[int, int] = {}
    t = 0.0
    for _ in range(8):
        t += 0.5
        _feed(est, t, octets, {VIDEO: 20_000, AUDIO: 64_000}, lost=0.0)
    est.on_remb(t, 21_000, [VIDEO])
    e = est.estimate(t)
    assert e.remb_covers_sent_bps is not None and abs(e.remb_covers_sent_bps - 20_000) < 2_000
    assert e.sent_bps > 80_000
    guard = WeakLinkGuard()
    assert _run(guard, 0.0, 30.0, e) == []
    # the same estimate under the video it covers is weak
    for _ in range(8):
        t += 0.5
        _feed(est, t, octets, {VIDEO: 500_000, AUDIO: 64_000}, lost=0.0)
    est.on_remb(t, 300_000, [VIDEO])
    assert _run(guard, 30.5, 34.0, est.estimate(t)) == [(33.5, True)]


def test_an_estimate_a_little_under_what_is_sent_is_not_a_weak_link() -> None:
    # a browser's estimate of a flat flashing picture dips a little under what it was sent
    # when a bright frame comes, with nothing lost (this paused a page's video on a loopback):
    # weak only when it falls short by a clear margin
    dipping = Estimate(84_000, 84_000, 0.0, 17_000, remb_covers_sent_bps=20_000)
    guard = WeakLinkGuard()
    assert _run(guard, 0.0, 30.0, dipping) == []
    short = Estimate(84_000, 84_000, 0.0, 14_000, remb_covers_sent_bps=20_000)
    assert _run(WeakLinkGuard(), 0.0, 4.0, short) == [(3.0, True)]
