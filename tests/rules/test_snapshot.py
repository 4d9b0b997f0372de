"""A session's policy state as records: rebuilt exactly, and taken back after a restart."""

from __future__ import annotations

import random

from confidentiality.profiles import Profile
from session_rules.checklists import GROUP_AGREEMENT
from session_rules.commands import (
    COMMAND_NAMES,
    Command,
    Decision,
    decide,
    decide_arrival,
    decide_disconnect,
)
from session_rules.effects import SetState
from session_rules.lobby import RECONNECT_GRACE_S, LobbyState
from session_rules.rules import GroupRules
from session_rules.session import SessionState, apply_effects
from session_rules.snapshot import rebuild, resume_after_restart, snapshot

START = 1000.0
PEOPLE = ("h1", "m1", "m2", "m3", "m4")
ANSWERS = frozenset(item.id for item in GROUP_AGREEMENT)
# commands that are not a step of a session (publish is asked by the media plane)
STEPS = sorted(COMMAND_NAMES - {"publish_media", "chat"})


def _command(rng: random.Random, name: str) -> Command:
    return Command(
        name,  # type: ignore[arg-type]
        target=rng.choice([*PEOPLE, None]),
        profile=rng.choice([*Profile, None]),
        answers=ANSWERS,
        media=rng.choice(["audio", "video", None]),
        enabled=rng.random() < 0.5,
    )


def _probe(state: SessionState, now: float) -> list[tuple[str, str, str, bool, str]]:
    """What every participant could do next, and the outcome: two states that give the same
    answers to all of these decide alike."""
    out = []
    for actor in PEOPLE:
        role = "host" if actor.startswith("h") else "member"
        got = decide_arrival(state, actor, role=role, now=now)  # type: ignore[arg-type]
        out.append((actor, "arrive", "", got.allowed, repr(got.effects)))
        got = decide_disconnect(state, actor, now=now)
        out.append((actor, "drop", "", got.allowed, repr(got.effects)))
        for name in sorted(COMMAND_NAMES):
            for target in (None, *PEOPLE):
                command = Command(name, target=target, profile=Profile.AVATAR,  # type: ignore[arg-type]
                                  answers=ANSWERS, media="video")
                got = decide(state, actor, command, now=now)
                out.append((actor, name, str(target), got.allowed, repr(got.effects)))
    return out


def _apply(state: SessionState, decision: Decision, now: float) -> None:
    if decision.allowed:
        apply_effects(state, decision.effects, now=now)


def test_a_rebuilt_state_decides_exactly_as_the_one_it_was_taken_from() -> None:
    rng = random.Random(20250301)
    rules = GroupRules(unmute_policy="host_only", max_participants=3)
    state = SessionState(rules, starts_at=START)
    now = START
    reached: set[tuple[str, ...]] = set()
    focus_seen: set[bool | None] = set()
    for step in range(400):
        now += rng.choice([0.5, 1.0, 5.0, 31.0])
        actor = rng.choice(PEOPLE)
        roll = rng.random()
        if roll < 0.2:
            role = "host" if actor.startswith("h") else "member"
            _apply(state, decide_arrival(state, actor, role=role, now=now), now)  # type: ignore[arg-type]
        elif roll < 0.3:
            _apply(state, decide_disconnect(state, actor, now=now), now)
        else:
            _apply(state, decide(state, actor, _command(rng, rng.choice(STEPS)), now=now), now)
        session, people = snapshot(state)
        again = rebuild(session, people)
        assert snapshot(again) == (session, people), f"step {step}"
        if step % 20 == 0:
            assert _probe(again, now) == _probe(state, now), f"step {step}"
        assert again.focus == state.focus, f"step {step}"
        reached.add(tuple(p.state.value for p in state.participants.values()))
        focus_seen.add(state.focus)
    # the walk went through many different rooms, not one, with Focus both on and off
    assert len(reached) > 30
    assert focus_seen == {True, False}


def test_after_a_restart_everyone_present_comes_back_where_they_were() -> None:
    rules = GroupRules()
    state = SessionState(rules, starts_at=START)
    for pid, role in (("h1", "host"), ("m1", "member"), ("m2", "member"), ("m3", "member")):
        _apply(state, decide_arrival(state, pid, role=role, now=START), START)  # type: ignore[arg-type]
    for pid in ("m1", "m2", "m3"):
        _apply(state, decide(state, pid, Command("confirm_checklist", answers=ANSWERS),
                             now=START), START)
    for pid in ("m1", "m3"):
        _apply(state, decide(state, "h1", Command("admit", target=pid), now=START), START)
    _apply(state, decide(state, "m1", Command("raise_hand"), now=START), START)
    # m3 had dropped 20 s before the service stopped: 10 s of grace left
    _apply(state, decide_disconnect(state, "m3", now=START + 10), START + 10)
    stopped_at, back_at = START + 30, START + 400  # down for over six minutes

    state = rebuild(*snapshot(state))
    moved = resume_after_restart(state, now=back_at, last_alive=stopped_at)
    assert sorted(moved) == ["h1", "m1", "m2"]
    # the hand raised before the stop is down, as after any drop
    assert state.participants["m1"].hand_raised is False
    for pid, was in (("h1", LobbyState.ADMITTED), ("m1", LobbyState.ADMITTED),
                     ("m2", LobbyState.WAITING)):
        back = decide_arrival(state, pid, role="host" if pid == "h1" else "member",
                              now=back_at + RECONNECT_GRACE_S - 1)
        moves = [e.state for e in back.effects if isinstance(e, SetState)]
        assert back.allowed and moves == [was], (pid, back)
    # m3 keeps the grace they had left: back in the room within 10 s, the lobby after
    m3 = decide_arrival(state, "m3", role="member", now=back_at + 9)
    assert m3.reason == 'back to "admitted"'
    late = decide_arrival(state, "m3", role="member", now=back_at + 11)
    assert late.reason == 'back to "waiting"'
