"""A room: who is in it, who waits in its lobby, and which tracks go to whom."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.rtcrtpsender import RTCRtpSender

from confidentiality.profiles import Profile

from . import aiortc_compat, incoming_video
from .bitrate import BitratePolicy
from .downlink import DownlinkPolicy, Estimate
from .downlink_watch import DownlinkWatch
from .errors import InvalidStateError, PermissionDenied, ProtocolError, RoomFull, SfuError
from .fanout import PacketTrack
from .grants import Grant
from .ice import keep_loopback_candidates, loopback_only, rtc_configuration
from .ingest import Discard, install_ingest
from .offers import CODECS_KEPT, REQUIRED_CODEC, CheckedSdp, canonical_sdp, check_offer
from .participant import (
    Participant,
    ParticipantState,
    Send,
    Subscription,
    route_keyframe_requests,
)
from .privacy_alerts import FallbackAlert, FallbackAlerts
from .publication import Publication, TransformFactory, pass_through_factory
from .stats import MEDIA
from .vp8 import MAX_PICTURE_PIXELS
from .workers import MediaWorkers

logger = logging.getLogger(__name__)

RoomEvent = Literal[
    "participant_joined",
    "participant_waiting",
    "participant_admitted",
    "participant_sent_to_lobby",
    "participant_left",
    "track_published",
    "privacy_event",
    "link_weak",
]
Listener = Callable[[RoomEvent, dict[str, Any]], None]
# per-join ICE servers for a client (e.g. TURN credentials that expire with its grant)
ClientIceServers = Callable[[Grant], list[dict[str, object]]]

RECONNECT_GRACE_S = 30.0
# tracks a participant may have open at once, each with its receiver and perhaps a privacy
# pipeline: audio, video, and a video (or preview) still closing after its replacement came
MAX_PUBLICATIONS_PER_PARTICIPANT = 3
# what each kind of connection may carry
PUBLISH_TRACKS = {"audio": 1, "video": 1}
PREVIEW_TRACKS = {"video": 1}


@dataclass
class RoomPolicy:
    """The media plane's part of a group's rules (the rest lives in session_rules)."""

    lobby_required: bool = False
    max_participants: int = 16
    # process (decode → encode once) even `none` video; for measurements
    always_process: bool = False
    # encode-once streams: size and rate from the gallery's size (see sfu/bitrate.py)
    bitrate: BitratePolicy = field(default_factory=BitratePolicy)
    # "Focus": members receive only the hosts' video; hosts receive everyone's
    focus: bool = False
    # when a subscriber's downlink is too weak for others' video (see sfu/downlink.py);
    # None leaves every subscriber's video to their own choice
    downlink: DownlinkPolicy | None = field(default_factory=DownlinkPolicy)


@dataclass
class _Departed:
    state: ParticipantState
    left_at: float
    resume_token: str
    held: dict[str, bool]
    profile: Profile


def _codecs(kind: str, names: Sequence[str]) -> list[Any]:
    caps = RTCRtpSender.getCapabilities(kind).codecs
    return [c for c in caps if c.mimeType.split("/")[1].lower() in names]


def _pin_codecs(transceiver: Any) -> None:
    # both legs of a forwarded stream must use the same codec: VP8 and Opus everywhere
    transceiver.setCodecPreferences(_codecs(transceiver.kind, CODECS_KEPT[transceiver.kind]))


class Room:
    """Holds participants and routes every admitted publisher's tracks to every subscriber."""

    def __init__(
        self,
        room_id: str,
        *,
        ice_servers: Sequence[dict[str, object]] = (),
        policy: RoomPolicy | None = None,
        transform_factory: TransformFactory = pass_through_factory,
        media_workers: MediaWorkers | None = None,
        clock: Callable[[], float] = time.time,
        client_ice_servers: ClientIceServers | None = None,
    ) -> None:
        self.id = room_id
        # the reconnect grace runs on this clock (tests move it instead of waiting)
        self.clock = clock
        self.policy = policy or RoomPolicy()
        # the server's own peers use these; clients get them and their own TURN credentials
        self.ice_servers = list(ice_servers)
        self._client_ice_servers = client_ice_servers
        self.participants: dict[str, Participant] = {}
        self.paused = False
        self.locked = False
        self.closed = False
        self._transform_factory = transform_factory
        self._media_workers = media_workers
        self._listeners: list[Listener] = []
        self._departed: dict[str, _Departed] = {}
        # every publication not yet closed, by owner: the cap, and what leaving releases
        self._open_publications: dict[str, set[Publication]] = {}
        self.created_at = clock()
        # the session's rules, when the wiring attaches them (see web.session_control)
        self.controller: Any = None
        # host alerts about a paused privacy filter: real failures, once an episode
        self._fallback_alerts = FallbackAlerts()
        self._fallback_check: asyncio.TimerHandle | None = None
        # members who consented to their clinician seeing them through a lighter profile,
        # as the rules decided it (see host_view)
        self._host_views: dict[str, Profile] = {}

    # --- events
    def on(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _emit(self, event: RoomEvent, **data: Any) -> None:
        for listener in list(self._listeners):
            try:
                listener(event, data)
            except Exception:
                # a listener that raises is logged, never allowed to take the room down
                logger.exception("room %s: listener failed on %s", self.id, event)

    # --- membership
    def admitted(self) -> list[Participant]:
        return [p for p in self.participants.values() if p.state is ParticipantState.ADMITTED]

    def waiting(self) -> list[Participant]:
        return [p for p in self.participants.values() if p.state is ParticipantState.LOBBY]

    def get(self, participant_id: str) -> Participant:
        participant = self.participants.get(participant_id)
        if participant is None:
            raise InvalidStateError("no such participant in this room", code="unknown_participant")
        return participant

    def roster_for(self, viewer: Participant) -> list[dict[str, Any]]:
        """Participants as `viewer` may see them: the lobby only for hosts."""
        if viewer.state is not ParticipantState.ADMITTED:
            return []
        people = self.admitted() + (self.waiting() if viewer.is_host else [])
        return [p.describe() for p in people if p is not viewer]

    def _recent(self, participant_id: str) -> _Departed | None:
        now = self.clock()
        for pid, rec in list(self._departed.items()):
            if now - rec.left_at > RECONNECT_GRACE_S:
                del self._departed[pid]
        return self._departed.get(participant_id)

    async def join(
        self,
        grant: Grant,
        send: Send,
        *,
        resumed: bool = False,
        state: ParticipantState | None = None,
        profile: Profile | None = None,
    ) -> Participant:
        """Add a participant: admitted at once, or held in the lobby (by policy or `state`)."""
        if self.closed:
            raise InvalidStateError("room has ended", code="room_closed")
        if grant.participant_id in self.participants:
            # the real holder stays connected; the newcomer is refused
            raise InvalidStateError(
                "this participant is already connected", code="already_connected"
            )
        if len(self.participants) >= self.policy.max_participants:
            raise RoomFull(f"room is full ({self.policy.max_participants} participants)")
        participant = Participant(grant, send)
        recent = self._recent(grant.participant_id) if resumed else None
        if recent is not None:
            # back within the grace period: same state, no second pass through the lobby
            participant.held = dict(recent.held)
            participant.profile = recent.profile
            state = recent.state if state is None else state
            del self._departed[grant.participant_id]
        elif state is not None:
            pass
        elif grant.is_host or not self.policy.lobby_required:
            state = ParticipantState.ADMITTED
        else:
            if self.locked:
                raise PermissionDenied("the room is locked", code="room_locked")
            state = ParticipantState.LOBBY
        if profile is not None:
            participant.profile = profile
        self.participants[participant.id] = participant
        participant.state = state
        participant.send(
            {
                "type": "joined",
                "room": self.id,
                "participant": participant.describe(),
                "participants": self.roster_for(participant),
                "ice_servers": self.ice_servers_for(grant),
                "resume": participant.resume_token,
                "paused": self.paused,
                "locked": self.locked,
                "focus": self.policy.focus,
            }
        )
        if state is ParticipantState.ADMITTED:
            self._on_admitted(participant)
        else:
            self.notify_lobby()
            self._emit("participant_waiting", participant_id=participant.id)
        return participant

    def ice_servers_for(self, grant: Grant) -> list[dict[str, object]]:
        """The ICE servers one client is given (TURN credentials minted for its join)."""
        extra = self._client_ice_servers(grant) if self._client_ice_servers else []
        return [*self.ice_servers, *extra]

    def resume_token_valid(self, participant_id: str, token: object) -> bool:
        """True when `token` is the one this participant was given, for a connection that
        dropped within the grace period or one still open here (the rules then decide
        whether a second connection may take over)."""
        if not isinstance(token, str):
            return False
        rec = self._recent(participant_id)
        current = self.participants.get(participant_id)
        known = rec.resume_token if rec is not None else (
            current.resume_token if current is not None else None
        )
        # constant time: the comparison must not tell a guesser how much of it was right
        return known is not None and hmac.compare_digest(token.encode(), known.encode())

    def _on_admitted(self, participant: Participant) -> None:
        self.broadcast(
            {"type": "participant_joined", "participant": participant.describe()},
            exclude=participant,
        )
        if participant.is_host:
            # the hosts' copies start now that a host is here to receive them
            self._refresh_host_copies()
        self._subscribe_to_all(participant)
        self._emit("participant_joined", participant_id=participant.id)

    async def admit(self, participant_id: str) -> None:
        participant = self.get(participant_id)
        if participant.state is not ParticipantState.LOBBY:
            raise InvalidStateError(
                f'Cannot admit a participant in state "{participant.state.value}"'
            )
        participant.state = ParticipantState.ADMITTED
        # the preview has done its job; the client now publishes for real
        await self._close_preview(participant)
        participant.send(
            {
                "type": "admitted",
                "participant": participant.describe(),
                "participants": self.roster_for(participant),
                "paused": self.paused,
                "locked": self.locked,
                "focus": self.policy.focus,
            }
        )
        self._on_admitted(participant)
        self.notify_lobby()
        self._emit("participant_admitted", participant_id=participant.id)

    async def send_to_lobby(self, participant_id: str) -> None:
        participant = self.get(participant_id)
        if participant.state is not ParticipantState.ADMITTED:
            raise InvalidStateError(
                f'Cannot send to the lobby a participant in state "{participant.state.value}"'
            )
        participant.state = ParticipantState.LOBBY
        await self._unpublish_all(participant)
        for sub in participant.subscriptions:
            self._release_slot(sub)
        participant.request_renegotiation()
        participant.send({"type": "sent_to_lobby"})
        if participant.is_host:
            self._refresh_host_copies()
        self.broadcast({"type": "participant_left", "participant_id": participant.id,
                         "reason": "lobby"}, exclude=participant)
        self.notify_lobby()
        self._emit("participant_sent_to_lobby", participant_id=participant.id)

    async def leave(self, participant_id: str, reason: str = "left") -> None:
        """Remove a participant and release their tracks and peers; safe twice."""
        participant = self.participants.pop(participant_id, None)
        if participant is None:
            return
        self._fallback_alerts.forget(participant_id)
        was = participant.state
        await self._close_preview(participant)
        if reason in ("disconnected", "connection_failed") and was is not ParticipantState.LEFT:
            self._departed[participant.id] = _Departed(
                state=was, left_at=self.clock(), resume_token=participant.resume_token,
                held=dict(participant.held), profile=participant.profile,
            )
        await self._unpublish_all(participant, renegotiate=True)
        # and whatever is still closing (a track replaced a moment ago)
        for pub in list(self._open_publications.get(participant.id, ())):
            await self._retire(participant, pub)
        await participant.aclose()
        self._host_views.pop(participant_id, None)
        if participant.is_host:
            # no second encode for a host who is not here
            self._refresh_host_copies()
        if was is ParticipantState.ADMITTED:
            self.broadcast(
                {"type": "participant_left", "participant_id": participant.id, "reason": reason}
            )
        else:
            self.notify_lobby()
        self._emit("participant_left", participant_id=participant.id, reason=reason)

    async def remove(self, participant_id: str, reason: str = "removed") -> None:
        participant = self.get(participant_id)
        if reason == "removed":
            participant.send({"type": "removed", "reason": reason})
        await self.leave(participant_id, reason=reason)
        self._departed.pop(participant_id, None)
        # their socket is of no more use: close it so nothing else arrives on it
        participant.disconnect()

    # --- host controls (decided by session_rules, applied here)
    def set_held(self, participant_id: str, kind: str, held: bool) -> None:
        participant = self.get(participant_id)
        if kind not in ("audio", "video"):
            raise ProtocolError(f"unknown media kind {kind!r}")
        participant.held[kind] = held
        self._apply_hold(participant)
        self.announce(participant)

    def _apply_hold(self, participant: Participant) -> None:
        for pub in participant.publications.values():
            pub.set_held(participant.held[pub.kind] or self.paused)

    def set_paused(self, paused: bool) -> None:
        """Hold all audio and video for everyone (the group is paused)."""
        self.paused = paused
        for participant in self.participants.values():
            self._apply_hold(participant)
        self.broadcast({"type": "room_paused", "paused": paused})

    def set_locked(self, locked: bool) -> None:
        self.locked = locked

    def set_focus(self, focus: bool) -> None:
        """Members receive only the hosts' video (`True`) or everyone's again (`False`).

        Turning it on detaches every member's slot carrying another member's video before
        anything else is sent; audio is untouched (the group still hears everyone).
        """
        self.policy.focus = focus
        for subscriber in self.admitted():
            if subscriber.is_host:
                continue
            if focus:
                changed = False
                for sub in subscriber.subscriptions:
                    if sub.publication_id is not None and not self._may_receive(
                            subscriber, sub.publisher_id, sub.track.kind):
                        self._release_slot(sub)
                        changed = True
                if changed:
                    subscriber.request_renegotiation()
            else:
                self._subscribe_to_all(subscriber)
        self._rebalance_bitrates()
        self.broadcast({"type": "room_focus", "focus": focus})

    def _may_receive(self, subscriber: Participant, publisher_id: str | None,
                     kind: str) -> bool:
        """Whether `subscriber` may be sent `publisher_id`'s `kind` under the room's rules."""
        if kind != "video" or not self.policy.focus or subscriber.is_host:
            return True
        if publisher_id == subscriber.id:
            return True  # self-view: what the group sees of them
        publisher = self.participants.get(publisher_id or "")
        return publisher is not None and publisher.is_host

    # --- the clinician's own view (sfu/host_copy.py)
    def host_view(self, participant_id: str) -> Profile | None:
        """The lighter profile hosts receive this participant's video through (None: the
        group's)."""
        return self._host_views.get(participant_id)

    def set_host_view(self, participant_id: str, profile: Profile | None) -> None:
        """Hosts receive `participant_id`'s video through `profile` (a second transform and
        encode, or the source's packets for `none`), or the group's stream again with None.
        Decided by the rules beforehand (consent, and lighter than what the group sees)."""
        participant = self.get(participant_id)
        if profile is None:
            self._host_views.pop(participant_id, None)
        else:
            self._host_views[participant_id] = profile
        self._refresh_host_copy(participant)

    def _refresh_host_copies(self) -> None:
        for participant in self.admitted():
            if participant.id in self._host_views or self._has_host_copy(participant):
                self._refresh_host_copy(participant)

    @staticmethod
    def _has_host_copy(participant: Participant) -> bool:
        pub = participant.publications.get("video")
        return pub is not None and pub.host_copy is not None

    def _refresh_host_copy(self, participant: Participant) -> None:
        """Start, change or stop one member's copy: it runs only with the rules' say-so and
        while a host other than the member is in the room to receive it."""
        pub = participant.publications.get("video")
        if pub is None:
            return
        hosts = [h for h in self.admitted() if h.is_host and h is not participant]
        wanted = self._host_views.get(participant.id) if hosts else None
        if participant.state is not ParticipantState.ADMITTED:
            wanted = None
        replaced = pub.set_host_copy(wanted)
        target = pub.host_copy.fanout if pub.host_copy is not None else pub.fanout
        for host in hosts:
            for sub in host.subscriptions:
                # a slot idle by the host's own choice (low data) stays idle
                if (sub.publication_id == pub.id and sub.track.fanout is not None
                        and sub.track.fanout is not target):
                    self._attach(host, pub, sub.track)
        if replaced is not None:
            asyncio.ensure_future(replaced.aclose())

    def _attach(self, subscriber: Participant, pub: Publication, track: PacketTrack) -> None:
        """Point a slot at a publication: the hosts' own copy for a host when there is one,
        the group's stream for everyone else. The only code that names the hosts' copy on
        the way to a slot; its fan-out refuses any slot not made for a host besides."""
        copy = pub.host_copy if subscriber.is_host and subscriber.id != pub.owner_id else None
        if copy is not None:
            track.attach(copy.fanout)
        else:
            pub.subscribe(track)

    def set_profile(self, participant_id: str, profile: Profile) -> None:
        """Apply a privacy profile from the next frame (decided by policy beforehand)."""
        participant = self.get(participant_id)
        participant.profile = profile
        pub = participant.publications.get("video")
        if pub is not None:
            pub.set_profile(profile)
        participant.send({"type": "profile", "profile": profile.value})
        self.announce(participant)

    # --- media
    async def handle_preview_offer(self, participant: Participant, sdp: object) -> str:
        """Video from someone not yet admitted, processed and sent back to them alone, so they
        can see exactly what the group will see of them before they go in."""
        if participant.state is not ParticipantState.LOBBY:
            raise InvalidStateError(
                f'Cannot preview in state "{participant.state.value}"', code="wrong_state"
            )
        checked = check_offer(sdp, allowed=PREVIEW_TRACKS)
        self._take_offer(participant)
        # one preview at a time: the last one's connection, publication and pipeline go first
        await self._close_preview(participant)
        if participant.closed or participant.state is not ParticipantState.LOBBY:
            raise InvalidStateError("the preview is over: no longer waiting", code="wrong_state")
        pc = participant.preview_pc = RTCPeerConnection(rtc_configuration(self.ice_servers))

        @pc.on("track")
        def on_track(track: Any) -> None:
            receiver = _receiver_of(pc, track)
            if receiver is None:
                return
            if (participant.preview_pc is not pc or participant.preview_pub is not None
                    or participant.state is not ParticipantState.LOBBY or track.kind != "video"):
                # never a second preview track (the offer check already sees to it)
                install_ingest(receiver, Discard())
                return
            pub = self._open_publication(participant, receiver, "video", always_process=False)
            if pub is None:
                return
            participant.preview_pub = pub
            self._subscribe(participant, participant, pub, self_view=True)
            participant.request_renegotiation()

        async def undo() -> None:
            if participant.preview_pc is pc:
                await self._close_preview(participant)

        answer = await self._answer(pc, checked, undo)
        if participant.preview_pc is not pc:
            raise InvalidStateError("the preview is over: no longer waiting", code="wrong_state")
        return answer

    async def _close_preview(self, participant: Participant) -> None:
        pub, participant.preview_pub = participant.preview_pub, None
        if pub is not None:
            await self._retire(participant, pub)
        pc, participant.preview_pc = participant.preview_pc, None
        if pc is not None:
            try:
                await asyncio.wait_for(pc.close(), 5.0)
            except Exception:
                logger.debug("preview close failed", exc_info=True)

    async def handle_publish_offer(self, participant: Participant, sdp: object) -> str:
        """The client's offer on its publisher connection; returns our answer."""
        if participant.state is not ParticipantState.ADMITTED:
            raise PermissionDenied(
                f'Cannot accept a media offer in state "{participant.state.value}"',
                code="not_admitted",
            )
        pc = participant.publisher_pc
        existing = [(t.kind, t.mid) for t in pc.getTransceivers()] if pc is not None else []
        checked = check_offer(sdp, allowed=PUBLISH_TRACKS, existing=existing)
        for kind in sorted({m.kind for m in checked.media}):
            participant.check_may_publish(kind)
            if self.controller is not None:
                self.controller.check_publish(participant, kind)
        self._take_offer(participant)
        if pc is None:
            pc = participant.publisher_pc = RTCPeerConnection(rtc_configuration(self.ice_servers))
            self._watch(participant, pc)
            publisher_pc = pc

            @pc.on("track")
            def on_track(track: Any) -> None:
                self._on_remote_track(participant, publisher_pc, track)

        async def undo() -> None:
            # fail closed: a connection aiortc half-applied an offer to is not used again
            if participant.publisher_pc is pc:
                await self._unpublish_all(participant)
                self.announce(participant)

        answer = await self._answer(pc, checked, undo)
        if participant.closed or participant.publisher_pc is not pc:
            raise InvalidStateError("no longer publishing: the connection was closed",
                                    code="wrong_state")
        return answer

    def _take_offer(self, participant: Participant) -> None:
        if not participant.offer_budget.take():
            raise ProtocolError("too many media offers; wait a moment", code="too_many_offers")

    async def _answer(
        self, pc: RTCPeerConnection, checked: CheckedSdp,
        undo: Callable[[], Awaitable[None]],
    ) -> str:
        """Apply a checked offer and answer it; on any failure once applying has begun,
        `undo` closes what aiortc may have half set up before the typed error goes out."""
        if pc.signalingState != "stable":
            raise InvalidStateError(
                f'Cannot handle offer in signaling state "{pc.signalingState}"',
                code="wrong_state",
            )
        sdp = checked.sdp
        if loopback_only():
            sdp = keep_loopback_candidates(sdp)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            for transceiver in pc.getTransceivers():
                aiortc_compat.keep_codecs(transceiver, CODECS_KEPT[transceiver.kind])
                wanted = REQUIRED_CODEC[transceiver.kind]
                if wanted not in aiortc_compat.negotiated_codec_names(transceiver):
                    raise ProtocolError(f"{transceiver.kind} must be offered as {wanted.upper()}",
                                        code="codec_unsupported")
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        except Exception as exc:
            closed = pc.signalingState == "closed"
            await undo()
            if isinstance(exc, SfuError):
                raise
            if closed:
                raise InvalidStateError("the connection closed while the offer was answered",
                                        code="wrong_state") from None
            raise ProtocolError(f"SDP rejected: {_short(exc)}", code="bad_sdp") from None
        return str(pc.localDescription.sdp)

    def handle_subscribe_answer(self, participant: Participant, sdp: object) -> None:
        sdp = canonical_sdp(sdp)
        if loopback_only():
            sdp = keep_loopback_candidates(sdp)
        participant.deliver_answer(sdp)

    def _watch(self, participant: Participant, pc: RTCPeerConnection) -> None:
        @pc.on("connectionstatechange")
        async def on_state() -> None:
            # only this connection: the same person may be back on a new one already
            if pc.connectionState == "failed" and self.participants.get(participant.id) is participant:
                # ICE consent lost: a silent drop
                if self.controller is not None:
                    await self.controller.depart(participant.id, "connection_failed",
                                                 connection=participant)
                else:
                    await self.leave(participant.id, reason="connection_failed")

    def _on_remote_track(self, participant: Participant, pc: RTCPeerConnection, track: Any) -> None:
        receiver = _receiver_of(pc, track)
        if receiver is None:
            return
        if (track.kind not in PUBLISH_TRACKS or participant.closed
                or participant.publisher_pc is not pc
                or participant.state is not ParticipantState.ADMITTED):
            # left or sent to the lobby while the offer was applied: nothing is published
            install_ingest(receiver, Discard())
            return
        pub = self._open_publication(participant, receiver, track.kind,
                                     always_process=self.policy.always_process)
        if pub is None:
            return
        old = participant.publications.pop(track.kind, None)
        if old is not None:
            asyncio.ensure_future(self._retire(participant, old))
        pub.set_held(participant.held[track.kind] or self.paused)
        participant.publications[track.kind] = pub
        if track.kind == "video":
            self._refresh_host_copy(participant)
        for other in self.admitted():
            if other is not participant:
                self._subscribe(other, participant, pub)
                other.request_renegotiation()
        if track.kind == "video":
            # self-view shows what the group sees: the server's output, not the local camera
            self._subscribe(participant, participant, pub, self_view=True)
            participant.request_renegotiation()
        if track.kind == "video":
            self._rebalance_bitrates()
        self.announce(participant)
        self._emit("track_published", participant_id=participant.id, kind=track.kind,
                   track_id=pub.id)

    def _open_publication(
        self, participant: Participant, receiver: Any, kind: str, *, always_process: bool,
    ) -> Publication | None:
        """A publication for a new remote track, or None when its owner already has as many
        open as anyone may (each can hold a privacy pipeline in a worker every room shares)."""
        owned = self._open_publications.setdefault(participant.id, set())
        if len(owned) >= MAX_PUBLICATIONS_PER_PARTICIPANT:
            # tapped all the same: aiortc's own decoder must not run on it either
            install_ingest(receiver, Discard())
            participant.send({
                "type": "error", "code": "too_many_tracks",
                "message": f"at most {MAX_PUBLICATIONS_PER_PARTICIPANT} tracks at once; "
                           "this one is ignored",
            })
            return None
        pub = Publication(
            kind="video" if kind == "video" else "audio",
            owner_id=participant.id,
            receiver=receiver,
            profile=participant.profile,
            transform_factory=self._transform_factory,
            always_process=always_process,
            display_name=participant.display_name,
            on_event=self._on_privacy_event,
            media_workers=self._media_workers,
            on_refused=self._on_refused_video,
        )
        owned.add(pub)
        return pub

    async def _retire(self, owner: Participant, pub: Publication) -> None:
        for other in self.participants.values():
            changed = False
            for sub in other.subscriptions:
                if sub.publication_id == pub.id:
                    self._release_slot(sub)
                    changed = True
            if changed:
                other.request_renegotiation()
        try:
            await pub.aclose()
        finally:
            owned = self._open_publications.get(pub.owner_id)
            if owned is not None:
                owned.discard(pub)
                if not owned:
                    del self._open_publications[pub.owner_id]
        if pub.kind == "video":
            self._rebalance_bitrates()

    def open_publications(self, participant_id: str) -> int:
        """Publications of this participant not yet closed (for health checks and tests)."""
        return len(self._open_publications.get(participant_id, ()))

    def _rebalance_bitrates(self) -> None:
        """Pick each video stream's layer for the room's gallery (see sfu/bitrate.py).

        The server's encode-once stream takes it, and the publisher is asked to send no more
        (`publish_layer`), as an SFU picks a simulcast layer: a picture the gallery shows at
        320x240 is then not sent, decrypted and decoded at 640x480 first, and a forwarded
        stream reaches the gallery at its size. A publisher that ignores the ask is scaled by
        the server as before. While Focus is on, the hosts' video is the only one members
        receive, so it keeps the full layer.
        """
        owners = [p for p in self.admitted() if "video" in p.publications]
        policy = self.policy.bitrate
        for owner in owners:
            count = 1 if self.policy.focus and owner.is_host else len(owners)
            bps, max_size = policy.stream_bps(count), policy.max_size(count)
            pub = owner.publications["video"]
            pub.set_stream(bps, max_size)
            if pub.publish_layer != (bps, max_size):
                pub.publish_layer = (bps, max_size)
                owner.send({"type": "publish_layer", "max_width": max_size[0],
                            "max_height": max_size[1], "max_bps": bps})

    async def _unpublish_all(self, participant: Participant, renegotiate: bool = True) -> None:
        pubs = list(participant.publications.values())
        participant.publications.clear()
        for pub in pubs:
            await self._retire(participant, pub)
        if participant.publisher_pc is not None:
            pc, participant.publisher_pc = participant.publisher_pc, None
            try:
                await asyncio.wait_for(pc.close(), 5.0)
            except Exception:
                logger.debug("publisher close failed", exc_info=True)

    def _subscribe_to_all(self, subscriber: Participant) -> None:
        if not subscriber.grant.permissions.subscribe:
            return
        for other in self.admitted():
            if other is subscriber:
                continue
            for pub in other.publications.values():
                self._subscribe(subscriber, other, pub)
        subscriber.request_renegotiation()

    def _subscribe(
        self, subscriber: Participant, publisher: Participant, pub: Publication,
        *, self_view: bool = False,
    ) -> None:
        if subscriber.closed or not (self_view or subscriber.grant.permissions.subscribe):
            return
        # the one place a slot is pointed at a publication: Focus is enforced here
        if not self._may_receive(subscriber, publisher.id, pub.kind):
            return
        if any(s.publication_id == pub.id for s in subscriber.subscriptions):
            return
        pc = subscriber.subscriber_pc
        if pc is None:
            pc = subscriber.subscriber_pc = RTCPeerConnection(rtc_configuration(self.ice_servers))
            self._watch(subscriber, pc)
        sub = subscriber.free_slot(pub.kind)
        if sub is None:
            transceiver = pc.addTransceiver(pub.kind, direction="sendonly")
            _pin_codecs(transceiver)
            track = PacketTrack(pub.kind, for_host=subscriber.is_host)
            track.bind(transceiver)
            transceiver.sender.replaceTrack(track)
            route_keyframe_requests(transceiver.sender, track)
            sub = Subscription(transceiver=transceiver, track=track)
            subscriber.subscriptions.append(sub)
            self._watch_downlink(subscriber, sub)
        sub.transceiver.direction = "sendonly"
        sub.publication_id = pub.id
        sub.publisher_id = publisher.id
        self._attach(subscriber, pub, sub.track)
        incoming_video.honour(subscriber, sub)

    def _release_slot(self, sub: Subscription) -> None:
        # keep the transceiver for the next publisher: aiortc cannot remove one
        sub.track.detach()
        sub.publication_id = None
        sub.publisher_id = None
        sub.transceiver.direction = "inactive"

    def _open_pubs(self) -> dict[str, Publication]:
        return {
            pub.id: pub for p in self.participants.values() for pub in p.publications.values()
        }

    def set_incoming_video(self, subscriber: Participant, enabled: bool) -> None:
        """A member's low-data switch: others' video to them stops, or starts again."""
        incoming_video.set_incoming_video(
            subscriber, enabled, self._open_pubs(),
            lambda sub, pub: self._attach(subscriber, pub, sub.track))

    def _watch_downlink(self, subscriber: Participant, sub: Subscription) -> None:
        if self.policy.downlink is None:
            return
        if subscriber.downlink is None:
            subscriber.downlink = DownlinkWatch(
                lambda paused, estimate: self._on_downlink(subscriber, paused, estimate),
                self.policy.downlink)
        subscriber.downlink.watch(sub)

    def _on_downlink(self, subscriber: Participant, paused: bool, estimate: Estimate) -> None:
        """Audio first for one subscriber whose downlink cannot carry others' video, and
        video again (from a keyframe, as any new subscriber) once it can; nobody else's
        streams change."""
        if subscriber.closed or self.closed:
            return
        changed = incoming_video.set_link_weak(
            subscriber, paused, self._open_pubs(),
            lambda sub, pub: self._attach(subscriber, pub, sub.track))
        if paused:
            MEDIA.switched_to_audio_first()
        logger.info(
            "room %s: participant %s downlink %s: %.0f kbps delivered of %.0f sent "
            "(%.0f%% lost, receiver estimate %s); others' video %s (%d streams)",
            self.id, subscriber.id, "weak" if paused else "recovering",
            estimate.delivered_bps / 1000, estimate.sent_bps / 1000, estimate.loss * 100,
            f"{estimate.remb_bps / 1000:.0f} kbps" if estimate.remb_bps is not None else "none",
            "paused" if paused else "resumed", changed)
        subscriber.send({"type": "link_weak", "video": "paused" if paused else "resumed"})
        # the clinician knows why a member may not react to what is shown (only the switch
        # to audio first: its end is the member seeing again, nothing to act on)
        if paused:
            self.alert_hosts("link_weak", subscriber,
                             f"{subscriber.display_name}'s connection is weak: they can hear "
                             "the group, but others' video is paused for them for now.")
        self._emit("link_weak", participant_id=subscriber.id, video_paused=paused,
                   delivered_bps=int(estimate.delivered_bps))

    # --- messaging
    def broadcast(
        self, message: dict[str, Any], *, exclude: Participant | None = None,
        everyone: bool = False,
    ) -> None:
        """Send to everyone admitted (and to the lobby too with `everyone`)."""
        people = list(self.participants.values()) if everyone else self.admitted()
        for participant in people:
            if participant is not exclude:
                participant.send(dict(message))

    def announce(self, participant: Participant) -> None:
        if participant.state is ParticipantState.ADMITTED:
            self.broadcast({"type": "participant_updated", "participant": participant.describe()})
        else:
            self.notify_lobby()

    def notify_lobby(self) -> None:
        waiting = [p.describe() for p in self.waiting()]
        for host in self.admitted():
            if host.is_host:
                host.send({"type": "lobby", "waiting": waiting})

    def _on_privacy_event(self, pub: Publication, event: Any) -> None:
        participant = self.participants.get(pub.owner_id)
        if participant is None:
            return
        kind = getattr(event, "kind", "unknown")
        self._emit("privacy_event", participant_id=participant.id, kind=kind,
                   faces=getattr(event, "faces", 0))
        if kind == "bystander":
            # private: the host is told who, the participant gets a gentle prompt, nobody else
            self.alert_hosts("bystander", participant,
                             f"{participant.display_name} may have someone else in view.")
            participant.send({
                "type": "prompt", "kind": "bystander",
                "message": "It looks like someone else may be in view of your camera. "
                           "If so, you could move, or turn your camera off for a moment.",
            })
        elif kind == "fail_closed":
            # the placeholder is already what everyone sees; this only decides the alert
            alert = self._fallback_alerts.failed(participant.id, time.monotonic(),
                                                 late=bool(getattr(event, "late", False)))
            if alert is not None:
                self._send_fallback_alert(alert)
            else:
                self._schedule_fallback_check()
        elif kind == "recovered":
            self._fallback_alerts.recovered(participant.id, time.monotonic())

    def _schedule_fallback_check(self) -> None:
        due = self._fallback_alerts.next_due(time.monotonic())
        if due is None or self.closed:
            return
        if self._fallback_check is not None:
            self._fallback_check.cancel()
        delay = max(0.0, due - time.monotonic())
        self._fallback_check = asyncio.get_running_loop().call_later(
            delay, self._check_fallback_alerts)

    def _check_fallback_alerts(self) -> None:
        self._fallback_check = None
        for alert in self._fallback_alerts.due(time.monotonic()):
            self._send_fallback_alert(alert)
        self._schedule_fallback_check()

    def _send_fallback_alert(self, alert: FallbackAlert) -> None:
        participant = self.participants.get(alert.participant_id)
        if participant is None:
            return
        times = "" if alert.interruptions == 1 else \
            f" It has stopped {alert.interruptions} times in the last few minutes."
        self.alert_hosts("privacy_fallback", participant,
                         f"{participant.display_name}'s video is paused: the privacy filter "
                         f"could not run, so a placeholder is shown.{times}",
                         count=alert.interruptions)

    def _on_refused_video(self, pub: Publication, reason: str) -> None:
        participant = self.participants.get(pub.owner_id)
        if participant is None:
            return
        participant.send({
            "type": "error", "code": "video_refused",
            "message": "your camera's picture size is outside what the server accepts "
                       f"(at most {MAX_PICTURE_PIXELS} pixels, as in 1920x1088); "
                       "it is not shown",
        })

    def alert_hosts(self, kind: str, about: Participant, message: str,
                    count: int | None = None) -> None:
        body: dict[str, Any] = {"type": "alert", "kind": kind, "participant_id": about.id,
                                "message": message}
        if count is not None:
            body["count"] = count
        for host in self.admitted():
            if host.is_host and host is not about:
                host.send(dict(body))

    def set_self_muted(self, participant: Participant, kind: object, muted: object) -> None:
        if kind not in ("audio", "video") or not isinstance(muted, bool):
            raise ProtocolError("'kind' must be audio or video and 'muted' a boolean",
                                code="bad_field")
        participant.self_muted[kind] = muted
        self.announce(participant)

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._fallback_check is not None:
            self._fallback_check.cancel()
            self._fallback_check = None
        for pid in list(self.participants):
            await self.leave(pid, reason="room_closed")


def _receiver_of(pc: RTCPeerConnection, track: Any) -> Any:
    return next((t.receiver for t in pc.getTransceivers() if t.receiver.track is track), None)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
