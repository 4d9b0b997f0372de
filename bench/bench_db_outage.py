"""Host command latency while the database is away, against the same commands with it up.

A host and three members (signaling only) in a scheduled session on `confide serve`. The
same sequence of host commands (mute, allow unmute, stop video, allow video, send to the
lobby, admit, lock, unlock, mute all) and members' "someone came in" runs three times: with
the database up (the baseline, in the same run), with it away (PostgreSQL stopped, or a
SQLite file locked by another process's BEGIN EXCLUSIVE), and up again. Printed per phase:

- `reply`: command sent → its answer read by the host;
- `effect`: command sent → the state message read by the member it was about (for
  "someone came in": sent → the host's private alert read);

as p50 / p95 / max in ms, and the outage's p50 and max over the baseline's.

Run: .venv/bin/python bench/bench_db_outage.py [--backend postgresql|sqlite] [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.signal_client import SignalClient  # noqa: E402
from session_rules.checklists import GROUP_AGREEMENT  # noqa: E402
from tests.support.live import ConfideProcess, host_link, redeem, session_in  # noqa: E402
from tests.support.servers import running_postgres  # noqa: E402

MEMBERS = [("Real Person A", "Robin"), ("Real Person B", "Wren"), ("Real Person C", "Kit")]
# the server allows a socket 20 messages a second (burst 40): stay below it
PACE_S = 0.07
SEQUENCE = [("mute", True), ("allow_unmute", True), ("stop_video", True),
            ("allow_video", True), ("send_to_lobby", True), ("admit", True),
            ("lock", False), ("unlock", False), ("mute_all", False)]


async def _round(host: SignalClient, members: list[tuple[SignalClient, str]],
                 replies: list[float], effects: list[float]) -> None:
    for client, pid in members:
        for name, targeted in SEQUENCE:
            fields = {"target": pid} if targeted else {}
            sent = time.monotonic()
            took, reply = await host.command(name, **fields)
            assert reply["type"] == "ok", reply
            replies.append(took)
            if targeted:
                effects.append(await client.state_after(sent) - sent)
            await asyncio.sleep(PACE_S)
    # someone came in, at each member's: the host's alert is the effect
    for client, pid in members:
        seen = len(host.messages)
        sent = time.monotonic()
        took, reply = await client.command("someone_came_in")
        assert reply["type"] == "ok", reply
        replies.append(took)
        while not any(m.get("kind") == "someone_came_in" and m.get("participant_id") == pid
                      for _, m in host.messages[seen:]):
            await asyncio.sleep(0.001)
        at = next(t for t, m in host.messages[seen:] if m.get("kind") == "someone_came_in")
        effects.append(at - sent)
        # the member turns their camera back on for the next round
        await client.command("start_video")
        await asyncio.sleep(PACE_S)


def _stats(values: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values)
    return {"n": len(ms), "p50": statistics.median(ms),
            "p95": ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))], "max": ms[-1]}


def _line(label: str, s: dict[str, float]) -> str:
    return (f"  {label:<22} n={s['n']:<4} p50 {s['p50']:7.2f} ms  p95 {s['p95']:7.2f} ms  "
            f"max {s['max']:7.2f} ms")


@contextlib.contextmanager
def _database(backend: str) -> Iterator[tuple[str, Callable[[], None], Callable[[], None]]]:
    """The database URL, and how to take it away and bring it back (PostgreSQL)."""
    if backend == "postgresql":
        # a server of its own: this benchmark stops it
        with running_postgres() as pg:
            yield pg.create_database(), pg.stop, pg.start
    else:
        yield "", _nothing, _nothing


def _nothing() -> None:
    pass


class SqliteLock:
    """Another process's connection holding the SQLite file's write lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn: sqlite3.Connection | None = None

    def begin(self) -> None:
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        self.conn.execute("BEGIN EXCLUSIVE")

    def end(self) -> None:
        assert self.conn is not None
        self.conn.execute("COMMIT")
        self.conn.close()


async def main_async(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="confide-bench-outage-") as tmp, \
            _database(args.backend) as (url, begin, end):
        server = ConfideProcess(Path(tmp) / "data", database_url=url)
        if args.backend == "sqlite":
            lock = SqliteLock(server.settings.data_dir / "confide.sqlite3")
            begin, end = lock.begin, lock.end
        await server.start()
        try:
            s, store = session_in(server, members=MEMBERS)
            host = SignalClient(host_link(s, server))
            assert (await host.join())["type"] == "joined"
            members: list[tuple[SignalClient, str]] = []
            for _, name in MEMBERS:
                body = await redeem(s, name)
                client = SignalClient(f"{s.base_url}/room#grant={body['grant']}")
                assert (await client.join())["type"] == "joined"
                await client.command("confirm_checklist",
                                     answers=[item.id for item in GROUP_AGREEMENT])
                await host.command("admit", target=body["participant_id"])
                members.append((client, body["participant_id"]))
            results: dict[str, dict[str, dict[str, float]]] = {}
            for phase in ("database up", "database away", "database back"):
                replies: list[float] = []
                effects: list[float] = []
                if phase == "database away":
                    begin()
                    began = time.monotonic()
                for _ in range(args.rounds):
                    await _round(host, members, replies, effects)
                if phase == "database away":
                    # the outage lasts at least as long as asked, commands running throughout
                    while time.monotonic() - began < args.outage_s:
                        await _round(host, members, replies, effects)
                    health = await server.health()
                    assert health["records"]["database"] == "unavailable", health
                    pending = health["records"]["records_pending"]
                    outage = time.monotonic() - began
                    end()
                results[phase] = {"reply": _stats(replies), "effect": _stats(effects)}
                if phase == "database away":
                    print(f"database away for {outage:.1f} s; {pending} records waiting at "
                          f"the end (written after)", flush=True)
            for phase, r in results.items():
                print(f"{phase}:")
                print(_line("command -> reply", r["reply"]))
                print(_line("command -> effect", r["effect"]))
            up, away = results["database up"], results["database away"]
            for kind in ("reply", "effect"):
                print(f"away / up ({kind}): p50 x{away[kind]['p50'] / up[kind]['p50']:.2f}, "
                      f"max x{away[kind]['max'] / up[kind]['max']:.2f}")
            out = Path(__file__).parent / "results"
            out.mkdir(exist_ok=True)
            (out / f"db_outage_{args.backend}.json").write_text(json.dumps(results, indent=2))
            for client, _ in [(host, ""), *members]:
                await client.close()
            store.dispose()
        finally:
            server.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--outage-s", type=float, default=20.0)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
