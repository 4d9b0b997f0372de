"""Room capacity: the largest N-person room (everyone `blur`, or `--profile face_mask|avatar`) in which everyone sees everyone at 14 fps.

Every participant publishes VP8 at 15 fps with the `blur` profile and subscribes to all the
others: 640x480, or the smaller encoding of the same clip the server asks for (`publish_layer`,
as a browser's encoder scales down). Three servers run as child processes, each measured on its own:
  confide          Confide as shipped (bench/confide_server.py): blur, encode once, fan out,
                   each stream's picture size and rate picked for the room's gallery
                   (sfu/bitrate.py: 640x480 up to six publishers, 320x240 from ten)
  confide-src640   Confide as shipped, but its publishers ignore `publish_layer` and send
                   640x480 whatever the gallery shows (as before the server asked for less;
                   the server then scales each picture down itself)
  confide-640      the same with every stream kept at 640x480 whatever the room's size
  aiortc-blur      bench/baseline_relay.py --blur: the same blur pipeline once per publisher,
                   then aiortc's MediaRelay with one encoder per subscriber (640x480)
N grows (2, 4, ... 14) until a step fails: some subscriber gets less than 14 fps from some
publisher. The bots live in this process, next to the server on the same machine.

Run: python bench/bench_capacity.py [--quick] [--sizes 2,4,6] [--modes confide,aiortc-blur]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import av
import cv2
import psutil
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCRtpTransceiver

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_fanout import (  # noqa: E402
    CountingBot,
    ServerChild,
    _bench_cpu_seconds,
    _busy_cores_seconds,
    _free_port,
    _participants,
    _until,
    _wait_healthy,
)
from sfu.ice import rtc_configuration, set_loopback_only  # noqa: E402
from sfu.tap import install_tap  # noqa: E402
from tests.support.faces import astronaut_frames  # noqa: E402
from web.bot import (  # noqa: E402
    COLORS,
    ColorTrack,
    PreEncodedTrack,
    classify_color,
    encode_clip,
)
from web.settings import load_settings  # noqa: E402

CONFIDE = "confide"
CONFIDE_SOURCE_FULL = "confide-src640"
CONFIDE_FULL = "confide-640"
BASELINE = "aiortc-blur"
MODES = (CONFIDE, CONFIDE_SOURCE_FULL, CONFIDE_FULL, BASELINE)
# the room's layers (sfu/bitrate.py) a publisher may be asked for, each encoded once up front
CLIP_SIZES = ((640, 480), (480, 360), (320, 240))
SOURCE_FPS = 15
MIN_FPS = 14.0
FULL_SIZES = (2, 4, 6, 8, 10, 12, 14)
QUICK_SIZES = (2, 4)
# participants whose receivers decode the colour-cycling publisher's stream (latency); every
# other stream at every receiver is counted as whole encoded frames, never decoded
LATENCY_SUBSCRIBERS = 2
READY_TIMEOUT_S = 30.0
IDLE_WINDOW_S = 1.0
# the colour-cycling publisher: each colour held this many frames; six colours make a
# 3.2 s cycle, so a change is matched to its source unambiguously below ~2.5 s of latency
FLIP_HOLD_FRAMES = 8
FLIP_COLOURS = ("red", "green", "blue", "yellow", "magenta", "cyan")
# the face clip: a slow pan, played forward then backward so it never jumps
CLIP_PAN_FRAMES = 45
LOOP_TICK_S = 0.02
# diagnostics for a failed step: the whole machine was busy, or the bots themselves fell behind
# (their sources below this rate, or their event loop waking this late)
SATURATED_SHARE = 0.95
BOTS_SOURCE_FPS = 14.5
BOTS_LAG_MS = 50.0
CORES = psutil.cpu_count() or 1


class FlipTrack(ColorTrack):
    """Solid colour that changes every few frames; remembers when each change was captured.

    The blur smears any pixel time stamp, but not a whole frame's colour, so latency is the
    time from capturing a colour change to a receiver's first frame of the new colour.
    """

    def __init__(self, *, fps: int = SOURCE_FPS, hold: int = FLIP_HOLD_FRAMES) -> None:
        super().__init__(FLIP_COLOURS[0], fps=fps)
        self.hold = hold
        self.changes: list[tuple[float, str]] = []
        self.produced = 0

    async def recv(self) -> av.VideoFrame:
        colour = FLIP_COLOURS[(self.produced // self.hold) % len(FLIP_COLOURS)]
        changed = colour != self.color or not self.changes
        if changed:
            self.color = colour
            self._base[:, :] = COLORS[colour]
        frame = await super().recv()
        self.produced += 1
        if changed:
            self.changes.append((time.monotonic(), colour))
        return frame

    def change_before(self, colour: str, t: float) -> float | None:
        """Capture time of the latest change to `colour` at or before `t`."""
        for when, c in reversed(self.changes):
            if c == colour and when <= t:
                return when
        return None


class CountedClipTrack(PreEncodedTrack):
    """The face clip, encoded once before the run and looped, counting what it sends: the
    publishers then cost the machine next to nothing and the cores measure the server."""

    def __init__(self, clip: dict[tuple[int, int], list[bytes]], fps: int = SOURCE_FPS
                 ) -> None:
        full = max(clip, key=lambda s: s[0] * s[1])
        super().__init__(clip[full], fps=fps, size=full,
                         smaller={s: p for s, p in clip.items() if s != full})
        self.produced = 0

    async def recv(self) -> av.Packet:  # type: ignore[override]
        packet = await super().recv()
        self.produced += 1
        return packet


class LatencyProbe:
    """Decodes one tapped stream and times each colour change against its capture."""

    def __init__(self, source: FlipTrack) -> None:
        self.source = source
        self._decoder = av.CodecContext.create("libvpx", "r")
        self._synced = False
        self._last: str | None = None
        self.frames = 0
        self.off_colour = 0  # decoded frames of no cycle colour (placeholders, smears)
        self.size = ""  # the picture size last received
        self.samples: list[tuple[float, float]] = []  # (arrival, latency ms)

    def feed(self, packet: av.Packet, keyframe: bool) -> None:
        """One whole encoded frame, as the receiver's jitter buffer released it."""
        now = time.monotonic()
        if not self._synced and not keyframe:
            return
        try:
            frames = self._decoder.decode(packet)
            self._synced = True
        except av.FFmpegError:
            self._synced = False
            return
        for frame in frames:
            self.frames += 1
            self.size = f"{frame.width}x{frame.height}"
            # a thumbnail is enough for a solid colour; keeps the probe cheap
            rgb = frame.reformat(width=32, height=24, format="rgb24").to_ndarray()
            colour = classify_color(rgb.reshape(-1, 3).mean(axis=0))
            if colour not in FLIP_COLOURS:
                self.off_colour += 1
                continue
            if self._last is not None and colour != self._last:
                captured = self.source.change_before(colour, now)
                if captured is not None:
                    self.samples.append((now, (now - captured) * 1000))
            self._last = colour


class CapacityBot(CountingBot):
    """A participant that counts every received stream; optionally decodes one for latency."""

    def __init__(self, link: str, *, video: MediaStreamTrack, probe: LatencyProbe | None = None
                 ) -> None:
        super().__init__(link, video=video)
        self.probe = probe
        self.probe_from: str | None = None

    def _count(self, transceiver: RTCRtpTransceiver, packet: av.Packet, keyframe: bool) -> None:
        super()._count(transceiver, packet, keyframe)
        if self.probe is None or transceiver.kind != "video" or self.probe_from is None:
            return
        pid = self._mid_map.get(transceiver.mid or "", {}).get("participant_id")
        if pid == self.probe_from:
            self.probe.feed(packet, keyframe)


class LoopLag:
    """How late this process's event loop wakes up: the bots' own starvation gauge."""

    def __init__(self) -> None:
        self.lags_ms: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            t0 = time.monotonic()
            await asyncio.sleep(LOOP_TICK_S)
            self.lags_ms.append((time.monotonic() - t0 - LOOP_TICK_S) * 1000)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


@dataclass
class Step:
    """One server at one room size N: what the window measured."""

    mode: str
    n: int
    ok: bool = True
    error: str = ""
    window_s: float = 0.0
    pairs: int = 0
    pair_fps_min: float = 0.0
    pair_fps_median: float = 0.0
    pairs_below: int = 0
    source_fps_min: float = 0.0
    server_cores: float = 0.0
    server_idle_cores: float = 0.0
    bench_cores: float = 0.0
    others_cores: float = 0.0
    latency_ms_p50: float | None = None
    latency_ms_p90: float | None = None
    latency_samples: int = 0
    off_colour_share: float | None = None
    received_size: str = ""
    loop_lag_ms_p95: float = 0.0
    worst_pair: str = ""
    attempts: int = 1
    per_subscriber_fps_min: list[float] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.ok and self.pairs > 0 and self.pair_fps_min >= MIN_FPS

    @property
    def server_cores_per_publisher(self) -> float:
        return self.server_cores / self.n if self.n else 0.0

    @property
    def busy_cores(self) -> float:
        return self.server_cores + self.bench_cores + self.others_cores

    @property
    def limited_by(self) -> str:
        """What else may have held a failed step back ("" when nothing did)."""
        limits = []
        if self.busy_cores >= SATURATED_SHARE * CORES:
            limits.append("machine")
        if self.source_fps_min < BOTS_SOURCE_FPS or self.loop_lag_ms_p95 > BOTS_LAG_MS:
            limits.append("bots")
        return "+".join(limits)


def start_server(mode: str, workdir: Path) -> ServerChild:
    """Confide or the blur baseline as a child process (the bots stay in this process)."""
    port = _free_port()
    log_path = workdir / f"{mode}.log"
    if mode == BASELINE:
        args = ["-m", "bench.baseline_relay", "--port", str(port), "--blur"]
        secret = "baseline-relay-does-not-verify-grants"
    else:
        data_dir = workdir / mode
        # create the secrets before the child reads them, so links minted here verify there
        secret = load_settings(data_dir).grant_secret
        args = ["-m", "bench.confide_server", "--port", str(port), "--data-dir", str(data_dir)]
        if mode == CONFIDE_FULL:
            args.append("--full-size")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return ServerChild(mode, proc, port, secret, log_path)


def make_clip() -> dict[tuple[int, int], list[bytes]]:
    """A 640x480 astronaut clip (real face, brick wall: a slow pan there and back, so its
    loop never jumps), encoded to VP8 once with a keyframe every second, at each of the
    room's layer sizes."""
    pan = astronaut_frames("pan", CLIP_PAN_FRAMES)
    frames = pan + pan[::-1]
    return {(w, h): encode_clip([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA)
                                 for f in frames], keyframe_every=SOURCE_FPS)
            for w, h in CLIP_SIZES}


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_step(server: ServerChild, n: int, clip: dict[tuple[int, int], list[bytes]],
                   warmup_s: float, window_s: float, profile: str = "blur") -> Step:
    """Join n participants (all publish, all subscribe), warm up, measure a window. P1, the
    latency probe, is blurred whatever `profile` the others have: its colour must survive."""
    step = Step(server.mode, n)
    room = f"capacity-{n}-{uuid.uuid4().hex[:8]}"

    cpu0, t0 = server.cpu_seconds(), time.monotonic()
    await asyncio.sleep(IDLE_WINDOW_S)
    step.server_idle_cores = (server.cpu_seconds() - cpu0) / (time.monotonic() - t0)

    flip = FlipTrack()
    tracks: list[FlipTrack | CountedClipTrack] = [flip]
    tracks += [CountedClipTrack(clip) for _ in range(n - 1)]
    probes = [LatencyProbe(flip) for _ in range(min(LATENCY_SUBSCRIBERS, n - 1))]
    bots: list[CapacityBot] = []
    for i, track in enumerate(tracks):
        probe = probes[i - 1] if 1 <= i <= len(probes) else None
        link = server.link(room, f"P{i + 1}", profile="blur" if i == 0 else profile)
        bot = CapacityBot(link, video=track, probe=probe)
        bot.follow_publish_layer = server.mode != CONFIDE_SOURCE_FULL
        bots.append(bot)
    lag = LoopLag()
    lag.start()
    try:
        await asyncio.gather(*(b.connect(timeout_s=30.0) for b in bots))
        ids = [str(b.me["id"]) for b in bots]
        for bot in bots:
            bot.probe_from = ids[0]

        def frames(sub: CapacityBot, pub_id: str) -> int:
            peer = sub.peers.get(pub_id)
            return peer.video_frames if peer else 0

        pairs = [(s, p) for s in range(n) for p in range(n) if s != p]
        # ready: every pair flowing and the blurred colour stream decoded (models loaded)
        ready = await _until(
            lambda: all(frames(bots[s], ids[p]) > 0 for s, p in pairs)
            and all(pr.samples for pr in probes),
            READY_TIMEOUT_S,
        )
        if not ready:
            got = sum(1 for s, p in pairs if frames(bots[s], ids[p]) > 0)
            raise RuntimeError(f"only {got}/{len(pairs)} streams flowing after "
                               f"{READY_TIMEOUT_S:.0f} s")
        await asyncio.sleep(warmup_s)

        f0 = {(s, p): frames(bots[s], ids[p]) for s, p in pairs}
        src0 = [t.produced for t in tracks]
        probe0 = [(pr.frames, pr.off_colour) for pr in probes]
        lag0 = len(lag.lags_ms)
        cpu0, bench0, busy0 = server.cpu_seconds(), _bench_cpu_seconds(), _busy_cores_seconds()
        t0 = time.monotonic()
        await asyncio.sleep(window_s)
        t1 = time.monotonic()
        wall = t1 - t0
        cpu1, bench1, busy1 = server.cpu_seconds(), _bench_cpu_seconds(), _busy_cores_seconds()

        fps = {k: (frames(bots[k[0]], ids[k[1]]) - f) / wall for k, f in f0.items()}
        step.window_s = round(wall, 2)
        step.pairs = len(pairs)
        step.pair_fps_min = min(fps.values())
        step.pair_fps_median = statistics.median(fps.values())
        step.pairs_below = sum(1 for v in fps.values() if v < MIN_FPS)
        worst = min(fps, key=lambda k: fps[k])
        step.worst_pair = f"P{worst[1] + 1}->P{worst[0] + 1}"
        step.per_subscriber_fps_min = [
            round(min(v for (s, _), v in fps.items() if s == sub), 2) for sub in range(n)]
        step.source_fps_min = min((t.produced - p) / wall for t, p in zip(tracks, src0,
                                                                           strict=True))
        step.server_cores = (cpu1 - cpu0) / wall
        step.bench_cores = (bench1 - bench0) / wall
        step.others_cores = max(0.0, (busy1 - busy0) / wall - step.server_cores
                                - step.bench_cores)
        lat = [ms for pr in probes for when, ms in pr.samples if t0 <= when <= t1]
        step.latency_samples = len(lat)
        if lat:
            step.latency_ms_p50 = statistics.median(lat)
            step.latency_ms_p90 = _pct(lat, 0.9)
        decoded = sum(pr.frames - f for pr, (f, _) in zip(probes, probe0, strict=True))
        off = sum(pr.off_colour - o for pr, (_, o) in zip(probes, probe0, strict=True))
        step.off_colour_share = off / decoded if decoded else None
        step.received_size = ",".join(sorted({pr.size for pr in probes if pr.size}))
        window_lags = lag.lags_ms[lag0:]
        step.loop_lag_ms_p95 = _pct(window_lags, 0.95) if window_lags else 0.0
    except Exception as exc:  # one failed step must not lose the others' numbers
        step.ok, step.error = False, f"{type(exc).__name__}: {exc}"
    finally:
        lag.stop()
        await asyncio.gather(*(b.leave() for b in bots), return_exceptions=True)
        # let the server release the room before the next step's idle check
        for _ in range(100):
            with contextlib.suppress(Exception):
                if await _participants(server) == 0:
                    break
            await asyncio.sleep(0.1)
    return step


async def direct_latency(seconds: float) -> float | None:
    """Median colour-change latency publisher → receiver with no server (same probe): the
    floor the servers' latency is compared with."""
    pub_pc = RTCPeerConnection(rtc_configuration([]))
    sub_pc = RTCPeerConnection(rtc_configuration([]))
    source = FlipTrack()
    probe = LatencyProbe(source)
    transceiver = pub_pc.addTransceiver(source, direction="sendonly")
    caps = RTCRtpSender.getCapabilities("video").codecs
    transceiver.setCodecPreferences(
        [c for c in caps if c.mimeType.split("/")[1].lower() in ("vp8", "rtx")])

    @sub_pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        receiving = next(t for t in sub_pc.getTransceivers() if t.receiver.track is track)
        install_tap(receiving.receiver, lambda packet, key: probe.feed(packet, key))

    try:
        await pub_pc.setLocalDescription(await pub_pc.createOffer())
        await sub_pc.setRemoteDescription(pub_pc.localDescription)
        await sub_pc.setLocalDescription(await sub_pc.createAnswer())
        await pub_pc.setRemoteDescription(sub_pc.localDescription)
        await asyncio.sleep(seconds)
    finally:
        await pub_pc.close()
        await sub_pc.close()
        source.stop()
    return statistics.median(ms for _, ms in probe.samples) if probe.samples else None


def _fit(steps: list[Step]) -> tuple[float, float] | None:
    """Least squares server cores = a*N + b*N*(N-1): a per publisher, b per stream sent."""
    pts = [(s.n, s.server_cores) for s in steps if s.ok and s.pairs and not s.limited_by]
    if len({n for n, _ in pts}) < 3:
        return None
    sxx = sum(n * n for n, _ in pts)
    sxy = sum(n * n * (n - 1) for n, _ in pts)
    syy = sum((n * (n - 1)) ** 2 for n, _ in pts)
    bx = sum(n * c for n, c in pts)
    by = sum(n * (n - 1) * c for n, c in pts)
    det = sxx * syy - sxy * sxy
    if det == 0:
        return None
    return (bx * syy - by * sxy) / det, (sxx * by - sxy * bx) / det


def report(steps: list[Step], direct_ms: float | None, searched: list[int]) -> dict[str, Any]:
    """Print the table and each server's capacity; return them for the JSON file."""
    print()
    print(f"{'mode':<13}{'N':>3}{'pass':>6}{'fps min/med':>13}{'<14':>5}{'src':>6}"
          f"{'server':>8}{'/pub':>7}{'bench':>7}{'others':>8}{'lat p50':>9}{'p90':>6}"
          f"{'added':>7}{'off%':>6}{'lag95':>7}{'busy':>6}{'size':>9}  worst, limits")
    for s in steps:
        if not s.ok:
            print(f"{s.mode:<13}{s.n:>3}  FAILED: {s.error}")
            continue
        p50 = f"{s.latency_ms_p50:.0f}" if s.latency_ms_p50 is not None else "-"
        p90 = f"{s.latency_ms_p90:.0f}" if s.latency_ms_p90 is not None else "-"
        added = f"{s.latency_ms_p50 - direct_ms:+.0f}" \
            if s.latency_ms_p50 is not None and direct_ms is not None else "-"
        off = f"{100 * s.off_colour_share:.0f}" if s.off_colour_share is not None else "-"
        print(f"{s.mode:<13}{s.n:>3}{'yes' if s.passed else 'NO':>6}"
              f"{s.pair_fps_min:>7.1f}/{s.pair_fps_median:<5.1f}{s.pairs_below:>5}"
              f"{s.source_fps_min:>6.1f}{s.server_cores:>8.2f}{s.server_cores_per_publisher:>7.3f}"
              f"{s.bench_cores:>7.2f}{s.others_cores:>8.2f}{p50:>9}{p90:>6}{added:>7}{off:>6}"
              f"{s.loop_lag_ms_p95:>7.0f}{s.busy_cores:>6.2f}{s.received_size:>9}  {s.worst_pair}"
              + (f", {s.limited_by}" if s.limited_by else ""))
    capacity: dict[str, int | None] = {}
    fits: dict[str, tuple[float, float] | None] = {}
    print()
    for mode in MODES:
        mine = [s for s in steps if s.mode == mode]
        if not mine:
            continue
        best: int | None = None
        for s in sorted(mine, key=lambda s: s.n):
            if not s.passed:
                break
            best = s.n
        capacity[mode] = best
        top = max(searched)
        more = "" if best is None or best < top else " (largest size tried; may hold more)"
        print(f"capacity {mode:<12} N = {best if best is not None else '< ' + str(min(searched))}"
              f"{more}")
        fits[mode] = fit = _fit(mine)
        if fit is not None:
            a, b = fit
            at12 = 12 * a + 132 * b
            print(f"  server cores ≈ {a:.3f}·N + {b:.4f}·N(N-1)  →  N=12: {at12:.2f} cores "
                  "on a server with its own cores (fit over the unhindered steps)")
        else:
            print("  no extrapolation: it needs three or more sizes measured without the "
                  "machine or the bots holding the step back; see /pub")
    print()
    print("columns: fps over every (subscriber, publisher) pair, min/median; <14: pairs below "
          "14 fps; src: slowest publisher's own frame rate; server, bench, others: cores "
          "(server process; this process with all bots; everything else); /pub: server cores "
          "per publisher; lat: colour-change latency publisher → subscriber, ms; added: minus "
          f"direct publisher → receiver ({direct_ms if direct_ms is None else round(direct_ms)} "
          "ms); off%: decoded frames of the latency stream that were not the source colour "
          "(placeholders); lag95: this process's event-loop lag p95, ms; busy: all cores in use "
          f"(of {CORES}); size: the picture subscribers received (decoded from P1); "
          f"limits: machine = busy ≥ {SATURATED_SHARE:.0%} of the cores, bots = "
          f"a publisher below {BOTS_SOURCE_FPS:g} fps or lag95 above {BOTS_LAG_MS:g} ms: a "
          "failed step so marked may not be the server's limit")
    return {"capacity": capacity, "fits": fits}


async def main_async(args: argparse.Namespace) -> int:
    set_loopback_only(True)
    sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else \
        list(QUICK_SIZES if args.quick else FULL_SIZES)
    if any(n < 2 for n in sizes):
        raise SystemExit("room sizes must be at least 2")
    profile = args.profile
    default_modes = list(MODES) if profile == "blur" else ["confide"]
    modes = [m.strip() for m in args.modes.split(",")] if args.modes else default_modes
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise SystemExit(f"unknown mode(s) {unknown}; expected some of {list(MODES)}")
    if profile != "blur" and BASELINE in modes:
        raise SystemExit(f"{BASELINE} blurs only; with --profile {profile} use confide modes")
    warmup_s = args.warmup if args.warmup is not None else (2.0 if args.quick else 4.0)
    window_s = args.window if args.window is not None else (4.0 if args.quick else 10.0)
    retries = args.retries if args.retries is not None else (0 if args.quick else 1)
    load = os.getloadavg()
    print(f"profile {profile} (P1, the latency probe, blur), sizes {sizes}, modes {modes}, warm-up {warmup_s:g} s, window {window_s:g} s, "
          f"{CORES} cores, load average {load[0]:.2f}")
    started = time.monotonic()
    steps: list[Step] = []
    direct_ms: float | None = None
    with tempfile.TemporaryDirectory(prefix="confide-capacity-") as tmp:
        workdir = Path(tmp)
        clip = make_clip()
        servers = [start_server(mode, workdir) for mode in modes]
        try:
            await asyncio.gather(*(_wait_healthy(s) for s in servers))
            direct_ms = await direct_latency(max(3.0, window_s / 2))
            print(f"  direct publisher → receiver, no server: p50 {direct_ms} ms", flush=True)
            active = {s.mode for s in servers}
            for i, n in enumerate(sizes):
                # rotate the order at each N so no server always follows the other
                order = servers[i % len(servers):] + servers[: i % len(servers)]
                for server in order:
                    if server.mode not in active:
                        continue
                    step = await run_step(server, n, clip, warmup_s, window_s, profile)
                    for _ in range(retries):
                        if step.passed:
                            break
                        # often another process's burst: measure once more, keep the better
                        print(f"  {server.mode:<12} N={n:<3} failed "
                              f"({step.pair_fps_min:.1f} fps); measuring again", flush=True)
                        again = await run_step(server, n, clip, warmup_s, window_s, profile)
                        again.attempts = step.attempts + 1
                        step = again if again.pair_fps_min > step.pair_fps_min else step
                    steps.append(step)
                    status = (f"min {step.pair_fps_min:.1f} fps, server {step.server_cores:.2f} "
                              f"cores, bench {step.bench_cores:.2f}, others "
                              f"{step.others_cores:.2f}") if step.ok else step.error
                    print(f"  {server.mode:<12} N={n:<3} {'pass' if step.passed else 'FAIL'}: "
                          f"{status}", flush=True)
                    if not step.passed:
                        active.discard(server.mode)  # larger rooms would only fail harder
                if not active:
                    break
        finally:
            for server in servers:
                server.proc.terminate()
            for server in servers:
                try:
                    server.proc.wait(10)
                except subprocess.TimeoutExpired:
                    server.proc.kill()
                    server.proc.wait()
    steps.sort(key=lambda s: (MODES.index(s.mode), s.n))
    summary = report(steps, direct_ms, sizes)
    elapsed = time.monotonic() - started
    print(f"\ntook {elapsed:.0f} s; latency from P1 (a colour-cycling ColorTrack, blurred like "
          f"the rest) decoded at up to {LATENCY_SUBSCRIBERS} receivers; every other stream "
          "counted as whole encoded frames")
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / time.strftime("capacity-%Y%m%d-%H%M%S.json")
    out.write_text(json.dumps({
        "profile": profile, "sizes": sizes, "modes": modes, "warmup_s": warmup_s, "window_s": window_s,
        "min_fps": MIN_FPS, "load_average": load, "cores": CORES,
        "elapsed_s": round(elapsed, 1), "direct_latency_ms_p50": direct_ms,
        "steps": [{**asdict(s), "passed": s.passed, "busy_cores": s.busy_cores,
                   "limited_by": s.limited_by,
                   "server_cores_per_publisher": s.server_cores_per_publisher} for s in steps],
        **summary,
    }, indent=2))
    print(f"results: {out.relative_to(ROOT)}")
    return 0 if all(s.ok for s in steps) else 1


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="N = 2 and 4 only, short windows, no re-measuring (~1-2 min)")
    parser.add_argument("--sizes", default=None, help="comma-separated room sizes, ascending")
    parser.add_argument("--profile", default="blur", choices=["blur", "face_mask", "avatar"],
                        help="every participant's profile but P1's (the blurred latency "
                             "probe); not blur: confide modes only")
    parser.add_argument("--modes", default=None, help=f"comma-separated, from {','.join(MODES)}")
    parser.add_argument("--warmup", type=float, default=None, help="seconds before measuring")
    parser.add_argument("--window", type=float, default=None, help="seconds measured")
    parser.add_argument("--retries", type=int, default=None,
                        help="re-measure a failed step this many times (full: 1, quick: 0)")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
