"""Three `confide serve` nodes as one service (real PostgreSQL, real Redis, real processes,
bots for members): rooms are spread by headroom, joins reach the room's node through any
node, a node killed with SIGKILL costs its group a few seconds and nobody else anything, and
a node stopped with SIGTERM alone, or drained through `confide nodes drain`, hands its rooms
over at once and exits."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any

import pytest

from tests.support.cluster import Cluster, admin_get, node_of
from tests.support.live import (
    Member,
    agree,
    host_link,
    member_of,
    redeem,
    wait_async,
    wait_for,
)
from tests.support.servers import PostgresServer, RedisServer
from tests.support.session import OpenSession
from web.cluster import bus
from web.cluster.nodes import NodeDirectory
from web.store import accounts

logger = logging.getLogger(__name__)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PASSWORD = "a long enough password"
# the promise: a dead node's members are back on the new node within this long
FAILOVER_S = 15.0
# and a drained node's members within this long
DRAIN_S = 10.0


def _ok(reply: dict[str, Any]) -> dict[str, Any]:
    assert reply["type"] == "ok", reply
    return reply


class Group:
    """One session on the service: its host, an admitted member and one waiting."""

    def __init__(self, s: OpenSession, host: Member, admitted: Member, waiting: Member) -> None:
        self.s = s
        self.host = host
        self.admitted = admitted
        self.waiting = waiting
        # where the waiting member is to be found after a move (the host may admit them)
        self.waiting_state = "lobby"

    @property
    def people(self) -> list[Member]:
        return [self.host, self.admitted, self.waiting]

    async def close(self) -> None:
        for m in self.people:
            await m.close()


async def _group(cluster: Cluster, username: str) -> Group:
    s, _store = cluster.session("n3", username)
    host = Member("host", host_link(s, cluster.nodes["n3"]), s.clinician.participant_id)
    await host.connect()
    robin, wren = await member_of(s, "Robin"), await member_of(s, "Wren")
    await agree(robin)
    await agree(wren)
    _ok(await host.command("admit", "a1", target=robin.participant_id))
    await wait_for(lambda: robin.last("admitted"), 10, "Robin admitted")
    return Group(s, host, robin, wren)


async def _back_in_place(g: Group, started: float) -> float:
    """Everyone of the group comes back as the page does; returns the last one's time."""
    for m in g.people:
        bot = m.bot
        assert bot is not None
        await wait_for(bot.closed.is_set, FAILOVER_S, f"{m.name}'s socket closed")
    back = [await m.come_back(FAILOVER_S + 15) for m in g.people]
    # the same state: Robin admitted, Wren still waiting, the host in the room and in control
    assert (g.admitted.last("joined") or {})["participant"]["state"] == "admitted"
    assert (g.waiting.last("joined") or {})["participant"]["state"] == g.waiting_state
    if g.waiting_state == "lobby":
        ss = await wait_for(lambda: g.waiting.last("self_state"), 10, "Wren's state")
        assert ss["lobby_state"] == "waiting"
    assert (g.host.last("joined") or {})["participant"]["state"] == "admitted"
    return max(back) - started


async def _beats(directory: NodeDirectory, node_id: str) -> bool:
    return node_id in await directory.live_nodes()


async def _draining_or_gone(directory: NodeDirectory, node_id: str) -> str | None:
    node = (await directory.live_nodes()).get(node_id)
    if node is None:
        return "gone"
    return "draining" if node.draining else None


def _undisturbed(g: Group, marks: dict[str, int]) -> None:
    """Nobody of another group noticed: same sockets, no departure, no move."""
    for m in g.people:
        assert m.bot is not None and not m.bot.closed.is_set(), m.name
        since = m.bot.messages[marks[m.name]:]
        noticed = [x["type"] for x in since if x.get("type") in (
            "participant_left", "service_restarting", "redirect", "joined", "sent_to_lobby")]
        assert not noticed, (m.name, noticed)


async def test_three_nodes_place_fail_over_and_drain(
    tmp_path: Any, postgres_server: PostgresServer, redis_server: RedisServer,
) -> None:
    cluster = Cluster(tmp_path, database_url=postgres_server.create_database(),
                      redis_url=redis_server.url)
    groups: list[Group] = []
    try:
        await cluster.start()
        assert set(await cluster.live_nodes()) == {"n1", "n2", "n3"}
        # three sessions, every link on n3: each room goes to the node with most headroom
        for username in ("dr.hale", "dr.moss", "dr.reid"):
            groups.append(await _group(cluster, username))
        placed = await cluster.placements()
        owners = {g.s.session_id: placed[g.s.session_id]["node_id"] for g in groups}
        assert sorted(owners.values()) == ["n1", "n2", "n3"], owners
        for g in groups:
            for m in g.people:
                # joined through n3, running on the room's own node
                assert node_of(m, cluster) == owners[g.s.session_id], (m.name, owners)
        # a grant answer names the room's node
        kit = await redeem(groups[0].s, "Kit")
        assert kit["node_id"] == owners[groups[0].s.session_id]
        assert kit["node_url"] == cluster.nodes[kit["node_id"]].base_url
        # the administrators' view: every node, its load and its rooms
        groups[0].s.store.call(accounts.create_user, username="ops", role="admin",
                               password=PASSWORD)
        status, body = await admin_get(cluster.nodes["n2"].base_url, "/nodes", "ops", PASSWORD)
        assert status == 200 and body["clustered"] is True, body
        listed = {n["node"]["node_id"]: [r["room_id"] for r in n["rooms"]] for n in body["nodes"]}
        assert listed == {owner: [sid] for sid, owner in owners.items()}, listed

        # --- failover: SIGKILL the node running the first group
        first, others = groups[0], groups[1:]
        victim = owners[first.s.session_id]
        assert victim != "n3"
        marks = {f"{i}:{m.name}": len(m.bot.messages) for i, g in enumerate(others)  # type: ignore[union-attr]
                 for m in g.people}
        killed = time.monotonic()
        cluster.nodes[victim].kill(signal.SIGKILL)
        took = await _back_in_place(first, killed)
        logger.warning("failover: the killed node's group was back in %.2f s", took)
        assert took <= FAILOVER_S, took
        moved_to = (await cluster.placements())[first.s.session_id]["node_id"]
        assert moved_to != victim and all(node_of(m, cluster) == moved_to for m in first.people)
        # the host is in control on the new node
        _ok(await first.host.command("admit", "f1", target=first.waiting.participant_id))
        await wait_for(lambda: first.waiting.last("admitted"), 10, "Wren admitted after move")
        first.waiting_state = "admitted"
        for i, g in enumerate(others):
            _undisturbed(g, {m.name: marks[f"{i}:{m.name}"] for m in g.people})
        # the killed node comes back, empty: the node with most headroom from now on
        await cluster.nodes[victim].start()

        # --- SIGTERM alone (as `systemctl stop` sends it): the second group's node says it
        # is draining, hands its rooms over at once, and exits 0
        second, third = groups[1], groups[2]
        draining = owners[second.s.session_id]
        placed = await cluster.placements()
        moving = [g for g in groups if placed[g.s.session_id]["node_id"] == draining]
        staying = [g for g in groups if g not in moving]
        assert second in moving and third in staying
        marks = {f"{i}:{m.name}": len(m.bot.messages) for i, g in enumerate(staying)  # type: ignore[union-attr]
                 for m in g.people}
        directory = NodeDirectory(bus.connect(cluster.redis_url))
        proc = cluster.nodes[draining].proc
        assert proc is not None
        await wait_async(lambda: _beats(directory, victim), 20, "the restarted node beating")
        terminated = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        # nothing more is placed there: it says so before it moves anything
        seen = await wait_async(lambda: _draining_or_gone(directory, draining), 10,
                                "the node draining")
        assert seen == "draining", seen
        for g in moving:
            took = await _back_in_place(g, terminated)
            logger.warning("SIGTERM: the stopped node's group back in %.2f s", took)
            assert took <= DRAIN_S, took
            _ok(await g.host.command("mute_all", f"t{g.s.session_id}"))
        assert await asyncio.to_thread(proc.wait, 20) == 0
        placed = await cluster.placements()
        assert all(placed[g.s.session_id]["node_id"] not in (draining, None) for g in moving)
        assert all(node_of(m, cluster) == placed[g.s.session_id]["node_id"]
                   for g in moving for m in g.people)
        assert draining not in await directory.live_nodes()
        for i, g in enumerate(staying):
            _undisturbed(g, {m.name: marks[f"{i}:{m.name}"] for m in g.people})
        # stopped members were told where to go, in a typed message
        assert any(x.get("type") == "redirect" for b in second.admitted.history[:-1]
                   for x in b.messages)

        # --- `confide nodes drain`: the restarted node hands the second group on to n3
        draining = placed[second.s.session_id]["node_id"]
        assert draining != "n3"
        drained = time.monotonic()
        code, out = await cluster.nodes_cli("drain", draining)
        assert code == 0, out
        took = await _back_in_place(second, drained)
        logger.warning("drain: the drained node's group was back in %.2f s", took)
        proc = cluster.nodes[draining].proc
        assert proc is not None and await asyncio.to_thread(proc.wait, 20) == 0
        assert set(await cluster.live_nodes()) == {"n3"}
        assert {r["node_id"] for r in (await cluster.placements()).values()} == {"n3"}
        await directory.redis.aclose()
    finally:
        for g in groups:
            await g.close()
        cluster.stop()
