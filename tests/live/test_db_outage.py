"""A session rides out a database outage: a real PostgreSQL stopped for 20 s, and SQLite
locked by another writer. Host commands and "someone came in" take effect while the
database is away, media goes on, a join that needs the database is told to try again in a
moment, and the records made meanwhile are in the store afterwards."""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from tests.support.live import (
    ConfideProcess,
    Member,
    agree,
    host_link,
    http_json,
    join_refusal,
    member_of,
    session_in,
    wait_async,
    wait_for,
)
from tests.support.servers import PostgresServer, running_postgres
from tests.support.session import DEFAULT_MEMBERS
from web.bot import ColorTrack, ToneTrack
from web.control.grants import host_grant
from web.store import sessions
from web.store.models import Attendance, AuditEvent, Incident

logger = logging.getLogger(__name__)

pytestmark = pytest.mark.slow


@contextmanager
def _postgres() -> Iterator[PostgresServer]:
    # a server of its own: this test stops it
    with running_postgres() as pg:
        yield pg


def _frames_over(host: Member, pid: str, n: int) -> bool:
    return _frames(host, pid) > n


def _told(member: Member, mtype: str, since: int) -> bool:
    """`member` was sent a `mtype` message after their first `since` messages."""
    assert member.bot is not None
    return any(m.get("type") == mtype for m in member.bot.messages[since:])


def _frames(host: Member, pid: str) -> int:
    assert host.bot is not None
    peer = host.bot.peers.get(pid)
    return peer.video_frames if peer else 0


async def _timed(member: Member, name: str, ref: str, **fields: Any) -> float:
    """Send a command; seconds until its reply (which must be ok)."""
    start = time.monotonic()
    reply = await member.command(name, ref, **fields)
    assert reply["type"] == "ok", reply
    return time.monotonic() - start


async def _run_outage(
    server: ConfideProcess, begin: Callable[[], None], end: Callable[[], None],
    outage_s: float, label: str,
) -> None:
    s, store = session_in(server, members=[*DEFAULT_MEMBERS, ("Dorothea Ashcombe", "Sam")])
    host = Member("host", host_link(s, server), s.clinician.participant_id)
    media = {"publish": True, "decode_video": False}
    people: list[Member] = []
    try:
        await host.connect()
        robin = await member_of(s, "Robin", video=ColorTrack("green"), audio=ToneTrack(),
                                **media)
        kit = await member_of(s, "Kit", video=ColorTrack("blue"), audio=ToneTrack(), **media)
        sam = await member_of(s, "Sam")
        people = [robin, kit, sam]
        for m in people:
            await agree(m)
            assert (await host.command("admit", f"admit-{m.name}",
                                       target=m.participant_id))["type"] == "ok"
        for m in (robin, kit):
            await wait_for(functools.partial(_frames_over, host, m.participant_id, 10), 30,
                           f"{m.name}'s video at the host")
        # another session of the group, open but with nobody in it yet
        other = store.call(sessions.schedule, s.clinician, s.group_id,
                           starts_at=store.clock().isoformat(), duration_min=60)
        store.call(sessions.transition, s.clinician, other.id, "open", unmet=[])
        other_host = host_grant(server.settings, s.clinician,
                                store.call(sessions.find_session, other.id))["grant"]

        errors_before = (await server.metrics())["confide_db_errors_total"]
        begin()
        began_at = datetime.now(UTC)
        began = time.monotonic()
        # the writer finds out on its next write; nothing in the room waits for it
        latencies: list[float] = []
        effects: list[float] = []
        ref = 0
        for name, target in [("mute", robin), ("allow_unmute", robin), ("stop_video", robin),
                             ("allow_video", robin), ("lock", None), ("unlock", None),
                             ("send_to_lobby", sam), ("admit", sam), ("mute_all", None)]:
            ref += 1
            fields = {"target": target.participant_id} if target else {}
            seen = len(target.bot.messages) if target and target.bot else 0
            start = time.monotonic()
            latencies.append(await _timed(host, name, f"o{ref}", **fields))
            if target is not None:
                # the effect as the member sees it: their own state, sent by the server
                await wait_for(functools.partial(_told, target, "self_state", seen), 10)
                effects.append(time.monotonic() - start)

        # someone came in at Robin's: held at once, the host told privately
        before_alerts = len([m for m in host.bot.messages  # type: ignore[union-attr]
                             if m.get("kind") == "someone_came_in"])
        start = time.monotonic()
        assert (await robin.command("someone_came_in", "came-in"))["type"] == "ok"
        await wait_for(lambda: len([m for m in host.bot.messages  # type: ignore[union-attr]
                                    if m.get("kind") == "someone_came_in"]) > before_alerts,
                       10, "the host's alert")
        came_in_s = time.monotonic() - start
        await asyncio.sleep(1.0)
        held_at = _frames(host, robin.participant_id)

        # media goes on for everyone else. A liveness check, not a frame rate: this test
        # shares the cores with others, and Kit's blurred video is made by media workers at
        # the lowest priority, which a busy neighbour can slow to a few frames a second
        # (the rate is the real-time tests' and bench/'s to judge); a room the outage
        # blocked would send none
        kit_before = _frames(host, kit.participant_id)
        await wait_for(functools.partial(_frames_over, host, kit.participant_id,
                                         kit_before + 10), 20, "Kit's video to go on")
        assert _frames(host, robin.participant_id) <= held_at + 3, "Robin's video still sent"

        # a join that needs the database: a clear "try again in a moment"
        token = s.links["Wren"].rsplit("/", 1)[1]
        status, body, headers = await http_json(
            "POST", f"{s.base_url}/api/v1/invites/redeem", {"token": token})
        assert status == 503, body
        assert body["error"]["code"] == "service_unavailable"
        assert "try again" in body["error"]["message"]
        assert int(headers["Retry-After"]) > 0
        # so does opening a room: the socket is told the same, and the page tries again
        assert await join_refusal(f"{s.base_url}/room#grant={other_host}") == \
            "service_unavailable"

        # the outage is seen and said: readiness (degraded, still serving), the metrics IT
        # watches, and the host's private alert
        await wait_async(lambda: _degraded(server), 15, "/readyz says degraded")
        status, ready = await server.readiness()
        assert status == 200 and ready["reasons"][0].startswith("database: "), ready
        scraped = await server.metrics()
        assert scraped["confide_database_up"] == 0, scraped
        assert scraped["confide_audit_queue_depth"] > 0, scraped
        assert scraped["confide_db_errors_total"] > errors_before
        await wait_for(lambda: any(m.get("kind") == "records_delayed"
                                   for m in host.bot.messages), 10)  # type: ignore[union-attr]
        # still in control late in the outage
        remaining = outage_s - (time.monotonic() - began)
        if remaining > 0:
            await asyncio.sleep(remaining)
        latencies.append(await _timed(host, "lock", "late-lock"))
        latencies.append(await _timed(host, "unlock", "late-unlock"))
        outage_took = time.monotonic() - began
        end()
        ended_at = datetime.now(UTC)

        # everything made meanwhile is written once the database is back
        await wait_async(lambda: _caught_up(server), 60, "records written after the outage")
        await wait_for(lambda: any(m.get("kind") == "records_saved"
                                   for m in host.bot.messages), 10)  # type: ignore[union-attr]

        def during(tx: Any) -> dict[str, Any]:
            audits = tx.db.scalars(select(AuditEvent).where(
                AuditEvent.action.like("command:%"), AuditEvent.at >= began_at,
                AuditEvent.at <= ended_at)).all()
            incidents = tx.db.scalars(select(Incident).where(
                Incident.session_id == s.session_id, Incident.kind == "someone_came_in")).all()
            attendance = tx.db.scalars(select(Attendance).where(
                Attendance.session_id == s.session_id)).all()
            return {"audits": [(a.actor, a.action) for a in audits],
                    "incidents": [(i.participant_id, i.at) for i in incidents],
                    "joins": {a.member_id: a.joins for a in attendance}}

        found = store.call(during)
        assert (s.clinician.participant_id, "command:stop_video") in found["audits"]
        assert (robin.participant_id, "command:someone_came_in") in found["audits"]
        # 11 host commands, "someone came in", two late ones: each audited once at least
        assert len(found["audits"]) >= 12, found["audits"]
        # the incident keeps the time it happened, not the time it was written
        assert [pid for pid, _ in found["incidents"]] == [robin.participant_id]
        assert began_at <= found["incidents"][0][1] <= ended_at
        # Sam went to the lobby and was admitted again during the outage: both joins counted
        assert found["joins"][s.member_ids["Sam"]] == 2

        # and the join that was refused works now
        status, body, _ = await http_json(
            "POST", f"{s.base_url}/api/v1/invites/redeem", {"token": token})
        assert status == 200, body

        logger.warning(
            "%s outage %.1f s: host command reply p50 %.1f ms, max %.1f ms (n=%d); "
            "effect at the member p50 %.1f ms, max %.1f ms; someone came in -> host alert "
            "%.1f ms", label, outage_took, 1000 * statistics.median(latencies),
            1000 * max(latencies), len(latencies), 1000 * statistics.median(effects),
            1000 * max(effects), 1000 * came_in_s)
    finally:
        for m in (host, *people):
            await m.close()
        store.dispose()


async def _degraded(server: ConfideProcess) -> bool:
    _, ready = await server.readiness()
    return bool(ready.get("status") == "degraded")


async def _caught_up(server: ConfideProcess) -> bool:
    seen = await server.metrics()
    _, ready = await server.readiness()
    return bool(ready["status"] == "ready" and seen["confide_database_up"] == 1
                and seen["confide_audit_queue_depth"] == 0
                and seen["confide_room_states_pending"] == 0)


@pytest.mark.postgres
async def test_postgresql_stopped_for_20_s_mid_session(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with _postgres() as pg:
        server = ConfideProcess(tmp_path / "data", database_url=pg.create_database())
        await server.start()
        try:
            await _run_outage(server, pg.stop, pg.start, 20.0, "postgresql")
        finally:
            server.stop()
        assert "ALARM: the database is unavailable" in server.log()


async def test_sqlite_locked_by_another_writer_mid_session(tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = ConfideProcess(tmp_path / "data")
    await server.start()
    path = server.settings.data_dir / "confide.sqlite3"
    locker: list[sqlite3.Connection] = []

    def lock() -> None:
        conn = sqlite3.connect(path, isolation_level=None, timeout=10)
        conn.execute("BEGIN EXCLUSIVE")
        locker.append(conn)

    def unlock() -> None:
        conn = locker.pop()
        conn.execute("COMMIT")
        conn.close()

    try:
        await _run_outage(server, lock, unlock, 10.0, "sqlite-locked")
    finally:
        while locker:
            unlock()
        server.stop()
    assert "ALARM: the database is unavailable" in server.log()
