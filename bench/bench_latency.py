"""Added latency, lip sync and recovery from loss, against a direct path measured in the same run.

Servers run as child processes (bench/confide_server.py: `forward` as shipped, `process`
with every video decoded and encoded once); the bots live in this process. Every figure is
taken at a subscriber, from capture to decoded output, with the same clocks:
  direct     publisher -> receiver, two aiortc peers and no server: the floor
  latency    one publisher, 11 receive-only subscribers (two decode and check every frame,
             the rest count whole frames): video latency p50/p95 and added (minus direct);
             audio latency of tone bursts and lip sync (audio minus video latency)
  sub-loss   5 % loss and 0-50 ms jitter both ways on one subscriber's leg, a clean
             subscriber beside it: fps, freezes (> 1 s without a new frame), longest gap,
             corrupted frames (decoded picture unlike the frame it claims to be)
  pub-loss   5 % loss both ways on the publisher's leg: the same at two subscribers

With `--before DIR`, each mode also runs from the checkout in DIR (the code before a change),
trial by trial beside this one, and the summary gives after / before ratios of added latency.

Run: python bench/bench_latency.py [--window 12] [--modes forward,process] [--trials ...]
     [--before DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import psutil
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender
from aiortc.mediastreams import MediaStreamError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_fanout import (  # noqa: E402
    RECEIVE_ONLY,
    CountingBot,
    ServerChild,
    _bench_cpu_seconds,
    _busy_cores_seconds,
    _participants,
    _until,
    _wait_healthy,
)
from bench.bench_fanout import _start as _start_server  # noqa: E402
from sfu.ice import rtc_configuration, set_loopback_only  # noqa: E402
from tests.support.frame_check import FrameChecker, StampedClipTrack  # noqa: E402
from tests.support.impaired_link import Impairment, LinkedBot, open_links  # noqa: E402
from tests.support.lip_sync import ClapTrack, OnsetTimer  # noqa: E402
from web.bot import Bot  # noqa: E402

MODES = {"forward": "confide-forward", "process": "confide-encode-once"}
TRIALS = ("latency", "sub-loss", "pub-loss")
# servers started from `--before DIR` (the code before a change) are labelled `<mode>@before`
BEFORE = "@before"
SUBSCRIBERS = 11
CHECKING_SUBSCRIBERS = 2
READY_TIMEOUT_S = 30.0
LOSSY = Impairment(loss=0.05, jitter_ms=50.0)
LOSSY_PUBLISHER = Impairment(loss=0.05)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Receiver:
    """What one checked subscriber saw over the window."""

    name: str
    fps: float = 0.0
    frames: int = 0
    freezes: int = 0
    longest_gap_s: float = 0.0
    corrupted: int = 0
    checked: int = 0
    video_ms_p50: float | None = None
    video_ms_p95: float | None = None
    audio_ms_p50: float | None = None
    lip_sync_ms: float | None = None
    # as each burst sounds, the capture time of the picture on screen minus the burst's
    # (median; in sync: between minus one frame interval and zero)
    screen_lead_ms: float | None = None
    psnr_db_min: float | None = None
    # every checked frame's capture -> decoded ms (pooled over receivers for the trial's p50)
    latencies_ms: list[float] = field(default_factory=list, repr=False)


@dataclass
class Trial:
    name: str
    mode: str
    ok: bool = True
    error: str = ""
    window_s: float = 0.0
    receivers: list[Receiver] = field(default_factory=list)
    counted_fps_min: float | None = None
    server_cores: float = 0.0
    bench_cores: float = 0.0
    others_cores: float = 0.0
    link: dict[str, Any] = field(default_factory=dict)

    def video_ms(self, q: float) -> float | None:
        return _pct([x for r in self.receivers for x in r.latencies_ms], q)


class Probe:
    """A checked receiver: every decoded frame verified, audio bursts timed."""

    def __init__(self, name: str, video: StampedClipTrack, audio: ClapTrack | None) -> None:
        self.name = name
        self.checker = FrameChecker(video)
        self.onsets = OnsetTimer(audio, on_screen=self.checker.on_screen_captured_at) \
            if audio is not None else None

    def on_video(self, _pid: str, img: np.ndarray) -> None:
        self.checker.on_frame(img)

    def on_audio(self, _pid: str, rms: float) -> None:
        if self.onsets is not None:
            self.onsets.on_rms(rms)

    def result(self, start: float, end: float) -> Receiver:
        w = self.checker.window(start, end)
        c = self.checker
        lat = [ms for t, ms in c.latencies if start <= t <= end]
        audio = [ms for t, ms in self.onsets.samples if start <= t <= end] if self.onsets else []
        r = Receiver(self.name, fps=round(w.fps, 2), frames=w.frames, freezes=w.freezes,
                     longest_gap_s=round(w.longest_gap_s, 3), corrupted=w.corrupted,
                     checked=w.checked)
        r.video_ms_p50, r.video_ms_p95 = _pct(lat, 0.5), _pct(lat, 0.95)
        r.audio_ms_p50 = _pct(audio, 0.5)
        if self.onsets is not None:
            r.screen_lead_ms = _pct(self.onsets.screen_leads_ms, 0.5)
        if r.audio_ms_p50 is not None and r.video_ms_p50 is not None:
            r.lip_sync_ms = r.audio_ms_p50 - r.video_ms_p50
        r.psnr_db_min = round(min(c.scores_db), 1) if c.scores_db else None
        r.latencies_ms = lat
        return r


async def direct(window_s: float) -> Trial:
    """Publisher -> receiver with no server: the same sources, checks and clocks."""
    trial = Trial("direct", "-")
    pub = RTCPeerConnection(rtc_configuration([]))
    sub = RTCPeerConnection(rtc_configuration([]))
    video, audio = StampedClipTrack(), ClapTrack()
    probe = Probe("direct", video, audio)
    caps = {kind: RTCRtpSender.getCapabilities(kind).codecs for kind in ("audio", "video")}
    for track, names in ((audio, ("opus",)), (video, ("vp8", "rtx"))):
        t = pub.addTransceiver(track, direction="sendonly")
        t.setCodecPreferences([c for c in caps[track.kind]
                               if c.mimeType.split("/")[1].lower() in names])
    tasks: list[asyncio.Task[None]] = []

    async def consume(track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if isinstance(frame, av.VideoFrame):
                probe.on_video("", frame.to_ndarray(format="rgb24"))
            elif isinstance(frame, av.AudioFrame):
                pcm = frame.to_ndarray().astype(np.float32) / 32768.0
                probe.on_audio("", float(np.sqrt(np.mean(pcm**2))) if pcm.size else 0.0)

    sub.on("track", lambda track: tasks.append(asyncio.ensure_future(consume(track))))
    try:
        await pub.setLocalDescription(await pub.createOffer())
        await sub.setRemoteDescription(pub.localDescription)
        await sub.setLocalDescription(await sub.createAnswer())
        await pub.setRemoteDescription(sub.localDescription)
        await asyncio.sleep(2.0)
        t0 = time.monotonic()
        await asyncio.sleep(window_s)
        trial.window_s = window_s
        trial.receivers = [probe.result(t0, time.monotonic())]
    finally:
        for task in tasks:
            task.cancel()
        await pub.close()
        await sub.close()
        video.stop()
        audio.stop()
    return trial


async def _leave_all(server: ServerChild, bots: list[Bot]) -> None:
    await asyncio.gather(*(b.leave() for b in bots), return_exceptions=True)
    for _ in range(100):
        with contextlib.suppress(Exception):
            if await _participants(server) == 0:
                return
        await asyncio.sleep(0.1)


async def server_trial(server: ServerChild, mode: str, kind: str, warmup_s: float,
                       window_s: float) -> Trial:
    """One trial (latency, sub-loss or pub-loss) on one server."""
    trial = Trial(kind, mode)
    room = f"{kind}-{uuid.uuid4().hex[:8]}"
    video, audio = StampedClipTrack(), ClapTrack()
    probes: list[Probe] = []
    bots: list[Bot] = []
    try:
        links = await open_links(publish=(LOSSY_PUBLISHER, LOSSY_PUBLISHER)) \
            if kind == "pub-loss" else {}
        publisher: Bot = LinkedBot(server.link(room, "Publisher"), links=links, video=video,
                                   audio=audio)
        if kind == "latency":
            names = [f"Sub{i + 1}" for i in range(SUBSCRIBERS)]
        elif kind == "sub-loss":
            names = ["clean", "lossy"]
        else:
            names = ["Sub1", "Sub2"]
        for i, name in enumerate(names):
            link = server.link(room, name, permissions=RECEIVE_ONLY)
            if i >= CHECKING_SUBSCRIBERS:
                bots.append(CountingBot(link, publish=False))
                continue
            probe = Probe(name, video, audio)
            probes.append(probe)
            sub_links = await open_links(subscribe=(LOSSY, LOSSY)) if name == "lossy" else {}
            bots.append(LinkedBot(link, links=sub_links, publish=False,
                                  on_video_frame=probe.on_video, on_audio_frame=probe.on_audio))
        await asyncio.gather(*(b.connect() for b in bots))
        bots.append(publisher)
        await publisher.connect()
        pid = str(publisher.me["id"])

        def frames(bot: Bot) -> int:
            peer = bot.peers.get(pid)
            return peer.video_frames if peer else 0

        subs = bots[:-1]
        if not await _until(lambda: all(frames(s) > 0 for s in subs), READY_TIMEOUT_S):
            raise RuntimeError(f"only {sum(frames(s) > 0 for s in subs)}/{len(subs)} "
                               "subscribers received video")
        await asyncio.sleep(warmup_s)
        counted = [s for s in subs if isinstance(s, CountingBot)]
        f0 = [frames(s) for s in counted]
        cpu0, bench0, busy0 = server.cpu_seconds(), _bench_cpu_seconds(), _busy_cores_seconds()
        t0 = time.monotonic()
        await asyncio.sleep(window_s)
        t1 = time.monotonic()
        wall = t1 - t0
        trial.window_s = round(wall, 2)
        trial.server_cores = (server.cpu_seconds() - cpu0) / wall
        trial.bench_cores = (_bench_cpu_seconds() - bench0) / wall
        trial.others_cores = max(0.0, (_busy_cores_seconds() - busy0) / wall
                                 - trial.server_cores - trial.bench_cores)
        trial.receivers = [p.result(t0, t1) for p in probes]
        if counted:
            trial.counted_fps_min = round(min((frames(s) - f) / wall
                                              for s, f in zip(counted, f0, strict=True)), 2)
        for bot in bots:
            if isinstance(bot, LinkedBot):
                for leg, relay in bot.links.items():
                    trial.link[f"{leg}"] = {"to_server": asdict(relay.to_server.stats),
                                            "to_client": asdict(relay.to_client.stats)}
    except Exception as exc:  # one failed trial must not lose the others' figures
        trial.ok, trial.error = False, f"{type(exc).__name__}: {exc}"
    finally:
        await _leave_all(server, bots)
    return trial


def _ratio(after: float | None, before: float | None) -> float | None:
    # an added latency at or below the floor's noise has no meaningful ratio
    if after is None or before is None or before <= 1.0:
        return None
    return round(max(after, 0.0) / before, 2)


def _fmt(x: float | None, spec: str = ".0f") -> str:
    return "-" if x is None else format(x, spec)


def report(trials: list[Trial]) -> dict[str, Any]:
    floor = next((t for t in trials if t.name == "direct" and t.ok), None)
    base = floor.receivers[0] if floor and floor.receivers else None
    print()
    print(f"{'trial':<10}{'mode':<16}{'receiver':<9}{'fps':>6}{'frz':>4}{'gap s':>7}"
          f"{'bad':>5}{'/chk':>6}{'v p50':>7}{'p95':>6}{'added':>7}{'a p50':>7}{'sync':>6}{'scr':>6}"
          f"{'server':>8}{'others':>8}")
    summary: dict[str, Any] = {}
    for t in trials:
        if not t.ok:
            print(f"{t.name:<10}{t.mode:<16}FAILED: {t.error}")
            continue
        for r in t.receivers:
            added = (r.video_ms_p50 - base.video_ms_p50) if base and r.video_ms_p50 is not None \
                and base.video_ms_p50 is not None else None
            print(f"{t.name:<10}{t.mode:<16}{r.name:<9}{r.fps:>6.1f}{r.freezes:>4}"
                  f"{r.longest_gap_s:>7.2f}{r.corrupted:>5}{r.checked:>6}"
                  f"{_fmt(r.video_ms_p50):>7}{_fmt(r.video_ms_p95):>6}{_fmt(added, '+.0f'):>7}"
                  f"{_fmt(r.audio_ms_p50):>7}{_fmt(r.lip_sync_ms, '+.0f'):>6}"
                  f"{_fmt(r.screen_lead_ms, '+.0f'):>6}"
                  f"{t.server_cores:>8.2f}{t.others_cores:>8.2f}")
        if t.name == "latency" and base is not None:
            p50, p95 = t.video_ms(0.5), t.video_ms(0.95)
            summary[t.mode] = {
                "added_p50_ms": None if p50 is None or base.video_ms_p50 is None
                else round(p50 - base.video_ms_p50, 1),
                "added_p95_ms": None if p95 is None or base.video_ms_p95 is None
                else round(p95 - base.video_ms_p95, 1),
                "lip_sync_ms": [r.lip_sync_ms for r in t.receivers],
                "screen_lead_ms": [r.screen_lead_ms for r in t.receivers],
                "counted_fps_min": t.counted_fps_min,
            }
    print()
    for mode, s in summary.items():
        print(f"{mode}: added latency p50 {_fmt(s['added_p50_ms'], '+.0f')} ms, "
              f"p95 {_fmt(s['added_p95_ms'], '+.0f')} ms at {SUBSCRIBERS} subscribers; "
              f"lip sync {[_fmt(x, '+.0f') for x in s['lip_sync_ms']]} ms "
              f"(direct {_fmt(base.lip_sync_ms if base else None, '+.0f')})")
    ratios: dict[str, Any] = {}
    for mode, after in summary.items():
        before = summary.get(f"{mode}{BEFORE}")
        if mode.endswith(BEFORE) or before is None:
            continue
        ratios[mode] = {q: _ratio(after[f"added_{q}_ms"], before[f"added_{q}_ms"])
                        for q in ("p50", "p95")}
        print(f"{mode}: added latency after / before: p50 {_fmt(ratios[mode]['p50'], '.2f')}, "
              f"p95 {_fmt(ratios[mode]['p95'], '.2f')}")
    if ratios:
        summary["ratios_after_over_before"] = ratios
    print("columns: fps and frz (freezes: > 1 s without a new frame) over the window; gap: "
          "longest time without a new frame; bad/chk: frames decoded unlike the frame they "
          "claim to be / frames checked; v: video latency capture -> decoded, ms; added: "
          "minus direct p50; a: audio burst latency; sync: audio minus video (ms, + = sound "
          "late); scr: as each burst sounds, capture time of the picture on screen minus the "
          "burst's (in sync: -67..0 at 15 fps); server/others: cores")
    return summary


async def main_async(args: argparse.Namespace) -> int:
    set_loopback_only(True)
    modes = [m.strip() for m in args.modes.split(",")]
    kinds = [k.strip() for k in args.trials.split(",")]
    load = os.getloadavg()
    print(f"modes {modes}, trials {kinds}, warm-up {args.warmup:g} s, window {args.window:g} s, "
          f"{psutil.cpu_count()} cores, load average {load[0]:.2f}", flush=True)
    started = time.monotonic()
    trials: list[Trial] = []
    with tempfile.TemporaryDirectory(prefix="confide-latency-") as tmp:
        servers = {mode: _start_server(MODES[mode], Path(tmp), label=mode) for mode in modes}
        if args.before is not None:
            for mode in modes:
                servers[mode + BEFORE] = _start_server(MODES[mode], Path(tmp),
                                                       root=args.before.resolve(),
                                                       label=mode + BEFORE)
        labels = [label for mode in modes
                  for label in (mode + BEFORE, mode) if label in servers]
        try:
            await asyncio.gather(*(_wait_healthy(s) for s in servers.values()))
            trials.append(await direct(args.window))
            print("  direct done", flush=True)
            for kind in kinds:
                # before and after side by side, so both see the same machine
                for label in labels:
                    trial = await server_trial(servers[label], label, kind, args.warmup,
                                               args.window)
                    trials.append(trial)
                    print(f"  {kind:<9} {label:<15} {'ok' if trial.ok else trial.error}",
                          flush=True)
        finally:
            for server in servers.values():
                server.proc.terminate()
            for server in servers.values():
                try:
                    server.proc.wait(10)
                except subprocess.TimeoutExpired:
                    server.proc.kill()
                    server.proc.wait()
    summary = report(trials)
    elapsed = time.monotonic() - started
    print(f"\ntook {elapsed:.0f} s")
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / time.strftime("latency-%Y%m%d-%H%M%S.json")
    out.write_text(json.dumps({
        "modes": modes, "before": str(args.before) if args.before else None,
        "trials_run": kinds, "warmup_s": args.warmup, "window_s": args.window,
        "load_average": load, "cores": psutil.cpu_count(), "elapsed_s": round(elapsed, 1),
        "summary": summary,
        "trials": [{**asdict(t), "receivers": [
            {k: v for k, v in asdict(r).items() if k != "latencies_ms"}
            for r in t.receivers]} for t in trials],
    }, indent=2, default=str))
    print(f"results: {out.relative_to(ROOT)}")
    return 0 if all(t.ok for t in trials) else 1


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="forward,process")
    parser.add_argument("--trials", default=",".join(TRIALS))
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--window", type=float, default=12.0)
    parser.add_argument("--before", type=Path, default=None, metavar="DIR",
                        help="also run each mode's server from this checkout (the code before "
                             "a change, e.g. `git worktree add DIR main`), as <mode>@before")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
