"""Lip sync at a member's own page: a bot's flash and its tone burst, seen and heard together.

A `web.bot.Bot` publishes, on one clock, a dark picture that turns bright for the frames
captured during each second's 200 ms tone burst (tests/support/lip_sync.py: FlashTrack on
ClapTrack). A receive-only member's page in Chromium times each flash as the compositor
presents it, and each burst's first sample twice: as the track delivers it to the page's
<audio> element's renderer, and as it leaves WebAudio's output (later: it pays WebAudio's
buffers too). The member hears it between the two, so both must be in sync. Flash and
burst of one event are paired on the page's performance.now() clock; offsets count once
Chromium has brought the two streams together (its first seconds are reported, not judged).
The pairing itself is checked on made-up events: a pairing fault that hid an offset would
make the browser test pass whatever the page did.
"""

from __future__ import annotations

import statistics

import pytest

from tests.support.browser import chromium
from tests.support.lip_sync import (
    browser_lip_sync,
    pair_events,
    percentile,
)

# lip sync: sound no more than this early or late against the picture (the target)
SYNC_MS = 80.0
# events the page must have seen and heard, after its first two seconds: fewer means the
# flash or the tone was not found, and a median of a handful says little
LEAST_PAIRED = 8


def _offsets(flashes: list[float], beeps: list[float]) -> list[float]:
    return [b - f for f, b in pair_events(flashes, beeps)]


def test_pairing_reports_an_offset_it_is_given() -> None:
    # flashes a second apart with a frame's wobble; the sound 150 ms late, then 120 ms early
    flashes = [1000.0 * k + (k % 3) * 20 for k in range(12)]
    late = _offsets(flashes, [f + 150 + (k % 2) * 10 for k, f in enumerate(flashes)])
    assert len(late) == 12 and statistics.median(late) == pytest.approx(155)
    assert abs(statistics.median(late)) > SYNC_MS
    early = _offsets(flashes, [f - 120 for f in flashes])
    assert len(early) == 12 and statistics.median(early) == pytest.approx(-120)
    # a lost beep pairs with nothing (not with the next second's flash); nor do stray ones
    # half a second away
    partial = _offsets(flashes, [f + 30 for f in flashes[::2]] + [f + 500 for f in flashes])
    assert len(partial) == 6 and all(o == pytest.approx(30) for o in partial)
    # nothing heard: nothing paired, so the browser test's count fails
    assert _offsets(flashes, []) == []
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.95) == 4.0
    assert percentile(list(range(1, 101)), 0.95) == 95


@pytest.mark.browser
async def test_a_member_page_hears_the_burst_with_its_flash(server) -> None:  # type: ignore[no-untyped-def]
    async with chromium() as browser:
        result = await browser_lip_sync(browser, server.link, room="lip-sync", profile="none",
                                        window_s=20.0, settle_s=8.0)
    print(result.summary(), result.receiver)
    assert not result.errors, result.errors
    # the flat flashing picture is a few tens of kbps, and Chromium's receiver estimate
    # follows it: a low estimate that still carries all it is sent is no weak link, and the
    # server must not pause the picture (sfu/downlink.py)
    assert result.video_paused == 0, result
    assert result.flashes >= LEAST_PAIRED, f"the flash was not seen: {result}"
    assert result.beeps >= LEAST_PAIRED, f"the burst was not heard: {result}"
    assert result.delivered_beeps >= LEAST_PAIRED, f"the burst was not delivered: {result}"
    assert result.paired >= LEAST_PAIRED, result
    # the publisher's own flash and burst left together: what the page shows is the path's
    assert result.source_skew_ms is not None and abs(result.source_skew_ms) < 10, result
    for median in (result.delivered_median_ms, result.median_ms):
        assert median is not None and abs(median) <= SYNC_MS, result.summary()
