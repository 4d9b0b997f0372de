"""Server CPU, subscriber fps and latency for one publisher fanned out to N subscribers.

Three servers run side by side as child processes, each measured on its own:
  confide-forward      Confide as shipped: encoded packets fanned out, nothing decoded
  confide-encode-once  Confide with RoomPolicy(always_process=True): decode, encode once, fan out
  aiortc-mediarelay    bench/baseline_relay.py: aiortc's MediaRelay, one encoder per subscriber
The bots (one publisher: 640x480 15 fps stamped colour video plus a tone; N receive-only
subscribers) live in this process, so the servers' CPU is theirs alone. Trials are
interleaved (every mode at one N before the next N) so all modes share the machine's noise.

Run: python bench/bench_fanout.py [--quick] [--sizes 1,3,7,11]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import av
import psutil
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCRtpTransceiver
from aiortc.mediastreams import MediaStreamError
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sfu.grants import Permissions, mint_grant  # noqa: E402
from sfu.ice import rtc_configuration, set_loopback_only  # noqa: E402
from sfu.tap import install_tap  # noqa: E402
from web.bot import STAMP_BLOCK, Bot, ColorTrack, ToneTrack, read_stamp  # noqa: E402
from web.settings import load_settings  # noqa: E402

MODES = ("confide-forward", "confide-encode-once", "aiortc-mediarelay")
BASELINE = "aiortc-mediarelay"
RECEIVE_ONLY = Permissions(publish_audio=False, publish_video=False, subscribe=True)
# subscribers that decode and read the time stamp; the rest count encoded frames only, so
# the bench process does not starve the server it measures on a small machine
DECODING_SUBSCRIBERS = 2
READY_TIMEOUT_S = 30.0
SOURCE_FPS = 15
# a trial whose subscribers got less than this share of the source's frames was CPU-starved:
# its server CPU is then a lower bound, not a cost
STARVED_BELOW = 0.9
IDLE_WINDOW_S = 1.0


class CountingBot(Bot):
    """A receive-only bot that counts whole encoded frames instead of decoding them."""

    async def _on_subscribe_offer(self, data: dict[str, Any]) -> None:
        if self.sub_pc is None:
            pc = RTCPeerConnection(rtc_configuration(self.ice_servers))

            @pc.on("track")
            def on_track(track: MediaStreamTrack) -> None:
                transceiver = next(
                    (t for t in pc.getTransceivers() if t.receiver.track is track), None
                )
                if transceiver is not None:
                    # the jitter buffer still reassembles frames; only decoding is skipped
                    install_tap(transceiver.receiver, functools.partial(self._count, transceiver))

            self.sub_pc = pc
        await super()._on_subscribe_offer(data)

    def _count(self, transceiver: RTCRtpTransceiver, packet: av.Packet, keyframe: bool) -> None:
        pid = self._mid_map.get(transceiver.mid or "", {}).get("participant_id")
        if not pid:
            return
        peer = self._peer(pid)
        if transceiver.kind == "video":
            now = time.monotonic()
            peer.video_frames += 1
            peer.video_first_s = peer.video_first_s or now
            peer.video_last_s = now
        else:
            peer.audio_frames += 1


@dataclass
class ServerChild:
    """One server under test, running as a child process."""

    mode: str
    proc: subprocess.Popen[bytes]
    port: int
    secret: str
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def link(self, room: str, name: str, **grant: Any) -> str:
        token = mint_grant(self.secret, room=room, display_name=name, ttl_s=600, **grant)
        return f"{self.base_url}/room#grant={token}"

    def cpu_seconds(self) -> float:
        """The server's CPU seconds, with its live child processes (media workers)."""
        server = psutil.Process(self.proc.pid)
        total = 0.0
        for proc in [server, *server.children(recursive=True)]:
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total


@dataclass
class Trial:
    """One mode at one N: what the window measured."""

    mode: str
    subscribers: int
    ok: bool = True
    error: str = ""
    window_s: float = 0.0
    server_cores: float = 0.0
    server_idle_cores: float = 0.0
    bench_cores: float = 0.0
    others_cores: float = 0.0
    fps_min: float = 0.0
    fps_median: float = 0.0
    decoded_fps: list[float] = field(default_factory=list)
    latency_ms_p50: float | None = None
    latency_samples: int = 0
    audio_fps_min: float = 0.0
    attempts: int = 1

    @property
    def starved(self) -> bool:
        return self.ok and self.fps_median < STARVED_BELOW * SOURCE_FPS


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(mode: str, workdir: Path, root: Path = ROOT, label: str | None = None
           ) -> ServerChild:
    """Start server `mode` from the code at `root` (another checkout to compare against)."""
    port = _free_port()
    label = label or mode
    log_path = workdir / f"{label}.log"
    if mode == BASELINE:
        args = ["-m", "bench.baseline_relay", "--port", str(port)]
        secret = "baseline-relay-does-not-verify-grants"
    else:
        data_dir = workdir / label
        # create the secrets before the child reads them, so links minted here verify there
        secret = load_settings(data_dir).grant_secret
        args = ["-m", "bench.confide_server", "--port", str(port), "--data-dir", str(data_dir)]
        if mode == "confide-encode-once":
            args.append("--always-process")
    log = open(log_path, "wb")  # noqa: SIM115 (the child owns it until it exits)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if root != ROOT:
        # the other checkout's packages first (this one is installed in the virtualenv)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(root), env.get("PYTHONPATH"))))
    proc = subprocess.Popen([sys.executable, *args], cwd=root, stdout=log,
                            stderr=subprocess.STDOUT, env=env)
    log.close()
    return ServerChild(label, proc, port, secret, log_path)


async def _wait_healthy(server: ServerChild, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                raise RuntimeError(f"{server.mode} exited:\n{server.log_path.read_text()[-2000:]}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{server.base_url}/healthz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{server.mode} did not become healthy in {timeout_s:.0f} s")


async def _participants(server: ServerChild) -> int:
    if server.mode == BASELINE:
        async with aiohttp.ClientSession() as session, \
                session.get(f"{server.base_url}/healthz") as resp:
            return int((await resp.json())["participants"])
    # Confide's /healthz says nothing; its metrics count participants (loopback may read them)
    async with aiohttp.ClientSession() as session, \
            session.get(f"{server.base_url}/metrics") as resp:
        text = await resp.text()
    return int(sum(
        sample.value for family in text_string_to_metric_families(text)
        if family.name == "confide_participants" for sample in family.samples
    ))


def _busy_cores_seconds() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def _bench_cpu_seconds() -> float:
    t = psutil.Process().cpu_times()
    return float(t.user + t.system)


async def _until(predicate: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def run_trial(server: ServerChild, n: int, warmup_s: float, window_s: float) -> Trial:
    """Join one publisher and n subscribers, warm up, then measure one window."""
    trial = Trial(server.mode, n)
    room = f"fanout-{n}-{uuid.uuid4().hex[:8]}"

    cpu0, t0 = server.cpu_seconds(), time.monotonic()
    await asyncio.sleep(IDLE_WINDOW_S)
    trial.server_idle_cores = (server.cpu_seconds() - cpu0) / (time.monotonic() - t0)

    decoding = min(DECODING_SUBSCRIBERS, n)
    subs: list[Bot] = []
    for i in range(n):
        link = server.link(room, f"Sub{i + 1}", permissions=RECEIVE_ONLY)
        if i < decoding:
            subs.append(Bot(link, publish=False, decode_video=True))
        else:
            subs.append(CountingBot(link, publish=False))
    publisher = CountingBot(server.link(room, "Publisher"),
                            video=ColorTrack("red", stamp=True, fps=SOURCE_FPS), audio=ToneTrack())
    bots = [*subs, publisher]
    try:
        await asyncio.gather(*(s.connect() for s in subs))
        await publisher.connect()
        pub_id = str(publisher.me["id"])

        def frames(bot: Bot) -> int:
            peer = bot.peers.get(pub_id)
            return peer.video_frames if peer else 0

        def audio(bot: Bot) -> int:
            peer = bot.peers.get(pub_id)
            return peer.audio_frames if peer else 0

        def latencies(bot: Bot) -> list[float]:
            peer = bot.peers.get(pub_id)
            return peer.latencies_ms if peer else []

        ready = await _until(
            lambda: all(frames(s) > 0 for s in subs)
            and all(latencies(s) for s in subs[:decoding]),
            READY_TIMEOUT_S,
        )
        if not ready:
            got = sum(1 for s in subs if frames(s) > 0)
            raise RuntimeError(f"only {got}/{n} subscribers received video")
        await asyncio.sleep(warmup_s)

        f0 = [frames(s) for s in subs]
        a0 = [audio(s) for s in subs]
        l0 = [len(latencies(s)) for s in subs[:decoding]]
        cpu0, bench0, busy0 = server.cpu_seconds(), _bench_cpu_seconds(), _busy_cores_seconds()
        t0 = time.monotonic()
        await asyncio.sleep(window_s)
        wall = time.monotonic() - t0
        cpu1, bench1, busy1 = server.cpu_seconds(), _bench_cpu_seconds(), _busy_cores_seconds()

        trial.window_s = round(wall, 2)
        trial.server_cores = (cpu1 - cpu0) / wall
        trial.bench_cores = (bench1 - bench0) / wall
        trial.others_cores = max(0.0, (busy1 - busy0) / wall - trial.server_cores
                                 - trial.bench_cores)
        fps = [(frames(s) - f) / wall for s, f in zip(subs, f0, strict=True)]
        trial.fps_min, trial.fps_median = min(fps), statistics.median(fps)
        trial.decoded_fps = [round(x, 2) for x in fps[:decoding]]
        trial.audio_fps_min = min((audio(s) - a) / wall for s, a in zip(subs, a0, strict=True))
        window_lat = [x for s, i in zip(subs, l0, strict=False) for x in latencies(s)[i:]]
        trial.latency_samples = len(window_lat)
        trial.latency_ms_p50 = statistics.median(window_lat) if window_lat else None
    except Exception as exc:  # one failed trial must not lose the others' numbers
        trial.ok, trial.error = False, f"{type(exc).__name__}: {exc}"
    finally:
        await asyncio.gather(*(b.leave() for b in bots), return_exceptions=True)
        # let the server release the room before the next trial's idle check
        for _ in range(50):
            with contextlib.suppress(Exception):
                if await _participants(server) == 0:
                    break
            await asyncio.sleep(0.1)
    return trial


async def direct_latency(seconds: float) -> float | None:
    """Median stamp latency publisher → receiver with no server between: the floor that
    a relay's latency is compared with."""
    pub_pc = RTCPeerConnection(rtc_configuration([]))
    sub_pc = RTCPeerConnection(rtc_configuration([]))
    source = ColorTrack("red", stamp=True)
    transceiver = pub_pc.addTransceiver(source, direction="sendonly")
    caps = RTCRtpSender.getCapabilities("video").codecs
    transceiver.setCodecPreferences(
        [c for c in caps if c.mimeType.split("/")[1].lower() in ("vp8", "rtx")])
    samples: list[float] = []
    measuring = asyncio.Event()

    async def consume(track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if measuring.is_set() and isinstance(frame, av.VideoFrame):
                # only the stamp rows: what the bots read, without converting the whole frame
                img = frame.to_ndarray(format="rgb24")[:STAMP_BLOCK]
                stamp = read_stamp(img)
                if stamp is None:
                    continue
                lat = ((int(time.time() * 1000) & 0xFFFFFFFF) - stamp) & 0xFFFFFFFF
                if lat < 10_000:
                    samples.append(float(lat))

    tasks: list[asyncio.Task[None]] = []
    sub_pc.on("track", lambda track: tasks.append(asyncio.ensure_future(consume(track))))
    try:
        await pub_pc.setLocalDescription(await pub_pc.createOffer())
        await sub_pc.setRemoteDescription(pub_pc.localDescription)
        await sub_pc.setLocalDescription(await sub_pc.createAnswer())
        await pub_pc.setRemoteDescription(sub_pc.localDescription)
        await asyncio.sleep(1.0)
        measuring.set()
        await asyncio.sleep(seconds)
    finally:
        for task in tasks:
            task.cancel()
        await pub_pc.close()
        await sub_pc.close()
    return statistics.median(samples) if samples else None


def _slope(trials: list[Trial]) -> float | None:
    """Least-squares cores per extra subscriber."""
    pts = [(t.subscribers, t.server_cores) for t in trials if t.ok and not t.starved]
    if len({x for x, _ in pts}) < 2:
        return None
    mx = statistics.fmean(x for x, _ in pts)
    my = statistics.fmean(y for _, y in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)


def report(trials: list[Trial], sizes: list[int], direct_ms: float | None) -> dict[str, Any]:
    """Print the table and ratios; return them for the JSON file."""
    print()
    print(f"{'mode':<21}{'N':>3}{'server cores':>14}{'idle':>7}{'fps min/med':>13}"
          f"{'latency p50':>13}{'added':>7}{'bench':>7}{'others':>8}")
    for t in trials:
        if not t.ok:
            print(f"{t.mode:<21}{t.subscribers:>3}  FAILED: {t.error}")
            continue
        lat = f"{t.latency_ms_p50:.0f} ms" if t.latency_ms_p50 is not None else "-"
        added = f"{t.latency_ms_p50 - direct_ms:+.0f}" \
            if t.latency_ms_p50 is not None and direct_ms is not None else "-"
        print(f"{t.mode:<21}{t.subscribers:>3}{t.server_cores:>14.3f}{t.server_idle_cores:>7.3f}"
              f"{t.fps_min:>7.1f}/{t.fps_median:<5.1f}{lat:>13}{added:>7}{t.bench_cores:>7.2f}"
              f"{t.others_cores:>8.2f}" + ("  starved" if t.starved else ""))
    by = {(t.mode, t.subscribers): t for t in trials if t.ok}
    ratios: dict[str, dict[int, float | None]] = {}
    print()
    print(f"{'ratio of server CPU':<32}" + "".join(f"{'N=' + str(n):>8}" for n in sizes))
    for mode in ("confide-forward", "confide-encode-once"):
        row: dict[int, float | None] = {}
        for n in sizes:
            ours, base = by.get((mode, n)), by.get((BASELINE, n))
            row[n] = ours.server_cores / base.server_cores if ours and base and \
                base.server_cores > 0 else None
        ratios[mode] = row
        print(f"{mode + ' / baseline':<32}" + "".join(
            (f"{r:>7.3f}" + ("*" if by[(BASELINE, n)].starved or by[(mode, n)].starved else " ")) if r is not None
            else f"{'-':>8}" for n, r in row.items()))
    if any(t.starved for t in by.values()):
        print("* starved trial (subscribers' median fps below "
              f"{STARVED_BELOW * SOURCE_FPS:g}): its CPU is a lower bound, left out of slopes")
    slopes = {mode: _slope([t for t in trials if t.mode == mode]) for mode in MODES}
    print()
    print("cores per extra subscriber (least squares over N):")
    for mode, slope in slopes.items():
        print(f"  {mode:<21}{slope:+.4f}" if slope is not None else f"  {mode:<21}-")
    return {"ratios": ratios, "slopes": slopes}


async def main_async(args: argparse.Namespace) -> int:
    set_loopback_only(True)
    sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else \
        ([1, 11] if args.quick else [1, 3, 7, 11])
    warmup_s = args.warmup if args.warmup is not None else (2.0 if args.quick else 3.0)
    window_s = args.window if args.window is not None else (5.0 if args.quick else 9.0)
    load = os.getloadavg()
    print(f"sizes {sizes}, warm-up {warmup_s:g} s, window {window_s:g} s, "
          f"{psutil.cpu_count()} cores, load average {load[0]:.2f}")
    started = time.monotonic()
    trials: list[Trial] = []
    direct_ms: float | None = None
    with tempfile.TemporaryDirectory(prefix="confide-fanout-") as tmp:
        servers = [_start(mode, Path(tmp)) for mode in MODES]
        try:
            await asyncio.gather(*(_wait_healthy(s) for s in servers))
            direct_ms = await direct_latency(window_s / 2)
            print(f"  direct publisher → receiver, no server: p50 {direct_ms} ms", flush=True)
            for i, n in enumerate(sizes):
                # rotate the order at each N so no mode always follows the same one
                for server in servers[i % 3:] + servers[: i % 3]:
                    trial = await run_trial(server, n, warmup_s, window_s)
                    if trial.starved:
                        # often another process's burst: measure once more, keep the better
                        print(f"  {server.mode:<21} N={n:<3} starved "
                              f"({trial.fps_median:.1f} fps); measuring again", flush=True)
                        again = await run_trial(server, n, warmup_s, window_s)
                        again.attempts = trial.attempts = 2
                        trial = again if again.fps_median > trial.fps_median else trial
                    trials.append(trial)
                    status = f"{trial.server_cores:.3f} cores" if trial.ok else trial.error
                    print(f"  {server.mode:<21} N={n:<3} {status}", flush=True)
        finally:
            for server in servers:
                server.proc.terminate()
            for server in servers:
                try:
                    server.proc.wait(10)
                except subprocess.TimeoutExpired:
                    server.proc.kill()
                    server.proc.wait()
    trials.sort(key=lambda t: (MODES.index(t.mode), t.subscribers))
    summary = report(trials, sizes, direct_ms)
    elapsed = time.monotonic() - started
    print(f"\ntook {elapsed:.0f} s; subscribers decoding (latency): up to {DECODING_SUBSCRIBERS}, "
          "the rest count whole encoded frames")
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / time.strftime("fanout-%Y%m%d-%H%M%S.json")
    out.write_text(json.dumps({
        "sizes": sizes, "warmup_s": warmup_s, "window_s": window_s, "load_average": load,
        "cores": psutil.cpu_count(), "elapsed_s": round(elapsed, 1),
        "decoding_subscribers": DECODING_SUBSCRIBERS, "direct_latency_ms_p50": direct_ms,
        "trials": [{**asdict(t), "starved": t.starved} for t in trials], **summary,
    }, indent=2))
    print(f"results: {out.relative_to(ROOT)}")
    return 0 if all(t.ok for t in trials) else 1


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=1 and 11, short windows (~1 min)")
    parser.add_argument("--sizes", default=None, help="comma-separated subscriber counts")
    parser.add_argument("--warmup", type=float, default=None, help="seconds before measuring")
    parser.add_argument("--window", type=float, default=None, help="seconds measured")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
