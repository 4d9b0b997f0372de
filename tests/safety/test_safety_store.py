"""The safety records in the store, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, inspect, select

from session_rules.hazard_log import content_hash
from tests.control.conftest import make_user
from web.store import Store, safety
from web.store.errors import Conflict, Forbidden, InvalidInput, NotFound
from web.store.models import HazardSignOff

from .conftest import REPO_LOG

LOG = REPO_LOG.read_text(encoding="utf-8")
HASH = content_hash(LOG.encode("utf-8"))


def test_safety_tables_are_migrated(store: Store) -> None:
    with store.engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
    assert {
        "hazard_sign_offs",
        "workshop_answers",
        "host_checklists",
        "evidence_runs",
        "incidents",
        "incident_hazards",
    } <= tables


def test_two_sign_offs_at_once_leave_one_record(store: Store) -> None:
    csos = [make_user(store, f"cso{i}", "cso") for i in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[Any] = [None, None]

    def sign(tx: Any, index: int) -> Any:
        # both transactions are open and have checked for an earlier sign-off
        # before either inserts: only the unique constraint can settle it
        found = safety.signed_off_hashes(tx)
        barrier.wait(timeout=10)
        assert HASH not in found
        return safety.sign_off(
            tx, csos[index], content_hash=HASH, comment=f"reviewed {index}", log_text=LOG
        )

    def worker(index: int) -> None:
        try:
            outcomes[index] = store.call(sign, index)
        except Exception as exc:  # the loser's error is the outcome under test
            outcomes[index] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    won = [o for o in outcomes if isinstance(o, safety.SignOff)]
    lost = [o for o in outcomes if isinstance(o, Exception)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert isinstance(lost[0], Conflict) and lost[0].code == "already_signed_off"
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(HazardSignOff)).scalar_one() == 1
    (record,) = store.call(safety.list_sign_offs)
    assert record.content_hash == HASH and record.signed_by == won[0].signed_by
    assert store.call(safety.last_sign_off).log_text == LOG  # type: ignore[union-attr]


def test_sign_off_needs_a_cso_a_hash_and_a_comment(store: Store) -> None:
    clinician = make_user(store, "dr.a")
    admin = make_user(store, "admin.a", "admin")
    cso = make_user(store, "cso.a", "cso")
    for user in (clinician, admin):
        with pytest.raises(Forbidden):
            store.call(safety.sign_off, user, content_hash=HASH, comment="ok", log_text=LOG)
    with pytest.raises(InvalidInput) as bad:
        store.call(safety.sign_off, cso, content_hash="abc", comment="ok", log_text=LOG)
    assert bad.value.code == "invalid_hash"
    for comment in ("", "   ", None, 5, "x" * 2001):
        with pytest.raises(InvalidInput) as bad:
            store.call(safety.sign_off, cso, content_hash=HASH, comment=comment, log_text=LOG)
        assert bad.value.code == "invalid_comment"
    assert store.call(safety.list_sign_offs) == []


def test_incidents_are_linked_to_hazards_and_filtered(store: Store) -> None:
    store.call(safety.record_incident, "s_1", "fail_closed_placeholder", "p_abc", "mask stalled")
    store.call(safety.record_incident, "s_1", "someone_came_in", "p_def", "pressed")
    store.call(safety.record_incident, "s_2", "removal", None, "=HYPERLINK(x)")
    everything = store.call(safety.list_incidents)
    assert [i.kind for i in everything] == ["removal", "someone_came_in", "fail_closed_placeholder"]
    assert everything[1].hazard_ids == ("HAZ-001", "HAZ-011")
    assert [i.kind for i in store.call(safety.list_incidents, hazard_id="HAZ-001")] == [
        "someone_came_in"
    ]
    assert [i.session_id for i in store.call(safety.list_incidents, kind="removal")] == ["s_2"]
    assert len(store.call(safety.list_incidents, session_id="s_1")) == 2
    csv_text = safety.incidents_csv(everything)
    assert "HAZ-003 HAZ-007" in csv_text and "'=HYPERLINK(x)" in csv_text


def test_bad_incidents_are_refused_and_nothing_is_stored(store: Store) -> None:
    with pytest.raises(InvalidInput) as bad:
        store.call(safety.record_incident, "s_1", "spilt_tea", "p_1", "x")
    assert bad.value.code == "unknown_incident_kind"
    # a participant id is an opaque token: a name with a space is not one
    with pytest.raises(InvalidInput) as bad:
        store.call(safety.record_incident, "s_1", "removal", "Araminta Quillfeather", "x")
    assert bad.value.code == "invalid_participant_id"
    assert store.call(safety.list_incidents) == []


def test_workshop_answers_record_who_and_when(store: Store) -> None:
    cso = make_user(store, "cso.w", "cso")
    clinician = make_user(store, "dr.w")
    ids = {"non_members", "consent"}
    made = store.call(
        safety.answer_workshop, cso, "consent", " Recorded at intake. ", known_ids=ids
    )
    assert (made.answer, made.answered_by_username) == ("Recorded at intake.", "cso.w")
    assert made.answered_at == store.clock()
    with pytest.raises(Forbidden):
        store.call(safety.answer_workshop, clinician, "consent", "no", known_ids=ids)
    with pytest.raises(NotFound):
        store.call(safety.answer_workshop, cso, "made_up", "yes", known_ids=ids)
    with pytest.raises(InvalidInput):
        store.call(safety.answer_workshop, cso, "consent", "  ", known_ids=ids)
    (answer,) = store.call(safety.workshop_answers)
    assert answer.answer == "Recorded at intake."
