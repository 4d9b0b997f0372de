"""A participant in a room: their grant, their two peer connections and their tracks.

Like LiveKit, each participant has a *publisher* connection offered by the client (it
sends) and a *subscriber* connection offered by the server (it receives): each side only
ever offers on its own connection, so renegotiation never glares.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from aiortc import RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from aiortc.rtcrtpsender import RTCRtpSender

from confidentiality.profiles import Profile

from . import aiortc_compat
from .downlink_watch import DownlinkWatch
from .errors import InvalidStateError, PermissionDenied, ProtocolError
from .fanout import PacketTrack
from .grants import Grant
from .offers import OfferBudget
from .publication import Publication
from .subscriber_sdp import subscriber_offer_sdp

logger = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], None]
MediaKind = Literal["audio", "video"]

# how long we wait for a client's answer to a subscriber offer before giving up on it
ANSWER_TIMEOUT_S = 15.0


class ParticipantState(enum.StrEnum):
    LOBBY = "lobby"
    ADMITTED = "admitted"
    LEFT = "left"


@dataclass
class Subscription:
    """One slot (transceiver) on a subscriber connection and what it carries."""

    transceiver: RTCRtpTransceiver
    track: PacketTrack
    publication_id: str | None = None
    publisher_id: str | None = None


class Participant:
    """Media-plane view of one person: knows their pseudonym, never their real name."""

    def __init__(self, grant: Grant, send: Send, disconnect: Callable[[], None] | None = None) -> None:
        self.grant = grant
        self.id = grant.participant_id
        self.display_name = grant.display_name
        self.role = grant.role
        self.profile: Profile = grant.profile
        self.state = ParticipantState.LOBBY
        self.joined_at = time.time()
        self._send = send
        self._disconnect = disconnect
        self.publisher_pc: RTCPeerConnection | None = None
        self.subscriber_pc: RTCPeerConnection | None = None
        # before admission: video sent back to this participant alone (see Room.handle_preview_offer)
        self.preview_pc: RTCPeerConnection | None = None
        self.preview_pub: Publication | None = None
        self.offer_budget = OfferBudget()
        self.publications: dict[str, Publication] = {}
        self.subscriptions: list[Subscription] = []
        # the subscriber leg's downlink estimate and audio-first decision (sfu/downlink.py)
        self.downlink: DownlinkWatch | None = None
        # what the client says of its own devices (a self-muted mic is still published)
        self.self_muted: dict[str, bool] = {"audio": False, "video": False}
        # what the host or the room holds back (mute, stop video, pause)
        self.held: dict[str, bool] = {"audio": False, "video": False}
        self.resume_token = secrets.token_urlsafe(24)
        # policy flags the wiring keeps here for others to see (hand raised, text only)
        self.flags: dict[str, Any] = {}
        self._negotiating = asyncio.Lock()
        self._needs_offer = False
        self._answer: asyncio.Future[str] | None = None
        self._offer_task: asyncio.Task[None] | None = None
        self.closed = False

    @property
    def is_host(self) -> bool:
        return self.role == "host"

    def send(self, message: dict[str, Any]) -> None:
        if not self.closed:
            self._send(message)

    def disconnect(self) -> None:
        """Close this participant's signaling socket (after removal)."""
        if self._disconnect is not None:
            self._disconnect()

    def describe(self) -> dict[str, Any]:
        """What other participants learn about this one (pseudonym only)."""
        return {
            "id": self.id,
            "display_name": self.display_name,
            "role": self.role,
            "state": self.state.value,
            "profile": self.profile.value,
            "tracks": [
                {
                    "id": pub.id,
                    "kind": pub.kind,
                    "muted": self.self_muted[pub.kind] or self.held[pub.kind],
                }
                for pub in self.publications.values()
            ],
            "muted": {k: self.self_muted[k] or self.held[k] for k in ("audio", "video")},
            **self.flags,
        }

    # --- subscriber connection (server offers)
    def request_renegotiation(self) -> None:
        """Coalesce changes: one offer at a time, another after the answer if needed."""
        if self.closed or self.subscriber_pc is None:
            return
        self._needs_offer = True
        if self._offer_task is None or self._offer_task.done():
            self._offer_task = asyncio.ensure_future(self._negotiate_loop())

    async def _negotiate_loop(self) -> None:
        async with self._negotiating:
            while self._needs_offer and not self.closed and self.subscriber_pc is not None:
                self._needs_offer = False
                try:
                    await self._offer_once(self.subscriber_pc)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    logger.warning("participant %s: subscriber negotiation failed: %s", self.id, exc)
                    self.send(
                        {
                            "type": "error",
                            "code": "negotiation_failed",
                            "message": "could not update the subscriber connection",
                        }
                    )
                    return

    async def _offer_once(self, pc: RTCPeerConnection) -> None:
        offer = await pc.createOffer()
        await pc.setLocalDescription(offer)
        loop = asyncio.get_running_loop()
        self._answer = loop.create_future()
        tracks = {
            sub.transceiver.mid: {
                "participant_id": sub.publisher_id,
                "kind": sub.transceiver.kind,
                "track_id": sub.publication_id,
            }
            for sub in self.subscriptions
            if sub.publication_id is not None and sub.transceiver.mid is not None
        }
        streams = {mid: str(info["participant_id"]) for mid, info in tracks.items()}
        self.send({"type": "subscribe_offer",
                   "sdp": subscriber_offer_sdp(pc.localDescription.sdp, streams),
                   "tracks": tracks})
        try:
            sdp = await asyncio.wait_for(self._answer, ANSWER_TIMEOUT_S)
        finally:
            self._answer = None
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    def deliver_answer(self, sdp: str) -> None:
        """The client's answer to our subscriber offer."""
        if self._answer is None or self._answer.done():
            raise InvalidStateError(
                'Cannot accept "subscribe_answer": no subscriber offer is outstanding',
                code="unexpected_answer",
            )
        self._answer.set_result(sdp)

    def free_slot(self, kind: str) -> Subscription | None:
        for sub in self.subscriptions:
            if sub.transceiver.kind == kind and sub.publication_id is None:
                return sub
        return None

    def check_may_publish(self, kind: str) -> None:
        if self.state is not ParticipantState.ADMITTED:
            raise PermissionDenied(
                f'Cannot publish in state "{self.state.value}": wait to be admitted',
                code="not_admitted",
            )
        allowed = {
            "audio": self.grant.permissions.publish_audio,
            "video": self.grant.permissions.publish_video,
        }.get(kind)
        if allowed is None:
            raise ProtocolError(f"unknown media kind {kind!r}", code="bad_sdp")
        if not allowed:
            raise PermissionDenied(f"grant does not allow publishing {kind}")

    async def aclose(self) -> None:
        """Release everything; safe twice."""
        if self.closed:
            return
        self.closed = True
        self.state = ParticipantState.LEFT
        if self._answer is not None and not self._answer.done():
            self._answer.cancel()
        if self._offer_task is not None:
            self._offer_task.cancel()
        for pub in list(self.publications.values()):
            await pub.aclose()
        self.publications.clear()
        if self.downlink is not None:
            self.downlink.close()
        for sub in self.subscriptions:
            sub.track.stop()
        self.subscriptions.clear()
        for pc in (self.publisher_pc, self.subscriber_pc):
            if pc is not None:
                await _close_pc(pc)
        self.publisher_pc = self.subscriber_pc = None


async def _close_pc(pc: RTCPeerConnection) -> None:
    try:
        await asyncio.wait_for(pc.close(), 5.0)
    except Exception:
        logger.debug("peer connection close failed", exc_info=True)


def route_keyframe_requests(sender: RTCRtpSender, track: PacketTrack) -> None:
    """A subscriber's PLI/FIR normally flags only the sender's own encoder; route it to the
    publication's source instead (its one encoder, or the publisher)."""
    aiortc_compat.route_keyframe_requests(sender, track.request_keyframe)
