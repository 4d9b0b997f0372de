"""WebSocket signaling, protocol version 1 (see docs/signaling.md).

One socket per participant. The first message must be `join` with a grant; after that the
client offers on its publisher connection and answers the server's subscriber offers.
Every bad message gets a typed error and touches nothing else in the room.
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
from sfu.grants import verify_grant
from sfu.participant import Participant
from sfu.registry import RoomRegistry
from sfu.room import Room

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
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


class SignalingError(SfuError):
    code = "bad_message"


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


def _field(msg: dict[str, Any], name: str, kind: type | tuple[type, ...], *, required: bool = True) -> Any:
    value = msg.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        expected = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise SignalingError(f"field {name!r} must be {expected}", code="bad_field")
    return value


class SignalingSession:
    """One client's socket: parses, rate-limits and dispatches its messages."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        registry: RoomRegistry,
        grant_secret: str,
    ) -> None:
        self.ws = ws
        self.registry = registry
        self.grant_secret = grant_secret
        self.room: Room | None = None
        self.participant: Participant | None = None
        self._outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(OUTBOX_LIMIT)
        self._bucket = TokenBucket(RATE_PER_S, RATE_BURST)
        self._flood = 0
        self._last_rate_error = 0.0
        self._writer: asyncio.Task[None] | None = None
        self._leave_reason = "disconnected"

    # --- outbound
    def send(self, message: dict[str, Any]) -> None:
        message.setdefault("v", PROTOCOL_VERSION)
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

    def error(self, code: str, message: str, ref: object = None) -> None:
        out: dict[str, Any] = {"type": "error", "code": code, "message": message}
        if isinstance(ref, (str, int)) and not isinstance(ref, bool):
            out["ref"] = ref
        self.send(out)

    # --- lifecycle
    async def run(self) -> None:
        self._writer = asyncio.ensure_future(self._write_loop())
        try:
            await self._receive_loop()
        finally:
            if self.room is not None and self.participant is not None:
                room, participant = self.room, self.participant
                if room.participants.get(participant.id) is participant:
                    if room.controller is not None:
                        await room.controller.depart(participant.id, self._leave_reason)
                    else:
                        await room.leave(participant.id, reason=self._leave_reason)
                await self.registry.drop_if_empty(room)
            with contextlib.suppress(asyncio.QueueFull):
                self._outbox.put_nowait(None)
            if self._writer is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._writer, 2.0)

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

    def _disconnect_soon(self) -> None:
        asyncio.ensure_future(self._close(WSCloseCode.OK, "closed by the room"))

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
            msg = json.loads(data)
        except ValueError:
            self.error("bad_json", "message is not valid JSON")
            return
        if not isinstance(msg, dict):
            self.error("bad_message", "message must be a JSON object")
            return
        ref = msg.get("id")
        mtype = msg.get("type")
        if not isinstance(mtype, str):
            self.error("bad_message", "field 'type' must be a string", ref)
            return
        try:
            await self._dispatch(mtype, msg)
        except GrantError as exc:
            self.error(exc.code, exc.message, ref)
            await self._close(WSCloseCode.POLICY_VIOLATION, exc.code)
        except SfuError as exc:
            self.error(exc.code, exc.message, ref)
        except Exception:
            logger.exception("signaling: %s handler failed", mtype)
            self.error("internal_error", f"could not handle {mtype!r}", ref)

    async def _dispatch(self, mtype: str, msg: dict[str, Any]) -> None:
        if self.participant is None:
            if mtype != "join":
                raise SignalingError("first message must be 'join'", code="not_joined")
            await self._join(msg)
            return
        room, participant = self.room, self.participant
        assert room is not None
        if mtype == "publish_offer":
            sdp = _field(msg, "sdp", str)
            answer = await room.handle_publish_offer(participant, sdp)
            self.send({"type": "publish_answer", "sdp": answer, "ref": msg.get("id")})
        elif mtype == "preview_offer":
            sdp = _field(msg, "sdp", str)
            answer = await room.handle_preview_offer(participant, sdp)
            self.send({"type": "preview_answer", "sdp": answer, "ref": msg.get("id")})
        elif mtype == "subscribe_answer":
            room.handle_subscribe_answer(participant, _field(msg, "sdp", str))
        elif mtype == "mute":
            room.set_self_muted(participant, msg.get("kind"), msg.get("muted"))
        elif mtype == "ping":
            self.send({"type": "pong", "ts": msg.get("ts") if isinstance(msg.get("ts"), (int, float)) else None})
        elif mtype == "leave":
            self._leave_reason = "left"
            if room.controller is not None:
                await room.controller.depart(participant.id, "left")
            else:
                await room.leave(participant.id, reason="left")
            await self._close(WSCloseCode.OK, "left")
        elif mtype == "command" and room.controller is not None:
            self.send(await room.controller.command(participant, msg))
        elif mtype == "join":
            raise SignalingError("already joined", code="already_joined")
        else:
            raise SignalingError(f"unknown message type {mtype!r}", code="unknown_type")

    async def _join(self, msg: dict[str, Any]) -> None:
        version = msg.get("v", PROTOCOL_VERSION)
        if version != PROTOCOL_VERSION:
            raise GrantError(f"protocol version {PROTOCOL_VERSION} required", code="bad_version")
        room_id = msg.get("room")
        if room_id is not None and not isinstance(room_id, str):
            raise SignalingError("field 'room' must be str", code="bad_field")
        grant = verify_grant(msg.get("grant"), self.grant_secret, room=room_id)
        resumed = self.registry.claim_grant(grant, msg.get("resume"))
        try:
            room = await self.registry.room_for(grant)
            if room.controller is not None:
                participant = await room.controller.arrive(grant, self.send, resumed=resumed)
            else:
                participant = await room.join(grant, self.send, resumed=resumed)
            participant._disconnect = self._disconnect_soon
        except SfuError as exc:
            self.error(exc.code, exc.message, msg.get("id"))
            await self._close(WSCloseCode.POLICY_VIOLATION, exc.code)
            return
        self.room, self.participant = room, participant
        logger.info("room %s: participant %s joined (%s)", room.id, participant.id,
                    participant.state.value)


def websocket_handler(
    registry_key: web.AppKey[RoomRegistry],
    secret_getter: Callable[[web.Application], str],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Build the `/rtc` handler bound to the app's registry and grant secret."""

    async def handler(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(
            heartbeat=HEARTBEAT_S, max_msg_size=MAX_MESSAGE_BYTES, compress=True
        )
        await ws.prepare(request)
        session = SignalingSession(
            ws,
            request.app[registry_key],
            secret_getter(request.app),
        )
        await session.run()
        return ws

    return handler
