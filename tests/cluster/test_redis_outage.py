"""Redis away for 10 s under two nodes (real processes, real PostgreSQL): the session that is
running goes on untouched, a session that needs placing is asked to try again in a moment,
and the service is whole again by itself when Redis is back (empty, as after a restart).

Then two stalls. Redis frozen for longer than the heartbeat TTL (every heartbeat expires
meanwhile): when it answers again no room moves. The room's node frozen for as long (alive,
its heartbeat late): the other node takes the room over, and when the late node runs again
it stops the room at once and sends its members to the new owner; nobody runs it twice."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any

import pytest

from tests.support.cluster import Cluster, RedisProcess, api_post, node_of
from tests.support.live import (
    Member,
    agree,
    host_link,
    join_refusal,
    member_of,
    wait_async,
    wait_for,
)
from tests.support.servers import PostgresServer
from web.cluster import bus
from web.cluster.nodes import NODE_TTL_S
from web.cluster.placement import Placement

logger = logging.getLogger(__name__)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

OUTAGE_S = 10.0
# generous bounds: the test waits on conditions, and a busy two-core machine is slow
HEAL_S = 30.0
# a stall longer than the heartbeat TTL: every heartbeat written before it has expired
STALL_S = NODE_TTL_S + 1.5


def _ok(reply: dict[str, Any]) -> dict[str, Any]:
    assert reply["type"] == "ok", reply
    return reply


async def test_a_redis_outage_leaves_live_rooms_alone_and_heals(
    tmp_path: Any, postgres_server: PostgresServer,
) -> None:
    redis = RedisProcess(tmp_path / "redis")
    await asyncio.to_thread(redis.start)
    cluster = Cluster(tmp_path, database_url=postgres_server.create_database(),
                      redis_url=redis.url, count=2)
    people: list[Member] = []
    try:
        await cluster.start()
        s1, _ = cluster.session("n2", "dr.hale")
        host = Member("host", host_link(s1, cluster.nodes["n2"]), s1.clinician.participant_id)
        await host.connect()
        robin, wren = await member_of(s1, "Robin"), await member_of(s1, "Wren")
        people = [host, robin, wren]
        for m in (robin, wren):
            await agree(m)
        _ok(await host.command("admit", "a1", target=robin.participant_id))
        owner = node_of(host, cluster)
        before = (await cluster.placements())[s1.session_id]
        s2, _ = cluster.session("n2", "dr.moss")
        late_link = host_link(s2, cluster.nodes["n2"])

        await asyncio.to_thread(redis.stop)
        down = time.monotonic()
        # the running session goes on: the host decides, the members hear it
        _ok(await host.command("admit", "o1", target=wren.participant_id))
        await wait_for(lambda: wren.last("admitted"), HEAL_S, "Wren admitted during the outage")
        _ok(await host.command("mute_all", "o2"))
        # a session nobody runs yet cannot be placed: a typed "try again in a moment"
        assert await join_refusal(late_link) == "service_unavailable"
        await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down)))
        await asyncio.to_thread(redis.start)

        # healed by itself: both nodes beat again; the room is still where it was, same token
        async def both_beat() -> bool:
            return set(await cluster.live_nodes()) == {"n1", "n2"}

        async def placed_again() -> dict[str, Any] | None:
            return (await cluster.placements()).get(s1.session_id)

        await wait_async(both_beat, HEAL_S, "both nodes in the directory again")
        after = await wait_async(placed_again, HEAL_S,
                                 "the running room placed again by its owner")
        assert (after["node_id"], after["token"]) == (owner, before["token"])
        # and a new session is placed now
        late = Member("late host", late_link, s2.clinician.participant_id)
        people.append(late)
        await late.come_back(HEAL_S)
        assert s2.session_id in await cluster.placements()
        # nobody of the running session noticed anything
        for m in (host, robin, wren):
            assert m.bot is not None and not m.bot.closed.is_set(), m.name
            assert len(m.history) == 1, m.name
            since_joined = [x.get("type") for x in m.bot.messages]
            since_joined = since_joined[since_joined.index("joined"):]
            assert not {"participant_left", "service_restarting", "redirect"} & set(
                since_joined), m.name
        _ok(await host.command("lock", "o3"))

        # --- Redis frozen past the TTL (a stalled Redis, a long slow call): every heartbeat
        # expires meanwhile; when Redis answers again, no room is taken from a live node
        placement = Placement(bus.connect(redis.url))
        marks = {m.name: len(m.bot.messages) for m in (host, robin, wren)}  # type: ignore[union-attr]
        redis.pause()
        await asyncio.sleep(STALL_S)
        redis.resume()
        await wait_async(both_beat, HEAL_S, "both nodes beating after the stall")
        # longer than a takeover would take (TTL + a sweep) once the nodes see Redis again
        await asyncio.sleep(NODE_TTL_S / 2)
        still = await placement.owner(s1.session_id)
        assert still is not None and (still.node_id, still.token) == (owner, before["token"])
        for m in (host, robin, wren):
            assert m.bot is not None and not m.bot.closed.is_set(), m.name
            noticed = [x.get("type") for x in m.bot.messages[marks[m.name]:]]
            assert not {"participant_left", "service_restarting", "redirect"} & set(
                noticed), (m.name, noticed)

        # --- the room's node frozen past the TTL: alive, its heartbeat late. The other node
        # takes the room over; the late node, running again, must not run it too
        other = next(n for n in cluster.nodes if n != owner)
        late_proc = cluster.nodes[owner].proc
        assert late_proc is not None
        late_proc.send_signal(signal.SIGSTOP)
        try:
            async def taken_over() -> bool:
                now = await placement.owner(s1.session_id)
                return now is not None and now.node_id == other

            await wait_async(taken_over, HEAL_S, "the room taken over from the stalled node")
        finally:
            late_proc.send_signal(signal.SIGCONT)
        resumed = time.monotonic()
        # the late node sends everyone to the new owner, in a typed message
        for m in (host, robin, wren):
            assert m.bot is not None
            await wait_for(m.bot.closed.is_set, HEAL_S, f"{m.name} sent on by the late node")
            assert any(x.get("type") == "redirect" for x in m.bot.messages), m.name
        for m in (host, robin, wren):
            await m.come_back(HEAL_S)
            assert node_of(m, cluster) == other, m.name
            assert (m.last("joined") or {})["participant"]["state"] == "admitted", m.name
        logger.warning("stalled node: its members were on the new owner %.2f s after it ran "
                       "again", time.monotonic() - resumed)
        # the host is in control there; the late node never took the room back
        _ok(await host.command("unlock", "o4"))
        await asyncio.sleep(1.0)
        assert (await placement.owner(s1.session_id)).node_id == other  # type: ignore[union-attr]
        await placement.redis.aclose()
        owner = other

        # the clinician ends the session through the API of the node that does not run it:
        # the end reaches the room's node over pub/sub, and everyone there is told
        other = next(n for n in cluster.nodes if n != owner)
        status, body = await api_post(cluster.nodes[other].base_url,
                                      f"/sessions/{s1.session_id}/status", {"status": "ended"},
                                      s1.clinician.username, s1.password)
        assert status == 200 and body["session"]["status"] == "ended", body
        for m in (host, robin, wren):
            await wait_for(lambda m=m: m.last("ended"), HEAL_S, f"{m.name} told of the end")
    finally:
        for m in people:
            await m.close()
        cluster.stop()
        redis.stop()
