"""The host never loses control: each way it was lost, tried through the real socket and API."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.live_session import LiveSession, live_session
from tests.support.wire_client import WireClient


async def _admitted_member(live: LiveSession, host: WireClient, pseudonym: str) -> WireClient:
    grant = (await live.redeem(pseudonym))["grant"]
    member = live.client(pseudonym)
    joined = await member.join(grant)
    assert joined["type"] == "joined", joined
    from session_rules.checklists import GROUP_AGREEMENT

    reply = await member.command("confirm_checklist", answers=[i.id for i in GROUP_AGREEMENT])
    assert reply["type"] == "ok", reply
    assert member.me is not None
    reply = await host.command("admit", target=member.me["id"])
    assert reply["type"] == "ok", reply
    await member.wait_for(lambda m: m.get("type") == "admitted")
    return member


async def _host(live: LiveSession) -> WireClient:
    host = live.client("host")
    joined = await host.join(await live.host_grant())
    assert joined["type"] == "joined" and joined["participant"]["state"] == "admitted", joined
    return host


async def test_a_member_cannot_leave_the_rules_and_stay_in_the_room(live: LiveSession) -> None:
    host = await _host(live)
    member = await _admitted_member(live, host, "Robin")
    assert member.me is not None
    pid = member.me["id"]
    # "leave" and "publish_media" are not commands a client can send
    for name, fields in (("leave", {}), ("publish_media", {"media": "video"})):
        reply = await member.command(name, **fields)
        assert reply["type"] == "error" and reply["code"] == "invalid_command", reply
        assert reply["field"] == "name"
    assert live.controller is not None
    assert live.controller.state.participants[pid].state.value == "admitted"
    assert live.disagreements() == []
    # every host command still reaches them
    for name in ("mute", "stop_video"):
        reply = await host.command(name, target=pid)
        assert reply["type"] == "ok", reply
    reply = await host.command("enforce_profile", target=pid, profile="avatar")
    assert reply["type"] == "ok", reply
    assert (await host.command("mute_all"))["type"] == "ok"
    assert live.room is not None and live.room.participants[pid].held == {
        "audio": True, "video": True}
    reply = await host.command("remove", target=pid)
    assert reply["type"] == "ok", reply
    await member.wait_for(lambda m: m.get("type") == "removed")
    await asyncio.wait_for(member.closed.wait(), 5)
    assert pid not in live.room.participants
    assert live.disagreements() == []


async def test_the_leave_message_is_the_one_way_out(live: LiveSession) -> None:
    host = await _host(live)
    member = await _admitted_member(live, host, "Robin")
    assert member.me is not None and live.room is not None
    pid = member.me["id"]
    await member.leave()
    await host.wait_for(lambda m: m.get("type") == "participant_left"
                        and m.get("participant_id") == pid)
    await host.sync()
    assert pid not in live.room.participants
    assert live.controller is not None
    assert live.controller.state.participants[pid].state.value == "left"
    assert live.disagreements() == []


@pytest.mark.parametrize("away_s", [5.0, 31.0, 3600.0])
async def test_a_host_who_was_away_comes_back_in_control(live: LiveSession, away_s: float) -> None:
    host = await _host(live)
    member = await _admitted_member(live, host, "Robin")
    assert member.me is not None
    await host.drop()
    await member.wait_for(lambda m: m.get("type") == "participant_left")
    live.clock.advance(away_s)
    # back with a fresh grant from the clinician's page (the old one is single-use)
    host = await _host(live)
    for name, fields in (("lock", {}), ("mute", {"target": member.me["id"]}),
                         ("mute_all", {})):
        reply = await host.command(name, **fields)
        assert reply["type"] == "ok", (name, reply)
    assert live.disagreements() == []
    reply = await host.command("end")
    assert reply["type"] == "ok", reply
    await member.wait_for(lambda m: m.get("type") == "ended")


async def test_a_host_back_with_the_same_grant_within_the_grace(live: LiveSession) -> None:
    grant = await live.host_grant()
    host = live.client("host")
    assert (await host.join(grant))["type"] == "joined"
    resume = host.resume
    await host.drop()
    await asyncio.sleep(0.2)
    again = live.client("host again")
    joined = await again.join(grant, resume=resume)
    assert joined["type"] == "joined" and joined["participant"]["state"] == "admitted", joined
    assert (await again.command("lock"))["type"] == "ok"


async def test_a_host_whose_old_connection_lingers_takes_over(live: LiveSession) -> None:
    host = await _host(live)
    member = await _admitted_member(live, host, "Robin")
    assert member.me is not None
    # the first window is still connected (e.g. a network change not yet noticed)
    second = await _host(live)
    await host.wait_for(lambda m: m.get("type") == "replaced")
    await asyncio.wait_for(host.closed.wait(), 5)
    reply = await second.command("remove", target=member.me["id"])
    assert reply["type"] == "ok", reply
    await second.sync()
    assert live.disagreements() == []


async def test_ending_through_the_api_ends_the_live_room(live: LiveSession) -> None:
    host = await _host(live)
    member = await _admitted_member(live, host, "Robin")
    waiting = live.client("Wren")
    assert (await waiting.join((await live.redeem("Wren"))["grant"]))["type"] == "joined"
    # grants minted before the end, never used
    early_member = (await live.redeem("Kit"))["grant"]
    early_host = await live.host_grant()
    status, body = await live.end_through_api()
    assert status == 200 and body["session"]["status"] == "ended", body
    for who in (host, member, waiting):
        ended = await who.wait_for(lambda m: m.get("type") == "ended")
        assert "ended" in ended["message"]
        await asyncio.wait_for(who.closed.wait(), 5)
    for grant in (early_member, early_host):
        late = live.client("late")
        refused = await late.join(grant)
        assert refused["type"] == "error" and refused["code"] == "session_ended", refused
        assert late.close_code == 1008


async def test_an_ended_session_admits_nobody_once_its_room_is_gone(server: Any) -> None:
    live = await live_session(server)
    try:
        grant = (await live.redeem("Robin"))["grant"]
        status, _ = await live.end_through_api()
        assert status == 200
        # no room was ever opened on this node (or it was forgotten): the store still says
        late = live.client("late")
        refused = await late.join(grant)
        assert refused["type"] == "error" and refused["code"] == "session_ended", refused
    finally:
        await live.aclose()


async def test_a_full_room_refuses_before_the_rules_change(server: Any) -> None:
    members = tuple((f"Member Number{i}", f"Name{chr(65 + i)}") for i in range(8))
    live = await live_session(server, rules={"max_participants": 2}, members=members)
    try:
        host = await _host(live)
        # two places in the room, four more may wait: six members connected at most
        clients = []
        for _real, pseudonym in members[:6]:
            c = live.client(pseudonym)
            assert (await c.join((await live.redeem(pseudonym))["grant"]))["type"] == "joined"
            clients.append(c)
        seventh = (await live.redeem(members[6][1]))
        refused = await live.client("7").join(seventh["grant"])
        assert refused["type"] == "error" and refused["code"] == "room_full", refused
        assert live.disagreements() == []
        # when someone goes, the same member gets in: never "already_connected"
        await clients[0].leave()
        await host.sync()
        status, fresh = await live.resume(seventh["resume"])
        assert status == 200, fresh
        joined = await live.client("7 again").join(fresh["grant"])
        assert joined["type"] == "joined", joined
        assert live.disagreements() == []
        # the host is never refused for a full room
        await host.drop()
        back = await _host(live)
        assert (await back.command("lock"))["type"] == "ok"
    finally:
        await live.aclose()


async def test_a_room_that_refuses_after_the_rules_agreed_is_rolled_back(
    live: LiveSession,
) -> None:
    host = await _host(live)
    assert live.room is not None
    offer = await live.redeem("Robin")
    # the room's own cap is hit (as with more hosts than it takes): it refuses the join
    cap = live.room.policy.max_participants
    live.room.policy.max_participants = 1
    refused = await live.client("Robin").join(offer["grant"])
    assert refused["type"] == "error" and refused["code"] == "room_full", refused
    assert live.disagreements() == []
    live.room.policy.max_participants = cap
    status, fresh = await live.resume(offer["resume"])
    assert status == 200
    joined = await live.client("Robin again").join(fresh["grant"])
    assert joined["type"] == "joined", joined
    await host.sync()
    assert live.disagreements() == []


async def test_forged_commands_change_nothing(live: LiveSession) -> None:
    host = await _host(live)
    member = await _admitted_member(live, host, "Robin")
    other = await _admitted_member(live, host, "Wren")
    assert member.me is not None and other.me is not None and host.me is not None
    forged: list[tuple[dict[str, Any], str]] = [
        ({"name": "remove", "target": other.me["id"]}, "host_only"),
        ({"name": "mute", "target": host.me["id"]}, "host_only"),
        ({"name": "end"}, "host_only"),
        ({"name": "mute", "from": host.me["id"]}, "invalid_command"),
        ({"name": "admit", "target": {"id": other.me["id"]}}, "invalid_command"),
        ({"name": "set_own_profile", "profile": 3}, "invalid_command"),
    ]
    for fields, code in forged:
        reply = await member.command(**fields)
        assert reply["type"] == "error" and reply["code"] == code, (fields, reply)
    reply = await host.command("remove", target="p_made_up")
    assert reply["code"] == "unknown_target"
    reply = await host.command("remove", target=host.me["id"])
    assert reply["code"] == "target_is_host"
    assert live.disagreements() == []
    assert live.room is not None and len(live.room.admitted()) == 3
