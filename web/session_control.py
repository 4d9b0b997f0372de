"""Session rules applied to a live room: events in, decisions out, the room lined up after.

`session_rules` decides; this module feeds it the room's events (arrivals, drops,
commands), applies each allowed decision to the rules' state, sends what the decision says
to send, and then *reconciles*: the room is made to match the rules' state (who is present,
who is in the room or the lobby, holds, profiles, pause, lock, end). The room is never
changed any other way, so the two cannot disagree for longer than one step;
`disagreements()` says where they do (tests check it after every step).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable
from typing import Any, Literal, Protocol

from confidentiality.profiles import STRICTNESS, Profile
from session_rules import effects as fx
from session_rules.checklists import GROUP_AGREEMENT
from session_rules.commands import (
    Command,
    Decision,
    decide,
    decide_arrival,
    decide_disconnect,
    decide_not_returned,
    decide_session_ended,
)
from session_rules.lobby import RECONNECT_GRACE_S, LobbyState
from session_rules.names import MemberNumbers
from session_rules.rules import GroupRules
from session_rules.session import Participant as Policy
from session_rules.session import SessionState, apply_effects
from sfu.errors import PermissionDenied, SfuError
from sfu.grants import Grant
from sfu.participant import Participant, ParticipantState, Send
from sfu.room import Room

from .host_alerts import HostAlerts
from .signaling.hidden_names import hide_names

logger = logging.getLogger(__name__)

# media-plane privacy events recorded as incidents (kinds from session_rules.incidents)
PRIVACY_INCIDENTS: dict[str, str] = {
    "fail_closed": "fail_closed_placeholder",
    "bystander": "bystander_alert",
}

# rules for ad-hoc development rooms: no lobby, every profile, nothing held on entry
DEV_RULES = GroupRules(
    lobby_required=False,
    muted_on_entry=False,
    allowed_profiles=frozenset(Profile),
    minimum_profile=Profile.NONE,
    max_participants=16,
    late_join_cutoff_min=240,
)


class Recorder(Protocol):
    """Where the controller records what happened (attendance, answers, incidents, audit)."""

    async def joined(self, participant_id: str) -> None: ...

    async def left(self, participant_id: str) -> None: ...

    async def checklist(self, participant_id: str, result: dict[str, Any]) -> None: ...

    async def incident(self, kind: str, participant_id: str | None, detail: str) -> None: ...

    async def audit(self, actor: str, action: str, target: str | None, detail: str) -> None: ...

    async def session_ended(self, actor: str) -> None: ...

    async def session_status(self) -> str | None:
        """The session's status in the store ("ended", …), or None when it cannot be read."""
        ...


class NullRecorder:
    async def joined(self, participant_id: str) -> None:
        pass

    async def left(self, participant_id: str) -> None:
        pass

    async def checklist(self, participant_id: str, result: dict[str, Any]) -> None:
        pass

    async def incident(self, kind: str, participant_id: str | None, detail: str) -> None:
        logger.info("incident %s about %s", kind, participant_id)

    async def audit(self, actor: str, action: str, target: str | None, detail: str) -> None:
        pass

    async def session_ended(self, actor: str) -> None:
        pass

    async def session_status(self) -> str | None:
        return None


# a host grant may be used by at most this many connections beyond the members' limit
MAX_HOSTS = 4
_PRESENT = frozenset({LobbyState.PREJOIN, LobbyState.WAITING, LobbyState.ADMITTED})
# why the room lets someone go, by the state the rules moved them to
_GONE_REASON: dict[LobbyState, str] = {
    LobbyState.DISCONNECTED: "disconnected",
    LobbyState.LEFT: "left",
    LobbyState.REMOVED: "removed",
    LobbyState.DECLINED: "declined",
}


class Persistence(Protocol):
    """Where the controller's state is kept beyond this process (see web.live)."""

    def changed(self) -> None: ...

    def connected(self, participant_id: str, resume_token: str) -> None: ...


class SessionController:
    """One room's rules: the only path by which anything changes who is in the room."""

    def __init__(
        self,
        room: Room,
        rules: GroupRules,
        *,
        starts_at: float | None = None,
        recorder: Recorder | None = None,
        skip_agreement: bool = False,
        clock: Callable[[], float] | None = None,
        session_id: str | None = None,
        state: SessionState | None = None,
        persistence: Persistence | None = None,
    ) -> None:
        self.room = room
        # one clock for the rules and the room's reconnect grace
        self.clock = clock or room.clock
        self.state = state or SessionState(rules, starts_at=self.clock() if starts_at is None
                                           else starts_at)
        # --- persistence: after each applied decision the store keeps what a restarted (or
        # another) node needs; a state rebuilt from it puts the room's flags back at once
        self.persistence = persistence
        if self.state.paused:
            room.set_paused(True)
        if self.state.locked:
            room.set_locked(True)
        self.recorder: Recorder = recorder or NullRecorder()
        self.session_id = session_id
        # development rooms have no invite page; their members are taken as having agreed
        self.skip_agreement = skip_agreement
        # the room's own cap only backs up the rules' (members) and lets hosts in beyond it
        room.policy.max_participants = rules.max_connected + MAX_HOSTS
        # from the first subscription on, Focus holds as the group's rule says
        room.policy.focus = bool(self.state.focus)
        self._pending: set[asyncio.Task[None]] = set()
        # private alerts to the hosts, and watches on members who dropped out of the room
        self.alerts = HostAlerts(room)
        self.return_poll_s = 1.0
        self._watching: dict[str, asyncio.Task[None]] = {}
        # refusals the hosts were already told of (a late member reloading their page)
        self._noticed: set[tuple[str, str]] = set()
        # set while ending a session the store already has as ended (nothing to write back)
        self._ended_in_store = False
        # under the names-hidden rule: each member's pseudonym and stand-in "Member N"
        self.member_numbers = MemberNumbers()
        self._pseudonyms: dict[str, str] = {}
        room.on(self._on_room_event)

    def _on_room_event(self, event: str, data: dict[str, Any]) -> None:
        # privacy events from the media plane become incidents for the safety officer
        if event != "privacy_event":
            return
        kind = PRIVACY_INCIDENTS.get(data.get("kind", ""))
        if kind is None:
            return
        task = asyncio.ensure_future(
            self.recorder.incident(kind, data.get("participant_id"), kind)
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    # --- arrivals and departures
    async def arrive(self, grant: Grant, send: Send, *, resumed: bool) -> Participant:
        if not self.state.ended and await self.recorder.session_status() == "ended":
            # ended elsewhere (the clinician's API call, another node): end here too
            await self.end_elsewhere()
        if self.room.closed:
            raise PermissionDenied("the session has ended", code="session_ended")
        now = self.clock()
        pid = grant.participant_id
        role: Literal["host", "member"] = "host" if grant.is_host else "member"
        self.alerts.pseudonyms[pid] = grant.display_name
        decision = decide_arrival(self.state, pid, role=role, now=now)
        if not decision.allowed:
            # a refusal may still be worth a word to the host (someone arrived too late), once
            if decision.notices and (pid, decision.reason_code) not in self._noticed:
                self._noticed.add((pid, decision.reason_code))
                await self._carry_out_notices(decision, actor=pid)
            raise PermissionDenied(decision.reason, code=decision.reason_code)
        if any(isinstance(e, fx.ReplaceConnection) for e in decision.effects):
            await self._replace_connection(pid)
            # the old connection's going may have changed things: decide on what is now
            now = self.clock()
            decision = decide_arrival(self.state, pid, role=role, now=now)
            if not decision.allowed or self.room.participants.get(pid) is not None:
                raise PermissionDenied(decision.reason, code=decision.reason_code
                                       if not decision.allowed else "already_connected")
        # from here to the room's join nothing awaits: the rules and the room move together
        before = copy.deepcopy(self.state.participants.get(pid))
        apply_effects(self.state, decision.effects, now=now)
        policy = self.state.participants[pid]
        decisions = [decision]
        if policy.state is LobbyState.PREJOIN and self.skip_agreement:
            agreed = decide(self.state, policy.pid, Command(
                "confirm_checklist", answers=frozenset(i.id for i in GROUP_AGREEMENT)), now=now)
            if agreed.allowed:
                apply_effects(self.state, agreed.effects, now=now)
                decisions.append(agreed)
        if not grant.is_host:
            # numbered on first arrival, before anyone is told of them
            self._pseudonyms[pid] = grant.display_name
            self.member_numbers.alias(pid)
            if self.state.rules.names_hidden:
                send = hide_names(send, pseudonyms=lambda: self._pseudonyms,
                                  alias=self.member_numbers.alias)
        # the grant's profile, raised to the group's minimum if needed
        profile = grant.profile
        if STRICTNESS[policy.profile] > STRICTNESS[profile] or not self.state.rules.permits_profile(
            profile
        ):
            profile = policy.profile
        policy.profile = profile
        state = (
            ParticipantState.ADMITTED
            if policy.state is LobbyState.ADMITTED
            else ParticipantState.LOBBY
        )
        try:
            participant = await self.room.join(grant, send, resumed=resumed, state=state,
                                               profile=profile)
        except SfuError:
            # the room refused after all (ended, full of hosts): the rules forget this
            # arrival, so that both still agree and a retry is decided afresh
            self._restore(pid, before)
            raise
        if self.persistence is not None:
            self.persistence.connected(pid, participant.resume_token)
        if self.state.rules.audio_only_default and not grant.is_host:
            # the group's default is sound only: each member may turn video on for themselves
            self.room.set_incoming_video(participant, False)
            participant.send({"type": "incoming_video", "enabled": False})
        for made in decisions:
            await self._carry_out(made, actor=participant.id)
        await self._reconcile_participant(pid)
        self._sync_participant(pid)
        if participant.state is ParticipantState.ADMITTED:
            await self.recorder.joined(pid)
        if participant.is_host:
            await self.alerts.host_arrived(pid)
        return participant

    @property
    def holds_state(self) -> bool:
        """True while the room must stay, empty or not: its rules' state (who is removed,
        who is host) lives only here until the session ends."""
        return not self.state.ended

    def _restore(self, pid: str, before: Policy | None) -> None:
        if before is None:
            self.state.participants.pop(pid, None)
        else:
            self.state.participants[pid] = before

    async def _replace_connection(self, pid: str) -> None:
        old = self.room.participants.get(pid)
        if old is None:
            return
        old.send({"type": "replaced",
                  "message": "This session was opened again in another window."})
        await self.room.leave(pid, reason="replaced")
        old.disconnect()

    async def depart(self, participant_id: str, reason: str, *,
                     connection: Participant | None = None) -> None:
        """The participant's connection went: they left, or it dropped (`reason`).

        With `connection`, only that connection: one that was already replaced (the same
        person is back on a new one) changes nothing.
        """
        if connection is not None and self.room.participants.get(participant_id) is not connection:
            return
        now = self.clock()
        if participant_id in self.state.participants:
            if reason == "left":
                decision = decide(self.state, participant_id, Command("leave"), now=now)
            else:
                decision = decide_disconnect(self.state, participant_id, now=now)
            if decision.allowed:
                apply_effects(self.state, decision.effects, now=now)
                await self._carry_out(decision, actor=participant_id, reason=reason)
                self._watch_return(participant_id)
        # whatever the rules said (e.g. already gone), the connection is over; only that one
        # (a new one may have arrived while this one was being taken down)
        await self._drop(participant_id, reason, only=connection)

    # --- the session ended outside the room
    async def end_elsewhere(self) -> bool:
        """End the room because the store says the session ended; False if it already had."""
        decision = decide_session_ended(self.state)
        if not decision.allowed:
            return False
        apply_effects(self.state, decision.effects, now=self.clock())
        self._ended_in_store = True
        await self._carry_out(decision, actor="control_plane")
        return True

    # --- commands
    async def command(
        self, participant: Participant, command: Command, *, ref: str | int | None = None
    ) -> None:
        """Decide one command from `participant`, answer them, then carry it out.

        The answer goes first: what the command does may close the sender's own socket
        (ending the session), and they must still hear that it was done.
        """
        now = self.clock()
        decision = decide(self.state, participant.id, command, now=now)
        if decision.allowed:
            apply_effects(self.state, decision.effects, now=now)
            reply: dict[str, Any] = {"type": "ok", "command": command.name,
                                     "message": decision.reason}
            if ref is not None:
                reply["ref"] = ref
            participant.send(reply)
        else:
            logger.info("room %s: %s denied for %s: %s", self.room.id, command.name,
                        participant.id, decision.reason_code)
            participant.send(_error(decision.reason_code, decision.reason, ref))
        await self.recorder.audit(participant.id, f"command:{command.name}", command.target,
                                  "allowed" if decision.allowed else decision.reason_code)
        if decision.allowed:
            await self._carry_out(decision, actor=participant.id)

    def check_publish(self, participant: Participant, kind: str) -> None:
        decision = decide(self.state, participant.id, Command("publish_media", media=kind),  # type: ignore[arg-type]
                          now=self.clock())
        if not decision.allowed:
            raise PermissionDenied(decision.reason, code=decision.reason_code)

    # --- effects: first what is said, then the room is lined up with the rules
    async def _carry_out(self, decision: Decision, *, actor: str, reason: str | None = None) -> None:
        if self.persistence is not None:
            self.persistence.changed()
        touched: set[str] = set()
        for effect in decision.effects:
            try:
                await self._say(effect, touched, actor)
            except SfuError as exc:
                # the room moved on (someone left meanwhile): the rest still applies
                logger.info("room %s: effect %s not applied: %s", self.room.id, effect.kind,
                            exc.code)
        await self._reconcile_room()
        for pid in touched:
            await self._reconcile_participant(pid, reason=reason)
            self._sync_participant(pid)

    async def _say(self, effect: fx.Effect, touched: set[str], actor: str) -> None:
        room = self.room
        pid = getattr(effect, "pid", None)
        if isinstance(pid, str):
            touched.add(pid)
        if isinstance(effect, fx.EndSession):
            if not self._ended_in_store:
                await self.recorder.session_ended(actor)
        elif isinstance(effect, fx.DisconnectParticipant):
            member = room.participants.get(effect.pid)
            if member is not None:
                message = ("The clinician has not admitted you to this session."
                           if effect.reason_code == "declined"
                           else "The clinician has ended your place in this session.")
                member.send({"type": effect.reason_code, "message": message})
        elif isinstance(effect, fx.AlertHost):
            await self.alerts.send(effect.alert, effect.about_pid, effect.recipients,
                                   with_details=effect.alert == "not_returned")
        elif isinstance(effect, fx.DeliverChat):
            sender = room.participants.get(effect.sender)
            chat: dict[str, Any] = {
                "type": "chat", "from": effect.sender,
                "display_name": sender.display_name if sender else "",
                "to": effect.to, "text": effect.text, "ts_ms": int(self.clock() * 1000),
            }
            for to in (*effect.recipients, effect.sender):
                member = room.participants.get(to)
                if member is not None:
                    member.send(dict(chat))
        elif isinstance(effect, fx.StoreChecklist):
            await self.recorder.checklist(effect.pid, effect.result.to_dict())
        elif isinstance(effect, fx.RecordIncident):
            await self.recorder.incident(effect.incident, effect.about_pid, effect.incident)

    async def _carry_out_notices(self, decision: Decision, *, actor: str) -> None:
        for effect in decision.notices:
            try:
                await self._say(effect, set(), actor)
            except SfuError as exc:
                logger.info("room %s: notice %s not given: %s", self.room.id, effect.kind,
                            exc.code)

    # --- a member who dropped out: after the grace period the host is told how to reach them
    def _watch_return(self, pid: str) -> None:
        policy = self.state.participants.get(pid)
        if (policy is None or policy.is_host or policy.state is not LobbyState.DISCONNECTED
                or policy.lobby.state_before_disconnect is not LobbyState.ADMITTED):
            return
        old = self._watching.pop(pid, None)
        if old is not None:
            old.cancel()
        task = asyncio.ensure_future(self._await_return(pid, policy.lobby.disconnected_at))
        self._watching[pid] = task
        task.add_done_callback(lambda t: self._watching.pop(pid, None)
                               if self._watching.get(pid) is t else None)

    async def _await_return(self, pid: str, since: float | None) -> None:
        # the grace runs on the rules' clock (which tests move); the room is looked at often
        # enough that the alert follows the end of the grace within `return_poll_s`
        while True:
            policy = self.state.participants.get(pid)
            if (self.state.ended or policy is None
                    or policy.state is not LobbyState.DISCONNECTED
                    or policy.lobby.disconnected_at != since or since is None):
                return
            remaining = since + RECONNECT_GRACE_S - self.clock()
            if remaining < 0:
                break
            await asyncio.sleep(min(remaining + 0.05, self.return_poll_s))
        now = self.clock()
        decision = decide_not_returned(self.state, pid, now=now)
        if decision.allowed:
            apply_effects(self.state, decision.effects, now=now)
            await self._carry_out(decision, actor="room")

    async def alert_hosts(self, kind: str, about_pid: str) -> int:
        """A private alert from the control plane (e.g. a risk flag on today's measures) to
        the hosts present, or kept for the next host to arrive; how many were told."""
        return await self.alerts.send(kind, about_pid, self.state.hosts_present())

    async def _reconcile_room(self) -> None:
        room, state = self.room, self.state
        if room.closed:
            return
        if room.paused != state.paused:
            room.set_paused(state.paused)
        if room.locked != state.locked:
            room.set_locked(state.locked)
            room.broadcast({"type": "room_locked", "locked": state.locked})
        if room.policy.focus != state.focus:
            room.set_focus(bool(state.focus))
        if state.ended:
            for watch in list(self._watching.values()):
                watch.cancel()
            room.broadcast({"type": "ended", "message": "The clinician has ended the session."},
                           everyone=True)
            members = list(room.participants.values())
            await room.aclose()
            for member in members:
                await self.recorder.left(member.id)
                member.disconnect()

    async def _reconcile_participant(self, pid: str, *, reason: str | None = None) -> None:
        """Make the room's view of `pid` match the rules' (safe to run any number of times)."""
        member = self.room.participants.get(pid)
        policy = self.state.participants.get(pid)
        if member is None:
            return  # nothing live; an arrival joins them in the state the rules give
        if policy is None or policy.state not in _PRESENT:
            gone = _GONE_REASON.get(policy.state, "left") if policy else "left"
            await self._drop(pid, reason if reason and gone == "disconnected" else gone)
            return
        # holds and profile first: whoever enters the room enters with them in force
        want_audio = policy.audio_muted
        want_video = policy.video_stopped or policy.video_held_by_host
        if member.held["audio"] != want_audio:
            self.room.set_held(pid, "audio", want_audio)
        if member.held["video"] != want_video:
            self.room.set_held(pid, "video", want_video)
        if member.profile is not policy.profile:
            self.room.set_profile(pid, policy.profile)
        host_view = self.state.rules.clinician_sees(policy.profile, policy.clinician_consent)
        if self.room.host_view(pid) is not host_view:
            self.room.set_host_view(pid, host_view)
        if policy.state is LobbyState.ADMITTED and member.state is ParticipantState.LOBBY:
            await self.room.admit(pid)
            await self.recorder.joined(pid)
        elif policy.state is not LobbyState.ADMITTED and member.state is ParticipantState.ADMITTED:
            await self.room.send_to_lobby(pid)
        elif policy.state is LobbyState.WAITING:
            self.room.notify_lobby()

    async def _drop(self, pid: str, reason: str, *, only: Participant | None = None) -> None:
        """Take `pid`'s connection (`only` that one, if given) out of the room and close it
        (once, whoever asks)."""
        member = self.room.participants.get(pid)
        if member is None or (only is not None and member is not only):
            return
        if reason in ("removed", "declined"):
            await self.room.remove(pid, reason=reason)
        else:
            await self.room.leave(pid, reason=reason)
            # a connection the rules no longer count must not linger (nor carry media)
            member.disconnect()
        await self.recorder.left(pid)

    def disagreements(self) -> list[str]:
        """Where the room differs from the rules' state (empty when they agree)."""
        out: list[str] = []
        room, state = self.room, self.state
        if room.closed != state.ended:
            out.append(f"ended: rules {state.ended}, room closed {room.closed}")
        if room.closed:
            if room.participants:
                out.append(f"ended room still has {sorted(room.participants)}")
            return out
        if room.paused != state.paused:
            out.append(f"paused: rules {state.paused}, room {room.paused}")
        if room.locked != state.locked:
            out.append(f"locked: rules {state.locked}, room {room.locked}")
        if room.policy.focus != state.focus:
            out.append(f"focus: rules {state.focus}, room {room.policy.focus}")
        for pid in room.participants:
            if pid not in state.participants:
                out.append(f"{pid}: in the room, unknown to the rules")
        for pid, policy in state.participants.items():
            member = room.participants.get(pid)
            if (policy.state in _PRESENT) != (member is not None):
                where = "connected" if member is not None else "not connected"
                out.append(f"{pid}: rules {policy.state.value}, room {where}")
                continue
            if member is None:
                continue
            want = (ParticipantState.ADMITTED if policy.state is LobbyState.ADMITTED
                    else ParticipantState.LOBBY)
            if member.state is not want:
                out.append(f"{pid}: rules {policy.state.value}, room {member.state.value}")
            if member.held["audio"] != policy.audio_muted:
                out.append(f"{pid}: audio held {member.held['audio']}, rules muted "
                           f"{policy.audio_muted}")
            video = policy.video_stopped or policy.video_held_by_host
            if member.held["video"] != video:
                out.append(f"{pid}: video held {member.held['video']}, rules {video}")
            if member.profile is not policy.profile:
                out.append(f"{pid}: profile {member.profile.value}, rules "
                           f"{policy.profile.value}")
            host_view = state.rules.clinician_sees(policy.profile, policy.clinician_consent)
            if room.host_view(pid) is not host_view:
                out.append(f"{pid}: clinician's view {room.host_view(pid)}, rules {host_view}")
        return out

    # --- what each participant is told of their own state
    def _sync_participant(self, pid: str) -> None:
        member = self.room.participants.get(pid)
        policy = self.state.participants.get(pid)
        if member is None or policy is None:
            return
        member.flags = {
            "hand_raised": policy.hand_raised,
            "text_only": policy.text_only,
            "unmute_allowed": policy.unmute_allowed or self.state.rules.unmute_policy == "self",
            "lobby_state": policy.state.value,
        }
        self.room.announce(member)
        self._send_self_state(pid)

    def _send_self_state(self, pid: str) -> None:
        member = self.room.participants.get(pid)
        policy = self.state.participants.get(pid)
        if member is None or policy is None:
            return
        rules = self.state.rules
        member.send({
            "type": "self_state",
            "lobby_state": policy.state.value,
            "audio_muted": policy.audio_muted,
            "unmute_allowed": policy.unmute_allowed or rules.unmute_policy == "self"
            or policy.is_host,
            "hand_raised": policy.hand_raised,
            "video_stopped": policy.video_stopped,
            "video_held_by_host": policy.video_held_by_host,
            "text_only": policy.text_only,
            "profile": policy.profile.value,
            "profile_floor": policy.profile_floor.value if policy.profile_floor else None,
            "allowed_profiles": sorted(
                (p.value for p in rules.allowed_profiles if rules.permits_profile(p)),
                key=lambda v: STRICTNESS[Profile(v)],
            ),
            "chat_enabled": rules.chat_enabled,
            "text_only_allowed": rules.text_only_allowed,
            "clinician_profile": rules.clinician_profile.value
            if rules.clinician_profile and not policy.is_host else None,
            "clinician_consent": policy.clinician_consent,
            "clinician_sees": (rules.clinician_sees(policy.profile, policy.clinician_consent)
                               or policy.profile).value,
            "checklist": [{"id": i.id, "text": i.text} for i in GROUP_AGREEMENT]
            if policy.state is LobbyState.PREJOIN else None,
        })


def _error(code: str, message: str, ref: str | int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if ref is not None:
        out["ref"] = ref
    return out


