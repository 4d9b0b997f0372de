"""Failover of a media node: SIGKILL the node running a session, time until the room is
placed again and until the last member is back, over several kills.

Three `confide serve` nodes share a real PostgreSQL and a real Redis (both started here). A
host and N members (bots, signaling only; all admitted but one, who waits in the lobby) are in
one scheduled session. For each kill: every member's link points at a live node that does not
run the room (as a page's own server would be), the room's node is killed with SIGKILL, and
every member reconnects as the page does (through their own server, redirected to the new
owner, with their grant and reconnect token). Then the killed node is started again. Printed
per kill and as p50 / max:

- `replaced`: the kill → the room's owner record names a live node;
- `back`: the kill → the last member joined again, in the same place (admitted or lobby);
- `ttl`: the heartbeat TTL, the floor of both (a dead node is only known dead once it has
  expired), and `back/ttl`.

Every node's log is kept (`--logs`, by default a new directory under var/bench-logs, printed
at the start). A member not back within `--back-timeout` stops the run with a diagnosis: what
each of their attempts was answered (redirects, refusals), the room's owner record and the
live nodes as Redis has them, and what each node's log says of the room.

Run: .venv/bin/python bench/bench_failover.py [--kills 10] [--members 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.cluster import Cluster, node_of  # noqa: E402
from tests.support.live import Member, agree, host_link, member_of, wait_for  # noqa: E402
from tests.support.servers import running_postgres, running_redis  # noqa: E402
from web.cluster import bus  # noqa: E402
from web.cluster.nodes import NODE_TTL_S  # noqa: E402
from web.cluster.placement import Placement  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NAMES = ["Robin", "Wren", "Kit", "Sam", "Ash", "Jo", "Lee", "Max", "Pat", "Sol", "Tam"]


async def _setup(cluster: Cluster, members: int) -> tuple[Any, list[tuple[Member, str]]]:
    people = [(f"Real Person {i}", NAMES[i]) for i in range(members)]
    from tests.support.session import open_session
    from web.control import data_keys
    from web.control import keys as control_keys
    from web.store import open_store

    entry = cluster.nodes["n3"]
    store = open_store(entry.store_url, data_keys(entry.settings))
    app = {control_keys.STORE: store, control_keys.CONTROL_SETTINGS: entry.settings}
    s = open_session(app, entry.base_url, members=people)
    host = Member("host", host_link(s, entry), s.clinician.participant_id)
    await host.connect()
    out: list[tuple[Member, str]] = [(host, "admitted")]
    for i, (_, name) in enumerate(people):
        m = await member_of(s, name)
        await agree(m)
        expected = "lobby"
        if i < members - 1:
            reply = await host.command("admit", f"a{i}", target=m.participant_id)
            assert reply["type"] == "ok", reply
            await wait_for(lambda m=m: m.last("admitted"), 10, "admitted")
            expected = "admitted"
        out.append((m, expected))
    return s, out


class NotBack(Exception):
    """A member did not come back in time; the message is the diagnosis."""


def _attempts(m: Member, since: int) -> list[str]:
    """What each connection attempt of `m` since `since` met: where it went, and the
    messages that were not the room's ordinary traffic."""
    lines = []
    for bot in m.history[since:]:
        seen = [x.get("type", "?") + (f"({x['code']})" if "code" in x else "")
                for x in bot.messages
                if x.get("type") in ("error", "redirect", "service_unavailable",
                                     "service_restarting", "joined", "ended")]
        errors = [x.get("message", "") for x in bot.errors]
        lines.append(f"    {bot.entry_url} -> {' -> '.join(bot.redirects) or '(no redirect)'}"
                     f": {', '.join(seen) or 'no answer'}{'; ' + '; '.join(errors) if errors else ''}")
    return lines


async def _diagnosis(cluster: Cluster, placement: Placement, room_id: str, victim: str,
                     killed: float, missing: list[tuple[Member, str, int, BaseException]]
                     ) -> str:
    from web.cluster.nodes import NodeDirectory

    out = [f"after the kill of {victim} ({time.monotonic() - killed:.1f} s ago), not back:"]
    for m, expected, since, exc in missing:
        out.append(f"  {m.name} (expected {expected}): {type(exc).__name__}: {exc}; "
                   f"{len(m.history) - since} attempts")
        out.extend(_attempts(m, since)[-6:])
    try:
        record = await placement.owner(room_id)
        live = await NodeDirectory(placement.redis).live_nodes()
        out.append(f"  owner record now: {record.model_dump() if record else None}")
        out.append("  live nodes now: " + ", ".join(
            f"{n.node_id} (rooms {n.rooms}, draining {n.draining})" for n in live.values()))
    except Exception as exc:  # the diagnosis must not hide the miss
        out.append(f"  Redis could not be read: {exc!r}")
    for node_id, node in cluster.nodes.items():
        lines = [ln for ln in node.log().splitlines()
                 if room_id in ln or "Redis" in ln or "ERROR" in ln or "Traceback" in ln]
        out.append(f"  {node_id} log ({node.log_path}), lines on the room or errors, last 15:")
        out.extend("    " + ln for ln in lines[-15:])
    return "\n".join(out)


def _relink(member: Member, base_url: str) -> None:
    """The member's page is served by `base_url` now (its own server)."""
    grant = member.link.split("#", 1)[1]
    member.link = f"{base_url}/room#{grant}"


async def _kill(cluster: Cluster, placement: Placement, room_id: str,
                people: list[tuple[Member, str]], back_timeout_s: float) -> dict[str, float]:
    record = await placement.owner(room_id)
    assert record is not None
    victim = record.node_id
    entry = next(n for n in cluster.nodes if n != victim and cluster.nodes[n].proc is not None
                 and cluster.nodes[n].proc.poll() is None)  # type: ignore[union-attr]
    for m, _ in people:
        _relink(m, cluster.nodes[entry].base_url)
    killed = time.monotonic()
    cluster.nodes[victim].kill(signal.SIGKILL)

    async def replaced() -> float:
        while True:
            now = await placement.owner(room_id)
            if now is not None and now.node_id != victim:
                return time.monotonic() - killed
            await asyncio.sleep(0.02)

    missing: list[tuple[Member, str, int, BaseException]] = []

    async def back(m: Member, expected: str) -> float:
        assert m.bot is not None
        since = len(m.history)
        try:
            await wait_for(m.bot.closed.is_set, 15, "socket closed")
            at = await m.come_back(back_timeout_s)
            joined = m.last("joined")
            assert joined is not None and joined["participant"]["state"] == expected, joined
        except Exception as exc:  # any way of not coming back is diagnosed
            missing.append((m, expected, since, exc))
            return float("nan")
        return at - killed

    async def replaced_within() -> float:
        try:
            return await asyncio.wait_for(replaced(), back_timeout_s)
        except TimeoutError:
            return float("nan")

    times = await asyncio.gather(replaced_within(), *(back(m, e) for m, e in people))
    if missing:
        raise NotBack(await _diagnosis(cluster, placement, room_id, victim, killed, missing))
    for m, _ in people:
        assert node_of(m, cluster) != victim
    # the killed node comes back (empty) for the next round
    await cluster.nodes[victim].start()
    return {"replaced_s": times[0], "back_s": max(times[1:])}


def _summary(rows: list[dict[str, float]], key: str) -> str:
    values = [r[key] for r in rows]
    return f"p50 {statistics.median(values):.2f} s, max {max(values):.2f} s"


def _keep_logs(cluster: Cluster, logs: Path) -> None:
    """Each node's log, out of the throwaway data directories (which hold secrets)."""
    logs.mkdir(parents=True, exist_ok=True)
    for node_id, node in cluster.nodes.items():
        if node.log_path.exists():
            shutil.copy2(node.log_path, logs / f"{node_id}.log")


async def main_async(args: argparse.Namespace) -> int:
    rows: list[dict[str, float]] = []
    logs = Path(args.logs) if args.logs else (
        ROOT / "var" / "bench-logs" / time.strftime("failover-%Y%m%d-%H%M%S"))
    print(f"node logs: {logs}", flush=True)
    failed = False
    with running_postgres() as pg, running_redis() as redis_server, \
            tempfile.TemporaryDirectory(prefix="confide-failover-") as root:
        cluster = Cluster(Path(root), database_url=pg.create_database(),
                          redis_url=redis_server.url)
        redis = bus.connect(redis_server.url)
        placement = Placement(redis)
        people: list[tuple[Member, str]] = []
        try:
            await cluster.start()
            s, people = await _setup(cluster, args.members)
            for i in range(args.kills):
                try:
                    row = await _kill(cluster, placement, s.session_id, people,
                                      args.back_timeout)
                except NotBack as exc:
                    print(f"kill {i + 1}: a member was not back within "
                          f"{args.back_timeout:.0f} s\n{exc}", flush=True)
                    failed = True
                    break
                rows.append(row)
                print(f"kill {i + 1}: replaced {row['replaced_s']:.2f} s, "
                      f"last member back {row['back_s']:.2f} s", flush=True)
        finally:
            for m, _ in people:
                await m.close()
            cluster.stop()
            await redis.aclose()
            _keep_logs(cluster, logs)
    print(f"node logs kept in {logs}")
    if not rows:
        return 1
    print(f"\nover {len(rows)} kills ({args.members} members and the host; heartbeat TTL "
          f"{NODE_TTL_S:.1f} s):")
    print(f"  kill → room re-placed:    {_summary(rows, 'replaced_s')}")
    print(f"  kill → last member back:  {_summary(rows, 'back_s')}")
    back_p50 = statistics.median(r["back_s"] for r in rows)
    print(f"  back / ttl (p50):         {back_p50 / NODE_TTL_S:.2f}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "failover.json").write_text(json.dumps({"kills": rows, "ttl_s": NODE_TTL_S},
                                                  indent=2))
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--back-timeout", type=float, default=60.0,
                        help="seconds a member has to come back before the run stops")
    parser.add_argument("--logs", default="",
                        help="where to keep each node's log (default: var/bench-logs/…)")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
