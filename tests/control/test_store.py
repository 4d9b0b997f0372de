"""The store on SQLite and on a real PostgreSQL server: schema, encryption, rules, audit."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import DBAPIError

from web.store import Store, accounts, audit, groups, invites, open_store, sessions
from web.store.errors import (
    AuthFailed,
    Conflict,
    GateClosed,
    InvalidInput,
    InvalidTransition,
    InviteRefused,
    StoreError,
    Throttled,
)
from web.store.models import AuditEvent, Base, Group, Member

from .conftest import DATA_KEY, PASSWORD, Clock, make_user

REAL = "Araminta Quillfeather"


def _setup(store: Store) -> tuple[accounts.UserInfo, groups.GroupInfo, groups.MemberInfo]:
    clin = make_user(store, "dr.ash")
    group = store.call(groups.create_group, clin, name="Tuesday group")
    member = store.call(groups.add_member, clin, group.id, real_name=REAL, pseudonym="Robin")
    return clin, group, member


def _session(store: Store, clin: accounts.UserInfo, group_id: str) -> sessions.SessionInfo:
    return store.call(
        sessions.schedule, clin, group_id, starts_at=store.clock().isoformat(), duration_min=60
    )


def test_migrations_build_the_schema_of_the_models_and_rerun_cleanly(store: Store) -> None:
    store.migrate()  # second run: nothing to do, nothing breaks
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
        assert "audit_events" in inspect(conn).get_table_names()


def test_real_names_are_encrypted_at_rest(store: Store, db_url: str) -> None:
    _clin, _group, member = _setup(store)
    with store.engine.connect() as conn:
        raw = conn.execute(text("SELECT real_name_enc FROM members")).scalar_one()
        dump = " ".join(str(v) for row in conn.execute(text("SELECT * FROM members")) for v in row)
    assert "Araminta" not in dump and "Quillfeather" not in dump
    assert raw.startswith("v1:")  # the key given directly has the legacy id
    other = Store(db_url, "a different key entirely")
    try:
        with pytest.raises(StoreError) as err:
            other.call(groups.group_roster, _clin, member.group_id)
        assert err.value.code == "data_key_error"
    finally:
        other.dispose()


def test_sql_injection_strings_are_stored_literally(store: Store) -> None:
    clin = make_user(store, "dr.ash")
    evil = "Robert'); DROP TABLE members;--"
    group = store.call(groups.create_group, clin, name=evil)
    store.call(
        groups.add_member, clin, group.id, real_name=evil, pseudonym="Wren", contact="1' OR '1'='1"
    )
    roster = store.call(groups.group_roster, clin, group.id)
    assert roster[0].real_name == evil and roster[0].contact == "1' OR '1'='1"
    assert store.call(groups.get_group, clin, group.id).name == evil
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Member)).scalar_one() == 1


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"real_name": "x" * 121}, "field_too_long"),
        ({"real_name": "bad \ud800 surrogate"}, "invalid_unicode"),
        ({"real_name": "tab\x00null"}, "invalid_characters"),
        ({"pseudonym": "R\u043ebin"}, "pseudonym_taken"),
        ({"pseudonym": "r o b i n"}, "pseudonym_taken"),
        ({"pseudonym": "Quillfeather"}, "pseudonym_contains_real_name"),
        ({"contact": "y" * 201}, "field_too_long"),
        ({"profile": "raw"}, "invalid_profile"),
    ],
)
def test_bad_member_input_changes_nothing(store: Store, fields: dict[str, str], code: str) -> None:
    clin, group, _member = _setup(store)
    before = store.call(groups.group_roster, clin, group.id)
    args = {"real_name": "Barnaby Thistlewood", "pseudonym": "Wren", **fields}
    with pytest.raises((InvalidInput, Conflict)) as err:
        store.call(groups.add_member, clin, group.id, **args)
    assert err.value.code == code
    assert "Araminta" not in err.value.message and "Quillfeather" not in err.value.message
    assert store.call(groups.group_roster, clin, group.id) == before


def test_pseudonym_change_is_checked_and_audited(store: Store) -> None:
    clin, group, member = _setup(store)
    other = store.call(
        groups.add_member, clin, group.id, real_name="Barnaby Thistlewood", pseudonym="Wren"
    )
    with pytest.raises(Conflict):
        store.call(groups.update_member, clin, group.id, other.id, pseudonym="R\u041eBIN")
    changed = store.call(groups.update_member, clin, group.id, other.id, pseudonym="Heron")
    assert changed.pseudonym == "Heron" and changed.participant_id == other.participant_id
    events = store.call(audit.list_events, action="pseudonym.changed")
    assert [(e.target, e.detail["from"], e.detail["to"]) for e in events] == [
        (other.id, "Wren", "Heron")
    ]


def test_clinician_of_another_group_is_refused(store: Store) -> None:
    _clin, group, member = _setup(store)
    stranger = make_user(store, "dr.other")
    for call in (
        lambda: store.call(groups.group_roster, stranger, group.id),
        lambda: store.call(groups.list_members, stranger, group.id),
        lambda: store.call(groups.update_member, stranger, group.id, member.id, pseudonym="Fern"),
        lambda: store.call(
            sessions.schedule,
            stranger,
            group.id,
            starts_at=store.clock().isoformat(),
            duration_min=60,
        ),
    ):
        with pytest.raises(StoreError) as err:
            call()
        assert err.value.code == "not_group_clinician"


def test_audit_log_refuses_update_and_delete(store: Store) -> None:
    _setup(store)
    before = store.call(audit.all_events)
    assert before
    for statement in ("UPDATE audit_events SET actor = 'someone else'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError):
            with store.engine.begin() as conn:
                conn.execute(text(statement))
    assert store.call(audit.all_events) == before


def test_session_transitions(store: Store) -> None:
    clin, group, _member = _setup(store)
    s = _session(store, clin, group.id)
    with pytest.raises(InvalidTransition) as err:
        store.call(sessions.transition, clin, s.id, "live")
    assert str(err.value) == 'Cannot move session from "scheduled" to "live"'
    with pytest.raises(GateClosed) as gate:
        store.call(sessions.transition, clin, s.id, "open", unmet=["hazard log not signed off"])
    assert gate.value.unmet == ["hazard log not signed off"]
    assert store.call(sessions.find_session, s.id).status == "scheduled"
    assert store.call(audit.list_events, action="session.open_refused")
    for to in ("open", "live", "ended"):
        assert store.call(sessions.transition, clin, s.id, to).status == to
    with pytest.raises(InvalidTransition):
        store.call(sessions.transition, clin, s.id, "open")


def test_invite_lifecycle(store: Store, clock: Clock) -> None:
    clin, group, member = _setup(store)
    s = _session(store, clin, group.id)
    issued = store.call(invites.issue, clin, s.id, member.id)
    assert len(issued.token) >= 43  # 256 bits, url-safe base64
    with store.engine.connect() as conn:
        stored = " ".join(str(v) for r in conn.execute(text("SELECT * FROM invites")) for v in r)
    assert issued.token not in stored
    r = store.call(invites.redeem, issued.token, address="10.0.0.1")
    assert (r.pseudonym, r.participant_id, r.session.id) == ("Robin", member.participant_id, s.id)
    with pytest.raises(InviteRefused) as err:
        store.call(invites.redeem, issued.token, address="10.0.0.2")
    assert err.value.code == "invite_already_redeemed"
    refused = store.call(audit.list_events, action="invite.refused")
    assert refused[0].detail["reason"] == "already_redeemed"
    # the holder can still reconnect
    assert r.resume
    again = store.call(invites.resume, r.resume)
    assert again.participant_id == member.participant_id and again.resume is None
    store.call(invites.revoke, clin, issued.invite.id)
    with pytest.raises(InviteRefused) as err:
        store.call(invites.resume, r.resume)
    assert err.value.code == "invite_revoked"
    with pytest.raises(InviteRefused) as err:
        store.call(invites.redeem, "not-a-token")
    assert err.value.code == "invite_not_found"


def test_invite_window(store: Store, clock: Clock) -> None:
    clin, group, member = _setup(store)
    s = store.call(
        sessions.schedule,
        clin,
        group.id,
        starts_at=(clock.now + timedelta(hours=2)).isoformat(),
        duration_min=60,
    )
    token = store.call(invites.issue, clin, s.id, member.id).token
    with pytest.raises(InviteRefused) as err:
        store.call(invites.redeem, token)
    assert err.value.code == "invite_not_yet_valid"
    clock.advance(hours=4)
    with pytest.raises(InviteRefused) as err:
        store.call(invites.redeem, token)
    assert err.value.code == "invite_expired"
    listed = store.call(invites.list_for_session, clin, s.id)
    assert [i.state for i in listed] == ["expired"]


def test_reissuing_revokes_the_earlier_link(store: Store) -> None:
    clin, group, member = _setup(store)
    s = _session(store, clin, group.id)
    first = store.call(invites.issue, clin, s.id, member.id).token
    second = store.call(invites.issue, clin, s.id, member.id).token
    with pytest.raises(InviteRefused) as err:
        store.call(invites.redeem, first)
    assert err.value.code == "invite_revoked"
    assert store.call(invites.redeem, second).pseudonym == "Robin"


def test_racing_redemptions_let_exactly_one_through(store: Store) -> None:
    clin, group, member = _setup(store)
    s = _session(store, clin, group.id)
    token = store.call(invites.issue, clin, s.id, member.id).token
    results: list[str] = []
    barrier = threading.Barrier(4)

    def attempt() -> None:
        barrier.wait()
        try:
            store.call(invites.redeem, token)
            results.append("ok")
        except InviteRefused as exc:
            results.append(exc.code)
        except DBAPIError:
            results.append("db_conflict")

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1, results


def test_attendance_and_did_not_attend(store: Store, clock: Clock) -> None:
    clin, group, member = _setup(store)
    other = store.call(
        groups.add_member, clin, group.id, real_name="Barnaby Thistlewood", pseudonym="Wren"
    )
    s = _session(store, clin, group.id)
    assert store.call(
        sessions.record_checklist,
        s.id,
        member.participant_id,
        {"private_space": True, "headphones": True},
    )
    assert store.call(sessions.record_join, s.id, member.participant_id)
    assert not store.call(sessions.record_join, s.id, "p_not_a_member")
    clock.advance(minutes=50)
    assert store.call(sessions.record_leave, s.id, member.participant_id)
    for to in ("open", "live", "ended"):
        store.call(sessions.transition, clin, s.id, to)
    report = {r["pseudonym"]: r for r in store.call(sessions.attendance_report, clin, s.id)}
    assert report["Robin"]["status"] == "attended"
    assert report["Robin"]["checklist"] == {"private_space": True, "headphones": True}
    assert report["Wren"]["status"] == "did_not_attend"
    assert other.id == report["Wren"]["member_id"]


def test_login_backoff_per_username_and_per_address(store: Store, clock: Clock) -> None:
    make_user(store, "dr.ash")
    for _ in range(accounts.FREE_FAILURES_PER_USER):
        with pytest.raises(AuthFailed):
            accounts.login(store, username="dr.ash", password="wrong guess!", address="a")
    with pytest.raises(AuthFailed):
        accounts.login(store, username="dr.ash", password="wrong guess!", address="a")
    # now locked: even the right password waits
    with pytest.raises(Throttled) as err:
        accounts.login(store, username="dr.ash", password=PASSWORD, address="b")
    assert err.value.retry_after_s >= 1
    clock.advance(seconds=err.value.retry_after_s)
    assert accounts.login(store, username="dr.ash", password=PASSWORD, address="b")
    # one address guessing many usernames is slowed down too
    for i in range(accounts.FREE_FAILURES_PER_ADDRESS + 1):
        with pytest.raises(AuthFailed):
            accounts.login(store, username=f"guess{i}", password="x" * 12, address="c")
    with pytest.raises(Throttled):
        accounts.login(store, username="dr.ash", password=PASSWORD, address="c")
    assert store.call(audit.list_events, action="login.failed")


def test_group_rules_are_validated(store: Store) -> None:
    clin = make_user(store, "dr.ash")
    with pytest.raises(InvalidInput) as err:
        store.call(groups.create_group, clin, name="G", rules={"max_participants": 500})
    assert err.value.code == "invalid_rules"
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Group)).scalar_one() == 0
    group = store.call(groups.create_group, clin, name="G", rules={"chat_enabled": False})
    assert group.rules["chat_enabled"] is False and group.rules["lobby_required"] is True


def test_open_store_twice_on_one_database(db_url: str, clock: Clock) -> None:
    first = open_store(db_url, DATA_KEY, clock=clock)
    make_user(first, "dr.ash")
    first.dispose()
    second = open_store(db_url, DATA_KEY, clock=clock)
    try:
        assert second.call(accounts.count_users) == 1
        with second.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == 1
    finally:
        second.dispose()


def test_attendance_is_made_once_when_a_join_and_an_agreement_arrive_together(
    store: Store,
) -> None:
    """A join and the agreement's answers written at the same moment, from different
    threads, make one attendance row between them: neither fails on the row's key, and
    every join is counted."""
    clin, group, _ = _setup(store)
    people = [
        store.call(groups.add_member, clin, group.id, real_name=f"Real Person {name[0]}x",
                   pseudonym=name)
        for name in ("Ash", "Bea", "Cal", "Dot", "Eli", "Fay", "Gus", "Hal", "Ivy", "Jem",
                     "Kai", "Lou")
    ]
    s = _session(store, clin, group.id)
    writes = [
        (sessions.record_join, (s.id, p.participant_id)) for p in people
    ] + [
        (sessions.record_checklist, (s.id, p.participant_id, {"headphones": True}))
        for p in people
    ] + [
        (sessions.record_join, (s.id, p.participant_id)) for p in people
    ]
    start = threading.Barrier(len(writes))
    failures: list[BaseException] = []

    def write(fn: object, args: tuple[object, ...]) -> None:
        start.wait()
        try:
            assert store.call(fn, *args)  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 (collected and reported below)
            failures.append(exc)

    threads = [threading.Thread(target=write, args=w) for w in writes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    report = {r["pseudonym"]: r for r in store.call(sessions.attendance_report, clin, s.id)}
    for p in people:
        row = report[p.pseudonym]
        assert row["status"] == "attended" and row["joins"] == 2, row
        assert row["checklist"] == {"headphones": True}
