"""Session rules enforced through the real signaling socket: denials reach only the sender."""

from __future__ import annotations

import asyncio
from typing import Any

from confidentiality.profiles import Profile
from session_rules.rules import GroupRules
from sfu.room import Room
from web import keys
from web.bot import Bot, ColorTrack, ToneTrack
from web.session_control import SessionController


async def _wait_for(predicate, timeout_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def _reply(bot: Bot, msg: dict[str, Any], ref: str) -> dict[str, Any]:
    await bot.send({**msg, "id": ref})
    await _wait_for(lambda: any(m.get("ref") == ref for m in bot.messages), 10)
    return next(m for m in bot.messages if m.get("ref") == ref)


def _lobby_room(server, room_id: str) -> Room:  # type: ignore[no-untyped-def]
    """A room whose rules hold members in the lobby (as a scheduled session's would)."""
    registry = server.app[keys.ROOMS]
    room = Room(room_id, transform_factory=registry.transform_factory,
                media_workers=registry.media_workers)
    rules = GroupRules(lobby_required=True, allowed_profiles=frozenset(Profile),
                       minimum_profile=Profile.NONE, unmute_policy="host_only")
    room.controller = SessionController(room, rules, skip_agreement=True)
    registry.rooms[room_id] = room
    return room


async def test_member_cannot_use_host_commands_and_nobody_else_notices(server) -> None:  # type: ignore[no-untyped-def]
    host = Bot(server.link("g", "Clinician", role="host"), video=ColorTrack("red"), audio=ToneTrack())
    member = Bot(server.link("g", "Robin"), video=ColorTrack("green"), audio=ToneTrack())
    other = Bot(server.link("g", "Ash"), video=ColorTrack("blue"), audio=ToneTrack())
    for bot in (host, member, other):
        await bot.connect()
    try:
        await _wait_for(lambda: other.peers.get(host.me["id"]) is not None
                        and other.peers[host.me["id"]].video_frames > 3)
        for i, name in enumerate(("remove", "mute_all", "lock", "end", "admit_all")):
            msg: dict[str, Any] = {"type": "command", "name": name}
            if name == "remove":
                msg["target"] = other.me["id"]
            reply = await _reply(member, msg, f"h{i}")
            assert reply["type"] == "error" and reply["code"] == "host_only", reply
        # a forged sender field is refused outright; the sender is always the socket's owner
        reply = await _reply(member, {"type": "command", "name": "mute", "from": host.me["id"]},
                             "forged")
        assert reply["code"] == "invalid_command"
        # a target from another room (or made up) is unknown here
        reply = await _reply(host, {"type": "command", "name": "remove", "target": "p_elsewhere"},
                             "elsewhere")
        assert reply["code"] == "unknown_target"
        # the room went on: the other member still receives the host's video, nobody left
        before = other.peers[host.me["id"]].video_frames
        await _wait_for(lambda: other.peers[host.me["id"]].video_frames > before + 5)
        assert set(other.participants) == {host.me["id"], member.me["id"]}
        assert not other.errors
    finally:
        for bot in (host, member, other):
            await bot.leave()


async def test_chat_is_plain_text_and_floods_are_refused(server) -> None:  # type: ignore[no-untyped-def]
    a = Bot(server.link("c", "Robin"), publish=False)
    b = Bot(server.link("c", "Ash"), publish=False)
    await a.connect()
    await b.connect()
    try:
        text = '<img src=x onerror="alert(1)"><script>alert(2)</script> hello'
        reply = await _reply(a, {"type": "command", "name": "chat", "to": "all", "text": text}, "c1")
        assert reply["type"] == "ok"
        await _wait_for(lambda: any(m.get("type") == "chat" for m in b.messages))
        chat = next(m for m in b.messages if m.get("type") == "chat")
        # delivered as the literal text it was (the client renders it with textContent)
        assert chat["text"] == text and chat["display_name"] == "Robin"
        codes = []
        for i in range(12):
            r = await _reply(a, {"type": "command", "name": "chat", "to": "all", "text": f"m{i}"},
                             f"f{i}")
            codes.append(r.get("code") or r["type"])
        assert "chat_rate_limited" in codes
        assert codes.count("ok") < 12
    finally:
        await a.leave()
        await b.leave()


async def test_lobby_holds_media_and_commands_end_with_the_session(server) -> None:  # type: ignore[no-untyped-def]
    room = _lobby_room(server, "lob")
    host = Bot(server.link("lob", "Clinician", role="host"), video=ColorTrack("red"),
               audio=ToneTrack())
    member = Bot(server.link("lob", "Robin"), video=ColorTrack("green"), audio=ToneTrack())
    await host.connect()
    await member.connect()
    try:
        assert member.state == "lobby"
        # a media offer before admission is refused, and nothing of the member reaches the host
        await member.start_publishing()
        await _wait_for(lambda: any(e.get("code") == "not_admitted" for e in member.errors))
        assert member.me["id"] not in host.peers
        await _wait_for(lambda: any(m.get("type") == "lobby" and m["waiting"]
                                    for m in host.messages))
        reply = await _reply(host, {"type": "command", "name": "admit",
                                    "target": member.me["id"]}, "a1")
        assert reply["type"] == "ok"
        await member.wait_admitted()
        await _wait_for(lambda: member.me["id"] in host.peers
                        and host.peers[member.me["id"]].video_frames > 3)
        # host-only unmute: muted on entry, unmuting needs a raised hand and the host's consent
        reply = await _reply(member, {"type": "command", "name": "unmute"}, "u1")
        assert reply["code"] == "raise_hand_to_speak"
        assert (await _reply(member, {"type": "command", "name": "raise_hand"}, "r1"))["type"] == "ok"
        await _wait_for(lambda: any(m.get("kind") == "hand_raised" for m in host.messages))
        await _reply(host, {"type": "command", "name": "allow_unmute",
                            "target": member.me["id"]}, "a2")
        assert (await _reply(member, {"type": "command", "name": "unmute"}, "u2"))["type"] == "ok"
        # the host ends the session: everyone is told, and the room accepts nothing more
        await _reply(host, {"type": "command", "name": "end"}, "end")
        await _wait_for(lambda: any(m.get("type") == "ended" for m in member.messages))
        assert room.closed
        late = Bot(server.link("lob", "Wren"), publish=False)
        try:
            await late.connect(timeout_s=3)
        except TimeoutError:
            pass
        await _wait_for(lambda: late.closed.is_set(), 5)
        assert any(e.get("code") == "session_ended" for e in late.errors), late.messages
        await late.close()
    finally:
        await host.leave()
        await member.leave()
