"""The comparison server for bench_fanout: aiortc's `MediaRelay`, one encoder per subscriber.

It speaks just enough of Confide's signaling (join → joined, publish_offer → publish_answer,
a server-offered subscriber connection with the `tracks` mid map) that the same bots join it
unchanged. No grant checks, no lobby, no limits: a measuring stick, never a service.

`--blur` runs Confide's own privacy pipeline (`PrivacyPipeline`, profile `blur`) once per
published video, in a worker thread, latest frame wins; `MediaRelay` then hands the blurred
frames to one encoder per subscriber. That is the per-subscriber-encoding way of offering the
same privacy, for bench_capacity.

Run: python -m bench.baseline_relay --port 8090 [--blur]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import WSMsgType, web
from aiortc import (
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

from confidentiality.pipeline import PrivacyPipeline
from confidentiality.profiles import Profile
from sfu.ice import keep_loopback_candidates, rtc_configuration, set_loopback_only

logger = logging.getLogger(__name__)

ANSWER_TIMEOUT_S = 15.0


def _pin_codecs(transceiver: RTCRtpTransceiver) -> None:
    # the same codecs Confide pins, so both servers encode and send the same thing
    wanted = ("vp8", "rtx") if transceiver.kind == "video" else ("opus",)
    caps = RTCRtpSender.getCapabilities(transceiver.kind).codecs
    transceiver.setCodecPreferences([c for c in caps if c.mimeType.split("/")[1].lower() in wanted])


class BlurredTrack(MediaStreamTrack):
    """A publisher's decoded video through Confide's blur pipeline, latest frame wins.

    A reader task keeps only the newest decoded frame, so a slow pipeline lowers the frame
    rate instead of building a queue; the pipeline runs in this track's own worker thread.
    """

    kind = "video"

    def __init__(self, source: MediaStreamTrack, display_name: str) -> None:
        super().__init__()
        self._source = source
        self._pipeline = PrivacyPipeline(profile=Profile.BLUR, display_name=display_name)
        self._pipeline.preload()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="baseline-blur"
        )
        self._latest: Any = None
        self._fresh = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        try:
            while True:
                self._latest = await self._source.recv()
                self._fresh.set()
        except MediaStreamError:
            pass
        finally:
            # no newer frame: recv() then sees None and ends the track
            self._fresh.set()

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        if self._reader is None:
            self._reader = asyncio.ensure_future(self._read())
        if not self._reader.done():
            await self._fresh.wait()
        self._fresh.clear()
        frame, self._latest = self._latest, None
        if frame is None:
            self.stop()
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._pipeline.process, frame)

    def stop(self) -> None:
        super().stop()
        if self._reader is not None:
            self._reader.cancel()
        self._pipeline.close()
        self._executor.shutdown(wait=False, cancel_futures=True)


@dataclass
class Slot:
    """One sending transceiver on a subscriber connection."""

    transceiver: RTCRtpTransceiver
    publisher_id: str
    kind: str
    track_id: str


@dataclass
class Peer:
    """One connected bot: its publisher and subscriber connections."""

    id: str
    display_name: str
    ws: web.WebSocketResponse
    pub_pc: RTCPeerConnection | None = None
    sub_pc: RTCPeerConnection | None = None
    published: dict[str, tuple[str, MediaStreamTrack]] = field(default_factory=dict)
    slots: list[Slot] = field(default_factory=list)
    needs_offer: bool = False
    answer: asyncio.Future[str] | None = None
    offer_task: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closed: bool = False
    profile: str = "none"

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "display_name": self.display_name,
            "role": "participant",
            "state": "admitted",
            "profile": self.profile,
            "tracks": [{"id": tid, "kind": kind, "muted": False}
                       for kind, (tid, _) in self.published.items()],
            "muted": {"audio": False, "video": False},
        }

    async def send(self, message: dict[str, Any]) -> None:
        message.setdefault("v", 1)
        if not self.ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_str(json.dumps(message, separators=(",", ":")))


class BaselineRoom:
    """Everyone receives every published track through `MediaRelay` (aiortc's default way)."""

    def __init__(self, *, blur: bool = False) -> None:
        self.peers: dict[str, Peer] = {}
        self.relay = MediaRelay()
        self.blur = blur

    async def join(self, peer: Peer) -> None:
        others = [p.describe() for p in self.peers.values()]
        self.peers[peer.id] = peer
        await peer.send({"type": "joined", "participant": peer.describe(), "participants": others,
                         "ice_servers": [], "resume": None, "paused": False})
        await self._broadcast({"type": "participant_joined", "participant": peer.describe()},
                              exclude=peer)
        for other in list(self.peers.values()):
            if other is not peer:
                for kind, (track_id, track) in other.published.items():
                    self._add_slot(peer, other, kind, track_id, track)
        self._renegotiate(peer)

    async def leave(self, peer: Peer) -> None:
        if self.peers.pop(peer.id, None) is None:
            return
        peer.closed = True
        if peer.offer_task is not None:
            peer.offer_task.cancel()
        for pc in (peer.pub_pc, peer.sub_pc):
            if pc is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pc.close(), 5.0)
        await self._broadcast({"type": "participant_left", "participant_id": peer.id,
                               "reason": "left"})

    async def publish_offer(self, peer: Peer, sdp: str) -> str:
        if peer.pub_pc is None:
            pc = peer.pub_pc = RTCPeerConnection(rtc_configuration([]))

            @pc.on("track")
            def on_track(track: MediaStreamTrack) -> None:
                self._on_track(peer, track)

        pc = peer.pub_pc
        await pc.setRemoteDescription(
            RTCSessionDescription(sdp=keep_loopback_candidates(sdp), type="offer")
        )
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    def _on_track(self, publisher: Peer, track: MediaStreamTrack) -> None:
        track_id = "TR_" + uuid.uuid4().hex[:12]
        if self.blur and track.kind == "video":
            # blurred once per publisher, before the relay: every subscriber's encoder gets it
            track = BlurredTrack(track, publisher.display_name)
        publisher.published[track.kind] = (track_id, track)
        for other in self.peers.values():
            # the publisher gets its own video back as a self-view, exactly as Confide does
            if other is not publisher or track.kind == "video":
                self._add_slot(other, publisher, track.kind, track_id, track)
                self._renegotiate(other)
        asyncio.ensure_future(
            self._broadcast({"type": "participant_updated", "participant": publisher.describe()})
        )

    def _add_slot(self, subscriber: Peer, publisher: Peer, kind: str, track_id: str,
                  track: MediaStreamTrack) -> None:
        if subscriber.sub_pc is None:
            subscriber.sub_pc = RTCPeerConnection(rtc_configuration([]))
        # a fresh proxy per subscriber: each RTCRtpSender then runs its own encoder
        transceiver = subscriber.sub_pc.addTransceiver(self.relay.subscribe(track),
                                                       direction="sendonly")
        _pin_codecs(transceiver)
        subscriber.slots.append(Slot(transceiver, publisher.id, kind, track_id))

    def _renegotiate(self, peer: Peer) -> None:
        if peer.closed or peer.sub_pc is None or not peer.slots:
            return
        peer.needs_offer = True
        if peer.offer_task is None or peer.offer_task.done():
            peer.offer_task = asyncio.ensure_future(self._negotiate_loop(peer))

    async def _negotiate_loop(self, peer: Peer) -> None:
        async with peer.lock:
            while peer.needs_offer and not peer.closed and peer.sub_pc is not None:
                peer.needs_offer = False
                pc = peer.sub_pc
                await pc.setLocalDescription(await pc.createOffer())
                tracks = {
                    s.transceiver.mid: {"participant_id": s.publisher_id, "kind": s.kind,
                                        "track_id": s.track_id}
                    for s in peer.slots if s.transceiver.mid is not None
                }
                peer.answer = asyncio.get_running_loop().create_future()
                await peer.send({"type": "subscribe_offer", "sdp": pc.localDescription.sdp,
                                 "tracks": tracks})
                try:
                    sdp = await asyncio.wait_for(peer.answer, ANSWER_TIMEOUT_S)
                finally:
                    peer.answer = None
                await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    def subscribe_answer(self, peer: Peer, sdp: str) -> None:
        if peer.answer is not None and not peer.answer.done():
            peer.answer.set_result(keep_loopback_candidates(sdp))

    async def _broadcast(self, message: dict[str, Any], *, exclude: Peer | None = None) -> None:
        for peer in list(self.peers.values()):
            if peer is not exclude:
                await peer.send(dict(message))


ROOMS = web.AppKey("rooms", dict)
BLUR = web.AppKey("blur", bool)


def _claims(token: object) -> dict[str, Any]:
    # the grant only names the room and the bot; its signature is not this server's business
    if not isinstance(token, str):
        return {}
    try:
        return dict(jwt.decode(token, options={"verify_signature": False}))
    except jwt.PyJWTError:
        return {}


async def _rtc(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=64 * 1024)
    await ws.prepare(request)
    rooms: dict[str, BaselineRoom] = request.app[ROOMS]
    room: BaselineRoom | None = None
    peer: Peer | None = None
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            mtype = data.get("type")
            if peer is None or room is None:
                if mtype != "join":
                    continue
                claims = _claims(data.get("grant"))
                room_id = str(claims.get("room", "default"))
                blur = request.app[BLUR]
                room = rooms.setdefault(room_id, BaselineRoom(blur=blur))
                peer = Peer(str(claims.get("sub") or uuid.uuid4().hex),
                            str(claims.get("name", "")), ws, profile="blur" if blur else "none")
                await room.join(peer)
            elif mtype == "publish_offer":
                answer = await room.publish_offer(peer, str(data.get("sdp", "")))
                await peer.send({"type": "publish_answer", "sdp": answer, "ref": data.get("id")})
            elif mtype == "subscribe_answer":
                room.subscribe_answer(peer, str(data.get("sdp", "")))
            elif mtype == "ping":
                await peer.send({"type": "pong", "ts": data.get("ts")})
            elif mtype == "leave":
                break
    finally:
        if room is not None and peer is not None:
            await room.leave(peer)
            for room_id, candidate in list(rooms.items()):
                if candidate is room and not room.peers:
                    del rooms[room_id]
    return ws


async def _health(request: web.Request) -> web.Response:
    rooms: dict[str, BaselineRoom] = request.app[ROOMS]
    return web.json_response({"status": "ok", "rooms": len(rooms),
                              "participants": sum(len(r.peers) for r in rooms.values())})


def create_baseline_app(*, blur: bool = False) -> web.Application:
    """The baseline relay's aiohttp application (loopback ICE only)."""
    set_loopback_only(True)
    app = web.Application()
    app[ROOMS] = {}
    app[BLUR] = blur
    app.router.add_get("/rtc", _rtc)
    app.router.add_get("/healthz", _health)
    return app


def main(argv: list[str] | None = None) -> int:
    """Serve the baseline relay on 127.0.0.1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--blur", action="store_true",
                        help="blur every published video once (Confide's pipeline) before relaying")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    web.run_app(create_baseline_app(blur=args.blur), host="127.0.0.1", port=args.port, print=None,
                access_log=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
