"""Placement through a real Redis: one owner per room whoever races, tokens that only grow
(even after Redis forgets), a store that refuses the owner the placement moved on from, and
the sizing rule's choice of node, and no takeover while Redis has only just answered again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from confidentiality.profiles import Profile
from session_rules.rules import GroupRules
from session_rules.snapshot import SessionRecord
from tests.support.live import wait_async
from tests.support.servers import RedisServer
from web.cluster import bus
from web.cluster.models import NodeInfo
from web.cluster.node import ClusterNode
from web.cluster.nodes import NODE_TTL_S, NodeDirectory
from web.cluster.placement import Placement
from web.cluster.sizing import choose, expected_cost, load_of
from web.live.registry import LiveRoomRegistry
from web.store import Store, live_state, open_store
from web.store.live_state import Fenced, RoomSnapshot, StaleToken

DATA_KEY = "test-data-key-0123456789abcdef"


@pytest.fixture
async def placement(redis_server: RedisServer) -> AsyncIterator[Placement]:
    redis = bus.connect(redis_server.url)
    await redis.flushdb()
    yield Placement(redis)
    await redis.aclose()


def _node(node_id: str, *, cores: int = 2, load: float = 0.0, rooms: int = 0,
          draining: bool = False) -> NodeInfo:
    return NodeInfo(node_id=node_id, url=f"http://{node_id}", cores=cores, publishers={},
                    load_cores=load, cpu_cores=0.0, rooms=[f"r{i}" for i in range(rooms)],
                    draining=draining, heartbeat_at=time.time())


async def test_racing_nodes_place_a_room_once(placement: Placement) -> None:
    got = await asyncio.gather(*(placement.claim_new("s_a", "s_a", f"n{i}", 0.5)
                                 for i in range(6)))
    assert len({(r.node_id, r.token) for r in got}) == 1
    assert [r.room_id for r in await placement.rooms()] == ["s_a"]


async def test_racing_takeovers_have_one_winner_and_tokens_only_grow(
    placement: Placement,
) -> None:
    first = await placement.claim_new("s_a", "s_a", "n1", 0.5)
    moved = await asyncio.gather(*(placement.move(first, f"n{i}") for i in (2, 3, 4)))
    # whoever asked, everyone sees the one winner's record
    assert len({(r.node_id, r.token) for r in moved}) == 1
    winner = moved[0]
    assert winner.node_id in ("n2", "n3", "n4") and winner.token > first.token
    # a move from a record already moved on from changes nothing
    again = await placement.move(first, "n5")
    assert (again.node_id, again.token) == (winner.node_id, winner.token)


async def test_a_token_stays_above_the_store_after_redis_forgets(placement: Placement) -> None:
    record = await placement.claim_new("s_a", "s_a", "n1", 0.5)
    await placement.redis.flushdb()  # Redis restarted empty
    later = await placement.claim_new("s_a", "s_a", "n2", 0.5, floor=record.token + 4)
    assert later.token == record.token + 5
    # the owner that still runs it says so again: its token, and the counter past it
    await placement.redis.flushdb()
    assert await placement.reassert(later) is True
    assert (await placement.owner("s_a")) == later
    assert (await placement.claim_new("s_b", "s_b", "n1", 0.1)).token == 1
    assert int(str(await placement.redis.get(bus.token_key("s_a")))) > later.token


async def test_the_store_refuses_the_owner_the_placement_moved_on_from(
    placement: Placement, tmp_path: Path,
) -> None:
    store: Store = open_store(f"sqlite:///{tmp_path / 'db.sqlite3'}", DATA_KEY)
    try:
        fresh = SessionRecord(GroupRules(), 1_796_000_000.0, False, False, False)
        a = await placement.claim_new("s_a", "s_a", "n1", 0.5)
        epoch, _ = store.call(live_state.claim_room, "s_a", "s_a", "n1", fresh=fresh,
                              now=1.0, token=a.token)
        assert epoch == a.token
        snap = RoomSnapshot("s_a", "s_a", fresh, [], {}, alive_at=2.0)
        store.call(live_state.save_room, snap, epoch=a.token)
        # n1 stops beating; n2 is given the room and takes it over in the store
        b = await placement.move(a, "n2")
        store.call(live_state.claim_room, "s_a", "s_a", "n2", fresh=fresh, now=3.0,
                   token=b.token)
        # n1, not knowing yet, writes: refused, whatever it writes
        with pytest.raises(Fenced):
            store.call(live_state.save_room, snap, epoch=a.token)
        # nor can it take the room back under its old token
        with pytest.raises(StaleToken) as stale:
            store.call(live_state.claim_room, "s_a", "s_a", "n1", fresh=fresh, now=4.0,
                       token=a.token)
        assert stale.value.stored_epoch == b.token
        store.call(live_state.save_room, snap, epoch=b.token)
    finally:
        store.dispose()


async def test_heartbeats_expire_with_their_node(redis_server: RedisServer) -> None:
    redis = bus.connect(redis_server.url)
    try:
        await redis.flushdb()
        directory = NodeDirectory(redis, ttl_s=0.3)
        await directory.publish(_node("n1"))
        await directory.publish(_node("n2"))
        assert set(await directory.live_nodes()) == {"n1", "n2"}
        await asyncio.sleep(0.5)
        await directory.publish(_node("n2"))
        assert set(await directory.live_nodes()) == {"n2"}
    finally:
        await redis.aclose()


def test_the_node_with_most_headroom_is_chosen_never_a_draining_one() -> None:
    # a full blurred group of 12 and its clinician, as measured: ~1.4 cores
    assert expected_cost(13, Profile.BLUR) == pytest.approx(1.43)
    assert load_of({"blur": 12, "none": 1, "unknown": 3}) == pytest.approx(1.355)
    busy, idle, big = _node("n1", load=1.5), _node("n2"), _node("n3", cores=8, load=6.5)
    assert choose([busy, idle, big], {}).node_id == "n2"  # type: ignore[union-attr]
    # rooms placed but not yet full count at their expected cost
    assert choose([busy, idle, big], {"n2": 1.9}).node_id == "n3"  # type: ignore[union-attr]
    assert choose([_node("n0", draining=True), busy], {}).node_id == "n1"  # type: ignore[union-attr]
    assert choose([_node("n1", draining=True)], {}) is None
    # a tie goes to the node with fewer rooms, then the smaller id, on every node alike
    assert choose([_node("n2"), _node("n1", rooms=1), _node("n3")], {}).node_id == "n2"  # type: ignore[union-attr]


async def test_no_room_is_taken_over_until_redis_has_answered_for_a_ttl(
    redis_server: RedisServer, tmp_path: Path,
) -> None:
    """Redis stalled (every heartbeat may have expired meanwhile): a node seeing it again does
    not take a room whose node is not in the directory until every live node has had one TTL
    to beat again; then it does (the room's node really is gone)."""
    client = bus.connect(redis_server.url)
    store: Store = open_store(f"sqlite:///{tmp_path / 'db.sqlite3'}", DATA_KEY)

    async def cost_of(session_id: str) -> float:
        return 0.5

    async def end_session(session_id: str) -> None:
        return None

    node = ClusterNode(bus.connect(redis_server.url), node_id="n1", url="http://n1",
                       registry=LiveRoomRegistry(), store=store, cost_of=cost_of,
                       end_session=end_session)
    placement = Placement(client)
    try:
        await client.flushdb()
        await node.start()
        # Redis stalls for longer than a call may take: the node's calls time out
        await client.execute_command("CLIENT", "PAUSE", int((bus.REDIS_TIMEOUT_S + 1.0) * 1000),
                                     "ALL")
        await asyncio.sleep(bus.REDIS_TIMEOUT_S + 1.2)
        # it answers again: a room whose node (n2) is not in the directory
        orphan = await placement.claim_new("s_a", "s_a", "n2", 0.5)
        came_back = time.monotonic()
        # every live node beats within a TTL of Redis answering: until then, nothing moves
        while time.monotonic() - came_back < NODE_TTL_S - 1.0:
            now = await placement.owner("s_a")
            assert now is not None and (now.node_id, now.token) == ("n2", orphan.token)
            await asyncio.sleep(0.1)
        assert node.available

        async def taken() -> bool:
            now = await placement.owner("s_a")
            return now is None or now.node_id == "n1"

        await wait_async(taken, NODE_TTL_S + 5.0, "the dead node's room taken over")
    finally:
        await node.aclose()
        await client.aclose()
        store.dispose()
