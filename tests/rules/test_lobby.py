"""The lobby state machine: legal and illegal transitions, reconnect grace."""

from __future__ import annotations

import pytest

from session_rules.commands import decide_arrival
from session_rules.errors import IllegalTransition
from session_rules.lobby import RECONNECT_GRACE_S, LobbyEntry, LobbyState
from session_rules.rules import GroupRules
from session_rules.session import SessionState, apply_effects

S = LobbyState


def _entry_in(state: LobbyState) -> LobbyEntry:
    entry = LobbyEntry()
    paths: dict[LobbyState, list[str]] = {
        S.PREJOIN: [],
        S.WAITING: ["confirm_checklist"],
        S.ADMITTED: ["confirm_checklist", "admit"],
        S.DECLINED: ["confirm_checklist", "decline"],
        S.REMOVED: ["confirm_checklist", "admit", "remove"],
        S.LEFT: ["leave"],
        S.DISCONNECTED: ["confirm_checklist", "admit", "disconnect"],
    }
    for action in paths[state]:
        getattr(entry, action)(0.0)
    assert entry.state is state
    return entry


LEGAL = [
    (S.PREJOIN, "confirm_checklist", S.WAITING),
    (S.PREJOIN, "enter_as_host", S.ADMITTED),
    (S.PREJOIN, "decline", S.DECLINED),
    (S.PREJOIN, "remove", S.REMOVED),
    (S.PREJOIN, "leave", S.LEFT),
    (S.PREJOIN, "disconnect", S.DISCONNECTED),
    (S.WAITING, "admit", S.ADMITTED),
    (S.WAITING, "decline", S.DECLINED),
    (S.WAITING, "remove", S.REMOVED),
    (S.WAITING, "leave", S.LEFT),
    (S.WAITING, "disconnect", S.DISCONNECTED),
    (S.ADMITTED, "send_to_lobby", S.WAITING),
    (S.ADMITTED, "remove", S.REMOVED),
    (S.ADMITTED, "leave", S.LEFT),
    (S.ADMITTED, "disconnect", S.DISCONNECTED),
    (S.REMOVED, "readmit", S.PREJOIN),
    (S.DECLINED, "readmit", S.PREJOIN),
    (S.LEFT, "return_after_leaving", S.PREJOIN),
    (S.DISCONNECTED, "remove", S.REMOVED),
    (S.DISCONNECTED, "leave", S.LEFT),
    (S.DISCONNECTED, "reconnect", S.ADMITTED),
]


@pytest.mark.parametrize(("start", "action", "end"), LEGAL)
def test_legal_transitions(start: LobbyState, action: str, end: LobbyState) -> None:
    entry = _entry_in(start)
    assert getattr(entry, action)(1.0) is end
    assert entry.state is end and entry.changed_at == 1.0


ACTIONS = ["confirm_checklist", "enter_as_host", "admit", "decline", "send_to_lobby", "remove",
           "readmit", "leave", "disconnect", "reconnect", "return_after_leaving"]
ILLEGAL = [
    (start, action)
    for start in S
    for action in ACTIONS
    if (start, action) not in {(s, a) for s, a, _ in LEGAL}
]


@pytest.mark.parametrize(("start", "action"), ILLEGAL)
def test_illegal_transitions_raise_and_quote_the_state(start: LobbyState, action: str) -> None:
    entry = _entry_in(start)
    with pytest.raises(IllegalTransition) as err:
        getattr(entry, action)(1.0)
    assert err.value.message == f'Cannot "{action}" a participant in state "{start.value}"'
    assert entry.state is start


def test_no_lobby_rule_admits_straight_after_the_checklist() -> None:
    entry = LobbyEntry()
    assert entry.confirm_checklist(0.0, lobby_required=False) is S.ADMITTED


@pytest.mark.parametrize(
    ("away_s", "back_to"),
    [(0.5, S.ADMITTED), (RECONNECT_GRACE_S - 0.01, S.ADMITTED), (RECONNECT_GRACE_S, S.ADMITTED),
     (RECONNECT_GRACE_S + 0.01, S.WAITING), (600.0, S.WAITING)],
)
def test_reconnect_within_grace_skips_the_lobby_after_it_waits(
    away_s: float, back_to: LobbyState
) -> None:
    entry = _entry_in(S.ADMITTED)
    entry.disconnect(100.0)
    assert entry.holds_a_place(100.0 + away_s) is (back_to is S.ADMITTED)
    assert entry.reconnect(100.0 + away_s) is back_to


def test_reconnect_from_the_lobby_stays_in_the_lobby() -> None:
    entry = _entry_in(S.WAITING)
    entry.disconnect(10.0)
    assert entry.reconnect(11.0) is S.WAITING


def test_removed_participant_cannot_rejoin_with_same_invite() -> None:
    state = SessionState(GroupRules(), starts_at=0.0)
    for role, pid in (("host", "h"), ("member", "m")):
        d = decide_arrival(state, pid, role=role, now=0.0)  # type: ignore[arg-type]
        apply_effects(state, d.effects, now=0.0)
    member = state.participants["m"].lobby
    member.confirm_checklist(1.0)
    member.admit(2.0)
    member.remove(3.0)
    again = decide_arrival(state, "m", role="member", now=4.0)
    assert not again.allowed and again.reason_code == "removed"
    # only the host's fresh decision lets the invite back
    member.readmit(5.0)
    assert member.state is S.PREJOIN


def test_second_live_connection_on_one_invite_is_refused() -> None:
    state = SessionState(GroupRules(), starts_at=0.0)
    apply_effects(state, decide_arrival(state, "m", role="member", now=0.0).effects, now=0.0)
    twice = decide_arrival(state, "m", role="member", now=1.0)
    assert not twice.allowed and twice.reason_code == "already_connected"
