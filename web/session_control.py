"""Session rules applied to a live room: events in, decisions out, effects applied here.

`session_rules` decides; this module feeds it the room's events (arrivals, drops,
commands) and carries each allowed decision's effects out on the room and to the store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Literal, Protocol

from confidentiality.profiles import STRICTNESS, Profile
from session_rules import effects as fx
from session_rules.checklists import GROUP_AGREEMENT
from session_rules.commands import Command, Decision, decide, decide_arrival, decide_disconnect
from session_rules.errors import InvalidCommand
from session_rules.lobby import LobbyState
from session_rules.rules import GroupRules
from session_rules.session import SessionState, apply_effects
from sfu.errors import PermissionDenied, SfuError
from sfu.grants import Grant
from sfu.participant import Participant, ParticipantState, Send
from sfu.room import Room

logger = logging.getLogger(__name__)

ALERT_TEXT: dict[str, str] = {
    "waiting": "is waiting in the lobby",
    "hand_raised": "raised their hand",
    "someone_came_in": "pressed “someone came in”: their camera and microphone are off",
    "disconnected": "lost their connection",
}

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


class SessionController:
    """One room's rules: the only path by which participants' commands change the room."""

    def __init__(
        self,
        room: Room,
        rules: GroupRules,
        *,
        starts_at: float | None = None,
        recorder: Recorder | None = None,
        skip_agreement: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.room = room
        self.clock = clock
        self.state = SessionState(rules, starts_at=clock() if starts_at is None else starts_at)
        self.recorder: Recorder = recorder or NullRecorder()
        # development rooms have no invite page; their members are taken as having agreed
        self.skip_agreement = skip_agreement
        room.policy.max_participants = max(rules.max_participants, 1) + 4  # hosts and lobby
        self._pending: set[asyncio.Task[None]] = set()
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
        now = self.clock()
        role: Literal["host", "member"] = "host" if grant.is_host else "member"
        decision = decide_arrival(self.state, grant.participant_id, role=role, now=now)
        if not decision.allowed:
            raise PermissionDenied(decision.reason, code=decision.reason_code)
        apply_effects(self.state, decision.effects, now=now)
        policy = self.state.participants[grant.participant_id]
        decisions = [decision]
        if policy.state is LobbyState.PREJOIN and self.skip_agreement:
            agreed = decide(self.state, policy.pid, Command(
                "confirm_checklist", answers=frozenset(i.id for i in GROUP_AGREEMENT)), now=now)
            if agreed.allowed:
                apply_effects(self.state, agreed.effects, now=now)
                decisions.append(agreed)
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
        participant = await self.room.join(grant, send, resumed=resumed, state=state,
                                           profile=profile)
        for made in decisions:
            await self._carry_out(made, actor=participant.id)
        self._sync_participant(participant.id)
        if participant.state is ParticipantState.ADMITTED:
            await self.recorder.joined(participant.id)
        else:
            self._send_self_state(participant.id)
        return participant

    async def depart(self, participant_id: str, reason: str) -> None:
        now = self.clock()
        if participant_id in self.state.participants:
            if reason == "left":
                decision = decide(self.state, participant_id, Command("leave"), now=now)
            else:
                decision = decide_disconnect(self.state, participant_id, now=now)
            if decision.allowed:
                apply_effects(self.state, decision.effects, now=now)
                await self._carry_out(decision, actor=participant_id)
        await self.room.leave(participant_id, reason=reason)
        await self.recorder.left(participant_id)

    # --- commands
    async def command(self, participant: Participant, msg: dict[str, Any]) -> dict[str, Any]:
        wire = {k: v for k, v in msg.items() if k not in ("type", "id", "v")}
        try:
            command = Command.from_wire(wire)
        except InvalidCommand as exc:
            return _error(exc.code, exc.message, msg.get("id"))
        now = self.clock()
        decision = decide(self.state, participant.id, command, now=now)
        target = command.target
        await self.recorder.audit(participant.id, f"command:{command.name}", target,
                                  "allowed" if decision.allowed else decision.reason_code)
        if not decision.allowed:
            logger.info("room %s: %s denied for %s: %s", self.room.id, command.name,
                        participant.id, decision.reason_code)
            return _error(decision.reason_code, decision.reason, msg.get("id"))
        apply_effects(self.state, decision.effects, now=now)
        await self._carry_out(decision, actor=participant.id)
        return {"type": "ok", "command": command.name, "ref": msg.get("id"),
                "message": decision.reason}

    def check_publish(self, participant: Participant, kind: str) -> None:
        decision = decide(self.state, participant.id, Command("publish_media", media=kind),  # type: ignore[arg-type]
                          now=self.clock())
        if not decision.allowed:
            raise PermissionDenied(decision.reason, code=decision.reason_code)

    # --- effects
    async def _carry_out(self, decision: Decision, *, actor: str) -> None:
        touched: set[str] = set()
        for effect in decision.effects:
            try:
                await self._apply(effect, touched, actor)
            except SfuError as exc:
                # the room moved on (someone left meanwhile): the rest still applies
                logger.info("room %s: effect %s not applied: %s", self.room.id, effect.kind,
                            exc.code)
        for pid in touched:
            self._sync_participant(pid)

    async def _apply(self, effect: fx.Effect, touched: set[str], actor: str) -> None:
        room = self.room
        if isinstance(effect, fx.SetState):
            touched.add(effect.pid)
            member = room.participants.get(effect.pid)
            if member is None:
                return
            if effect.state is LobbyState.ADMITTED and member.state is ParticipantState.LOBBY:
                await room.admit(effect.pid)
                await self.recorder.joined(effect.pid)
            elif effect.state is LobbyState.WAITING and member.state is ParticipantState.ADMITTED:
                await room.send_to_lobby(effect.pid)
            elif effect.state is LobbyState.WAITING:
                room.notify_lobby()
        elif isinstance(effect, fx.SetMuted):
            touched.add(effect.pid)
            if effect.pid in room.participants:
                room.set_held(effect.pid, "audio", effect.muted)
        elif isinstance(effect, (fx.SetVideoStopped, fx.SetVideoHold)):
            touched.add(effect.pid)
            policy = self.state.participants[effect.pid]
            if effect.pid in room.participants:
                room.set_held(effect.pid, "video",
                              policy.video_stopped or policy.video_held_by_host)
        elif isinstance(effect, fx.SetProfile):
            touched.add(effect.pid)
            if effect.pid in room.participants:
                room.set_profile(effect.pid, effect.profile)
        elif isinstance(effect, (fx.SetHandRaised, fx.SetUnmuteAllowed, fx.SetTextOnly,
                                 fx.SetProfileFloor)):
            touched.add(effect.pid)
        elif isinstance(effect, fx.PauseMedia):
            room.set_paused(effect.paused)
        elif isinstance(effect, fx.SetLocked):
            room.set_locked(effect.locked)
            room.broadcast({"type": "room_locked", "locked": effect.locked})
        elif isinstance(effect, fx.EndSession):
            await self.recorder.session_ended(actor)
            room.broadcast({"type": "ended", "message": "The clinician has ended the session."},
                           everyone=True)
            await room.aclose()
        elif isinstance(effect, fx.DisconnectParticipant):
            if effect.pid in room.participants:
                message = ("The clinician has not admitted you to this session."
                           if effect.reason_code == "declined"
                           else "The clinician has ended your place in this session.")
                room.get(effect.pid).send({"type": effect.reason_code, "message": message})
                await room.remove(effect.pid, reason=effect.reason_code)
                await self.recorder.left(effect.pid)
        elif isinstance(effect, fx.AlertHost):
            about = room.participants.get(effect.about_pid) if effect.about_pid else None
            name = about.display_name if about else "A participant"
            text = f"{name} {ALERT_TEXT.get(effect.alert, effect.alert.replace('_', ' '))}."
            for pid in effect.recipients:
                host = room.participants.get(pid)
                if host is not None:
                    host.send({"type": "alert", "kind": effect.alert,
                               "participant_id": effect.about_pid, "message": text})
        elif isinstance(effect, fx.DeliverChat):
            sender = room.participants.get(effect.sender)
            chat: dict[str, Any] = {
                "type": "chat", "from": effect.sender,
                "display_name": sender.display_name if sender else "",
                "to": effect.to, "text": effect.text, "ts_ms": int(self.clock() * 1000),
            }
            for pid in (*effect.recipients, effect.sender):
                member = room.participants.get(pid)
                if member is not None:
                    member.send(dict(chat))
        elif isinstance(effect, fx.StoreChecklist):
            await self.recorder.checklist(effect.pid, effect.result.to_dict())
        elif isinstance(effect, fx.RecordIncident):
            await self.recorder.incident(effect.incident, effect.about_pid, effect.incident)

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
            "checklist": [{"id": i.id, "text": i.text} for i in GROUP_AGREEMENT]
            if policy.state is LobbyState.PREJOIN else None,
        })


def _error(code: str, message: str, ref: object) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if isinstance(ref, (str, int)) and not isinstance(ref, bool):
        out["ref"] = ref
    return out


