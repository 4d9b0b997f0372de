"""Thousands of seeded random walks through whole sessions on a real server.

The same walk as the test suite's (tests/support/session_fuzz.py): a real aiohttp server on
a loopback port with its SQLite store, invites redeemed and host grants minted through the
HTTP API, signaling over real WebSockets. Prints the walks run, the distinct session states
reached, the steps of each kind and every finding (with the seed that replays it).

Run: .venv/bin/python bench/fuzz_session.py [--walks 2000] [--steps 60] [--first-seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sfu.ice import set_loopback_only  # noqa: E402
from tests.support.servers import free_port  # noqa: E402
from tests.support.session_fuzz import SessionWalk  # noqa: E402
from web.app import create_app  # noqa: E402
from web.settings import load_settings  # noqa: E402


class _Server:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.base_url = ""


async def main(walks: int, steps: int, first_seed: int, members: int) -> dict[str, Any]:
    set_loopback_only(True)
    # the server logs what it refuses at INFO; only errors matter here (each is a finding)
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="confide-fuzz-") as tmp:
        port = free_port()
        settings = load_settings(Path(tmp) / "var", host="127.0.0.1", port=port,
                                 ice_loopback=True, strict_wire=True, media_processes=0)
        app = create_app(settings)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, settings.host, settings.port).start()
        server = _Server(app)
        server.base_url = settings.base_url
        states: set[Any] = set()
        actions: Counter[str] = Counter()
        findings: list[str] = []
        started = time.monotonic()
        try:
            for seed in range(first_seed, first_seed + walks):
                result = await SessionWalk(server, seed, steps=steps, members=members).run()
                states |= result.states
                actions += result.actions
                findings += [str(f) for f in result.findings]
                done = seed - first_seed + 1
                if done % 50 == 0:
                    print(f"{done} walks, {len(states)} states, {len(findings)} findings, "
                          f"{time.monotonic() - started:.0f} s", flush=True)
        finally:
            await runner.cleanup()
    return {
        "walks": walks,
        "steps_per_walk": steps,
        "steps": sum(actions.values()),
        "distinct_states": len(states),
        "seconds": round(time.monotonic() - started, 1),
        "actions": dict(actions.most_common()),
        "findings": findings,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--walks", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--members", type=int, default=4, choices=(3, 4))
    args = parser.parse_args()
    report = asyncio.run(main(args.walks, args.steps, args.first_seed, args.members))
    print(json.dumps({k: v for k, v in report.items() if k != "findings"}, indent=2))
    print(f"findings: {len(report['findings'])}")
    for line in report["findings"][:200]:
        print("  " + line)
    sys.exit(1 if report["findings"] else 0)
