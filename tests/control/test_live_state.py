"""Live session state in the store, on SQLite and on a real PostgreSQL server: exact round
trips, fencing, revocation on removal, used grants, and the database being away."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from confidentiality.profiles import Profile
from session_rules.lobby import LobbyState
from session_rules.rules import GroupRules
from session_rules.snapshot import ParticipantRecord, SessionRecord
from web.store import Store, accounts, groups, invites, live_state, open_store, sessions
from web.store.errors import StoreUnavailable
from web.store.live_state import Fenced, RoomSnapshot

from .conftest import DATA_KEY, make_user

# floats a decimal or microsecond column would not give back exactly
STARTS = 1_796_000_000.123456789
CHANGED = 1_796_000_012.000000123


def _rec(pid: str, state: LobbyState, **kw: object) -> ParticipantRecord:
    base: dict[str, object] = dict(
        pid=pid, role="member", state=state, changed_at=CHANGED, disconnected_at=None,
        state_before_disconnect=None, profile=Profile.BLUR, profile_floor=None,
        audio_muted=True, unmute_allowed=False, hand_raised=False, video_stopped=False,
        video_held_by_host=False, text_only=False,
    )
    base.update(kw)
    return ParticipantRecord(**base)  # type: ignore[arg-type]


def _session(store: Store) -> tuple[str, str, accounts.UserInfo]:
    """A session with one member and their invite: (session id, participant id, clinician)."""
    clin = make_user(store, "dr.lane")
    group = store.call(groups.create_group, clin, name="Group")
    member = store.call(groups.add_member, clin, group.id, real_name="Ann Other",
                        pseudonym="Robin")
    found = store.call(sessions.schedule, clin, group.id,
                       starts_at=store.clock().isoformat(), duration_min=60)
    store.call(invites.issue, clin, found.id, member.id)
    return found.id, member.participant_id, clin


def test_a_room_round_trips_exactly_and_is_fenced_by_epoch(store: Store) -> None:
    rules = GroupRules(unmute_policy="host_only", max_participants=5)
    fresh = SessionRecord(rules, STARTS, False, False, False)
    epoch, prior = store.call(live_state.claim_room, "s_room", "s_room", "node-a",
                              fresh=fresh, now=STARTS)
    assert (epoch, prior) == (1, None)
    people = [
        _rec("h_1", LobbyState.ADMITTED, role="host", audio_muted=False),
        _rec("p_2", LobbyState.DISCONNECTED, disconnected_at=CHANGED + 0.25,
             state_before_disconnect=LobbyState.ADMITTED, profile=Profile.AVATAR,
             profile_floor=Profile.FACE_MASK, video_held_by_host=True, video_stopped=True),
        _rec("p_3", LobbyState.WAITING, hand_raised=True, text_only=True, unmute_allowed=True,
             clinician_consent=True),
    ]
    # Focus switched on by the host (the rules start it off) is kept too
    session = SessionRecord(rules, STARTS, True, True, False, True)
    # and an alert held for the next host (its details are never stored)
    held = [{"kind": "someone_came_in", "participant_id": "p_3", "message": "Robin pressed",
             "with_details": False}]
    snap = RoomSnapshot("s_room", "s_room", session, people, {"p_2": "ab" * 32},
                        alive_at=CHANGED + 1, held_alerts=held)
    store.call(live_state.save_room, snap, epoch=1)
    got = store.call(live_state.load_room, "s_room")
    assert got is not None
    assert got.session == session and got.participants == people
    assert got.held_alerts == held
    assert got.resume_hashes == {"p_2": "ab" * 32}
    assert (got.node_id, got.epoch, got.running, got.alive_at) == ("node-a", 1, True, CHANGED + 1)

    # another start (or node) takes it over: the old owner's writes are refused
    epoch, prior = store.call(live_state.claim_room, "s_room", "s_room", "node-b",
                              fresh=fresh, now=CHANGED + 2)
    assert epoch == 2 and prior is not None and prior.participants == people
    with pytest.raises(Fenced):
        store.call(live_state.save_room, snap, epoch=1)
    store.call(live_state.save_room, snap, epoch=2)
    assert store.call(live_state.running_rooms, "node-b") == [("s_room", "s_room")]
    assert store.call(live_state.running_rooms, "node-a") == []
    store.call(live_state.close_room, "s_room", epoch=2, now=CHANGED + 3)
    assert store.call(live_state.running_rooms) == []


def test_removal_withdraws_the_members_link_in_the_same_write(store: Store) -> None:
    sid, pid, clin = _session(store)
    fresh = SessionRecord(GroupRules(), STARTS, False, False, False)
    store.call(live_state.claim_room, sid, sid, "local", fresh=fresh, now=STARTS)
    admitted = RoomSnapshot(sid, sid, fresh, [_rec(pid, LobbyState.ADMITTED)], {pid: "cd" * 32})
    store.call(live_state.save_room, admitted, epoch=1)
    assert [i.state for i in store.call(invites.list_for_session, clin, sid)] == [
        "active"
    ]
    removed = RoomSnapshot(sid, sid, fresh, [_rec(pid, LobbyState.REMOVED)], {pid: "cd" * 32})
    store.call(live_state.save_room, removed, epoch=1)
    assert [i.state for i in store.call(invites.list_for_session, clin, sid)] == [
        "revoked"
    ]
    got = store.call(live_state.load_room, sid)
    # a removed member keeps no reconnect token
    assert got is not None and got.resume_hashes == {}


def test_used_grants_are_kept_until_they_expire(store: Store) -> None:
    store.call(live_state.record_grants, [("j1", "r", "p_1", 100.0), ("j2", "r", "p_2", 300.0)])
    store.call(live_state.record_grants, [("j1", "r", "p_1", 100.0)])  # again: no harm
    assert store.call(live_state.used_grants, now=50.0) == {
        "j1": (100.0, "p_1"), "j2": (300.0, "p_2")
    }
    assert store.call(live_state.used_grants, now=200.0) == {"j2": (300.0, "p_2")}
    assert store.call(live_state.prune_grants, now=200.0) == 1
    assert store.call(live_state.used_grants, now=0.0) == {"j2": (300.0, "p_2")}


def test_a_locked_sqlite_file_is_unavailable_not_a_hang(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite3"
    store = open_store(f"sqlite:///{path}", DATA_KEY)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailable) as caught:
            store.call(live_state.record_grants, [("j", "r", "p", 1.0)])
        assert caught.value.code == "service_unavailable"
        assert "try again" in caught.value.message
    finally:
        other.execute("COMMIT")
        other.close()
    store.call(live_state.record_grants, [("j", "r", "p", 1.0)])
    store.dispose()


def test_the_sqlite_file_and_its_dir_are_the_owners_alone(tmp_path: Path) -> None:
    path = tmp_path / "db" / "confide.sqlite3"
    path.parent.mkdir()
    path.touch(mode=0o644)
    path.chmod(0o644)
    store = open_store(f"sqlite:///{path}", DATA_KEY)
    store.call(live_state.record_grants, [("j", "r", "p", 1.0)])
    for part in path.parent.iterdir():
        assert part.stat().st_mode & 0o077 == 0, part.name
    store.dispose()
