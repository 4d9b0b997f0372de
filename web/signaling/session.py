"""One client's signaling socket: parse, rate-limit, dispatch (see docs/signaling.md).

The first message must be `join` with a grant; after that the client offers on its
publisher connection and answers the server's subscriber offers. Every message is parsed
into its typed model (`messages.parse`) before anything acts on it, and every bad message
gets a typed error that touches nothing else in the room.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from sfu.errors import GrantError, SfuError
from sfu.grants import Grant, verify_grant
from sfu.participant import Participant
from sfu.registry import RoomRegistry
from sfu.room import Room

from ..ops.metrics import OPS
from . import outbound
from .messages import (
    PROTOCOL_VERSION,
    CommandMessage,
    Inbound,
    IncomingVideo,
    Join,
    Leave,
    Mute,
    Ping,
    PreviewOffer,
    PublishOffer,
    RequestRef,
    SubscribeAnswer,
    WireError,
    parse,
)

logger = logging.getLogger(__name__)

# where a join belongs when several servers share the rooms: None (here) or the socket URL of
# the server that runs the grant's room
Router = Callable[[Grant], Awaitable[str | None]]

MAX_MESSAGE_BYTES = 64 * 1024
JOIN_TIMEOUT_S = 10.0
# aiohttp pings every HEARTBEAT_S and closes when no pong comes within half of it:
# a silently dropped client is gone within about 1.5 × HEARTBEAT_S
HEARTBEAT_S = 10.0
OUTBOX_LIMIT = 512
# token bucket per socket: sustained messages per second and burst
RATE_PER_S = 20.0
RATE_BURST = 40.0
# a socket that keeps flooding after being told is closed
FLOOD_CLOSE_AFTER = 200


class TokenBucket:
    def __init__(self, rate_per_s: float, burst: float) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.tokens = burst
        self.updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate_per_s)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class SignalingSession:
    """One client's socket: parses, rate-limits and dispatches its messages."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        registry: RoomRegistry,
        grant_secret: str,
        *,
        strict: bool = False,
        router: Router | None = None,
    ) -> None:
        self.ws = ws
        self.registry = registry
        self.grant_secret = grant_secret
        self.router = router
        # strict: an outgoing message that breaks the protocol raises (tests)
        self.strict = strict
        self.room: Room | None = None
        self.participant: Participant | None = None
        self._outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(OUTBOX_LIMIT)
        self._bucket = TokenBucket(RATE_PER_S, RATE_BURST)
        self._flood = 0
        self._last_rate_error = 0.0
        self._writer: asyncio.Task[None] | None = None

    # --- outbound
    def send(self, message: dict[str, Any]) -> None:
        message.setdefault("v", PROTOCOL_VERSION)
        try:
            outbound.check(message)
        except outbound.OutboundMismatch as exc:
            if self.strict:
                raise
            logger.warning("signaling: outgoing %s does not match the protocol",
                           message.get("type"))
            logger.debug("signaling: %s", exc)
        try:
            self._outbox.put_nowait(message)
        except asyncio.QueueFull:
            # a client that cannot keep up must not make the server buffer without end
            logger.warning("signaling: outbox full, closing slow client")
            asyncio.ensure_future(self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER,
                                                message=b"too slow"))

    async def _write_loop(self) -> None:
        while True:
            message = await self._outbox.get()
            if message is None or self.ws.closed:
                return
            try:
                await self.ws.send_str(json.dumps(message, separators=(",", ":")))
            except (ConnectionError, RuntimeError):
                return

    def error(self, code: str, message: str, ref: RequestRef | None = None,
              field: str | None = None) -> None:
        out: dict[str, Any] = {"type": "error", "code": code, "message": message}
        if ref is not None:
            out["ref"] = ref
        if field is not None:
            out["field"] = field
        self.send(out)

    # --- lifecycle
    async def run(self) -> None:
        self._writer = asyncio.ensure_future(self._write_loop())
        try:
            await self._receive_loop()
        finally:
            await self._depart("disconnected")
            with contextlib.suppress(asyncio.QueueFull):
                self._outbox.put_nowait(None)
            if self._writer is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._writer, 2.0)

    async def _depart(self, reason: str) -> None:
        """This socket's participant goes, by the one path the rules see; safe twice."""
        room, participant = self.room, self.participant
        if room is None or participant is None:
            return
        # a replaced connection (the same host, again) is no longer the room's
        if room.participants.get(participant.id) is participant:
            if room.controller is not None:
                await room.controller.depart(participant.id, reason, connection=participant)
            else:
                await room.leave(participant.id, reason=reason)
        await self.registry.drop_if_empty(room)

    async def _receive_loop(self) -> None:
        join_deadline = asyncio.get_running_loop().time() + JOIN_TIMEOUT_S
        while not self.ws.closed:
            timeout = None
            if self.participant is None:
                timeout = max(0.1, join_deadline - asyncio.get_running_loop().time())
            try:
                msg = await self.ws.receive(timeout=timeout)
            except TimeoutError:
                self.error("join_timeout", "first message must be 'join' within 10 s")
                await self._close(WSCloseCode.POLICY_VIOLATION, "join timeout")
                return
            if msg.type == WSMsgType.TEXT:
                await self._on_text(msg.data)
            elif msg.type == WSMsgType.BINARY:
                self.error("bad_message", "binary messages are not accepted")
            elif msg.type == WSMsgType.ERROR:
                # aiohttp reports oversized (also after inflation) frames here and closes 1009
                logger.info("signaling: socket error: %s", type(msg.data).__name__)
                return
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return

    def _disconnect_soon(self, code: int = WSCloseCode.OK, reason: str = "closed by the room") -> None:
        asyncio.ensure_future(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        # flush queued errors first so the client learns why
        await asyncio.sleep(0)
        with contextlib.suppress(asyncio.QueueFull):
            self._outbox.put_nowait(None)
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer, 2.0)
        await self.ws.close(code=code, message=reason.encode()[:120])

    async def _on_text(self, data: str) -> None:
        if not self._bucket.take():
            self._flood += 1
            now = time.monotonic()
            if now - self._last_rate_error > 1.0:
                self._last_rate_error = now
                self.error("rate_limited", "too many messages; slow down")
            if self._flood > FLOOD_CLOSE_AFTER:
                await self._close(WSCloseCode.POLICY_VIOLATION, "message flood")
            return
        try:
            msg = parse(data)
        except WireError as exc:
            self.error(exc.code, exc.message, exc.ref, exc.field)
            return
        ref = msg.id
        try:
            await self._dispatch(msg)
        except GrantError as exc:
            if self.participant is None:
                OPS.join_refused("signaling", exc.code)
            self.error(exc.code, exc.message, ref)
            await self._close(WSCloseCode.POLICY_VIOLATION, exc.code)
        except SfuError as exc:
            self.error(exc.code, exc.message, ref)
        except WireError as exc:
            self.error(exc.code, exc.message, ref, exc.field)
        except Exception:
            logger.exception("signaling: %s handler failed", msg.type)
            self.error("internal_error", f"could not handle {msg.type!r}", ref)

    async def _dispatch(self, msg: Inbound) -> None:
        if self.participant is None:
            if not isinstance(msg, Join):
                raise WireError("not_joined", "first message must be 'join'")
            await self._join(msg)
            return
        room, participant = self.room, self.participant
        assert room is not None
        if isinstance(msg, PublishOffer):
            answer = await room.handle_publish_offer(participant, msg.sdp)
            self.send(_with_ref({"type": "publish_answer", "sdp": answer}, msg.id))
        elif isinstance(msg, PreviewOffer):
            answer = await room.handle_preview_offer(participant, msg.sdp)
            self.send(_with_ref({"type": "preview_answer", "sdp": answer}, msg.id))
        elif isinstance(msg, SubscribeAnswer):
            room.handle_subscribe_answer(participant, msg.sdp)
        elif isinstance(msg, Mute):
            room.set_self_muted(participant, msg.kind, msg.muted)
        elif isinstance(msg, Ping):
            self.send(_with_ref({"type": "pong", "ts": msg.ts}, msg.id))
        elif isinstance(msg, IncomingVideo):
            room.set_incoming_video(participant, msg.enabled)
            self.send(_with_ref({"type": "incoming_video", "enabled": msg.enabled}, msg.id))
        elif isinstance(msg, Leave):
            await self._depart("left")
            await self._close(WSCloseCode.OK, "left")
        elif isinstance(msg, CommandMessage):
            if room.controller is None:
                raise WireError("invalid_command", "this room takes no commands")
            await room.controller.command(participant, msg.command.to_command(), ref=msg.id)
        elif isinstance(msg, Join):
            raise WireError("already_joined", "already joined")

    async def _join(self, msg: Join) -> None:
        version = PROTOCOL_VERSION if msg.v is None else msg.v
        if version != PROTOCOL_VERSION:
            raise GrantError(f"protocol version {PROTOCOL_VERSION} required", code="bad_version")
        grant = verify_grant(msg.grant, self.grant_secret, room=msg.room)
        if self.router is not None:
            # before the grant is claimed: the room's own server claims it
            try:
                elsewhere = await self.router(grant)
            except SfuError as exc:
                OPS.join_refused("signaling", exc.code)
                self.error(exc.code, exc.message, msg.id)
                await self._close(WSCloseCode.TRY_AGAIN_LATER, exc.code)
                return
            if elsewhere is not None:
                self.send({"type": "redirect", "url": elsewhere,
                           "message": "This session runs on another server."})
                await self._close(WSCloseCode.OK, "redirect")
                return
        resumed = self.registry.claim_grant(grant, msg.resume)
        try:
            room = await self.registry.room_for(grant)
            if room.controller is not None:
                participant = await room.controller.arrive(grant, self.send, resumed=resumed)
            else:
                participant = await room.join(grant, self.send, resumed=resumed)
            participant._disconnect = self._disconnect_soon
        except SfuError as exc:
            OPS.join_refused("signaling", exc.code)
            self.error(exc.code, exc.message, msg.id)
            await self._close(WSCloseCode.POLICY_VIOLATION, exc.code)
            return
        finally:
            self.registry.grant_settled(grant)
        self.room, self.participant = room, participant
        logger.info("room %s: participant %s joined (%s)", room.id, participant.id,
                    participant.state.value)


def _with_ref(reply: dict[str, Any], ref: RequestRef | None) -> dict[str, Any]:
    # a reply names the request it answers, when the request had an id
    if ref is not None:
        reply["ref"] = ref
    return reply


def websocket_handler(
    registry_key: web.AppKey[RoomRegistry],
    secret_getter: Callable[[web.Application], str],
    *,
    strict: bool = False,
    router_key: web.AppKey[Router] | None = None,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Build the `/rtc` handler bound to the app's registry and grant secret (and, among
    several servers, the app's router)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(
            heartbeat=HEARTBEAT_S, max_msg_size=MAX_MESSAGE_BYTES, compress=True
        )
        await ws.prepare(request)
        session = SignalingSession(
            ws,
            request.app[registry_key],
            secret_getter(request.app),
            strict=strict,
            router=request.app.get(router_key) if router_key is not None else None,
        )
        await session.run()
        return ws

    return handler
