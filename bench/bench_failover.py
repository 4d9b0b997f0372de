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

Run: .venv/bin/python bench/bench_failover.py [--kills 10] [--members 4]
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

from tests.support.cluster import Cluster, node_of  # noqa: E402
from tests.support.live import Member, agree, host_link, member_of, wait_for  # noqa: E402
from tests.support.servers import running_postgres, running_redis  # noqa: E402
from web.cluster import bus  # noqa: E402
from web.cluster.nodes import NODE_TTL_S  # noqa: E402
from web.cluster.placement import Placement  # noqa: E402

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


def _relink(member: Member, base_url: str) -> None:
    """The member's page is served by `base_url` now (its own server)."""
    grant = member.link.split("#", 1)[1]
    member.link = f"{base_url}/room#{grant}"


async def _kill(cluster: Cluster, placement: Placement, room_id: str,
                people: list[tuple[Member, str]]) -> dict[str, float]:
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

    async def back(m: Member, expected: str) -> float:
        assert m.bot is not None
        await wait_for(m.bot.closed.is_set, 15, "socket closed")
        at = await m.come_back(60)
        joined = m.last("joined")
        assert joined is not None and joined["participant"]["state"] == expected, joined
        return at - killed

    times = await asyncio.gather(replaced(), *(back(m, e) for m, e in people))
    for m, _ in people:
        assert node_of(m, cluster) != victim
    # the killed node comes back (empty) for the next round
    await cluster.nodes[victim].start()
    return {"replaced_s": times[0], "back_s": max(times[1:])}


def _summary(rows: list[dict[str, float]], key: str) -> str:
    values = [r[key] for r in rows]
    return f"p50 {statistics.median(values):.2f} s, max {max(values):.2f} s"


async def main_async(args: argparse.Namespace) -> int:
    rows: list[dict[str, float]] = []
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
                row = await _kill(cluster, placement, s.session_id, people)
                rows.append(row)
                print(f"kill {i + 1}: replaced {row['replaced_s']:.2f} s, "
                      f"last member back {row['back_s']:.2f} s", flush=True)
        finally:
            for m, _ in people:
                await m.close()
            cluster.stop()
            await redis.aclose()
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
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--members", type=int, default=4)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
