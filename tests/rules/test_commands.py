"""Host controls and participant actions: every rule and every denial, table-driven."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from confidentiality.profiles import Profile
from session_rules.checklists import GROUP_AGREEMENT
from session_rules.commands import (
    COMMAND_NAMES,
    HOST_ONLY,
    Command,
    Decision,
    decide,
    decide_arrival,
    decide_disconnect,
)
from session_rules.effects import (
    AlertHost,
    DeliverChat,
    DisconnectParticipant,
    EndSession,
    PauseMedia,
    RecordIncident,
    SetClinicianConsent,
    SetFocus,
    SetLocked,
    SetMuted,
    SetProfile,
    SetProfileFloor,
    SetState,
    SetTextOnly,
    SetUnmuteAllowed,
    SetVideoHold,
    SetVideoStopped,
    StoreChecklist,
)
from session_rules.lobby import LobbyState
from session_rules.rules import GroupRules, InvalidRules
from session_rules.session import SessionState, apply_effects

S = LobbyState
ALL_ITEMS = frozenset(item.id for item in GROUP_AGREEMENT)
START = 1000.0


def run(state: SessionState, actor: str, command: Command, now: float = START) -> Decision:
    decision = decide(state, actor, command, now=now)
    if decision.allowed:
        apply_effects(state, decision.effects, now=now)
    return decision


def arrive(state: SessionState, pid: str, role: str = "member", now: float = START) -> Decision:
    decision = decide_arrival(state, pid, role=role, now=now)  # type: ignore[arg-type]
    if decision.allowed:
        apply_effects(state, decision.effects, now=now)
    return decision


def room(rules: GroupRules | None = None, *, admitted: tuple[str, ...] = ("m1", "m2"),
         waiting: tuple[str, ...] = ("w1",), prejoin: tuple[str, ...] = ("p1",)) -> SessionState:
    """A session with host h1, admitted members, members waiting and one still at pre-join."""
    state = SessionState(rules or GroupRules(), starts_at=START)
    assert arrive(state, "h1", "host").allowed
    for pid in admitted + waiting + prejoin:
        assert arrive(state, pid).allowed
    for pid in admitted + waiting:
        assert run(state, pid, Command("confirm_checklist", answers=ALL_ITEMS)).allowed
    for pid in admitted:
        if _state_of(state, pid) is S.WAITING:
            assert run(state, "h1", Command("admit", target=pid)).allowed
    return state


def _state_of(state: SessionState, pid: str) -> LobbyState:
    return state.participants[pid].state


def end(state: SessionState) -> None:
    run(state, "h1", Command("end"))


def lock(state: SessionState) -> None:
    run(state, "h1", Command("lock"))


def pause(state: SessionState) -> None:
    run(state, "h1", Command("pause"))


def lobby_emptied(state: SessionState) -> None:
    run(state, "h1", Command("admit", target="w1"))
    run(state, "h1", Command("decline", target="p1"))


def host_only_unmute(state: SessionState) -> None:
    state.rules = GroupRules(unmute_policy="host_only")


def chat_off(state: SessionState) -> None:
    state.rules = GroupRules(chat_enabled=False)


def no_text_only(state: SessionState) -> None:
    state.rules = GroupRules(text_only_allowed=False)


def host_stops_m1_video(state: SessionState) -> None:
    assert run(state, "h1", Command("stop_video", target="m1")).allowed


def enforce_avatar_on_m1(state: SessionState) -> None:
    assert run(state, "h1", Command("enforce_profile", target="m1",
                                    profile=Profile.AVATAR)).allowed


def small_room_full(state: SessionState) -> None:
    # h1, m1, m2 already fill a room of 3
    state.rules = GroupRules(max_participants=3)


def host_leaves(state: SessionState) -> None:
    assert run(state, "h1", Command("leave")).allowed


def m1_flood(state: SessionState) -> None:
    for i in range(state.chat_limiter.burst):
        assert run(state, "m1", Command("chat", text=f"message {i}")).allowed


def nothing(state: SessionState) -> None:
    return None


Setup = Callable[[SessionState], None]

DENIALS: list[tuple[str, Setup, str, Command, str]] = [
    # (case, setup, actor, command, reason_code)
    ("member admits", nothing, "m1", Command("admit", target="w1"), "host_only"),
    ("member admits all", nothing, "m1", Command("admit_all"), "host_only"),
    ("member declines", nothing, "m1", Command("decline", target="w1"), "host_only"),
    ("member removes", nothing, "m1", Command("remove", target="m2"), "host_only"),
    ("member sends back", nothing, "m1", Command("send_to_lobby", target="m2"), "host_only"),
    ("member mutes all", nothing, "m1", Command("mute_all"), "host_only"),
    ("member mutes other", nothing, "m1", Command("mute", target="m2"), "host_only"),
    ("member stops other video", nothing, "m1", Command("stop_video", target="m2"),
     "host_only"),
    ("member lowers other hand", nothing, "m1", Command("lower_hand", target="m2"),
     "host_only"),
    ("member enforces profile", nothing, "m1",
     Command("enforce_profile", target="m2", profile=Profile.AVATAR), "host_only"),
    ("member allows unmute", nothing, "m1", Command("allow_unmute", target="m1"), "host_only"),
    ("member locks", nothing, "m1", Command("lock"), "host_only"),
    ("member switches Focus on", nothing, "m1", Command("focus_on"), "host_only"),
    ("member pauses", nothing, "m1", Command("pause"), "host_only"),
    ("member ends", nothing, "m1", Command("end"), "host_only"),
    ("waiting member admits self", nothing, "w1", Command("admit", target="w1"), "host_only"),
    ("forged actor id", nothing, "h1-forged", Command("end"), "unknown_actor"),
    ("forged target id", nothing, "h1", Command("remove", target="ghost"), "unknown_target"),
    ("target from another room", nothing, "h1", Command("admit", target="other-room-m9"),
     "unknown_target"),
    ("host command without target", nothing, "h1", Command("admit"), "missing_target"),
    ("host cannot be removed", nothing, "h1", Command("remove", target="h1"),
     "target_is_host"),
    ("after end: admit", end, "h1", Command("admit", target="w1"), "session_ended"),
    ("after end: chat", end, "m1", Command("chat", text="hello"), "session_ended"),
    ("after end: unmute", end, "m1", Command("unmute"), "session_ended"),
    ("admit someone already in", nothing, "h1", Command("admit", target="m1"),
     "illegal_state"),
    ("admit someone at pre-join", nothing, "h1", Command("admit", target="p1"),
     "illegal_state"),
    ("send back someone waiting", nothing, "h1", Command("send_to_lobby", target="w1"),
     "illegal_state"),
    ("readmit someone in the room", nothing, "h1", Command("readmit", target="m1"),
     "illegal_state"),
    ("admit past capacity", small_room_full, "h1", Command("admit", target="w1"), "room_full"),
    ("admit all past capacity", small_room_full, "h1", Command("admit_all"), "room_full"),
    ("unmute under host-only", host_only_unmute, "m1", Command("unmute"),
     "raise_hand_to_speak"),
    ("unmute from the lobby", nothing, "w1", Command("unmute"), "not_admitted"),
    ("raise hand from the lobby", nothing, "w1", Command("raise_hand"), "not_admitted"),
    ("profile below minimum", nothing, "m1", Command("set_own_profile", profile=Profile.NONE),
     "profile_below_minimum"),
    ("profile not allowed", lambda s: setattr(s, "rules", GroupRules(
        allowed_profiles=frozenset({Profile.BLUR, Profile.CAMERA_OFF}))),
     "m1", Command("set_own_profile", profile=Profile.AVATAR), "profile_not_allowed"),
    ("host enforces profile below minimum", nothing, "h1",
     Command("enforce_profile", target="m1", profile=Profile.NONE), "profile_below_minimum"),
    ("profile missing", nothing, "m1", Command("set_own_profile"), "missing_profile"),
    ("profile below host's floor", enforce_avatar_on_m1, "m1",
     Command("set_own_profile", profile=Profile.BLUR), "profile_below_enforced"),
    ("video before admission", nothing, "w1", Command("publish_media", media="video"),
     "not_admitted"),
    ("audio before checklist", nothing, "p1", Command("publish_media", media="audio"),
     "not_admitted"),
    ("video held by host: publish", host_stops_m1_video, "m1",
     Command("publish_media", media="video"), "video_held_by_host"),
    ("video held by host: restart", host_stops_m1_video, "m1", Command("start_video"),
     "video_held_by_host"),
    ("group chat when disabled", chat_off, "m1", Command("chat", text="hi"), "chat_disabled"),
    ("group chat from the lobby", nothing, "w1", Command("chat", text="hi"), "not_admitted"),
    ("host chat from pre-join", nothing, "p1", Command("chat", to="host", text="hi"),
     "not_present"),
    ("host to an empty lobby", lobby_emptied, "h1", Command("chat", to="lobby", text="hi"),
     "nobody_waiting"),
    ("member writes to the lobby", nothing, "m1", Command("chat", to="lobby", text="hi"),
     "host_only"),
    ("host to someone in the room as if waiting", nothing, "h1",
     Command("chat", to="lobby", target="m1", text="hi"), "not_waiting"),
    ("host to an unknown person waiting", nothing, "h1",
     Command("chat", to="lobby", target="p_nobody", text="hi"), "not_waiting"),
    ("chat to absent host", host_leaves, "m1", Command("chat", to="host", text="hi"),
     "no_host_present"),
    ("empty chat", nothing, "m1", Command("chat", text=" \x00\n\t "), "chat_empty"),
    ("overlong chat", nothing, "m1", Command("chat", text="x" * 1001), "chat_too_long"),
    ("chat flood", m1_flood, "m1", Command("chat", text="one more"), "chat_rate_limited"),
    ("text-only not offered", no_text_only, "m1", Command("set_text_only"),
     "text_only_not_allowed"),
    ("lock twice", lock, "h1", Command("lock"), "no_change"),
    ("unlock when open", nothing, "h1", Command("unlock"), "no_change"),
    ("Focus off when off", nothing, "h1", Command("focus_off"), "no_change"),
    ("clinician's view not offered", nothing, "m1",
     Command("set_clinician_consent", enabled=True), "clinician_view_not_offered"),
    ("host consents for themselves", nothing, "h1",
     Command("set_clinician_consent", enabled=True), "members_only"),
    ("pause twice", pause, "h1", Command("pause"), "no_change"),
    ("resume when running", nothing, "h1", Command("resume"), "no_change"),
    ("checklist incomplete", nothing, "p1",
     Command("confirm_checklist", answers=ALL_ITEMS - {"headphones"}), "checklist_incomplete"),
    ("checklist with unknown item", nothing, "p1",
     Command("confirm_checklist", answers=ALL_ITEMS | {"skip_rules"}), "invalid_checklist"),
    ("checklist twice", nothing, "w1", Command("confirm_checklist", answers=ALL_ITEMS),
     "illegal_state"),
]


@pytest.mark.parametrize(("case", "setup", "actor", "command", "code"), DENIALS,
                         ids=[d[0] for d in DENIALS])
def test_denials(case: str, setup: Setup, actor: str, command: Command, code: str) -> None:
    state = room()
    setup(state)
    before = {pid: (p.state, p.audio_muted, p.profile, p.video_stopped)
              for pid, p in state.participants.items()}
    decision = decide(state, actor, command, now=START)
    assert (decision.allowed, decision.reason_code) == (False, code), decision.reason
    assert decision.effects == [] and decision.reason
    # nobody else disturbed
    after = {pid: (p.state, p.audio_muted, p.profile, p.video_stopped)
             for pid, p in state.participants.items()}
    assert after == before


def test_denial_reasons_never_echo_forged_ids() -> None:
    state = room()
    forged = "<img src=x onerror=alert(1)>"
    for decision in (decide(state, forged, Command("end"), now=START),
                     decide(state, "h1", Command("remove", target=forged), now=START)):
        assert forged not in decision.reason


def test_every_command_has_a_test_here() -> None:
    tested = {d[3].name for d in DENIALS} | {a[2].name for a in ALLOWED}
    assert tested == COMMAND_NAMES
    assert HOST_ONLY <= COMMAND_NAMES


ALLOWED: list[tuple[str, str, Command, list[object]]] = [
    # (case, actor, command, effects that must be among the decision's effects)
    ("admit", "h1", Command("admit", target="w1"),
     [SetState("w1", S.ADMITTED, "admit"), SetMuted("w1", True)]),
    ("decline", "h1", Command("decline", target="w1"),
     [SetState("w1", S.DECLINED, "decline"), DisconnectParticipant("w1", "declined"),
      RecordIncident("lobby_decline", "w1")]),
    ("send back", "h1", Command("send_to_lobby", target="m1"),
     [SetState("m1", S.WAITING, "send_to_lobby")]),
    ("remove", "h1", Command("remove", target="m2"),
     [SetState("m2", S.REMOVED, "remove"), DisconnectParticipant("m2", "removed"),
      RecordIncident("removal", "m2")]),
    ("mute other", "h1", Command("mute", target="m1"),
     [SetMuted("m1", True), SetUnmuteAllowed("m1", False)]),
    ("mute self", "m1", Command("mute"), [SetMuted("m1", True)]),
    ("mute all", "h1", Command("mute_all"), [SetMuted("m1", True), SetMuted("m2", True)]),
    ("unmute self", "m1", Command("unmute"), [SetMuted("m1", False)]),
    ("allow unmute", "h1", Command("allow_unmute", target="m1"),
     [SetUnmuteAllowed("m1", True)]),
    ("raise hand", "m1", Command("raise_hand"), [AlertHost("hand_raised", "m1", ("h1",))]),
    ("lower own hand", "m1", Command("lower_hand"), []),
    ("stop other video", "h1", Command("stop_video", target="m1"),
     [SetVideoStopped("m1", True), SetVideoHold("m1", True)]),
    ("stop own video", "m1", Command("stop_video"), [SetVideoStopped("m1", True)]),
    ("start own video", "m1", Command("start_video"), [SetVideoStopped("m1", False)]),
    ("allow video", "h1", Command("allow_video", target="m1"), [SetVideoHold("m1", False)]),
    ("enforce profile", "h1", Command("enforce_profile", target="m1", profile=Profile.AVATAR),
     [SetProfileFloor("m1", Profile.AVATAR), SetProfile("m1", Profile.AVATAR)]),
    ("own profile at pre-join", "p1", Command("set_own_profile", profile=Profile.FACE_MASK),
     [SetProfile("p1", Profile.FACE_MASK)]),
    ("text only", "m1", Command("set_text_only"),
     [SetTextOnly("m1", True), SetMuted("m1", True), SetVideoStopped("m1", True)]),
    ("lock", "h1", Command("lock"), [SetLocked(True)]),
    ("Focus on", "h1", Command("focus_on"), [SetFocus(True)]),
    ("pause", "h1", Command("pause"), [PauseMedia(True)]),
    ("end", "h1", Command("end"), [EndSession()]),
    ("chat to all", "m1", Command("chat", text="hello"),
     [DeliverChat("m1", "all", "hello", ("h1", "m2"))]),
    ("chat to host from lobby", "w1", Command("chat", to="host", text="I'm here"),
     [DeliverChat("w1", "host", "I'm here", ("h1",))]),
    ("host to everyone waiting", "h1", Command("chat", to="lobby", text="Five minutes"),
     [DeliverChat("h1", "lobby", "Five minutes", ("w1", "p1"))]),
    ("host to one person waiting", "h1",
     Command("chat", to="lobby", target="w1", text="Nearly ready"),
     [DeliverChat("h1", "lobby", "Nearly ready", ("w1",))]),
    ("publish in the room", "m1", Command("publish_media", media="video"), []),
    ("leave", "m2", Command("leave"), [SetState("m2", S.LEFT, "leave")]),
    ("confirm checklist", "p1", Command("confirm_checklist", answers=ALL_ITEMS),
     [SetState("p1", S.WAITING, "confirm_checklist"), AlertHost("waiting", "p1", ("h1",))]),
    ("someone came in", "m1", Command("someone_came_in"),
     [SetMuted("m1", True), SetVideoStopped("m1", True),
      AlertHost("someone_came_in", "m1", ("h1",)), RecordIncident("someone_came_in", "m1")]),
]


@pytest.mark.parametrize(("case", "actor", "command", "expected"), ALLOWED,
                         ids=[a[0] for a in ALLOWED])
def test_allowed_commands_and_their_effects(
    case: str, actor: str, command: Command, expected: list[object]
) -> None:
    state = room()
    decision = run(state, actor, command)
    assert decision.allowed, decision.reason
    for effect in expected:
        assert effect in decision.effects


def test_readmit_after_removal_then_rejoin_through_the_lobby() -> None:
    state = room()
    assert run(state, "h1", Command("remove", target="m1")).allowed
    assert not arrive(state, "m1").allowed
    assert run(state, "h1", Command("readmit", target="m1")).allowed
    assert _state_of(state, "m1") is S.PREJOIN
    assert run(state, "m1", Command("confirm_checklist", answers=ALL_ITEMS)).allowed
    assert _state_of(state, "m1") is S.WAITING


def test_checklist_answers_are_stored_with_attendance() -> None:
    state = room()
    decision = run(state, "p1", Command("confirm_checklist", answers=ALL_ITEMS))
    stored = [e for e in decision.effects if isinstance(e, StoreChecklist)]
    assert stored and stored[0].result.complete
    assert stored[0].result.to_dict()["confirmed"] == [i.id for i in GROUP_AGREEMENT]


def test_host_only_unmute_needs_raised_hand_and_host_permission() -> None:
    state = room(GroupRules(unmute_policy="host_only"))
    assert run(state, "m1", Command("unmute")).reason_code == "raise_hand_to_speak"
    assert run(state, "m1", Command("raise_hand")).allowed
    assert state.participants["m1"].hand_raised
    assert run(state, "h1", Command("allow_unmute", target="m1")).allowed
    assert not state.participants["m1"].hand_raised
    assert run(state, "m1", Command("unmute")).allowed
    assert not state.participants["m1"].audio_muted
    # muted again by the host: permission goes with it
    assert run(state, "h1", Command("mute", target="m1")).allowed
    assert run(state, "m1", Command("unmute")).reason_code == "raise_hand_to_speak"
    # the host is never bound by the host-only rule
    assert run(state, "h1", Command("unmute")).allowed


def test_muted_on_entry() -> None:
    state = room(GroupRules(muted_on_entry=True))
    assert run(state, "m1", Command("unmute")).allowed
    assert run(state, "h1", Command("send_to_lobby", target="m1")).allowed
    assert run(state, "h1", Command("admit", target="m1")).allowed
    assert state.participants["m1"].audio_muted


def test_admit_all_admits_in_arrival_order_up_to_capacity() -> None:
    state = room(GroupRules(max_participants=5), waiting=("w1", "w2", "w3"))
    decision = run(state, "h1", Command("admit_all"))
    assert decision.allowed and "1 still waiting" in decision.reason
    assert [_state_of(state, p) for p in ("w1", "w2", "w3")] == [S.ADMITTED, S.ADMITTED,
                                                               S.WAITING]
    assert run(state, "h1", Command("admit_all")).reason_code == "room_full"


def test_no_lobby_rule_goes_straight_in() -> None:
    state = room(GroupRules(lobby_required=False), waiting=())
    assert _state_of(state, "m1") is S.ADMITTED
    assert run(state, "p1", Command("confirm_checklist", answers=ALL_ITEMS)).allowed
    assert _state_of(state, "p1") is S.ADMITTED


def test_host_pressing_someone_came_in_pauses_the_group() -> None:
    state = room()
    decision = run(state, "h1", Command("someone_came_in"))
    assert PauseMedia(True) in decision.effects and state.paused
    # nobody else but other hosts (none here) is told
    alerts = [e for e in decision.effects if isinstance(e, AlertHost)]
    assert alerts == [AlertHost("someone_came_in", "h1", ())]


def test_chat_html_stays_inert_text() -> None:
    state = room()
    text = "<script>alert(1)</script><img src=x onerror=alert(2)> https://example.org"
    decision = run(state, "m1", Command("chat", text=text))
    delivered = [e for e in decision.effects if isinstance(e, DeliverChat)]
    assert delivered[0].text == text


def test_private_chat_to_host_stays_open_when_group_chat_is_off() -> None:
    state = room(GroupRules(chat_enabled=False))
    decision = run(state, "m1", Command("chat", to="host", text="I am not ok"))
    assert decision.allowed
    assert decision.effects == [DeliverChat("m1", "host", "I am not ok", ("h1",))]


def test_chat_flood_recovers_after_waiting() -> None:
    state = room()
    m1_flood(state)
    assert run(state, "m1", Command("chat", text="x")).reason_code == "chat_rate_limited"
    # other participants are not limited by m1's flood
    assert run(state, "m2", Command("chat", text="fine")).allowed
    assert run(state, "m1", Command("chat", text="later"), now=START + 3.0).allowed


@pytest.mark.parametrize(
    ("setup", "now", "code"),
    [
        (nothing, START - 10 * 60 - 1, "lobby_not_open"),
        (nothing, START + 15 * 60 + 1, "late_join_closed"),
        (lock, START, "room_locked"),
        (end, START, "session_ended"),
    ],
)
def test_arrival_denials(setup: Setup, now: float, code: str) -> None:
    state = room()
    setup(state)
    decision = decide_arrival(state, "newcomer", role="member", now=now)
    assert (decision.allowed, decision.reason_code) == (False, code)


def test_host_arrives_despite_lock_and_enters_directly() -> None:
    state = room()
    lock(state)
    assert arrive(state, "h2", "host").allowed
    assert _state_of(state, "h2") is S.ADMITTED


def test_arrival_with_the_wrong_role_is_refused() -> None:
    state = room()
    assert arrive(state, "m1", "host").reason_code == "role_mismatch"


@pytest.mark.parametrize(("away_s", "back_to"), [(29.0, S.ADMITTED), (31.0, S.WAITING)])
def test_reconnect_within_and_after_grace(away_s: float, back_to: LobbyState) -> None:
    state = room()
    run(state, "m1", Command("set_own_profile", profile=Profile.AVATAR))
    drop = decide_disconnect(state, "m1", now=START + 1)
    apply_effects(state, drop.effects, now=START + 1)
    assert _state_of(state, "m1") is S.DISCONNECTED
    # a place is held during the grace window only
    assert state.places_taken(START + 1 + away_s) == (3 if back_to is S.ADMITTED else 2)
    back = arrive(state, "m1", now=START + 1 + away_s)
    assert back.allowed
    assert _state_of(state, "m1") is back_to
    # the same pseudonym id and profile come back with them
    assert state.participants["m1"].profile is Profile.AVATAR


def test_disconnect_of_unknown_participant_is_denied() -> None:
    assert decide_disconnect(room(), "ghost", now=START).reason_code == "unknown_actor"


# ---- named tests that hazard_log.md cites as evidence ----

def test_no_media_before_admission() -> None:
    state = room()
    for pid in ("p1", "w1"):
        for media in ("audio", "video"):
            decision = decide(state, pid, Command("publish_media", media=media), now=START)  # type: ignore[arg-type]
            assert (decision.allowed, decision.reason_code) == (False, "not_admitted")
    assert run(state, "h1", Command("admit", target="w1")).allowed
    assert run(state, "w1", Command("publish_media", media="video")).allowed
    assert run(state, "h1", Command("send_to_lobby", target="w1")).allowed
    assert not run(state, "w1", Command("publish_media", media="audio")).allowed


def test_member_cannot_use_host_controls() -> None:
    state = room()
    for name in sorted(HOST_ONLY):
        decision = decide(state, "m1", Command(name, target="m2"), now=START)  # type: ignore[arg-type]
        assert (decision.allowed, decision.reason_code) == (False, "host_only"), name


def test_someone_came_in_stops_camera_and_microphone_and_tells_only_the_host() -> None:
    state = room()
    assert run(state, "m1", Command("unmute")).allowed
    decision = run(state, "m1", Command("someone_came_in"))
    m1 = state.participants["m1"]
    assert m1.audio_muted and m1.video_stopped
    alerts = [e for e in decision.effects if isinstance(e, AlertHost)]
    assert alerts == [AlertHost("someone_came_in", "m1", ("h1",))]
    assert not any(isinstance(e, DeliverChat) for e in decision.effects)
    assert RecordIncident("someone_came_in", "m1") in decision.effects


def test_profile_below_group_minimum_is_refused() -> None:
    state = room(GroupRules(minimum_profile=Profile.FACE_MASK,
                            allowed_profiles=frozenset({Profile.FACE_MASK, Profile.CAMERA_OFF})))
    # members start at the least revealing profile the group permits, never "none"
    assert state.participants["m1"].profile is Profile.FACE_MASK
    for profile in (Profile.NONE, Profile.BLUR):
        assert run(state, "m1", Command("set_own_profile", profile=profile)).reason_code == (
            "profile_below_minimum")
        assert run(state, "h1", Command("enforce_profile", target="m1",
                                        profile=profile)).reason_code == "profile_below_minimum"
    assert state.participants["m1"].profile is Profile.FACE_MASK


def test_host_can_enforce_a_stricter_profile() -> None:
    state = room()
    assert run(state, "h1", Command("enforce_profile", target="m1",
                                    profile=Profile.AVATAR)).allowed
    assert state.participants["m1"].profile is Profile.AVATAR
    assert run(state, "m1", Command("set_own_profile", profile=Profile.BLUR)).reason_code == (
        "profile_below_enforced")
    assert run(state, "m1", Command("set_own_profile", profile=Profile.CAMERA_OFF)).allowed


def test_host_can_send_back_or_remove_a_wrongly_admitted_person() -> None:
    state = room()
    assert run(state, "h1", Command("send_to_lobby", target="m1")).allowed
    assert _state_of(state, "m1") is S.WAITING
    assert not run(state, "m1", Command("publish_media", media="video")).allowed
    decision = run(state, "h1", Command("remove", target="m1"))
    assert DisconnectParticipant("m1", "removed") in decision.effects
    assert arrive(state, "m1").reason_code == "removed"


def test_host_is_told_when_a_member_drops_out() -> None:
    state = room()
    decision = decide_disconnect(state, "m1", now=START)
    assert AlertHost("disconnected", "m1", ("h1",)) in decision.effects


def test_group_chat_off_blocks_member_messages_to_all() -> None:
    state = room(GroupRules(chat_enabled=False))
    assert run(state, "m1", Command("chat", text="my address is")).reason_code == "chat_disabled"
    assert run(state, "m1", Command("chat", to="host", text="can we talk")).allowed


def test_text_only_member_takes_part_without_camera_or_microphone() -> None:
    state = room()
    assert run(state, "m1", Command("set_text_only")).allowed
    m1 = state.participants["m1"]
    assert m1.text_only and m1.audio_muted and m1.video_stopped
    assert run(state, "m1", Command("chat", text="I'll type today")).allowed


def test_policy_state_and_effects_carry_no_names() -> None:
    import dataclasses

    from session_rules import effects as effects_module
    from session_rules.session import Participant

    def field_names(cls: type) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    # only opaque participant ids travel through policy; real names stay in the store
    classes = [Participant] + [
        obj for obj in vars(effects_module).values()
        if isinstance(obj, type) and dataclasses.is_dataclass(obj)
    ]
    assert len(classes) > 10
    for cls in classes:
        assert not {n for n in field_names(cls) if "name" in n}, cls


def test_a_late_member_is_turned_away_kindly_and_the_host_is_told() -> None:
    state = room(GroupRules(late_join_cutoff_min=10))
    # on time (the last second before the lobby closes): in
    assert decide_arrival(state, "on_time", role="member", now=START + 10 * 60).allowed
    late = decide_arrival(state, "late", role="member", now=START + 10 * 60 + 1)
    assert (late.allowed, late.reason_code) == (False, "late_join_closed")
    assert "more than 10 minutes ago" in late.reason and "clinician has been told" in late.reason
    assert late.effects == []
    assert late.notices == [AlertHost("late_arrival", "late", ("h1",)),
                            RecordIncident("late_arrival", "late")]
    # someone already here (dropped, coming back) is not late
    assert decide_disconnect(state, "m1", now=START).allowed
    apply_effects(state, decide_disconnect(state, "m2", now=START).effects, now=START)
    assert decide_arrival(state, "m2", role="member", now=START + 20 * 60).allowed


def test_the_host_gets_a_not_returned_alert_after_the_grace() -> None:
    from session_rules.commands import decide_not_returned
    from session_rules.lobby import RECONNECT_GRACE_S

    state = room()
    dropped = decide_disconnect(state, "m1", now=START)
    apply_effects(state, dropped.effects, now=START)
    within = decide_not_returned(state, "m1", now=START + RECONNECT_GRACE_S)
    assert (within.allowed, within.reason_code) == (False, "within_grace")
    after = decide_not_returned(state, "m1", now=START + RECONNECT_GRACE_S + 0.1)
    assert after.allowed and after.effects == [
        AlertHost("not_returned", "m1", ("h1",)), RecordIncident("member_not_returned", "m1")]
    # someone who was only waiting, a host, or a member who came back: no alert
    apply_effects(state, decide_disconnect(state, "w1", now=START).effects, now=START)
    assert decide_not_returned(state, "w1", now=START + 60).reason_code == "not_dropped_out"
    apply_effects(state, decide_disconnect(state, "h1", now=START).effects, now=START)
    assert decide_not_returned(state, "h1", now=START + 60).reason_code == "not_dropped_out"
    state2 = room()
    apply_effects(state2, decide_disconnect(state2, "m2", now=START).effects, now=START)
    assert arrive(state2, "m2", now=START + 5).allowed
    assert decide_not_returned(state2, "m2", now=START + 60).reason_code == "not_dropped_out"


def test_focus_starts_as_the_group_rule_says_and_a_host_switches_it() -> None:
    state = room(GroupRules(focus=True))
    assert state.focus is True
    assert run(state, "h1", Command("focus_on")).reason_code == "no_change"
    assert not run(state, "m1", Command("focus_off")).allowed
    assert state.focus is True
    assert run(state, "h1", Command("focus_off")).allowed
    assert state.focus is False
    assert room().focus is False
    with pytest.raises(InvalidRules):
        GroupRules(focus="yes")  # type: ignore[arg-type]


def test_clinician_view_only_with_consent_and_only_when_lighter() -> None:
    rules = GroupRules(minimum_profile=Profile.AVATAR, clinician_profile=Profile.BLUR,
                       allowed_profiles=frozenset({Profile.AVATAR, Profile.CAMERA_OFF}))
    state = room(rules)
    assert run(state, "m1", Command("set_clinician_consent", enabled=False)).reason_code == \
        "no_change"
    decision = run(state, "m1", Command("set_clinician_consent", enabled=True))
    assert decision.allowed and decision.effects == [SetClinicianConsent("m1", True)]
    m1 = state.participants["m1"]
    assert m1.clinician_consent and not state.participants["m2"].clinician_consent
    assert rules.clinician_sees(m1.profile, m1.clinician_consent) is Profile.BLUR
    assert rules.clinician_sees(Profile.AVATAR, False) is None
    # nothing to add for a member the group already sees as much of, or not at all
    assert rules.clinician_sees(Profile.NONE, True) is None
    assert rules.clinician_sees(Profile.BLUR, True) is None
    assert rules.clinician_sees(Profile.CAMERA_OFF, True) is None
    # withdrawn at any time, from the room too
    assert run(state, "m1", Command("set_clinician_consent", enabled=False)).allowed
    assert not state.participants["m1"].clinician_consent
    assert GroupRules.from_dict({"clinician_profile": "blur"}).clinician_profile is Profile.BLUR
    assert GroupRules.from_dict({"clinician_profile": "blur"}).to_dict()["clinician_profile"] \
        == "blur"
    for bad in ("camera_off", "sepia", 3):
        with pytest.raises(InvalidRules):
            GroupRules.from_dict({"clinician_profile": bad})
