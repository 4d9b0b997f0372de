"""Time from a restart of `confide serve` to everyone back in the session, over several
restarts (SIGKILL by default).

A host and N members (signaling only) are in a scheduled session: all admitted but one, who
waits in the lobby. For each restart: kill the server process, start it again on the same
port and data, and let every client reconnect as the page does (its backoff with jitter),
with its grant and reconnect token. "Back" means joined and in the same place (admitted, or
in the lobby). Printed per restart and as p50 / max:

- `ready`: new process started → it answers /healthz (the baseline in the same run: the
  start-up the service cannot avoid);
- `back`: new process started → the last client back; `back/ready`;
- `kill→back`: the kill → the last client back (what the members live through).

Run: .venv/bin/python bench/bench_restart.py [--restarts 5] [--members 4] [--signal kill]
     [--database-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.signal_client import SignalClient  # noqa: E402
from session_rules.checklists import GROUP_AGREEMENT  # noqa: E402
from tests.support.live import ConfideProcess, host_link, redeem, session_in  # noqa: E402

NAMES = ["Robin", "Wren", "Kit", "Sam", "Ash", "Jo", "Lee", "Max", "Pat", "Sol", "Tam"]


async def _setup(server: ConfideProcess, members: int) -> tuple[SignalClient, list[
        tuple[SignalClient, str]], Any]:
    people = [(f"Real Person {i}", NAMES[i]) for i in range(members)]
    s, store = session_in(server, members=people)
    host = SignalClient(host_link(s, server))
    assert (await host.join())["type"] == "joined"
    clients: list[tuple[SignalClient, str]] = []
    for i, (_, name) in enumerate(people):
        body = await redeem(s, name)
        client = SignalClient(f"{s.base_url}/room#grant={body['grant']}")
        assert (await client.join())["type"] == "joined"
        _, reply = await client.command("confirm_checklist",
                                        answers=[item.id for item in GROUP_AGREEMENT])
        assert reply["type"] == "ok", reply
        expected = "lobby"
        if i < members - 1:
            _, reply = await host.command("admit", target=body["participant_id"])
            assert reply["type"] == "ok", reply
            expected = "admitted"
        clients.append((client, expected))
    clients.insert(0, (host, "admitted"))
    return host, clients, store


async def _restart(server: ConfideProcess, clients: list[tuple[SignalClient, str]],
                   sig: int) -> dict[str, float]:
    await asyncio.sleep(1.0)  # let the store have the room's latest state
    killed = time.monotonic()
    server.kill(sig)
    for client, _ in clients:
        await asyncio.wait_for(client.closed.wait(), 10)
    spawned = time.monotonic()
    server.spawn()
    ready_task = asyncio.ensure_future(server.ready())
    deadline = time.monotonic() + 120
    backs = await asyncio.gather(*(c.come_back(deadline) for c, _ in clients))
    ready = await ready_task
    for client, expected in clients:
        assert client.joined is not None
        state = client.joined["participant"]["state"]
        assert state == expected, f"back in {state!r}, expected {expected!r}"
    return {"ready_s": ready - spawned, "back_s": max(backs) - spawned,
            "kill_to_back_s": max(backs) - killed}


def _summary(rows: list[dict[str, float]], key: str) -> str:
    values = [r[key] for r in rows]
    return f"p50 {statistics.median(values):6.2f} s  max {max(values):6.2f} s"


async def main_async(args: argparse.Namespace) -> int:
    sig = signal.SIGKILL if args.signal == "kill" else signal.SIGTERM
    with tempfile.TemporaryDirectory(prefix="confide-bench-restart-") as tmp:
        server = ConfideProcess(Path(tmp) / "data", database_url=args.database_url or "")
        await server.start()
        try:
            _host, clients, store = await _setup(server, args.members)
            rows = []
            for i in range(args.restarts):
                row = await _restart(server, clients, sig)
                rows.append(row)
                print(f"restart {i + 1}: ready {row['ready_s']:5.2f} s  back "
                      f"{row['back_s']:5.2f} s  (x{row['back_s'] / row['ready_s']:.2f} of "
                      f"ready)  kill->back {row['kill_to_back_s']:5.2f} s", flush=True)
            print(f"\n{args.restarts} restarts ({args.signal}), host + {args.members} members "
                  f"({'PostgreSQL' if args.database_url else 'SQLite'}):")
            print(f"  new process -> /healthz ready:  {_summary(rows, 'ready_s')}")
            print(f"  new process -> everyone back:   {_summary(rows, 'back_s')}")
            ratios = [r["back_s"] / r["ready_s"] for r in rows]
            print(f"  back / ready:                   p50 {statistics.median(ratios):6.2f}"
                  f"    max {max(ratios):6.2f}")
            print(f"  kill -> everyone back:          {_summary(rows, 'kill_to_back_s')}")
            out = Path(__file__).parent / "results"
            out.mkdir(exist_ok=True)
            (out / "restart.json").write_text(json.dumps(
                {"signal": args.signal, "members": args.members, "rows": rows}, indent=2))
            for client, _ in clients:
                await client.close()
            store.dispose()
        finally:
            server.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--signal", choices=("kill", "term"), default="kill")
    parser.add_argument("--database-url", default="")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
