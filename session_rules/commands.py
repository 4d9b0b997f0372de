"""Host controls and participant actions: a command in, a decision with effects out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, get_args

from confidentiality.profiles import STRICTNESS, Profile

from .chat import clean_chat_text
from .checklists import validate_answers
from .effects import (
    AddParticipant,
    AlertHost,
    ChatTo,
    DeliverChat,
    DisconnectParticipant,
    Effect,
    EndSession,
    PauseMedia,
    RecordIncident,
    ReplaceConnection,
    Role,
    SetClinicianConsent,
    SetFocus,
    SetHandRaised,
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
from .errors import ChecklistError
from .lobby import RECONNECT_GRACE_S, Action, LobbyState
from .session import Participant, SessionState, default_profile

CommandName = Literal[
    "confirm_checklist",
    "admit",
    "admit_all",
    "decline",
    "send_to_lobby",
    "remove",
    "readmit",
    "mute",
    "mute_all",
    "allow_unmute",
    "unmute",
    "raise_hand",
    "lower_hand",
    "stop_video",
    "start_video",
    "allow_video",
    "enforce_profile",
    "set_own_profile",
    "set_text_only",
    "set_clinician_consent",
    "lock",
    "unlock",
    "focus_on",
    "focus_off",
    "pause",
    "resume",
    "end",
    "someone_came_in",
    "chat",
    "publish_media",
    "leave",
]
MediaKind = Literal["audio", "video"]

COMMAND_NAMES: frozenset[str] = frozenset(get_args(CommandName))
# asked by the wiring, never sent by a participant: "publish_media" when an offer arrives,
# "leave" when their leave message (the one path out, which also closes the socket) does
INTERNAL_COMMANDS: frozenset[CommandName] = frozenset({"publish_media", "leave"})
WIRE_COMMAND_NAMES: frozenset[str] = COMMAND_NAMES - INTERNAL_COMMANDS
HOST_ONLY: frozenset[CommandName] = frozenset({
    "admit", "admit_all", "decline", "send_to_lobby", "remove", "readmit", "mute_all",
    "allow_unmute", "allow_video", "enforce_profile", "lock", "unlock", "focus_on",
    "focus_off", "pause", "resume", "end",
})
# host commands that act on another participant; a host is never their target
_TARGETED: frozenset[CommandName] = frozenset({
    "admit", "decline", "send_to_lobby", "remove", "readmit", "allow_unmute", "allow_video",
    "enforce_profile",
})
# commands that someone may aim at another participant, if they are a host
_MAYBE_TARGETED: frozenset[CommandName] = frozenset({"mute", "stop_video", "lower_hand"})

_S = LobbyState
_PRESENT = frozenset({_S.PREJOIN, _S.WAITING, _S.ADMITTED})
# who a host's message to the waiting room reaches: anyone present but not yet in the room
_WAITING_ROOM = frozenset({_S.PREJOIN, _S.WAITING})


@dataclass(frozen=True)
class Command:
    """A command from one participant (the wire layer builds it from a typed message)."""

    name: CommandName
    target: str | None = None
    profile: Profile | None = None
    to: ChatTo = "all"
    text: str = ""
    answers: frozenset[str] = frozenset()
    media: MediaKind | None = None
    enabled: bool = True



@dataclass(frozen=True)
class Decision:
    """Allowed (with effects to apply) or denied with a stable code and a reason.

    `notices` are said even when the decision is a denial (a private alert to the host, an
    incident): they change no state.
    """

    allowed: bool
    reason_code: str
    reason: str
    effects: list[Effect] = field(default_factory=list)
    notices: list[Effect] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """What the actor is told (effects stay server-side)."""
        return {"allowed": self.allowed, "reason_code": self.reason_code, "reason": self.reason}


def allow(effects: list[Effect], reason: str = "allowed") -> Decision:
    """An allowed decision."""
    return Decision(True, "ok", reason, effects)


def deny(code: str, reason: str) -> Decision:
    """A denied decision; the reason never echoes ids or text the client sent."""
    return Decision(False, code, reason, [])


# ---- arrivals and drops (events from the wiring, not commands) ----

def decide_arrival(state: SessionState, pid: str, *, role: Role, now: float) -> Decision:
    """Someone with a valid grant for this session connects."""
    if state.ended:
        return deny("session_ended", "the session has ended")
    known = state.participants.get(pid)
    if known is not None and known.role != role:
        return deny("role_mismatch", "this invite was issued for a different role")
    if role == "host":
        return _host_arrival(state, pid, known)
    if known is not None:
        st = known.state
        if st is _S.REMOVED:
            return deny(
                "removed", "you were removed from this session; the host must readmit you"
            )
        if st is _S.DECLINED:
            return deny("declined", "the host did not admit you to this session")
        if st in _PRESENT:
            # a second live connection on one invite may be a forwarded link: never two
            return deny("already_connected", "this invite is already connected")
        full = _connections_full(state)
        if full is not None:
            return full
        if st is _S.DISCONNECTED:
            target = _reconnect_target(known, now)
            return allow([SetState(pid, target, "reconnect")], f'back to "{target.value}"')
        timing = _member_entry_check(state, role, now, pid=pid)
        if timing is not None:
            return timing
        return allow([SetState(pid, _S.PREJOIN, "return_after_leaving")])
    timing = _member_entry_check(state, role, now, pid=pid)
    if timing is not None:
        return timing
    full = _connections_full(state)
    if full is not None:
        return full
    return allow([AddParticipant(pid, "member", default_profile(state.rules))])


def _host_arrival(state: SessionState, pid: str, known: Participant | None) -> Decision:
    # a valid host grant always returns its holder to control: nobody could admit a host
    # from the lobby, and a room without its clinician is unsupervised
    if known is None:
        return allow([
            AddParticipant(pid, "host", default_profile(state.rules)),
            SetState(pid, _S.ADMITTED, "enter_as_host"),
            # the group's entry rule holds for the host too, so the room (which holds a muted
            # host's audio) and the host's own button agree from the first moment
            SetMuted(pid, state.rules.muted_on_entry),
        ])
    if known.state is _S.ADMITTED:
        # their earlier connection has not been noticed gone yet (or is another window)
        return allow([ReplaceConnection(pid)], "replaces the earlier connection")
    return allow([SetState(pid, _S.ADMITTED, "return_as_host"), SetHandRaised(pid, False)],
                 "back in the room")


def _connections_full(state: SessionState) -> Decision | None:
    # decided here, before anything changes, so the room never has to refuse a member the
    # rules already let in
    if state.members_connected() >= state.rules.max_connected:
        return _room_full(state)
    return None


def decide_session_ended(state: SessionState) -> Decision:
    """The session was ended outside the room (the clinician's API call, or the store)."""
    if state.ended:
        return deny("session_ended", "the session has ended")
    return allow([EndSession()])


def decide_disconnect(state: SessionState, pid: str, *, now: float) -> Decision:
    """A participant's connection dropped (network, reload, closed tab)."""
    p = state.participants.get(pid)
    if p is None:
        return deny("unknown_actor", "not a participant in this session")
    if not p.lobby.can("disconnect"):
        return deny("illegal_state", f'cannot disconnect a participant in state "{p.state.value}"')
    effects: list[Effect] = [SetState(pid, _S.DISCONNECTED, "disconnect"),
                             SetHandRaised(pid, False)]
    if p.state is _S.ADMITTED:
        # someone who drops out may be in crisis: the clinician hears at once, privately
        effects.append(AlertHost("disconnected", pid, state.hosts_present(excluding=pid)))
    return allow(effects)


def _reconnect_target(p: Participant, now: float) -> LobbyState:
    before = p.lobby.state_before_disconnect or _S.PREJOIN
    if before is _S.ADMITTED and not p.lobby.within_grace(now):
        return _S.WAITING
    return before


def _member_entry_check(
    state: SessionState, role: Role, now: float, *, pid: str
) -> Decision | None:
    if role == "host":
        return None
    if state.locked:
        return deny("room_locked", "the host has locked this session")
    rules = state.rules
    if now < state.starts_at - rules.lobby_opens_before_min * 60.0:
        return deny(
            "lobby_not_open",
            f"the lobby opens {rules.lobby_opens_before_min} minutes before the session",
        )
    if now > state.starts_at + rules.late_join_cutoff_min * 60.0:
        return late_arrival(state, pid)
    return None


def late_arrival(state: SessionState, pid: str) -> Decision:
    """The lobby has closed: a kind word for the member; the host hears privately."""
    minutes = state.rules.late_join_cutoff_min
    started = "started" if minutes == 0 else f"started more than {minutes} minutes ago"
    return Decision(
        False,
        "late_join_closed",
        f"Today's group {started}, so the waiting room has closed and you cannot join this "
        "session. Thank you for coming. Your clinician has been told you tried to join.",
        notices=[AlertHost("late_arrival", pid, state.hosts_present()),
                 RecordIncident("late_arrival", pid)],
    )


def decide_not_returned(state: SessionState, pid: str, *, now: float) -> Decision:
    """An admitted member dropped out: at the end of the grace period, if they are still
    gone, the host is alerted with their contact details and where they said they are."""
    p = state.participants.get(pid)
    if p is None:
        return deny("unknown_actor", "not a participant in this session")
    if state.ended:
        return deny("session_ended", "the session has ended")
    entry = p.lobby
    if (
        p.is_host
        or p.state is not _S.DISCONNECTED
        or entry.state_before_disconnect is not _S.ADMITTED
        or entry.disconnected_at is None
    ):
        return deny("not_dropped_out", "they are not dropped out of the room")
    if now - entry.disconnected_at <= RECONNECT_GRACE_S:
        return deny("within_grace", "they may still come back within the grace period")
    return allow([
        AlertHost("not_returned", pid, state.hosts_present()),
        RecordIncident("member_not_returned", pid),
    ])


# ---- commands ----

def decide(state: SessionState, actor_id: str, command: Command, *, now: float) -> Decision:
    """Decide one command from `actor_id`; nothing is changed until effects are applied."""
    if state.ended:
        return deny("session_ended", "the session has ended")
    actor = state.participants.get(actor_id)
    # a forged or stale id, or one from another room, is unknown here
    if actor is None:
        return deny("unknown_actor", "not a participant in this session")
    name = command.name
    if name in HOST_ONLY:
        if not actor.is_host:
            return deny("host_only", f'only the host can "{name}"')
        if actor.state is not _S.ADMITTED:
            return deny("not_admitted", "the host must be in the room")
    target: Participant | None = None
    if name in _TARGETED or (
        name in _MAYBE_TARGETED and command.target not in (None, actor_id)
    ):
        if name in _MAYBE_TARGETED and not actor.is_host:
            return deny("host_only", f'only the host can "{name}" someone else')
        if name in _MAYBE_TARGETED and actor.state is not _S.ADMITTED:
            return deny("not_admitted", "the host must be in the room")
        if command.target is None:
            return deny("missing_target", f'"{name}" needs a participant')
        target = state.participants.get(command.target)
        if target is None:
            return deny("unknown_target", "no such participant in this session")
        if target.is_host:
            return deny("target_is_host", f'a host cannot be the target of "{name}"')
    return _HANDLERS[name](state, actor, target, command, now)


def _lobby_step(
    p: Participant, via: Action, reached: LobbyState, extra: list[Effect] | None = None
) -> Decision:
    if not p.lobby.can(via):
        return deny("illegal_state", f'cannot "{via}" a participant in state "{p.state.value}"')
    return allow([SetState(p.pid, reached, via), *(extra or [])])


def _entry_effects(state: SessionState, p: Participant) -> list[Effect]:
    # what every entry to the room resets: no stale hand or unmute permission carried in
    out: list[Effect] = [SetHandRaised(p.pid, False), SetUnmuteAllowed(p.pid, False)]
    # stated either way, so the room and the member's own view agree from the first moment
    out.append(SetMuted(p.pid, state.rules.muted_on_entry))
    return out


def _room_full(state: SessionState) -> Decision:
    return deny(
        "room_full", f"the session is full ({state.rules.max_participants} participants)"
    )


def _confirm_checklist(
    state: SessionState, actor: Participant, _t: Participant | None, c: Command, now: float
) -> Decision:
    if not actor.lobby.can("confirm_checklist"):
        return deny(
            "illegal_state", f'cannot confirm the checklist in state "{actor.state.value}"'
        )
    try:
        result = validate_answers(c.answers)
    except ChecklistError as exc:
        return deny("invalid_checklist", exc.message)
    if not result.complete:
        return deny(
            "checklist_incomplete",
            "please confirm every item of the group agreement: " + ", ".join(result.missing),
        )
    stored = StoreChecklist(actor.pid, result)
    if state.rules.lobby_required:
        alert = AlertHost("waiting", actor.pid, state.hosts_present())
        return allow([stored, SetState(actor.pid, _S.WAITING, "confirm_checklist"), alert])
    if state.places_taken(now) >= state.rules.max_participants:
        return _room_full(state)
    return allow([
        stored, SetState(actor.pid, _S.ADMITTED, "confirm_checklist"),
        *_entry_effects(state, actor),
    ])


def _admit(
    state: SessionState, actor: Participant, t: Participant | None, c: Command, now: float
) -> Decision:
    assert t is not None
    if not t.lobby.can("admit"):
        return deny("illegal_state", f'cannot "admit" a participant in state "{t.state.value}"')
    if state.places_taken(now) >= state.rules.max_participants:
        return _room_full(state)
    return allow([SetState(t.pid, _S.ADMITTED, "admit"), *_entry_effects(state, t)])


def _admit_all(
    state: SessionState, actor: Participant, _t: Participant | None, c: Command, now: float
) -> Decision:
    waiting = state.waiting()
    if not waiting:
        return deny("nobody_waiting", "nobody is waiting in the lobby")
    free = state.rules.max_participants - state.places_taken(now)
    if free <= 0:
        return _room_full(state)
    effects: list[Effect] = []
    for p in waiting[:free]:
        effects += [SetState(p.pid, _S.ADMITTED, "admit"), *_entry_effects(state, p)]
    left = len(waiting) - min(free, len(waiting))
    reason = f"admitted {min(free, len(waiting))}" + (f"; {left} still waiting" if left else "")
    return allow(effects, reason)


def _decline(
    state: SessionState, actor: Participant, t: Participant | None, c: Command, now: float
) -> Decision:
    assert t is not None
    return _lobby_step(t, "decline", _S.DECLINED, [
        DisconnectParticipant(t.pid, "declined"), RecordIncident("lobby_decline", t.pid),
    ])


def _send_to_lobby(
    state: SessionState, actor: Participant, t: Participant | None, c: Command, now: float
) -> Decision:
    assert t is not None
    return _lobby_step(t, "send_to_lobby", _S.WAITING, [
        SetHandRaised(t.pid, False), SetUnmuteAllowed(t.pid, False),
    ])


def _remove(
    state: SessionState, actor: Participant, t: Participant | None, c: Command, now: float
) -> Decision:
    assert t is not None
    return _lobby_step(t, "remove", _S.REMOVED, [
        DisconnectParticipant(t.pid, "removed"), RecordIncident("removal", t.pid),
    ])


def _readmit(
    state: SessionState, actor: Participant, t: Participant | None, c: Command, now: float
) -> Decision:
    assert t is not None
    return _lobby_step(t, "readmit", _S.PREJOIN)


def _mute(
    state: SessionState, actor: Participant, t: Participant | None, c: Command, now: float
) -> Decision:
    who = t or actor
    if who.state is not _S.ADMITTED:
        return deny("not_admitted", "only someone in the room can be muted")
    effects: list[Effect] = [SetMuted(who.pid, True)]
    if t is not None:
        # muted by the host: under a host-only rule they ask again before speaking
        effects.append(SetUnmuteAllowed(who.pid, False))
    return allow(effects)


def _mute_all(
    state: SessionState, actor: Participant, _t: Participant | None, c: Command, now: float
) -> Decision:
    effects: list[Effect] = []
    for p in state.participants.values():
        if not p.is_host and p.state is _S.ADMITTED:
            effects += [SetMuted(p.pid, True), SetUnmuteAllowed(p.pid, False)]
    return allow(effects)


def _allow_unmute(
    state: SessionState, actor: Participant, t: Participant | None, c: Command, now: float
) -> Decision:
    # the host allows; only the member opens their own microphone, never the host remotely
    assert t is not None
    if t.state is not _S.ADMITTED:
        return deny("not_admitted", "only someone in the room can be allowed to unmute")
    return allow([SetUnmuteAllowed(t.pid, True), SetHandRaised(t.pid, False)])


def _unmute(
    state: SessionState, actor: Participant, _t: Participant | None, c: Command, now: float
) -> Decision:
    if actor.state is not _S.ADMITTED:
        return deny("not_admitted", "you are not in the room yet")
    if (
        state.rules.unmute_policy == "host_only"
        and not actor.is_host
        and not actor.unmute_allowed
    ):
        return deny("raise_hand_to_speak", "raise your hand; the host will let you unmute")
    return allow([SetMuted(actor.pid, False)])


def _raise_hand(
    state: SessionState, actor: Participant, _t: Participant | None, c: Command, now: float
) -> Decision:
    if actor.state is not _S.ADMITTED:
        return deny("not_admitted", "you are not in the room yet")
    return allow([
        SetHandRaised(actor.pid, True),
        AlertHost("hand_raised", actor.pid, state.hosts_present(excluding=actor.pid)),
    ])


def _lower_hand(
    state: SessionState, actor: Participant, t: Participant | None, c: Command, now: float
) -> Decision:
    who = t or actor
    if who.state is not _S.ADMITTED:
        return deny("not_admitted", "only someone in the room has a hand to lower")
    return allow([SetHandRaised(who.pid, False)])


def _stop_video(
    state: SessionState, actor: Participant, t: Participant | None, c: Command, now: float
) -> Decision:
    who = t or actor
    if who.state not in _PRESENT:
        return deny("not_present", "only someone in the session can stop their video")
    effects: list[Effect] = [SetVideoStopped(who.pid, True)]
    if t is not None:
        effects.append(SetVideoHold(who.pid, True))
    return allow(effects)


def _start_video(
    state: SessionState, actor: Participant, _t: Participant | None, c: Command, now: float
) -> Decision:
    if actor.state not in _PRESENT:
        return deny("not_present", "you are not in this session")
    if actor.video_held_by_host:
        return deny("video_held_by_host", "the host has stopped your video for now")
    return allow([SetVideoStopped(actor.pid, False)])


def _allow_video(
    state: SessionState, actor: Participant, t: Participant | None, c: Command, now: float
) -> Decision:
    assert t is not None
    return allow([SetVideoHold(t.pid, False)])


def _profile_check(state: SessionState, profile: Profile | None) -> Decision | None:
    rules = state.rules
    if profile is None:
        return deny("missing_profile", "a privacy profile is needed")
    if STRICTNESS[profile] < STRICTNESS[rules.minimum_profile]:
        return deny(
            "profile_below_minimum",
            f'"{profile.value}" is below this group\'s minimum "{rules.minimum_profile.value}"',
        )
    if profile not in rules.allowed_profiles:
        return deny("profile_not_allowed", f'"{profile.value}" is not allowed in this group')
    return None


def _enforce_profile(
    state: SessionState, actor: Participant, t: Participant | None, c: Command, now: float
) -> Decision:
    assert t is not None
    bad = _profile_check(state, c.profile)
    if bad is not None:
        return bad
    assert c.profile is not None
    if t.state not in _PRESENT:
        return deny("not_present", "only someone in the session can have a profile enforced")
    return allow([SetProfileFloor(t.pid, c.profile), SetProfile(t.pid, c.profile)])


def _set_own_profile(
    state: SessionState, actor: Participant, _t: Participant | None, c: Command, now: float
) -> Decision:
    if actor.state not in _PRESENT:
        return deny("not_present", "you are not in this session")
    bad = _profile_check(state, c.profile)
    if bad is not None:
        return bad
    assert c.profile is not None
    floor = actor.profile_floor
    if floor is not None and STRICTNESS[c.profile] < STRICTNESS[floor]:
        return deny(
            "profile_below_enforced",
            f'the host has set "{floor.value}" as the least you can show',
        )
    return allow([SetProfile(actor.pid, c.profile)])


def _set_clinician_consent(
    state: SessionState, actor: Participant, _t: Participant | None, c: Command, now: float
) -> Decision:
    if actor.state not in _PRESENT:
        return deny("not_present", "you are not in this session")
    if actor.is_host:
        return deny("members_only", "only members give or withdraw this consent")
    if c.enabled and state.rules.clinician_profile is None:
        return deny("clinician_view_not_offered",
                    "this group's clinician sees what the group sees")
    if actor.clinician_consent == c.enabled:
        return deny("no_change", "that is already your choice")
    return allow([SetClinicianConsent(actor.pid, c.enabled)])


def _set_text_only(
    state: SessionState, actor: Participant, _t: Participant | None, c: Command, now: float
) -> Decision:
    if actor.state not in _PRESENT:
        return deny("not_present", "you are not in this session")
    if c.enabled and not state.rules.text_only_allowed:
        return deny("text_only_not_allowed", "this group does not offer text-only participation")
    effects: list[Effect] = [SetTextOnly(actor.pid, c.enabled)]
    if c.enabled:
        effects += [SetMuted(actor.pid, True), SetVideoStopped(actor.pid, True)]
    return allow(effects)


Handler = Callable[[SessionState, Participant, Participant | None, Command, float], Decision]


def _flag(
    attr: Literal["locked", "paused", "focus"],
    value: bool,
    make: Callable[[bool], Effect],
    already: str,
) -> Handler:
    def handler(
        state: SessionState, actor: Participant, _t: Participant | None, c: Command, now: float
    ) -> Decision:
        if getattr(state, attr) == value:
            return deny("no_change", already)
        return allow([make(value)])
    return handler


def _end(
    state: SessionState, actor: Participant, _t: Participant | None, c: Command, now: float
) -> Decision:
    return allow([EndSession()])


def _someone_came_in(
    state: SessionState, actor: Participant, _t: Participant | None, c: Command, now: float
) -> Decision:
    if actor.state not in _PRESENT:
        return deny("not_present", "you are not in this session")
    # camera and microphone stop at once; the host hears privately, nobody else is told
    effects: list[Effect] = [
        SetMuted(actor.pid, True),
        SetVideoStopped(actor.pid, True),
        AlertHost("someone_came_in", actor.pid, state.hosts_present(excluding=actor.pid)),
        RecordIncident("someone_came_in", actor.pid),
    ]
    if actor.is_host and not state.paused:
        # whoever came in to the clinician's room hears the whole group: hold it
        effects.append(PauseMedia(True))
    return allow(effects)


def _chat(
    state: SessionState, actor: Participant, _t: Participant | None, c: Command, now: float
) -> Decision:
    to = c.to
    if to == "lobby":
        # the host tells people who wait what is happening ("we start in five minutes")
        if not actor.is_host:
            return deny("host_only", "only the host can write to the waiting room")
        if actor.state is not _S.ADMITTED:
            return deny("not_admitted", "the host must be in the room")
        waiting = tuple(
            p.pid for p in state.participants.values() if p.state in _WAITING_ROOM
        )
        if c.target is not None:
            if c.target not in waiting:
                return deny("not_waiting", "that person is not in the waiting room")
            waiting = (c.target,)
        if not waiting:
            return deny("nobody_waiting", "nobody is waiting in the lobby")
        recipients = waiting
    elif to == "all":
        if actor.state is not _S.ADMITTED:
            return deny("not_admitted", "you can message the group once you are in the room")
        # a member can always write privately to the clinician, e.g. to say they are not safe
        if not state.rules.chat_enabled and not actor.is_host:
            return deny("chat_disabled", "group chat is off for this session")
        recipients = state.admitted(excluding=actor.pid)
    else:
        if actor.state not in (_S.WAITING, _S.ADMITTED):
            return deny("not_present", "you can message the host once you are in the lobby")
        recipients = state.hosts_present(excluding=actor.pid)
        if not recipients:
            return deny("no_host_present", "no host is in the room to receive this")
    verdict = clean_chat_text(c.text)
    if not verdict.ok:
        return deny(verdict.reason_code, verdict.reason)
    if not state.chat_limiter.peek(actor.pid, now):
        return deny("chat_rate_limited", "too many messages; please wait a moment")
    return allow([DeliverChat(actor.pid, to, verdict.text, recipients)])


def _publish_media(
    state: SessionState, actor: Participant, _t: Participant | None, c: Command, now: float
) -> Decision:
    # the server takes no offer and forwards nothing for anyone not admitted
    if actor.state is not _S.ADMITTED:
        return deny("not_admitted", f'no media before admission (state "{actor.state.value}")')
    if c.media == "video" and actor.video_held_by_host:
        return deny("video_held_by_host", "the host has stopped your video for now")
    return allow([])


def _leave(
    state: SessionState, actor: Participant, _t: Participant | None, c: Command, now: float
) -> Decision:
    return _lobby_step(actor, "leave", _S.LEFT, [SetHandRaised(actor.pid, False)])


_HANDLERS: dict[str, Handler] = {
    "confirm_checklist": _confirm_checklist,
    "admit": _admit,
    "admit_all": _admit_all,
    "decline": _decline,
    "send_to_lobby": _send_to_lobby,
    "remove": _remove,
    "readmit": _readmit,
    "mute": _mute,
    "mute_all": _mute_all,
    "allow_unmute": _allow_unmute,
    "unmute": _unmute,
    "raise_hand": _raise_hand,
    "lower_hand": _lower_hand,
    "stop_video": _stop_video,
    "start_video": _start_video,
    "allow_video": _allow_video,
    "enforce_profile": _enforce_profile,
    "set_own_profile": _set_own_profile,
    "set_text_only": _set_text_only,
    "set_clinician_consent": _set_clinician_consent,
    "lock": _flag("locked", True, SetLocked, "the session is already locked"),
    "unlock": _flag("locked", False, SetLocked, "the session is not locked"),
    "focus_on": _flag("focus", True, SetFocus, "members already see only the hosts' video"),
    "focus_off": _flag("focus", False, SetFocus, "members already see everyone's video"),
    "pause": _flag("paused", True, PauseMedia, "the group is already paused"),
    "resume": _flag("paused", False, PauseMedia, "the group is not paused"),
    "end": _end,
    "someone_came_in": _someone_came_in,
    "chat": _chat,
    "publish_media": _publish_media,
    "leave": _leave,
}
assert set(_HANDLERS) == COMMAND_NAMES, "every command needs a handler"
