"""Hostile SDP offers and VP8 frames against a real server: what they cost and what they leave.

A `confide serve --dev` child process with its media worker processes; a witness pair in one
room (a member publishing blurred video, the host watching it); then a stream of hostile
members, each joining, sending mutated offers over its socket (odd line breaks hiding media
sections, hundreds of sections, huge attributes, duplicate MIDs, unknown codecs, missing ICE
or DTLS lines, random edits) and/or a real aiortc connection whose video is hostile VP8
(keyframes claiming huge pictures, truncated partitions, garbage), on the publish path and
on the preview path (from the lobby), then leaving or dropping.

Prints, per round: the inputs by kind and outcome, threads and RSS of the server and each
worker (psutil) at the baseline (after a warm-up) and after the round once everyone has
gone, and the witness's frame rate and longest stall during the round. Exit status 1 if an
input got an untyped answer, a worker died, or threads or RSS stayed more than 10 % above
the baseline.

Run: python bench/fuzz_media.py [--inputs 1000] [--rounds 1] [--warmup 150] [--seed 1]
                                [--processes 1] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sfu.ice import set_loopback_only  # noqa: E402
from tests.support.hostile_media import hostile_load  # noqa: E402
from tests.support.proc import confide_server  # noqa: E402

BOUND = 0.10


async def main(args: argparse.Namespace) -> int:
    set_loopback_only(True)
    failed = False
    results = []
    with tempfile.TemporaryDirectory(prefix="confide-fuzz-") as tmp:
        env = {"CONFIDE_MEDIA_PROCESSES": str(args.processes)}
        async with confide_server(Path(tmp) / "var", env=env) as srv:
            for round_ in range(args.rounds):
                started = time.monotonic()
                result = await hostile_load(
                    srv.base_url, srv.settings.grant_secret, srv.proc.pid,
                    inputs=args.inputs, warmup=args.warmup if round_ == 0 else 0,
                    seed=args.seed + round_, bound=BOUND, progress=print)
                print(f"== round {round_ + 1} ({time.monotonic() - started:.0f} s in all)")
                for line in result.lines():
                    print(line)
                threads, rss = result.growth()
                ok = (not result.report.unexpected and threads <= BOUND and rss <= BOUND
                      and result.after.worker_pids == result.worker_pids_before)
                failed |= not ok
                results.append({
                    "inputs": result.report.inputs, "offers": result.report.sdp_inputs,
                    "vp8_frames": result.report.vp8_frames, "members": result.report.members,
                    "outcomes": dict(result.report.outcomes),
                    "unexpected": result.report.unexpected,
                    "baseline": {"threads": result.baseline.threads,
                                 "rss_mib": round(result.baseline.rss_mib, 1)},
                    "after": {"threads": result.after.threads,
                              "rss_mib": round(result.after.rss_mib, 1)},
                    "growth": {"threads": round(threads, 4), "rss": round(rss, 4)},
                    "settled_s": round(result.settled_s, 1),
                    "witness_fps_before": round(result.witness_fps_before, 2),
                    "witness_fps": round(result.witness_fps, 2),
                    "witness_longest_gap_s": round(result.witness_longest_gap_s, 2),
                    "ok": ok,
                })
    if args.json:
        print(json.dumps(results, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1000, help="hostile inputs per round")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=150)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--processes", type=int, default=1, help="media worker processes")
    parser.add_argument("--json", action="store_true")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
