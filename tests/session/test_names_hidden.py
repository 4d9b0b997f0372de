"""The names-hidden rule through the real socket: members know each other only as "Member N"
(stable for the session, also across a reconnect), join and leave notices and chat follow the
rule, and the host still sees pseudonyms."""

from __future__ import annotations

import json
from typing import Any

from session_rules.checklists import GROUP_AGREEMENT
from tests.support.live_session import LiveSession, live_session
from tests.support.wire_client import WireClient

PSEUDONYMS = ("Robin", "Wren", "Kit")


INVITE_RESUME: dict[str, str] = {}


async def _member(live: LiveSession, host: WireClient, pseudonym: str) -> WireClient:
    member = live.client(pseudonym)
    redeemed = await live.redeem(pseudonym)
    INVITE_RESUME[pseudonym] = redeemed["resume"]
    joined = await member.join(redeemed["grant"])
    assert joined["type"] == "joined", joined
    reply = await member.command("confirm_checklist", answers=[i.id for i in GROUP_AGREEMENT])
    assert reply["type"] == "ok", reply
    assert member.me is not None
    reply = await host.command("admit", target=member.me["id"])
    assert reply["type"] == "ok", reply
    await member.wait_for(lambda m: m.get("type") == "admitted")
    return member


def _names_seen(messages: list[dict[str, Any]]) -> dict[str, set[str]]:
    """participant id → every display name a socket was given for them."""
    seen: dict[str, set[str]] = {}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            whose = value.get("id") or value.get("from")
            if isinstance(whose, str) and "display_name" in value:
                seen.setdefault(whose, set()).add(value["display_name"])
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(messages)
    return seen


async def _session(
    server: Any, *, names_hidden: bool
) -> tuple[LiveSession, WireClient, dict[str, WireClient]]:
    live = await live_session(server, rules={"names_hidden": names_hidden})
    host = live.client("host")
    joined = await host.join(await live.host_grant())
    assert joined["type"] == "joined", joined
    members = {name: await _member(live, host, name) for name in PSEUDONYMS}
    # a chat message, a leave and a return: the notices a member gets
    await members["Kit"].command("chat", to="all", text="hello everyone")
    wren_id = members["Wren"].me["id"]  # type: ignore[index]
    resume = members["Wren"].resume
    await members["Wren"].drop()
    await members["Robin"].wait_for(
        lambda m: (
            m.get("type") == "participant_left"
            or (m.get("type") == "participant_updated" and m["participant"]["id"] == wren_id)
        )
    )
    status, fresh = await live.resume(INVITE_RESUME["Wren"])
    assert status == 200, fresh
    back = live.client("Wren again")
    mark = len(members["Robin"].messages)
    rejoined = await back.join(fresh["grant"], resume=resume)
    assert rejoined["type"] == "joined", rejoined
    members["Wren"] = back
    await members["Robin"].wait_for(
        lambda m: (
            m.get("type") in ("participant_joined", "participant_updated")
            and m["participant"]["id"] == wren_id
            and m["participant"]["state"] == "admitted"
        ),
        start=mark,
    )
    for c in (host, *members.values()):
        await c.sync()
    return live, host, members


async def test_no_pseudonym_reaches_a_member_when_names_are_hidden(server: Any) -> None:
    live, host, members = await _session(server, names_hidden=True)
    try:
        for name, client in members.items():
            raw = json.dumps(client.messages)
            for pseudonym in PSEUDONYMS:
                assert pseudonym not in raw, (name, pseudonym)
            for real in live.session.real_names.values():
                assert real not in raw, (name, real)
        # each member has one stand-in name for the whole session, the same for everyone
        seen = [_names_seen(c.messages) for c in members.values()]
        ids = {n: live.session.participant_ids[n] for n in PSEUDONYMS}
        for name, pid in ids.items():
            given = set().union(*(s.get(pid, set()) for s in seen))
            assert len(given) == 1 and given.pop().startswith("Member "), (name, given)
        # the chat arrived, named by the stand-in
        chat = next(m for m in members["Robin"].messages if m.get("type") == "chat")
        assert chat["text"] == "hello everyone" and chat["display_name"].startswith("Member ")
        # the host sees pseudonyms
        host_seen = _names_seen(host.messages)
        for name, pid in ids.items():
            assert host_seen[pid] == {name}, (name, host_seen[pid])
    finally:
        await live.aclose()


async def test_members_see_pseudonyms_when_the_rule_is_off(server: Any) -> None:
    live, _host, members = await _session(server, names_hidden=False)
    try:
        seen = _names_seen(members["Robin"].messages)
        assert seen[live.session.participant_ids["Kit"]] == {"Kit"}
    finally:
        await live.aclose()
