"""The low-data switch over the real socket: a group whose default is sound only starts its
members with others' video off; a member turns it on and off with a typed message, and a bad
message is refused with a typed error."""

from __future__ import annotations

from typing import Any

from session_rules.checklists import GROUP_AGREEMENT
from sfu.incoming_video import wants_video
from tests.support.live_session import live_session


async def test_sound_only_by_default_and_the_members_own_switch(server: Any) -> None:
    live = await live_session(server, rules={"audio_only_default": True})
    try:
        host = live.client("host")
        assert (await host.join(await live.host_grant()))["type"] == "joined"
        member = live.client("Robin")
        assert (await member.join((await live.redeem("Robin"))["grant"]))["type"] == "joined"
        told = await member.wait_for(lambda m: m.get("type") == "incoming_video")
        assert told["enabled"] is False
        assert live.room is not None and member.me is not None
        me = live.room.participants[member.me["id"]]
        assert not wants_video(me)
        # the host's own view is not changed by the group's default
        assert host.of_type("incoming_video") == []
        assert wants_video(live.room.participants[host.me["id"]])  # type: ignore[index]

        reply = await member.request({"type": "incoming_video", "enabled": True})
        assert reply == {"type": "incoming_video", "enabled": True, "ref": reply["ref"], "v": 1}
        assert wants_video(me)
        reply = await member.request({"type": "incoming_video", "enabled": "no"})
        assert reply["type"] == "error" and reply["field"] == "enabled", reply
        assert wants_video(me)  # a refused message changed nothing
        # and the member goes on as before
        answers = [i.id for i in GROUP_AGREEMENT]
        assert (await member.command("confirm_checklist", answers=answers))["type"] == "ok"
    finally:
        await live.aclose()
