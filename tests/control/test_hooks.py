"""The coroutines the room wiring calls, against a running app's store."""

from __future__ import annotations

import pytest

from tests.support.servers import RedisServer
from web.control import hooks, keys
from web.store import audit, groups, sessions
from web.store.errors import Forbidden

from .conftest import Api, make_user


async def test_room_hooks(api: Api) -> None:
    store = api.store
    clin = make_user(store, "dr.ash")
    group = store.call(groups.create_group, clin, name="G", rules={"chat_enabled": False})
    member = store.call(
        groups.add_member, clin, group.id, real_name="Araminta Quillfeather", pseudonym="Robin"
    )
    s = store.call(
        sessions.schedule, clin, group.id, starts_at=store.clock().isoformat(), duration_min=60
    )
    app = api.app
    assert (await hooks.session_rules(app, s.id))["chat_enabled"] is False
    assert (await hooks.session_info(app, s.id)).status == "scheduled"
    assert await hooks.record_checklist(app, s.id, member.participant_id, {"headphones": True})
    assert await hooks.record_join(app, s.id, member.participant_id)
    assert await hooks.record_leave(app, s.id, member.participant_id)
    # the host grant's participant id identifies the clinician
    names = await hooks.roster(app, s.id, clin.participant_id)
    assert names[member.participant_id]["real_name"] == "Araminta Quillfeather"
    with pytest.raises(Forbidden):
        await hooks.roster(app, s.id, member.participant_id)
    other = make_user(store, "dr.other")
    with pytest.raises(Forbidden):
        await hooks.roster(app, s.id, other.participant_id)
    await hooks.audit(
        app, f"user:{clin.id}", "lobby.admitted", member.participant_id, {"session": s.id}
    )
    assert store.call(audit.list_events, action="lobby.admitted")[0].target == (
        member.participant_id
    )
    assert app[keys.STORE] is store


def test_redis_fixture_serves_a_real_server(redis_server: RedisServer) -> None:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.set("confide:probe", "1")
    assert client.get("confide:probe") == b"1"
    client.close()
