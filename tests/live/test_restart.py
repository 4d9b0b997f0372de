"""A session survives a restart of `confide serve` (SIGKILL, or SIGTERM with a warning):
members come back by themselves to where they were, the removed stay out, the host stays in
control. Real child processes, real sockets, the store on SQLite or PostgreSQL."""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

import pytest

from sfu.grants import mint_grant
from tests.support.live import (
    ConfideProcess,
    Member,
    agree,
    host_link,
    http_json,
    invite_states,
    join_refusal,
    member_of,
    session_in,
    wait_for,
)
from tests.support.servers import postgres_server  # noqa: F401 (fixture)
from web.store import live_state

logger = logging.getLogger(__name__)

CASES = [
    pytest.param("sqlite", signal.SIGKILL, id="sqlite-sigkill"),
    pytest.param("sqlite", signal.SIGTERM, id="sqlite-sigterm"),
    pytest.param("postgresql", signal.SIGKILL, id="postgresql-sigkill",
                 marks=pytest.mark.postgres),
]


def _ok(reply: dict[str, Any]) -> dict[str, Any]:
    assert reply["type"] == "ok", reply
    return reply


@pytest.mark.parametrize(("backend", "sig"), CASES)
async def test_a_session_survives_a_restart(backend: str, sig: int, tmp_path,  # type: ignore[no-untyped-def]
                                            request) -> None:
    url = request.getfixturevalue("postgres_server").create_database() \
        if backend == "postgresql" else ""
    server = ConfideProcess(tmp_path / "data", database_url=url)
    await server.start()
    s, store = session_in(server)
    host = Member("host", host_link(s, server), s.clinician.participant_id)
    members: list[Member] = []
    try:
        await host.connect()
        robin, wren, kit = [await member_of(s, name) for name in ("Robin", "Wren", "Kit")]
        members = [robin, wren, kit]
        for m in members:
            await agree(m)
        _ok(await host.command("admit", "a1", target=robin.participant_id))
        _ok(await host.command("admit", "a2", target=kit.participant_id))
        # the host holds Robin's video and enforces an avatar; the room is locked; Kit removed
        _ok(await host.command("stop_video", "h1", target=robin.participant_id))
        _ok(await host.command("enforce_profile", "h2", target=robin.participant_id,
                               profile="avatar"))
        _ok(await host.command("lock", "h3"))
        _ok(await host.command("remove", "h4", target=kit.participant_id))

        def stored() -> Any:
            return store.call(live_state.load_room, s.session_id)

        def written() -> bool:
            room = stored()
            people = {p.pid: p for p in room.participants} if room else {}
            kit_rec = people.get(kit.participant_id)
            return bool(room and room.session.locked and kit_rec
                        and kit_rec.state.value == "removed"
                        and people[robin.participant_id].video_held_by_host)

        await wait_for(written, 10, "the room's state in the store")
        # removal withdrew Kit's link in the same write
        assert invite_states(s, "Kit") == ["revoked"]

        server.kill(sig)
        if sig == signal.SIGTERM:
            # a graceful stop says so first, in a typed message, to everyone still connected
            for m in (host, robin, wren):
                assert m.bot is not None
                await wait_for(m.bot.closed.is_set, 10, "socket closed")
                told = [x for x in m.bot.messages if x.get("type") == "service_restarting"]
                assert told and told[0]["message"], m.name
        for m in (host, robin, wren):
            assert m.bot is not None
            await wait_for(m.bot.closed.is_set, 10, "socket closed")

        spawned = time.monotonic()
        server.spawn()
        back = [await m.come_back(60) for m in (host, robin, wren)]
        logger.warning("restart (%s, %s): everyone back %.2f s after the new process started",
                       backend, signal.Signals(sig).name, max(back) - spawned)

        # Robin: straight back into the room, never through the lobby, holds as they were
        joined = robin.last("joined")
        assert joined is not None and joined["participant"]["state"] == "admitted"
        ss = await wait_for(lambda: robin.last("self_state"), 10, "Robin's state")
        assert ss["lobby_state"] == "admitted"
        assert ss["video_held_by_host"] is True and ss["video_stopped"] is True
        assert ss["profile"] == "avatar" and ss["profile_floor"] == "avatar"
        assert ss["audio_muted"] is True
        assert robin.bot is not None
        assert not any(m.get("type") in ("sent_to_lobby", "admitted")
                       for m in robin.bot.messages)
        # the media plane holds them again, as everyone sees
        await wait_for(lambda: robin.bot.me.get("muted") == {"audio": True, "video": True},  # type: ignore[union-attr]
                       10, "Robin's holds in the room")
        # Wren: back in the lobby, still waiting
        wren_joined = wren.last("joined")
        assert wren_joined is not None and wren_joined["participant"]["state"] == "lobby"
        assert (await wait_for(lambda: wren.last("self_state"), 10))["lobby_state"] == "waiting"
        # the host: in the room, sees Wren waiting, and is in control (the room is still locked)
        host_joined = host.last("joined")
        assert host_joined is not None and host_joined["participant"]["state"] == "admitted"
        await wait_for(lambda: any(
            p["id"] == wren.participant_id
            for m in host.bot.messages if m.get("type") == "lobby"  # type: ignore[union-attr]
            for p in m["waiting"]), 10, "Wren in the host's lobby list")
        assert (await host.command("lock", "r1"))["code"] == "no_change"
        _ok(await host.command("admit", "r2", target=wren.participant_id))
        await wait_for(lambda: wren.last("admitted"), 10, "Wren admitted")
        _ok(await host.command("mute_all", "r3"))
        _ok(await host.command("allow_video", "r4", target=robin.participant_id))
        await wait_for(lambda: (robin.last("self_state") or {}).get("video_held_by_host")
                       is False, 10, "Robin's video allowed")

        # Kit stays out: the old connection's token, the invite's secret, a fresh grant
        # (refused as replayed, or, when a SIGKILL came before the used grant was written
        # behind, as removed, which the room's state written first already says: out either way)
        assert await join_refusal(kit.link, kit.resume) in ("grant_replayed", "removed")
        status, body, _ = await http_json("POST", f"{s.base_url}/api/v1/invites/resume",
                                          {"resume": kit.invite_resume})
        assert status == 410 and body["error"]["code"] == "invite_revoked"
        fresh = mint_grant(server.settings.grant_secret, room=s.session_id,
                           display_name="Kit", participant_id=kit.participant_id,
                           session_id=s.session_id)
        assert await join_refusal(f"{s.base_url}/room#grant={fresh}") == "removed"
        # a grant used before the restart is still used: without the token it is refused
        assert await join_refusal(robin.link) == "grant_replayed"
    finally:
        for m in (host, *members):
            await m.close()
        server.stop()
        store.dispose()


async def test_an_alert_held_for_the_next_host_survives_a_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # no host in the room: Robin's "someone came in" waits for one; the process is killed
    # before any host comes, and the host who arrives at the new process is still told
    server = ConfideProcess(tmp_path / "data")
    await server.start()
    s, store = session_in(server)
    host = Member("host", host_link(s, server), s.clinician.participant_id)
    robin = await member_of(s, "Robin")
    try:
        _ok(await robin.command("someone_came_in", "s1"))

        def held() -> list[dict[str, Any]]:
            room = store.call(live_state.load_room, s.session_id)
            return list(room.held_alerts) if room else []

        await wait_for(lambda: [a["kind"] for a in held()] == ["someone_came_in"], 10,
                       "the held alert in the store")
        assert held()[0]["participant_id"] == robin.participant_id
        assert "details" not in held()[0]
        server.kill(signal.SIGKILL)
        server.spawn()
        await server.ready()
        bot = await host.connect(timeout_s=30)
        alert = await wait_for(lambda: next((m for m in bot.messages if m.get("type") == "alert"),
                                            None), 15, "the held alert")
        assert (alert["kind"], alert["participant_id"]) == ("someone_came_in",
                                                            robin.participant_id)
        assert alert["message"].startswith("Robin ")
        # given once: the store no longer holds it
        await wait_for(lambda: held() == [], 10, "the alert no longer held")
    finally:
        for m in (host, robin):
            await m.close()
        server.stop()
        store.dispose()
