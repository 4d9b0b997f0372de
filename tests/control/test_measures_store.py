"""Measures, safeguarding details and feedback in the store, on SQLite and on a real
PostgreSQL server: encrypted at rest, checked, replay-proof, shown to the group's clinicians
with change since the last session, exported as safe CSV, every read audited."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select, text

from web.cli import main as confide
from web.store import (
    Store,
    arrivals,
    audit,
    clinical,
    groups,
    invites,
    measures,
    safety,
    sessions,
)
from web.store import feedback as feedback_store
from web.store.accounts import UserInfo
from web.store.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    InviteRefused,
    NotFound,
    StoreError,
)
from web.store.keyring import KeyFile, Keyring, read_key_file
from web.store.measures import Response
from web.store.models import Base
from web.store.rotation import ENCRYPTED_FIELDS, values_by_key

from .conftest import Clock, make_user

LOCATION = "Flat 3B, 14 Larkspur Terrace"
CONTACT = "07700 900461"
EMERGENCY = "Sister, Philippa Quillfeather, 07700 900999"
REAL = {"Robin": "Araminta Quillfeather", "Wren": "Barnaby Thistlewood",
        "Kit": "Cordelia Ravensworth", "Ash": "Dorian Fairweather"}
ALL = {"measures": ["phq9", "gad7", "wsas", "session_rating"], "feedback": "anonymous"}


@dataclass
class Setup:
    clin: UserInfo
    group_id: str
    session_id: str
    members: dict[str, groups.MemberInfo]
    secrets: dict[str, str]


def _setup(store: Store, rules: dict[str, object] | None = None, *,
           names: tuple[str, ...] = ("Robin", "Wren"), username: str = "dr.ash") -> Setup:
    clin = make_user(store, username)
    group = store.call(groups.create_group, clin, name="Tuesday group", rules=rules or ALL)
    members = {
        name: store.call(groups.add_member, clin, group.id, real_name=REAL[name],
                         pseudonym=name, contact=CONTACT, emergency_contact=EMERGENCY)
        for name in names
    }
    found = _open(store, clin, group.id)
    return Setup(clin, group.id, found, members, _redeem_all(store, clin, found, members))


def _open(store: Store, clin: UserInfo, group_id: str) -> str:
    found = store.call(sessions.schedule, clin, group_id, starts_at=store.clock().isoformat(),
                       duration_min=60)
    store.call(sessions.transition, clin, found.id, "open", unmet=[])
    return found.id


def _redeem_all(store: Store, clin: UserInfo, session_id: str,
                members: dict[str, groups.MemberInfo]) -> dict[str, str]:
    out = {}
    for name, member in members.items():
        issued = store.call(invites.issue, clin, session_id, member.id)
        redeemed = store.call(invites.redeem, issued.token)
        assert redeemed.resume is not None
        out[name] = redeemed.resume
    return out


def _both(phq9: list[int], gad7: list[int]) -> list[Response]:
    return [Response("phq9", phq9), Response("gad7", gad7),
            Response("wsas", skipped="rather_not")]


def _submit(store: Store, s: Setup, name: str, responses: list[Response],
            submission: str = "sub-0001", **kwargs: object) -> measures.Saved:
    return store.call(measures.submit, s.secrets[name], s.session_id, submission, responses,
                      timing=kwargs.get("timing", "before"))  # type: ignore[arg-type]


def test_answers_location_and_contacts_are_encrypted_at_rest(store: Store) -> None:
    s = _setup(store)
    store.call(arrivals.record_location, s.secrets["Robin"], s.session_id, LOCATION)
    _submit(store, s, "Robin", _both([1, 2, 3, 0, 1, 2, 3, 0, 1], [3, 2, 1, 0, 1, 2, 3]))
    with store.engine.connect() as conn:
        dump = []
        for table in ("members", "measure_responses", "arrival_checks", "audit_events",
                      "incidents"):
            dump += [str(v) for row in conn.execute(text(f"SELECT * FROM {table}"))
                     for v in row]
        tables = set(inspect(conn).get_table_names())
    joined = " ".join(dump)
    for secret in ("Larkspur", "07700", "Philippa", "Moderate", "[1, 2, 3", '"total"'):
        assert secret not in joined, secret
    assert {"measure_responses", "arrival_checks", "session_feedback",
            "feedback_receipts"} <= tables


def test_item_9_above_zero_is_an_incident_linked_to_its_hazard(store: Store) -> None:
    s = _setup(store)
    saved = _submit(store, s, "Robin", _both([0, 0, 0, 0, 0, 0, 0, 0, 1], [0] * 7))
    assert saved.risk_flag and saved.participant_id == s.members["Robin"].participant_id
    found = store.call(safety.list_incidents, kind="risk_indicator")
    assert [(i.participant_id, i.hazard_ids) for i in found] == [
        (s.members["Robin"].participant_id, ("HAZ-017",))]
    quiet = _submit(store, s, "Wren", _both([3] * 8 + [0], [3] * 7))
    assert not quiet.risk_flag
    assert len(store.call(safety.list_incidents, kind="risk_indicator")) == 1


def test_bad_submissions_get_typed_errors_and_keep_nothing(store: Store) -> None:
    s = _setup(store)
    other = _setup(store, names=("Kit",), username="dr.birch")
    bad: list[tuple[object, type[Exception], str]] = [
        # a partial form
        (lambda: _submit(store, s, "Robin", _both([1] * 8, [0] * 7)), InvalidInput,
         "measure_incomplete"),
        # an out-of-range answer
        (lambda: _submit(store, s, "Robin", _both([1] * 8 + [4], [0] * 7)), InvalidInput,
         "answer_out_of_range"),
        # a questionnaire left out, one not offered, one twice, neither answered nor skipped
        (lambda: _submit(store, s, "Robin", [Response("phq9", [0] * 9)]), InvalidInput,
         "measure_missing"),
        (lambda: _submit(store, s, "Robin", [*_both([0] * 9, [0] * 7),
                                             Response("bdi2", [0])]), InvalidInput,
         "measure_not_offered"),
        (lambda: _submit(store, s, "Robin", [*_both([0] * 9, [0] * 7),
                                             Response("gad7", [0] * 7)]), InvalidInput,
         "duplicate_measure"),
        (lambda: _submit(store, s, "Robin", [Response("phq9"), Response("gad7", [0] * 7),
                                             Response("wsas", skipped="no_time")]),
         InvalidInput, "invalid_response"),
        (lambda: _submit(store, s, "Robin", [Response("phq9", skipped="=cmd|'/c calc'!A1"),
                                             Response("gad7", [0] * 7),
                                             Response("wsas", skipped="no_time")]),
         InvalidInput, "invalid_skip_reason"),
        # the session rating is an after-session form
        (lambda: _submit(store, s, "Robin", [*_both([0] * 9, [0] * 7),
                                             Response("session_rating", [1] * 4)]),
         InvalidInput, "measure_not_offered"),
        # someone not in this session: a member of another group, and nobody at all
        (lambda: store.call(measures.submit, other.secrets["Kit"], s.session_id, "sub-0001",
                            _both([0] * 9, [0] * 7), timing="before"), Forbidden,
         "not_in_session"),
        (lambda: store.call(measures.submit, "not-a-secret", s.session_id, "sub-0001",
                            _both([0] * 9, [0] * 7), timing="before"), InviteRefused,
         "resume_invalid"),
        (lambda: _submit(store, s, "Robin", _both([0] * 9, [0] * 7), submission="x"),
         InvalidInput, "invalid_submission_id"),
    ]
    for call, kind, code in bad:
        with pytest.raises(kind) as err:
            call()  # type: ignore[operator]
        assert err.value.code == code  # type: ignore[attr-defined]
    view = store.call(clinical.session_view, s.clin, s.session_id)
    robin = view[s.members["Robin"].participant_id]
    assert {m["status"] for m in robin["measures"]} == {"not_given"}

    # a good submission, then the same submission again (a replay), then a second one
    _submit(store, s, "Robin", _both([0] * 9, [0] * 7))
    with pytest.raises(Conflict) as err:
        _submit(store, s, "Robin", _both([0] * 9, [0] * 7))
    assert err.value.code == "submission_replayed"
    with pytest.raises(Conflict) as err:
        _submit(store, s, "Robin", _both([3] * 9, [3] * 7), submission="sub-0002")
    assert err.value.code == "measure_already_submitted"
    view = store.call(clinical.session_view, s.clin, s.session_id)
    phq9 = view[s.members["Robin"].participant_id]["measures"][0]
    assert (phq9["instrument"], phq9["total"]) == ("phq9", 0)
    # after the session: no more answers before it
    store.call(sessions.transition, s.clin, s.session_id, "ended")
    with pytest.raises(InviteRefused) as err:
        _submit(store, s, "Wren", _both([0] * 9, [0] * 7))
    assert err.value.code == "invite_expired"


def test_the_clinician_sees_totals_bands_change_and_where_the_member_is(
        store: Store, clock: Clock) -> None:
    s = _setup(store)
    robin = s.members["Robin"]
    # last week: PHQ-9 16 (moderately severe), GAD-7 12 (moderate): at caseness
    _submit(store, s, "Robin", _both([2, 2, 2, 2, 2, 2, 2, 1, 1], [2, 2, 2, 2, 2, 1, 1]))
    store.call(sessions.transition, s.clin, s.session_id, "ended")
    clock.advance(days=7)
    today = _open(store, s.clin, s.group_id)
    secrets = _redeem_all(store, s.clin, today, {"Robin": robin})
    store.call(arrivals.record_location, secrets["Robin"], today, LOCATION)
    store.call(measures.submit, secrets["Robin"], today, "sub-0003",
               _both([1, 1, 1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1]), timing="before")
    view = store.call(clinical.session_view, s.clin, today)
    mine = view[robin.participant_id]
    assert (mine["pseudonym"], mine["location"], mine["contact"], mine["emergency_contact"]) == (
        "Robin", LOCATION, CONTACT, EMERGENCY)
    by = {m["instrument"]: m for m in mine["measures"]}
    assert (by["phq9"]["total"], by["phq9"]["band"], by["phq9"]["previous_total"]) == (
        7, "Mild", 16)
    assert (by["phq9"]["change"], by["phq9"]["difference"]) == ("reliable_improvement", -9)
    assert (by["gad7"]["total"], by["gad7"]["band"], by["gad7"]["change"]) == (
        7, "Mild", "reliable_improvement")
    assert by["wsas"]["status"] == "skipped"
    assert by["wsas"]["skip_reason"] == "I would rather not answer today"
    assert mine["progress"]["recovery"] is True and mine["progress"]["reliable_recovery"]
    assert mine["risk_flag"] is False and mine["caseness"] is False
    # Wren has not been today: nothing of Robin's is under Wren's id
    wren = view[s.members["Wren"].participant_id]
    assert wren["location"] is None and {m["status"] for m in wren["measures"]} == {"not_given"}
    # attendance says what was given, never what it says
    (robin_row,) = [a for a in store.call(sessions.attendance_report, s.clin, today)
                    if a["member_id"] == robin.id]
    assert robin_row["measures"] == {"phq9": "completed", "gad7": "completed",
                                     "wsas": "skipped"}
    assert robin_row["location_given"] is True
    viewed = [e for e in store.call(audit.all_events) if e.action == "clinical.viewed"]
    assert viewed and viewed[-1].actor == f"user:{s.clin.id}"
    # another clinician, not of this group, sees nothing
    stranger = make_user(store, "dr.elm")
    with pytest.raises(Forbidden):
        store.call(clinical.session_view, stranger, today)


def test_safeguarding_details_reach_only_members_of_the_session(store: Store) -> None:
    s = _setup(store)
    store.call(arrivals.record_location, s.secrets["Robin"], s.session_id, LOCATION)
    robin = store.call(arrivals.safeguarding_details, s.session_id,
                       s.members["Robin"].participant_id)
    assert robin is not None
    assert (robin["contact"], robin["emergency_contact"], robin["location"]) == (
        CONTACT, EMERGENCY, LOCATION)
    assert store.call(arrivals.safeguarding_details, s.session_id, "p_nobody") is None
    with pytest.raises(InvalidInput) as err:
        store.call(arrivals.record_location, s.secrets["Wren"], s.session_id, "  ")
    assert err.value.code == "field_required"
    with pytest.raises(InvalidInput) as err:
        store.call(arrivals.record_location, s.secrets["Wren"], s.session_id, "x" * 301)
    assert err.value.code == "field_too_long"


def test_export_has_every_item_and_total_and_is_safe_in_a_spreadsheet(store: Store) -> None:
    s = _setup(store)
    # pseudonyms start with a letter; a row written some other way (an old import, a
    # hand-edited database) must still never reach a spreadsheet as a formula
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE members SET pseudonym = :p WHERE id = :i"),
                     {"p": '=HYPERLINK("http://x.test","Wren")', "i": s.members["Wren"].id})
    _submit(store, s, "Robin", _both([0, 1, 2, 3, 0, 1, 2, 3, 1], [1, 1, 1, 1, 1, 1, 1]))
    _submit(store, s, "Wren", [Response("phq9", skipped="upsetting"),
                               Response("gad7", [0] * 7), Response("wsas", [None, 1, 2, 3, 4])])
    text_csv, rows = store.call(measures.export_csv, s.clin, session_id=s.session_id)
    table = list(csv.DictReader(io.StringIO(text_csv)))
    assert rows == 2 and len(table) == 2
    header = next(csv.reader(io.StringIO(text_csv)))
    assert header[:4] == ["member_id", "pseudonym", "date", "session_id"]
    assert [f"phq9_{n}" for n in range(1, 10)] == header[5:14]
    assert "phq9_total" in header and "gad7_total" in header and "wsas_total" in header
    by = {r["member_id"]: r for r in table}
    robin = by[s.members["Robin"].id]
    assert [robin[f"phq9_{n}"] for n in range(1, 10)] == ["0", "1", "2", "3", "0", "1", "2",
                                                          "3", "1"]
    assert (robin["phq9_total"], robin["phq9_band"], robin["gad7_total"]) == ("13", "Moderate",
                                                                              "7")
    assert robin["date"] == store.clock().date().isoformat()
    wren = by[s.members["Wren"].id]
    assert wren["pseudonym"] == '\'=HYPERLINK("http://x.test","Wren")'  # never a formula
    assert (wren["phq9_status"], wren["phq9_total"], wren["wsas_1"], wren["wsas_total"]) == (
        "skipped", "", "", "10")
    assert wren["phq9_skip_reason"] == "I find these questions upsetting today"
    assert not any(v and v[0] in "=+-@" for r in table for v in r.values())
    group_csv, group_rows = store.call(measures.export_csv, s.clin, group_id=s.group_id)
    assert group_rows == 2 and group_csv.splitlines()[0] == text_csv.splitlines()[0]
    exported = [e for e in store.call(audit.all_events) if e.action == "measures.exported"]
    assert [e.detail["rows"] for e in exported] == [2, 2]
    assert exported[0].detail["session"] == s.session_id
    stranger = make_user(store, "dr.oak")
    with pytest.raises(Forbidden):
        store.call(measures.export_csv, stranger, session_id=s.session_id)
    with pytest.raises(NotFound):
        store.call(measures.export_csv, s.clin, session_id="s_nope")


def test_feedback_anonymous_or_named_as_the_group_chose(store: Store) -> None:
    s = _setup(store)
    with pytest.raises(InviteRefused):
        # not before the session has ended? it may be given once the session is under way;
        # a scheduled session (not yet open) has no feedback: the forms are closed
        store.call(feedback_store.submit, "nobody", s.session_id, {"listened": 4}, None)
    store.call(sessions.transition, s.clin, s.session_id, "ended")
    anonymous = store.call(feedback_store.submit, s.secrets["Robin"], s.session_id,
                           {"listened": 4, "safe": 3}, "Thank you, it helped.")
    assert anonymous is True
    with pytest.raises(Conflict) as err:
        store.call(feedback_store.submit, s.secrets["Robin"], s.session_id, {"safe": 1}, None)
    assert err.value.code == "feedback_already_given"
    for answers, comment, code in [({"listened": 5}, None, "answer_out_of_range"),
                                   ({"colour": 1}, None, "unknown_question"),
                                   ({}, "   ", "feedback_empty")]:
        with pytest.raises(InvalidInput) as err:
            store.call(feedback_store.submit, s.secrets["Wren"], s.session_id, answers, comment)
        assert err.value.code == code
    listed = store.call(feedback_store.for_session, s.clin, s.session_id)
    assert listed == [{"member_id": None, "pseudonym": None,
                       "date": store.clock().date().isoformat(),
                       "answers": {"listened": "At all times", "safe": "Most of the time"},
                       "comment": "Thank you, it helped."}]
    given = [e for e in store.call(audit.all_events) if e.action == "feedback.given"]
    assert given and "member" not in given[0].detail
    with store.engine.connect() as conn:
        stored = " ".join(str(v) for row in conn.execute(text("SELECT * FROM session_feedback"))
                          for v in row)
    assert s.members["Robin"].id not in stored and "helped" not in stored

    named = _setup(store, {"feedback": "named"}, names=("Kit",), username="dr.yew")
    store.call(sessions.transition, named.clin, named.session_id, "ended")
    assert store.call(feedback_store.submit, named.secrets["Kit"], named.session_id,
                      {"online": 2}, None) is False
    listed = store.call(feedback_store.for_session, named.clin, named.session_id)
    assert [(f["pseudonym"], f["answers"]) for f in listed] == [("Kit", {"online": "Sometimes"})]
    off = _setup(store, {"feedback": "off"}, names=("Ash",), username="dr.fir")
    store.call(sessions.transition, off.clin, off.session_id, "ended")
    with pytest.raises(InvalidInput) as err:
        store.call(feedback_store.submit, off.secrets["Ash"], off.session_id, {"online": 2}, None)
    assert err.value.code == "feedback_not_offered"


def test_emergency_contact_is_encrypted_and_for_the_roster_only(store: Store) -> None:
    s = _setup(store, names=("Robin",))
    roster = store.call(groups.group_roster, s.clin, s.group_id)
    assert roster[0].to_json()["emergency_contact"] == EMERGENCY
    assert "emergency_contact" not in s.members["Robin"].to_json()
    store.call(groups.update_member, s.clin, s.group_id, s.members["Robin"].id,
               clear_emergency_contact=True)
    assert store.call(groups.group_roster, s.clin, s.group_id)[0].emergency_contact is None


@pytest.mark.parametrize(("value", "cell_text"), [
    ("=1+1", "'=1+1"), ("+44 7700", "'+44 7700"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"), ("  =1", "'  =1"), ("|calc", "'|calc"), ("Robin", "Robin"),
    (None, ""), (7, "7"), (True, "yes"),
])
def test_csv_cells_never_start_a_formula(value: object, cell_text: str) -> None:
    from web.store.spreadsheet import cell

    assert cell(value) == cell_text


def _everything_the_clinician_reads(store: Store, s: Setup) -> dict[str, object]:
    text_csv, _ = store.call(measures.export_csv, s.clin, session_id=s.session_id)
    return {
        "view": store.call(clinical.session_view, s.clin, s.session_id),
        "roster": [m.to_json() for m in store.call(groups.group_roster, s.clin, s.group_id)],
        "feedback": store.call(feedback_store.for_session, s.clin, s.session_id),
        "export": text_csv,
    }


def test_every_encrypted_column_is_rotated_and_backed_up() -> None:
    # rotation and backup checks walk ENCRYPTED_FIELDS: a column missing there would stay
    # under a retired key and be lost with it
    encrypted = {(table.name, col.name) for table in Base.metadata.sorted_tables
                 for col in table.columns if col.name.endswith("_enc")}
    listed = {(f.model.__tablename__, f.column) for f in ENCRYPTED_FIELDS}
    assert encrypted == listed
    assert {("measure_responses", "result_enc"), ("arrival_checks", "location_enc"),
            ("session_feedback", "answers_enc"), ("members", "emergency_contact_enc")} <= listed


def _every_encrypted_value(store: Store) -> dict[tuple[str, str, str], str]:
    """Every value of every encrypted column, decrypted with its writer's context:
    (table, column, row id) → plaintext. Raises if any one does not decrypt."""
    def read(tx: Any) -> dict[tuple[str, str, str], str]:
        out = {}
        for field in ENCRYPTED_FIELDS:
            col = getattr(field.model, field.column)
            for row in tx.db.scalars(select(field.model).where(col.is_not(None))):
                out[(field.model.__tablename__, field.column, row.id)] = tx.cipher.decrypt(
                    getattr(row, field.column), context=field.context(row))
        return out

    return store.call(read)


def test_rotate_data_key_reencrypts_measures_locations_feedback_and_contacts(
        db_url: str, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "secrets" / "confide-data-key"
    key_file.parent.mkdir()
    old_secret = "first-data-key-0123456789abcdef"
    key_file.write_text(Keyring("k1", {"k1": old_secret}).dump())
    store = Store(db_url, KeyFile(key_file), clock=clock)
    store.migrate()
    s = _setup(store, {**ALL, "feedback": "named"})
    store.call(arrivals.record_location, s.secrets["Robin"], s.session_id, LOCATION)
    _submit(store, s, "Robin", _both([1, 2, 3, 0, 1, 2, 3, 0, 1], [3, 2, 1, 0, 1, 2, 3]))
    _submit(store, s, "Wren", [Response("phq9", [0] * 9), Response("gad7", skipped="upsetting"),
                               Response("wsas", [1, 1, 2, 3, 4])])
    store.call(sessions.transition, s.clin, s.session_id, "ended")
    store.call(feedback_store.submit, s.secrets["Robin"], s.session_id, {"listened": 4},
               "The breathing exercise helped.")
    before = _everything_the_clinician_reads(store, s)
    counts = store.call(values_by_key)
    # each kind of encrypted value is there to be rotated
    with store.engine.connect() as conn:
        for field in ENCRYPTED_FIELDS:
            col = field.model.__table__.c[field.column]
            assert conn.execute(select(col).where(col.is_not(None))).first(), field.column
    assert set(counts) == {"k1"}
    plain_before = _every_encrypted_value(store)
    assert len(plain_before) == counts["k1"]

    # the real command, as the install guide runs it
    monkeypatch.setenv("CONFIDE_DATA_KEY_FILE", str(key_file))
    monkeypatch.setenv("CONFIDE_DATABASE_URL", db_url)
    monkeypatch.delenv("CONFIDE_DATA_KEY", raising=False)
    assert confide(["admin", "rotate-data-key", "--batch-size", "4",
                    "--data-dir", str(tmp_path / "data")]) == 0
    assert "rotated to data key k2" in capsys.readouterr().out
    assert read_key_file(key_file).keys.keys() == {"k2"}
    assert store.call(values_by_key) == {"k2": counts["k1"]}
    # nothing is left under the old key, by every *_enc column of every table
    with store.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for col in table.columns:
                if col.name.endswith("_enc"):
                    for (stored,) in conn.execute(select(col).where(col.is_not(None))):
                        assert stored.startswith("k2:"), (table.name, col.name)
    # a store opened afresh on the rotated key file decrypts every value of every encrypted
    # column to what it was before
    fresh = Store(db_url, KeyFile(key_file), clock=clock)
    assert _every_encrypted_value(fresh) == plain_before
    fresh.dispose()
    # the clinician reads exactly what they read before
    assert _everything_the_clinician_reads(store, s) == before
    # and the old key alone opens none of it
    old = Store(db_url, Keyring("k1", {"k1": old_secret}), clock=clock)
    readers: list[Callable[[], object]] = [
        lambda: old.call(clinical.session_view, s.clin, s.session_id),
        lambda: old.call(groups.group_roster, s.clin, s.group_id),
        lambda: old.call(feedback_store.for_session, s.clin, s.session_id),
        lambda: old.call(measures.export_csv, s.clin, session_id=s.session_id),
        lambda: old.call(arrivals.safeguarding_details, s.session_id,
                         s.members["Robin"].participant_id),
    ]
    for read in readers:
        with pytest.raises(StoreError) as err:
            read()
        assert err.value.code == "data_key_error"
    old.dispose()
    store.dispose()
