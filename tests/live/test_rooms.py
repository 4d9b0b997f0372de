"""Removal is remembered, and empty rooms close and reopen with their state, through the real
socket and HTTP API of a running server."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sfu.grants import mint_grant, verify_grant
from tests.support.live import (
    Member,
    agree,
    http_json,
    http_text,
    invite_states,
    join_refusal,
    member_of,
    parse_metrics,
    redeem,
    wait_for,
)
from tests.support.session import PASSWORD, OpenSession, open_session
from web import keys
from web.control import keys as control_keys
from web.control.grants import host_grant
from web.live.keys import WRITER
from web.live.registry import LiveRoomRegistry
from web.live.writer import DurableWriter
from web.settings import load_settings
from web.store import accounts, groups, live_state, sessions
from web.store.db import sha256_hex


def _ok(reply: dict[str, Any]) -> None:
    assert reply["type"] == "ok", reply


def _grant(server: Any, s: OpenSession, pid: str, name: str = "Someone") -> str:
    grant = mint_grant(server.settings.grant_secret, room=s.session_id, display_name=name,
                       participant_id=pid, session_id=s.session_id)
    return f"{s.base_url}/room#grant={grant}"


async def _host(server: Any, s: OpenSession) -> Member:
    host = Member("host", f"{s.base_url}/room#grant={s.host_grant(server.app)}",
                  s.clinician.participant_id)
    await host.connect()
    return host


async def test_removal_withdraws_the_link_and_the_room_refuses_them(server) -> None:  # type: ignore[no-untyped-def]
    s = open_session(server.app, server.base_url)
    host = await _host(server, s)
    robin = await member_of(s, "Robin")
    try:
        await agree(robin)
        _ok(await host.command("admit", "a", target=robin.participant_id))
        _ok(await host.command("remove", "r", target=robin.participant_id))
        await wait_for(lambda: robin.last("removed"), 10, "Robin told")
        await server.app[WRITER].flush()
        assert invite_states(s, "Robin") == ["revoked"]
        # the reconnect secret no longer mints a grant, and no grant brings Robin back
        status, body, _ = await http_json("POST", f"{s.base_url}/api/v1/invites/resume",
                                          {"resume": robin.invite_resume})
        assert (status, body["error"]["code"]) == (410, "invite_revoked")
        assert await join_refusal(_grant(server, s, robin.participant_id)) == "removed"
        assert await join_refusal(robin.link, robin.resume) == "grant_replayed"
    finally:
        await host.close()
        await robin.close()


async def test_a_used_grant_is_kept_only_with_the_reconnect_token_it_was_answered_with(server) -> None:  # type: ignore[no-untyped-def]
    """A node that takes a room over refuses a grant the store has as used, and lets its
    holder back in only with a reconnect token the store knows. A grant lasting without
    its token would lock the member out for good (seen when a node was killed a moment after
    a member joined), so the grant is written with or after the token, never before."""
    registry = server.app[keys.ROOMS]
    writer = server.app[WRITER]
    store = server.app[control_keys.STORE]
    s = open_session(server.app, server.base_url)
    host = await _host(server, s)
    kit = await member_of(s, "Kit")
    try:
        # a join through the socket: the grant and the token reach the store together
        await writer.flush()
        used = await store.run(live_state.used_grants, now=time.time(), room_id=s.session_id)
        stored = await store.run(live_state.load_room, s.session_id)
        kit_jti = verify_grant(kit.link.split("grant=", 1)[1], server.settings.grant_secret).jti
        assert kit_jti in used
        assert stored is not None
        assert stored.resume_hashes[kit.participant_id] == sha256_hex(kit.resume or "")
        # the socket claims a grant before the member is let in, and the room's state may be
        # written in between: the grant stays out of the store until the join is over
        robin = verify_grant((await redeem(s, "Robin"))["grant"], server.settings.grant_secret)
        registry.claim_grant(robin)
        await writer.flush()
        used = await store.run(live_state.used_grants, now=time.time(), room_id=s.session_id)
        assert robin.jti not in used
        # a join that is over (here: never let in) keeps its grant used, restart or not
        registry.grant_settled(robin)
        await writer.flush()
        used = await store.run(live_state.used_grants, now=time.time(), room_id=s.session_id)
        assert robin.jti in used
    finally:
        await host.close()
        await kit.close()


async def test_an_empty_room_closes_and_reopens_with_its_state(server) -> None:  # type: ignore[no-untyped-def]
    registry = server.app[keys.ROOMS]
    assert isinstance(registry, LiveRoomRegistry)
    registry.empty_room_close_s = 10.0
    store = server.app[control_keys.STORE]
    s = open_session(server.app, server.base_url)
    host = await _host(server, s)
    robin, kit = await member_of(s, "Robin"), await member_of(s, "Kit")
    cohost: Member | None = None
    try:
        for m in (robin, kit):
            await agree(m)
        _ok(await host.command("admit", "a1", target=robin.participant_id))
        _ok(await host.command("remove", "r1", target=kit.participant_id))
        _ok(await host.command("lock", "l1"))
        # Robin drops without a word: the room waits for them through the grace
        assert robin.bot is not None
        await robin.bot.close()
        await host.bot.leave()  # type: ignore[union-attr]
        await wait_for(lambda: not registry.rooms[s.session_id].participants, 10)
        now = time.time()
        assert await registry.reap(now + 5) == []
        # after the grace, and the room's quiet time, it closes (once its state is stored)
        assert await registry.reap(now + 31) == []
        await server.app[WRITER].flush()
        assert await registry.reap(now + 31 + registry.empty_room_close_s) == [s.session_id]
        assert s.session_id not in registry.rooms
        await server.app[WRITER].flush()
        stored = store.call(live_state.load_room, s.session_id)
        assert stored is not None and stored.running is False

        # the session is still open: the next join opens the room again, as it was
        cohost = await _cohost(server, s)
        assert (cohost.last("joined") or {})["participant"]["state"] == "admitted"
        assert registry.rooms[s.session_id].locked
        assert (await cohost.command("lock", "l2"))["code"] == "no_change"
        assert await join_refusal(_grant(server, s, kit.participant_id)) == "removed"
        # Robin's drop is kept with its time: by the wall clock they are still within their
        # grace (the closing above ran on a clock moved ahead), so they are back in the room
        status, body, _ = await http_json("POST", f"{s.base_url}/api/v1/invites/resume",
                                          {"resume": robin.invite_resume})
        assert status == 200, body
        robin.link = f"{s.base_url}/room#grant={body['grant']}"
        await robin.connect()
        assert (robin.last("joined") or {})["participant"]["state"] == "admitted"
        assert store.call(live_state.load_room, s.session_id).epoch == 2  # type: ignore[union-attr]
    finally:
        for m in (host, robin, kit, *([cohost] if cohost else [])):
            await m.close()


async def _cohost(server: Any, s: OpenSession) -> Member:
    """A second clinician of the group joins as host."""
    store = server.app[control_keys.STORE]
    cole = store.call(accounts.create_user, username="dr.cole", role="clinician",
                      password=PASSWORD)
    store.call(groups.add_clinician, s.clinician, s.group_id, "dr.cole")
    info = store.call(sessions.find_session, s.session_id)
    grant = host_grant(server.app[control_keys.CONTROL_SETTINGS], cole, info)["grant"]
    cohost = Member("cohost", f"{s.base_url}/room#grant={grant}", cole.participant_id)
    await cohost.connect()
    return cohost


async def test_a_room_nobody_could_enter_does_not_linger(server) -> None:  # type: ignore[no-untyped-def]
    registry = server.app[keys.ROOMS]
    registry.empty_room_close_s = 1.0
    store = server.app[control_keys.STORE]
    s = open_session(server.app, server.base_url)
    # a session whose lobby has not opened: the join is refused, the room it opened closes
    later = store.call(sessions.schedule, s.clinician, s.group_id,
                       starts_at=(store.clock() + timedelta(hours=3)).isoformat(),
                       duration_min=60)
    store.call(sessions.transition, s.clinician, later.id, "open", unmet=[])
    grant = mint_grant(server.settings.grant_secret, room=later.id, display_name="Robin",
                       participant_id=s.participant_ids["Robin"], session_id=later.id)
    assert await join_refusal(f"{s.base_url}/room#grant={grant}") == "lobby_not_open"
    assert later.id in registry.rooms
    await wait_for(lambda: later.id not in registry.rooms, 15, "the empty room closed")


def test_the_data_dir_is_the_owners_alone(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    load_settings(data)
    assert data.stat().st_mode & 0o777 == 0o700
    for secret in ("grant_secret", "data_key"):
        assert (data / secret).stat().st_mode & 0o077 == 0


async def test_metrics_show_the_record_queue(server) -> None:  # type: ignore[no-untyped-def]
    """IT sees the queue the rooms write through, and the database's state, in /metrics."""
    writer = server.app[WRITER]
    assert isinstance(writer, DurableWriter)
    status, body, _ = await http_json("GET", f"{server.base_url}/readyz")
    assert status == 200 and body == {"status": "ready"}
    seen = parse_metrics(await http_text(f"{server.base_url}/metrics"))
    assert seen["confide_database_up"] == 1
    assert seen["confide_records_capacity"] == writer.capacity
    assert seen["confide_audit_queue_depth"] == writer.depth == 0
    written = seen["confide_records_written_total"]
    # a record queued (the database answers): written, and counted
    writer.record("audit", "s_none", actor="service", action="test:metrics", target="queue")
    assert await writer.flush()
    seen = parse_metrics(await http_text(f"{server.base_url}/metrics"))
    assert seen["confide_records_written_total"] == written + 1
    assert seen["confide_audit_queue_depth"] == 0
