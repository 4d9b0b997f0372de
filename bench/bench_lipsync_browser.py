"""Lip sync at a subscriber that is a real browser: a flash and its tone burst, seen and heard.

Why a browser: the aiortc subscribers of bench_latency.py time decoded frames in Python, but a
member hears and sees what Chromium plays out: its audio jitter buffer (NetEq) and video
render path, and its own audio/video synchronisation, which applies only to streams that
share an msid stream and uses the RTCP sender reports the server writes. Only a browser at
the far end shows whether the two arrive together where it counts.

Method: one `web.bot.Bot` in this process publishes, on one clock, a dark picture that turns
bright for the frames captured during each second's 200 ms 1 kHz burst (FlashTrack on
ClapTrack, tests/support/lip_sync.py), with the grant's privacy profile (`none`: forwarded;
`blur`: decoded, processed and encoded again by the server). A receive-only member's room
page in Chromium (the product's own page, CSP bypassed only to load the probe's worklet)
times, on its performance.now() clock:
  picture    each dark->bright change of the tile's <video>, read from the frame itself
             (requestVideoFrameCallback, 16x12 mean luma) at the frame's expectedDisplayTime;
             a flash after a presented frame the callback never saw is left out
  delivered  the first sample of each burst (|x| >= 0.1 after 200 ms below) as the track
             hands it to the <audio> element's renderer (MediaStreamTrackProcessor chunk
             time): before the output device's buffer, so the earlier bound
  heard      the same sample through WebAudio (an AudioWorklet) as it leaves that
             context's output (getOutputTimestamp): with the device's buffer and WebAudio's
             own FIFO and render buffer, so the later bound
What a member hears from the element lies between the two. Each flash pairs with the nearest
burst within 400 ms; offset = burst - flash (ms; + = sound after picture), median and p95,
counted from `--settle` s after the page's first picture: Chromium syncs the two streams
(they share an msid stream) and takes its first seconds to do so, from ~+100 ms; that early
median is printed apart. `source skew` is the same offset at the publisher's capture (~0);
`--picture-lead-frames N` shows each flash N frames (67 ms each) early on purpose, a check
that the measurement moves by as much. The receiver's jitter buffer delays and its own
estimate of the two streams' playout (from the server's RTCP sender reports) are printed
beside it.

The server runs in this process as the tests run it (dev settings, loopback ICE). Chromium
runs at the media workers' priority (tests/support/browser.py).

Run: python bench/bench_lipsync_browser.py [--profiles none,blur] [--runs 3] [--window 20]
     [--picture-lead-frames 0] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psutil
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_fanout import _free_port  # noqa: E402
from sfu.grants import mint_grant  # noqa: E402
from sfu.ice import set_loopback_only  # noqa: E402
from tests.support.browser import chromium  # noqa: E402
from tests.support.lip_sync import (  # noqa: E402
    BrowserLipSync,
    browser_lip_sync,
)
from web.app import create_app  # noqa: E402
from web.settings import Settings, load_settings  # noqa: E402

# the issue's target: sound no more than this early or late against the picture
TARGET_MS = 80.0
# fewer pairs than this and the median is not a measurement
LEAST_PAIRED = 8


class Server:
    """Confide on a loopback port in this process, as the tests run it."""

    def __init__(self, data_dir: Path) -> None:
        self.settings: Settings = load_settings(data_dir, host="127.0.0.1", port=_free_port(),
                                                dev=True, ice_loopback=True)
        self.app = create_app(self.settings)
        self.runner = web.AppRunner(self.app, access_log=None)

    async def start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, self.settings.host, self.settings.port).start()

    def link(self, room: str, name: str, **grant: Any) -> str:
        token = mint_grant(self.settings.grant_secret, room=room, display_name=name, **grant)
        return f"{self.settings.base_url}/room#grant={token}"


def _fmt(x: float | None, spec: str = "+.0f") -> str:
    return "-" if x is None else format(x, spec)


def _row(run: int, r: BrowserLipSync) -> str:
    rx = r.receiver
    return (f"{run:>3}  {r.profile:<6}{_fmt(r.delivered_median_ms):>6}"
            f"{_fmt(r.delivered_p95_ms):>6}{_fmt(r.median_ms):>6}{_fmt(r.p95_ms):>6}"
            f"{r.paired:>6}{_fmt(r.early_median_ms):>7}{_fmt(r.tap_ms):>5}"
            f"{r.flashes:>5}{r.flashes_unsure:>4}{r.beeps:>5}"
            f"{_fmt(r.source_skew_ms):>6}{_fmt(rx.get('audio_jitter_buffer_ms'), '.0f'):>6}"
            f"{_fmt(rx.get('video_jitter_buffer_ms'), '.0f'):>6}"
            f"{_fmt(rx.get('estimated_playout_audio_minus_video_ms')):>7}"
            f"{'yes' if rx.get('same_msid_stream') else 'no':>6}"
            f"{'ok' if _within(r) else 'OVER':>6}")


def _within(r: BrowserLipSync) -> bool:
    """Enough pairs, and both bounds of the median within the target."""
    return r.paired >= LEAST_PAIRED and all(
        m is not None and abs(m) <= TARGET_MS for m in (r.median_ms, r.delivered_median_ms))


async def main_async(args: argparse.Namespace) -> int:
    set_loopback_only(True)
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    load = os.getloadavg()
    print(f"profiles {profiles}, {args.runs} run(s), window {args.window:g} s "
          f"(settled after {args.settle:g} s), picture lead {args.picture_lead_frames} "
          f"frame(s), "
          f"{psutil.cpu_count()} cores, load average {load[0]:.2f}", flush=True)
    started = time.monotonic()
    results: list[tuple[int, BrowserLipSync]] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="confide-lipsync-") as tmp:
        server = Server(Path(tmp) / "var")
        await server.start()
        try:
            async with chromium() as browser:
                for run in range(1, args.runs + 1):
                    # profiles interleaved run by run, so both see the same machine
                    for profile in profiles:
                        try:
                            r = await browser_lip_sync(
                                browser, server.link, room=f"lips-{uuid.uuid4().hex[:8]}",
                                profile=profile, window_s=args.window,
                                settle_s=args.settle,
                                picture_lead_frames=args.picture_lead_frames)
                        except Exception as exc:  # one failed run must not lose the others
                            failures.append(f"run {run} {profile}: {type(exc).__name__}: {exc}")
                            print(f"  run {run} {profile}: FAILED {exc}", flush=True)
                            continue
                        results.append((run, r))
                        print(f"  run {run} {r.summary()}", flush=True)
        finally:
            await server.runner.cleanup()
    elapsed = time.monotonic() - started
    print()
    print(f"{'run':>3}  {'prof':<6}{'d med':>6}{'p95':>6}{'h med':>6}{'p95':>6}{'pairs':>6}"
          f"{'early':>7}{'tap':>5}{'fl':>5}{'?':>4}"
          f"{'bp':>5}{'skew':>6}{'a jb':>6}{'v jb':>6}{'est':>7}{'msid':>6}{'':>6}")
    for run, r in results:
        print(_row(run, r))
    print("columns: d med/p95, h med/p95: burst minus flash at the page, ms (+ = sound after "
          "picture), the sound as delivered to the element's renderer / as heard through "
          "WebAudio (the member hears it between the two); pairs: flash/burst pairs once "
          "settled; early: heard median before that; tap: heard minus delivered; fl/?/bp: flashes seen / left out "
          "(a presented frame unseen before them) / bursts heard; skew: the same offset at "
          "the publisher's capture; a jb / v jb: the page's mean jitter buffer delay, audio / "
          "video; est: the page's own estimated playout time, audio minus video (from the "
          "server's sender reports); msid: audio and video in one msid stream (Chromium "
          f"syncs them only then); last: both |medians| <= {TARGET_MS:.0f} ms with >= "
          f"{LEAST_PAIRED} pairs")
    print(f"\ntook {elapsed:.0f} s")
    record: dict[str, Any] = {
        "profiles": profiles, "runs": args.runs, "window_s": args.window,
        "settle_s": args.settle, "picture_lead_frames": args.picture_lead_frames,
        "load_average": load, "cores": psutil.cpu_count(), "elapsed_s": round(elapsed, 1),
        "failures": failures,
        "results": [{"run": run, **asdict(r), "median_ms": r.median_ms, "p95_ms": r.p95_ms,
                     "paired": r.paired, "early_median_ms": r.early_median_ms,
                     "delivered_median_ms": r.delivered_median_ms,
                     "delivered_p95_ms": r.delivered_p95_ms} for run, r in results],
    }
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / time.strftime("lipsync-browser-%Y%m%d-%H%M%S.json")
    out.write_text(json.dumps(record, indent=2, default=str))
    print(f"results: {out.relative_to(ROOT)}")
    if args.json:
        print(json.dumps({k: v for k, v in record.items() if k != "results"}
                         | {"results": [{k: v for k, v in r.items() if k != "events"}
                                        for r in record["results"]]}, default=str))
    ok = not failures and all(r.paired >= LEAST_PAIRED for _, r in results)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", default="none",
                        help="privacy profiles of the publisher, comma-separated "
                             "(none: forwarded; blur: processed by the server)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window", type=float, default=20.0,
                        help="seconds the page times events from its first picture")
    parser.add_argument("--settle", type=float, default=8.0,
                        help="seconds from the first picture before offsets count")
    parser.add_argument("--picture-lead-frames", type=int, default=0,
                        help="show each flash this many frames (67 ms each) before its "
                             "burst: the offset measured should grow by as much")
    parser.add_argument("--json", action="store_true", help="also print the record as JSON")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
