"""A model-based random walk through whole sessions on a real server.

Each walk is one scheduled session on the tests' real server: a host and up to four members
join (invites redeemed and host grants minted through the HTTP API), leave, drop their TCP
connection abruptly, come back inside and outside the reconnect grace (the rooms' clock is
moved, not waited for), send every host and member command, forged ones too (another's
target, made-up ids, fields of the wrong type, commands the wire does not offer, junk
messages), publish audio, and end the session through the socket or the API.

Every command's reply is checked against the session rules' own decision for the state the
server was in (the socket path must do exactly what the decision table says), and after
every step the invariants are checked:
- the rules' state equals the room's state (`SessionController.disagreements`);
- a connected host is in the room and can end, lock, remove and mute;
- nobody in the lobby has a media path (no publication, no subscription, no publisher peer);
- a removed member is not in the room and cannot come back;
- an ended session admits nobody;
- what each client was last told of its own state is what the rules hold;
- no message got `internal_error`, and the server logged no error.

`random.Random(seed)` drives everything, so a finding is replayed by its seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCPeerConnection

from session_rules.checklists import GROUP_AGREEMENT
from session_rules.commands import Command, decide, decide_arrival
from session_rules.lobby import LobbyState
from sfu.ice import rtc_configuration
from sfu.participant import ParticipantState
from web.signaling.messages import CommandMessage, WireError, parse

from .live_session import LiveSession, live_session
from .wire_client import WireClient

MEMBERS: tuple[tuple[str, str], ...] = (
    ("Araminta Quillfeather", "Robin"),
    ("Barnaby Thistlewood", "Wren"),
    ("Cordelia Ravensworth", "Kit"),
    ("Dorothea Fenwicke", "Ash"),
)
MEMBER_COMMANDS = (
    "confirm_checklist", "mute", "unmute", "raise_hand", "lower_hand", "stop_video",
    "start_video", "set_own_profile", "set_text_only", "someone_came_in", "chat",
)
HOST_COMMANDS = (
    "admit", "admit_all", "decline", "send_to_lobby", "remove", "readmit", "mute", "mute_all",
    "allow_unmute", "stop_video", "allow_video", "enforce_profile", "lock", "unlock", "pause",
    "resume", "lower_hand", "raise_hand", "unmute", "set_own_profile", "chat",
)
PROFILES = ("none", "blur", "face_mask", "avatar", "camera_off")
_PRESENT = (LobbyState.PREJOIN, LobbyState.WAITING, LobbyState.ADMITTED)
# the only codes a bad message may get (anything else, e.g. internal_error, is a finding)
WIRE_CODES = frozenset({
    "bad_json", "too_deep", "bad_message", "unknown_type", "unknown_field", "bad_field",
    "invalid_command", "already_joined", "bad_sdp", "unexpected_answer", "not_admitted",
    "wrong_state", "codec_unsupported", "rate_limited", "permission_denied",
})


@dataclass
class Finding:
    seed: int
    step: int
    action: str
    what: str

    def __str__(self) -> str:
        return f"seed {self.seed} step {self.step} ({self.action}): {self.what}"


@dataclass
class Actor:
    label: str
    is_host: bool
    pid: str | None = None
    client: WireClient | None = None
    grant: str | None = None  # the last grant used to join
    token: str | None = None  # the signaling resume token from the last `joined`
    invite_resume: str | None = None  # the invite's resume secret (members)
    redeemed: bool = False

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.is_open and self.client.me is not None


@dataclass
class WalkResult:
    seed: int
    steps: int
    findings: list[Finding] = field(default_factory=list)
    states: set[tuple[Any, ...]] = field(default_factory=set)
    actions: Counter[str] = field(default_factory=Counter)


class _ErrorLog(logging.Handler):
    """Errors the server logs while a walk runs (each one is a finding)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()}"[:300])


_OFFER: str | None = None


async def audio_offer() -> str:
    """An audio-only offer made once by a real aiortc peer (its media never flows)."""
    global _OFFER
    if _OFFER is None:
        pc = RTCPeerConnection(rtc_configuration([]))
        pc.addTransceiver("audio", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        _OFFER = pc.localDescription.sdp
        await pc.close()
    return _OFFER


class SessionWalk:
    """One seeded walk through one session."""

    def __init__(self, server: Any, seed: int, *, steps: int = 40, members: int = 4) -> None:
        self.server = server
        self.seed = seed
        self.steps = steps
        self.rng = random.Random(seed)
        self.members = MEMBERS[:members]
        self.result = WalkResult(seed, 0)
        self.live: LiveSession | None = None
        self.actors: list[Actor] = []
        self.removed: set[str] = set()
        self.ended = False
        self.step = 0
        self.action = "setup"
        self._errors = _ErrorLog()

    # --- running
    async def run(self) -> WalkResult:
        rules = {
            "max_participants": self.rng.choice([2, 3, 12]),
            "lobby_required": self.rng.random() < 0.8,
            "unmute_policy": self.rng.choice(["self", "host_only"]),
            "chat_enabled": self.rng.random() < 0.8,
            "text_only_allowed": self.rng.random() < 0.8,
            "late_join_cutoff_min": 240,
            "minimum_profile": "none",
            "allowed_profiles": ["none", "blur", "face_mask", "avatar", "camera_off"],
        }
        self.live = await live_session(self.server, rules=rules, members=self.members,
                                       username=f"dr.walk{self.seed}")
        self.actors = [Actor("host", True)] + [Actor(p, False) for _, p in self.members]
        for actor in self.actors[1:]:
            actor.pid = self.live.session.participant_ids[actor.label]
        logging.getLogger().addHandler(self._errors)
        try:
            ended_at = None
            for step in range(1, self.steps + 1):
                self.step = step
                if ended_at is None and self.ended:
                    ended_at = self.step
                if ended_at is not None and self.step > ended_at + 4:
                    break  # a few tries at an ended session are enough
                await self._one_step()
                self.result.actions[self.action] += 1
                await self._settle()
                self._check()
                self.result.states.add(self._signature())
                self.result.steps = self.step
        finally:
            logging.getLogger().removeHandler(self._errors)
            await self.live.aclose()
        return self.result

    def _find(self, what: str) -> None:
        self.result.findings.append(Finding(self.seed, self.step, self.action, what))

    async def _one_step(self) -> str:
        rng = self.rng
        host = self.actors[0]
        if not host.connected and not self.ended and rng.random() < 0.6:
            self.action = "host joins"
            await self._join(host)
            return self.action
        choices: list[tuple[float, str]] = [
            (3, "member joins"), (1.5, "member confirms"), (4, "member command"),
            (5, "host command"), (1, "member leaves"), (1, "member drops"),
            (0.6, "host drops"), (0.3, "host leaves"), (0.4, "host opens another window"),
            (0.4, "member opens another window"), (1.5, "forged message"),
            (0.8, "clock moves past the grace"), (0.6, "clock moves a little"),
            (0.7, "publish"), (0.12 if self.step > 15 else 0.01, "end through the socket"),
            (0.1 if self.step > 15 else 0.01, "end through the API"),
        ]
        name = rng.choices([n for _, n in choices], weights=[w for w, _ in choices])[0]
        self.action = name
        members = self.actors[1:]
        online = [m for m in members if m.connected]
        if name == "member joins":
            candidates = [m for m in members if not m.connected] or members
            await self._join(rng.choice(candidates))
        elif name == "member confirms":
            prejoin = [m for m in online if self._rules_state(m) is LobbyState.PREJOIN]
            await self._confirm(rng.choice(prejoin or online or members))
        elif name == "member command":
            await self._member_command(rng.choice(online or members))
        elif name == "host command":
            await self._host_command()
        elif name in ("member leaves", "member drops", "host drops", "host leaves"):
            who = host if name.startswith("host") else rng.choice(online or members)
            if who.connected:
                assert who.client is not None
                if name.endswith("leaves"):
                    await who.client.leave()
                else:
                    await who.client.drop()
        elif name == "host opens another window":
            await self._join(host, fresh=True)
        elif name == "member opens another window":
            await self._join(rng.choice(members), fresh=True)
        elif name == "forged message":
            await self._forged()
        elif name == "clock moves past the grace":
            self.live.clock.advance(31.0)  # type: ignore[union-attr]
        elif name == "clock moves a little":
            self.live.clock.advance(rng.choice([1.0, 5.0, 12.0]))  # type: ignore[union-attr]
        elif name == "publish":
            await self._publish(rng.choice(self.actors))
        elif name == "end through the socket":
            if host.connected:
                await self._send_command(host, {"name": "end"})
        elif name == "end through the API":
            status, body = await self.live.end_through_api()  # type: ignore[union-attr]
            if status == 200:
                self.ended = True
            elif not (self.ended and status == 409):
                self._find(f"ending through the API answered {status}: {body}")
        return name

    # --- joining
    async def _grant_for(self, actor: Actor, *, fresh: bool) -> str | None:
        live = self.live
        assert live is not None
        if not fresh and actor.grant and actor.token and self.rng.random() < 0.5:
            return actor.grant  # the same grant, presented with its resume token
        actor.token = None
        if actor.is_host:
            if not live.csrf:
                await live.login()
            status, body = await live.post(f"/sessions/{live.session.session_id}/host-grant")
            if status != 200:
                if not self.ended or body["error"]["code"] != "session_ended":
                    self._find(f"host grant refused: {status} {body}")
                return None
            actor.pid = body["participant_id"]
            return str(body["grant"])
        if not actor.redeemed:
            token = live.session.links[actor.label].rsplit("/", 1)[1]
            status, body = await live.post("/invites/redeem", {"token": token}, authed=False)
            if status == 200:
                actor.redeemed = True
                actor.invite_resume = body["resume"]
                return str(body["grant"])
        else:
            status, body = await live.resume(actor.invite_resume or "")
            if status == 200:
                return str(body["grant"])
        code = body.get("error", {}).get("code") if isinstance(body, dict) else None
        if status == 429:
            return None
        if not (self.ended and code == "invite_expired"):
            self._find(f"{actor.label}: grant refused by the API: {status} {code}")
        return None

    async def _join(self, actor: Actor, *, fresh: bool = False) -> None:
        live = self.live
        assert live is not None
        if actor.connected and not fresh:
            return
        grant = await self._grant_for(actor, fresh=fresh)
        if grant is None:
            return
        reusing = grant == actor.grant and actor.token is not None
        expected = self._expected_arrival(actor)
        client = live.client(actor.label)
        try:
            reply = await client.join(grant, resume=actor.token if reusing else None)
        except (TimeoutError, ConnectionError) as exc:
            self._find(f"{actor.label}: join got no answer ({type(exc).__name__})")
            await client.close()
            return
        joined = reply.get("type") == "joined"
        if joined and self.ended:
            self._find(f"{actor.label} joined an ended session")
        if joined and actor.pid in self.removed:
            self._find(f"removed {actor.label} came back")
        if expected is not None and not (reusing and reply.get("code") == "grant_replayed"):
            want_ok, want_code = expected
            if want_ok and not joined and not (actor.is_host and fresh):
                self._find(f"{actor.label}: rules allowed the arrival, server said "
                           f"{reply.get('code')}")
            elif not want_ok and joined:
                self._find(f"{actor.label}: rules refused the arrival ({want_code}), "
                           "server let them in")
            elif not want_ok and reply.get("code") != want_code:
                self._find(f"{actor.label}: arrival refused with {reply.get('code')}, "
                           f"rules say {want_code}")
        if not joined:
            await client.close()
            if fresh and actor.client is not None and actor.is_host is False:
                # a second window was refused: the first is untouched
                pass
            return
        if actor.is_host and fresh and actor.client is not None and actor.client is not client:
            old = actor.client
            # the first window is told it was replaced and closed; it must not linger
            with contextlib.suppress(TimeoutError, ConnectionError):
                await old.wait_for(lambda m: m.get("type") == "replaced", 5)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(old.closed.wait(), 5)
            if old.is_open:
                self._find("host's replaced window stayed open")
            await old.close()
        elif actor.client is not None and actor.client is not client:
            await actor.client.close()
        actor.client = client
        actor.grant = grant
        actor.token = client.resume
        actor.pid = reply["participant"]["id"]
        if actor.is_host and reply["participant"]["state"] != "admitted":
            self._find(f"host joined into {reply['participant']['state']}")

    def _expected_arrival(self, actor: Actor) -> tuple[bool, str] | None:
        live = self.live
        assert live is not None
        controller = live.controller
        if controller is None or actor.pid is None or controller.state.ended:
            return None
        decision = decide_arrival(controller.state, actor.pid,
                                  role="host" if actor.is_host else "member",
                                  now=live.clock())
        return decision.allowed, decision.reason_code

    # --- commands
    async def _confirm(self, actor: Actor) -> None:
        ids = [i.id for i in GROUP_AGREEMENT]
        roll = self.rng.random()
        if roll < 0.15:
            ids = ids[:-1]
        elif roll < 0.2:
            ids = [*ids, "made_up"]
        await self._send_command(actor, {"name": "confirm_checklist", "answers": ids})

    def _rules_state(self, actor: Actor) -> LobbyState | None:
        controller = self.live.controller if self.live is not None else None
        if controller is None or actor.pid is None:
            return None
        policy = controller.state.participants.get(actor.pid)
        return policy.state if policy is not None else None

    def _someone(self, actor: Actor) -> str:
        rng = self.rng
        controller = self.live.controller if self.live is not None else None
        known = list(controller.state.participants) if controller is not None else []
        others = known if known and rng.random() < 0.8 else [a.pid for a in self.actors if a.pid]
        roll = rng.random()
        if roll < 0.08:
            return f"p_{rng.getrandbits(64):016x}"  # made up
        if roll < 0.12 and actor.pid:
            return actor.pid
        return rng.choice(others) if others else "p_nobody"

    def _fields(self, actor: Actor, name: str) -> dict[str, Any]:
        rng = self.rng
        fields: dict[str, Any] = {"name": name}
        if name in ("admit", "decline", "send_to_lobby", "remove", "readmit", "allow_unmute",
                    "allow_video", "enforce_profile") or (
                name in ("mute", "stop_video", "lower_hand") and rng.random() < 0.6):
            fields["target"] = self._someone(actor)
        if name in ("enforce_profile", "set_own_profile"):
            fields["profile"] = rng.choice(PROFILES)
        if name == "set_text_only":
            fields["enabled"] = rng.random() < 0.6
        if name == "chat":
            fields["to"] = rng.choice(["all", "host", "lobby"])
            if fields["to"] == "lobby" and rng.random() < 0.5:
                fields["target"] = self._someone(actor)
            fields["text"] = rng.choice(["hello", "", "x" * 1200, "<b>hi</b>", "ok\u200b"])
        if name == "confirm_checklist":
            fields["answers"] = [i.id for i in GROUP_AGREEMENT]
        return fields

    async def _member_command(self, actor: Actor) -> None:
        rng = self.rng
        # now and then a member tries a host's command, on anyone
        pool = HOST_COMMANDS if rng.random() < 0.25 else MEMBER_COMMANDS
        name = rng.choice(pool)
        await self._send_command(actor, self._fields(actor, name))

    async def _host_command(self) -> None:
        host = self.actors[0]
        name = self.rng.choice(HOST_COMMANDS)
        await self._send_command(host, self._fields(host, name))

    async def _send_command(self, actor: Actor, fields: dict[str, Any]) -> dict[str, Any] | None:
        if not actor.connected:
            return None
        assert actor.client is not None and self.live is not None
        message = {"type": "command", **fields}
        expected = self._expected(actor, message)
        try:
            reply = await actor.client.request(message, 10)
        except (TimeoutError, ConnectionError):
            if actor.client.is_open:
                self._find(f"{actor.label}: no reply to {fields.get('name')}")
            return None
        self._compare(actor, message, reply, expected)
        if reply.get("type") == "ok":
            name, target = fields.get("name"), fields.get("target")
            if name == "remove" and isinstance(target, str):
                self.removed.add(target)
            elif name == "readmit" and isinstance(target, str):
                self.removed.discard(target)
            elif name == "end":
                self.ended = True
        return reply

    def _expected(self, actor: Actor, message: dict[str, Any]) -> tuple[bool, str] | None:
        try:
            parsed = parse(json.dumps(message))
        except WireError as exc:
            return False, exc.code
        live = self.live
        assert live is not None
        controller = live.controller
        if controller is None or actor.pid is None or not isinstance(parsed, CommandMessage):
            return None
        decision = decide(controller.state, actor.pid, parsed.command.to_command(),
                          now=live.clock())
        return decision.allowed, decision.reason_code

    def _compare(self, actor: Actor, message: dict[str, Any], reply: dict[str, Any],
                 expected: tuple[bool, str] | None) -> None:
        code = reply.get("code")
        if code == "internal_error":
            self._find(f"{actor.label}: internal_error for {message.get('name')}")
            return
        if expected is None:
            return
        want_ok, want_code = expected
        got_ok = reply.get("type") == "ok"
        # the chat limiter refills with time: a reply a moment later may differ by one token
        if {code, want_code} & {"chat_rate_limited"}:
            return
        if got_ok != want_ok or (not got_ok and code != want_code):
            self._find(f"{actor.label}: {message.get('name')} {message.get('target', '')} "
                       f"answered {code or 'ok'}, the rules decide {want_code}")

    # --- forged and junk
    async def _forged(self) -> None:
        rng = self.rng
        actor = rng.choice([a for a in self.actors if a.connected] or self.actors)
        if not actor.connected:
            return
        assert actor.client is not None
        host_pid = self.actors[0].pid or "h_nobody"
        junk: list[Any] = [
            {"type": "command", "name": "leave"},
            {"type": "command", "name": "publish_media", "media": "video"},
            {"type": "command", "name": "mute", "from": host_pid},
            {"type": "command", "name": "remove", "target": 5},
            {"type": "command", "name": "remove", "target": {"id": host_pid}},
            {"type": "command", "name": "admit", "target": None},
            {"type": "command", "name": "chat", "text": ["x"]},
            {"type": "command", "name": "end", "as_host": True},
            {"type": "command", "name": "set_own_profile", "profile": "nude"},
            {"type": "command", "name": "set_text_only", "enabled": "yes"},
            {"type": "command", "name": 7},
            {"type": "command", "name": "lock", "v": 2},
            {"type": "command", "name": "lock", "id": True},
            {"type": "teleport"},
            {"type": "ping", "pad": 1},
            {"type": "mute", "kind": "audio", "muted": "yes"},
            {"type": "mute", "kind": "screen", "muted": True},
            {"type": "join", "grant": "x"},
            {"type": "subscribe_answer", "sdp": "v=0\r\n"},
            {"type": "publish_offer", "sdp": 12},
            {"type": "preview_offer"},
            "{not json",
            "[1, 2]",
            '{"type": "ping", "ts": ' + "[" * 60 + "]" * 60 + "}",
            "[" * 20_000 + "]" * 20_000,
        ]
        message = rng.choice(junk)
        start = len(actor.client.messages)
        if isinstance(message, dict) and "id" not in message:
            expected = self._expected(actor, message)
            try:
                reply = await actor.client.request(message, 10)
            except (TimeoutError, ConnectionError):
                self._find(f"{actor.label}: no answer to junk {str(message)[:60]}")
                return
            self._compare(actor, message, reply, expected)
        else:
            await actor.client.send(message if isinstance(message, str) else json.dumps(message))
            try:
                await actor.client.sync()
            except (TimeoutError, ConnectionError):
                self._find(f"{actor.label}: the socket broke after junk {message[:30]!r}")
                return
        for m in actor.client.messages[start:]:
            if m.get("code") == "rate_limited":
                self._find(f"{actor.label}: the walk outran the socket's rate limit")
            elif m.get("type") == "error" and m.get("code") not in WIRE_CODES:
                self._find(f"{actor.label}: junk {str(message)[:40]!r} got {m.get('code')}")

    async def _publish(self, actor: Actor) -> None:
        if not actor.connected:
            return
        assert actor.client is not None
        try:
            reply = await actor.client.request({"type": "publish_offer",
                                                "sdp": await audio_offer()}, 15)
        except (TimeoutError, ConnectionError):
            if actor.client.is_open:
                self._find(f"{actor.label}: no answer to a publish offer")
            return
        if reply.get("code") == "internal_error":
            self._find(f"{actor.label}: internal_error for a publish offer")

    # --- after each step
    async def _settle(self) -> None:
        live = self.live
        assert live is not None
        for attempt in range(200):
            # a round trip on each open socket: all it sent has been handled (now and then,
            # not on every look: the server rightly limits messages per socket)
            if attempt % 25 == 0:
                for actor in self.actors:
                    if actor.client is not None and actor.client.is_open:
                        with contextlib.suppress(TimeoutError, ConnectionError):
                            await actor.client.sync(5)
            if not self._unsettled():
                return
            await asyncio.sleep(0.02)
        self._find("did not settle: " + "; ".join(self._unsettled()))

    def _unsettled(self) -> list[str]:
        live = self.live
        assert live is not None
        room = live.room
        out: list[str] = []
        for actor in self.actors:
            if actor.pid is None or actor.client is None:
                continue
            on_server = room is not None and actor.pid in room.participants
            if actor.connected != on_server:
                out.append(f"{actor.label}: client {'open' if actor.connected else 'closed'}, "
                           f"server {'has' if on_server else 'has not'} them")
        out += live.disagreements()
        return out

    def _check(self) -> None:
        live = self.live
        assert live is not None
        room, controller = live.room, live.controller
        for line in self._errors.records:
            self._find(f"server logged an error: {line}")
        self._errors.records.clear()
        for actor in self.actors:
            client = actor.client
            if client is None:
                continue
            for m in client.messages:
                if m.get("code") == "internal_error" and not m.get("_seen"):
                    m["_seen"] = True
                    self._find(f"{actor.label} got internal_error: {m.get('message')}")
        if self.ended:
            if room is not None and not room.closed:
                self._find("the session ended but its room is open")
            if room is not None and room.participants:
                self._find(f"an ended room still holds {sorted(room.participants)}")
            if any(a.connected for a in self.actors):
                self._find("a client is still connected after the end")
        if controller is None or room is None or room.closed:
            return
        state = controller.state
        now = live.clock()
        for problem in controller.disagreements():
            self._find(f"rules and room disagree: {problem}")
        host = self.actors[0]
        if host.connected and host.pid is not None:
            policy = state.participants.get(host.pid)
            if policy is None or policy.state is not LobbyState.ADMITTED:
                self._find(f"connected host is {policy.state.value if policy else 'unknown'}")
            else:
                self._host_can_act(host.pid)
        for pid, member in room.participants.items():
            if member.state is ParticipantState.LOBBY and (
                member.publications or member.publisher_pc is not None
                or any(s.publication_id is not None for s in member.subscriptions)
            ):
                self._find(f"{pid} is in the lobby with a media path")
        for pid in self.removed:
            policy = state.participants.get(pid)
            if pid in room.participants:
                self._find(f"removed {pid} is in the room")
            if policy is not None and policy.state is not LobbyState.REMOVED:
                self._find(f"removed {pid} is {policy.state.value} in the rules")
        for actor in self.actors:
            if not actor.connected or actor.pid is None or actor.client is None:
                continue
            told = [m for m in actor.client.messages if m.get("type") == "self_state"]
            policy = state.participants.get(actor.pid)
            if told and policy is not None and told[-1]["lobby_state"] != policy.state.value:
                self._find(f"{actor.label} was last told {told[-1]['lobby_state']}, the rules "
                           f"hold {policy.state.value}")
        _ = now

    def _host_can_act(self, host_pid: str) -> None:
        live = self.live
        assert live is not None and live.controller is not None
        state = live.controller.state
        now = live.clock()
        probes = [Command("end"), Command("lock" if not state.locked else "unlock"),
                  Command("mute_all")]
        for pid, policy in state.participants.items():
            if policy.is_host:
                continue
            if policy.state in (*_PRESENT, LobbyState.DISCONNECTED):
                probes.append(Command("remove", target=pid))
            if policy.state is LobbyState.ADMITTED:
                probes.append(Command("mute", target=pid))
        for probe in probes:
            decision = decide(state, host_pid, probe, now=now)
            if not decision.allowed:
                self._find(f"the host cannot {probe.name} {probe.target or ''}: "
                           f"{decision.reason_code}")

    def _signature(self) -> tuple[Any, ...]:
        live = self.live
        assert live is not None
        controller = live.controller
        if controller is None:
            return ("no room", self.ended)
        state = controller.state
        people = tuple(sorted(
            (p.role, p.state.value, p.audio_muted, p.video_stopped or p.video_held_by_host,
             p.hand_raised, p.text_only)
            for p in state.participants.values()
        ))
        return (state.ended, state.locked, state.paused, people)


async def walk_many(server: Any, seeds: range | list[int], *, steps: int,
                    members: int = 4) -> list[WalkResult]:
    """Run one walk per seed, one after another, on `server`."""
    results = []
    for seed in seeds:
        results.append(await SessionWalk(server, seed, steps=steps, members=members).run())
    return results
