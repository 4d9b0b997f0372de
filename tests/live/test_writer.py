"""The record queue behind the rooms, against a real SQLite file locked by another writer:
bounded, alarmed, drops the least needed first and says so, keeps what it could not write
over a stop, and writes everything with the time it happened."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from session_rules.commands import Command, decide, decide_arrival
from session_rules.lobby import LobbyState
from session_rules.rules import GroupRules
from session_rules.session import SessionState, apply_effects
from session_rules.snapshot import SessionRecord
from tests.support.live import wait_for
from web.live.persistence import RoomPersistence
from web.live.writer import DurableWriter
from web.store import Store, live_state, open_store
from web.store.models import AuditEvent, Incident

DATA_KEY = "test-data-key-0123456789abcdef"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'store.sqlite3'}", DATA_KEY)
    yield s
    s.dispose()


class Lock:
    """Another process's connection holding the database's write lock."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("BEGIN EXCLUSIVE")

    def release(self) -> None:
        self.conn.execute("COMMIT")
        self.conn.close()


def _rows(store: Store) -> dict[str, Any]:
    def read(tx: Any) -> dict[str, Any]:
        audits = tx.db.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        incidents = tx.db.scalars(select(Incident).order_by(Incident.id)).all()
        return {"audits": [(a.action, a.at, a.detail) for a in audits],
                "incidents": [(i.kind, i.participant_id, i.at) for i in incidents]}

    return store.call(read)


async def test_a_full_queue_drops_the_least_needed_and_says_so(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "web.live.writer")
    alarms: list[tuple[str, dict[str, Any]]] = []
    writer = DurableWriter(store, capacity=6)
    writer.on_alarm(lambda kind, detail: alarms.append((kind, detail)))
    await writer.start()
    lock = Lock(tmp_path / "store.sqlite3")
    try:
        made_at = datetime.now(UTC)
        for i in range(4):
            writer.record("audit", "s_1", actor="h_1", action="command:mute", target=f"p_{i}")
        for i in range(3):
            writer.record("incident", "s_1", incident="someone_came_in",
                          participant_id=f"p_{i}", detail="someone_came_in")
        # full: the oldest audit line gave way to the third incident
        assert writer.depth == 6
        assert dict(writer.dropped) == {"audit:command:mute": 1}
        await wait_for(lambda: any(k == "database_unavailable" for k, _ in alarms), 15,
                       "the outage alarm")
        for i in range(4):
            writer.record("incident", "s_1", incident="removal", participant_id=f"q_{i}",
                          detail="removal")
        # now only incidents are left to keep: a further audit line is the one dropped
        writer.record("audit", "s_1", actor="h_1", action="command:lock", target="s_1")
        # (among records of one kind, the oldest gives way)
        assert dict(writer.dropped) == {"audit:command:mute": 4, "incident:someone_came_in": 1,
                                        "audit:command:lock": 1}
        gauges = writer.gauges()
        assert gauges.pending == 6 and not writer.database_available
        # the metrics count drops by kind of record, never by what they said
        assert gauges.dropped == {"audit": 5, "incident": 1}
        assert any(k == "records_dropped" for k, _ in alarms)
        assert "ALARM: record queue full" in caplog.text
        assert "ALARM: the database is unavailable" in caplog.text
        assert "queue_filling" in [k for k, _ in alarms]
    finally:
        lock.release()
    await wait_for(lambda: writer.depth == 0 and writer.database_available, 15, "caught up")
    rows = _rows(store)
    # what was kept is written, each with the time it was made (before the lock went)
    assert [(k, p) for k, p, _ in rows["incidents"]] == [
        ("someone_came_in", "p_1"), ("someone_came_in", "p_2"),
        ("removal", "q_0"), ("removal", "q_1"), ("removal", "q_2"), ("removal", "q_3"),
    ]
    assert all(at < datetime.now(UTC) and at >= made_at.replace(microsecond=0)
               for *_, at in rows["incidents"])
    # and the trail shows its own gap: what was dropped, by kind
    dropped = [d for action, _, d in rows["audits"] if action == "records.dropped"]
    assert dropped == [{"capacity": 6, "dropped": {
        "audit:command:mute": 4, "incident:someone_came_in": 1, "audit:command:lock": 1}}]
    assert ("database_restored" in [k for k, _ in alarms])
    await writer.aclose()


async def test_records_not_written_at_a_stop_are_kept_and_written_at_the_next_start(
    store: Store, tmp_path: Path
) -> None:
    spool = tmp_path / "pending-records.jsonl"
    writer = DurableWriter(store, spool_path=spool)
    await writer.start()
    # a room whose host removed someone while the database was away
    state = SessionState(GroupRules(), starts_at=1000.0)
    for pid, role in (("h_1", "host"), ("p_1", "member")):
        apply_effects(state, decide_arrival(state, pid, role=role, now=1000.0).effects,  # type: ignore[arg-type]
                      now=1000.0)
    epoch, _ = store.call(live_state.claim_room, "s_1", "s_1", "local",
                          fresh=SessionRecord(GroupRules(), 1000.0, False, False, False),
                          now=1000.0)
    room = RoomPersistence(writer, room_id="s_1", session_id="s_1", epoch=epoch)
    room.bind(lambda: state)
    lock = Lock(tmp_path / "store.sqlite3")
    try:
        removal = decide(state, "h_1", Command("remove", target="p_1"), now=1001.0)
        apply_effects(state, removal.effects, now=1001.0)
        room.changed()
        for i in range(5):
            writer.record("audit", "s_1", actor="h_1", action="command:admit", target=f"p_{i}")
        await writer.aclose(timeout_s=1.0)
        assert spool.stat().st_mode & 0o077 == 0
        assert len(spool.read_text().splitlines()) == 6
    finally:
        lock.release()
    again = DurableWriter(store, spool_path=spool)
    await again.start()
    assert await again.replay_rooms() == 1
    stored = store.call(live_state.load_room, "s_1")
    assert stored is not None
    assert {p.pid: p.state for p in stored.participants}["p_1"] is LobbyState.REMOVED
    await wait_for(lambda: again.depth == 0 and not spool.exists(), 15, "spool written")
    targets = [d for a, _, d in _rows(store)["audits"] if a == "command:admit"]
    assert len(targets) == 5
    await again.aclose()


async def test_a_flush_waits_for_a_room_write_already_under_way(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writing task takes a room off the dirty list before it writes it: until the write
    is done, the room's state is still pending, and a flush waits for it (a removal's
    revoked link was not yet in the store when a flush had already said it was)."""
    writer = DurableWriter(store)
    await writer.start()
    state = SessionState(GroupRules(), starts_at=1000.0)
    for pid, role in (("h_1", "host"), ("p_1", "member")):
        apply_effects(state, decide_arrival(state, pid, role=role, now=1000.0).effects,  # type: ignore[arg-type]
                      now=1000.0)
    epoch, _ = store.call(live_state.claim_room, "s_1", "s_1", "local",
                          fresh=SessionRecord(GroupRules(), 1000.0, False, False, False),
                          now=1000.0)
    room = RoomPersistence(writer, room_id="s_1", session_id="s_1", epoch=epoch)
    room.bind(lambda: state)
    started, release = asyncio.Event(), asyncio.Event()
    real_run = store.run

    async def held_run(fn: Any, *args: Any, **kwargs: Any) -> Any:
        if fn is live_state.save_room:
            started.set()
            await release.wait()
        return await real_run(fn, *args, **kwargs)

    monkeypatch.setattr(store, "run", held_run)
    try:
        removal = decide(state, "h_1", Command("remove", target="p_1"), now=1001.0)
        apply_effects(state, removal.effects, now=1001.0)
        room.changed()
        await asyncio.wait_for(started.wait(), 10)  # the writing task is writing the room
        assert writer.pending_for("s_1")
        flushing = asyncio.ensure_future(writer.flush())
        await asyncio.sleep(0.3)
        assert not flushing.done(), "the flush returned while the room was being written"
        release.set()
        assert await flushing
        assert not writer.pending_for("s_1")
        stored = store.call(live_state.load_room, "s_1")
        assert stored is not None
        assert {p.pid: p.state for p in stored.participants}["p_1"] is LobbyState.REMOVED
    finally:
        release.set()
        await writer.aclose()
