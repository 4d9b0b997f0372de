"""Host command latency while the database is away, against the same commands with it up.

A host and three members (signaling only) in a scheduled session on `confide serve`. The
same sequence of host commands (mute, allow unmute, stop video, allow video, send to the
lobby, admit, lock, unlock, mute all) and members' "someone came in" runs three times: with
the database up (the baseline, in the same run), with it away (PostgreSQL stopped, or a
SQLite file locked by another process's BEGIN EXCLUSIVE), and up again. Printed per phase:

- `reply`: command sent → its answer read by the host;
- `effect`: command sent → the state message read by the member it was about (for
  "someone came in": sent → the host's private alert read);

as p50 / p95 / max in ms, and the outage's p50 and max over the baseline's. Then, from
`/metrics` and the store: the records queued at the end of the outage (and the peak), the
time from the database's return to the queue being empty, and the records lost (commands
answered against their audit lines in the store; must be 0).

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

from sqlalchemy import func, select  # noqa: E402

from bench.signal_client import SignalClient  # noqa: E402
from session_rules.checklists import GROUP_AGREEMENT  # noqa: E402
from tests.support.live import ConfideProcess, host_link, redeem, session_in  # noqa: E402
from tests.support.servers import running_postgres  # noqa: E402
from web.store.models import AuditEvent  # noqa: E402

MEMBERS = [("Real Person A", "Robin"), ("Real Person B", "Wren"), ("Real Person C", "Kit")]
# the server allows a socket 20 messages a second (burst 40): stay below it
PACE_S = 0.07
SEQUENCE = [("mute", True), ("allow_unmute", True), ("stop_video", True),
            ("allow_video", True), ("send_to_lobby", True), ("admit", True),
            ("lock", False), ("unlock", False), ("mute_all", False)]


ANSWERED: list[int] = [0]


async def _watch_depth(server: ConfideProcess, peak: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        seen = await server.metrics()
        peak[0] = max(peak[0], seen["confide_audit_queue_depth"])
        await asyncio.sleep(0.25)


async def _round(host: SignalClient, members: list[tuple[SignalClient, str]],
                 replies: list[float], effects: list[float]) -> None:
    for client, pid in members:
        for name, targeted in SEQUENCE:
            fields = {"target": pid} if targeted else {}
            sent = time.monotonic()
            took, reply = await host.command(name, **fields)
            assert reply["type"] == "ok", reply
            ANSWERED[0] += 1
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
        ANSWERED[0] += 1
        replies.append(took)
        while not any(m.get("kind") == "someone_came_in" and m.get("participant_id") == pid
                      for _, m in host.messages[seen:]):
            await asyncio.sleep(0.001)
        at = next(t for t, m in host.messages[seen:] if m.get("kind") == "someone_came_in")
        effects.append(at - sent)
        # the member turns their camera back on for the next round
        await client.command("start_video")
        ANSWERED[0] += 1  # every command is audited, allowed or not
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
            peak = [0.0]
            ANSWERED[0] = 0
            # what the setup made is written before the baseline count
            while (await server.metrics())["confide_audit_queue_depth"] > 0:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            hosts_audited_before = _audited(store, host_pids := {
                s.clinician.participant_id, *(pid for _, pid in members)})
            for phase in ("database up", "database away", "database back"):
                replies: list[float] = []
                effects: list[float] = []
                if phase == "database away":
                    stop = asyncio.Event()
                    watcher = asyncio.ensure_future(_watch_depth(server, peak, stop))
                    begin()
                    began = time.monotonic()
                for _ in range(args.rounds):
                    await _round(host, members, replies, effects)
                if phase == "database away":
                    # the outage lasts at least as long as asked, commands running throughout
                    while time.monotonic() - began < args.outage_s:
                        await _round(host, members, replies, effects)
                    seen = await server.metrics()
                    assert seen["confide_database_up"] == 0, seen
                    _, ready = await server.readiness()
                    assert ready["status"] == "degraded", ready
                    pending = seen["confide_audit_queue_depth"]
                    outage = time.monotonic() - began
                    end()
                    back = time.monotonic()
                    # drained: the queue is empty and the database is seen up again
                    while True:
                        seen = await server.metrics()
                        if seen["confide_audit_queue_depth"] == 0 and \
                                seen["confide_database_up"] == 1:
                            break
                        await asyncio.sleep(0.05)
                    drain = time.monotonic() - back
                    stop.set()
                    await watcher
                results[phase] = {"reply": _stats(replies), "effect": _stats(effects)}
                if phase == "database away":
                    print(f"database away for {outage:.1f} s; {pending:.0f} records waiting "
                          f"at its end (peak {peak[0]:.0f}); queue empty {drain:.2f} s after "
                          "the database was back", flush=True)
            await asyncio.sleep(1.0)
            seen = await server.metrics()
            audited = _audited(store, host_pids) - hosts_audited_before
            lost = ANSWERED[0] - audited
            print(f"records: {ANSWERED[0]} commands answered, {audited} audit lines in the "
                  f"store, lost {lost}; dropped by the queue "
                  f"{seen.get('confide_records_dropped_total', 0):.0f}")
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


def _audited(store: object, actors: set[str]) -> int:
    def count(tx: object) -> int:
        return int(tx.db.scalar(select(func.count()).select_from(AuditEvent).where(  # type: ignore[attr-defined]
            AuditEvent.actor.in_(actors), AuditEvent.action.like("command:%"))))

    return int(store.call(count))  # type: ignore[attr-defined]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--outage-s", type=float, default=20.0)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
