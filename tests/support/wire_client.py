"""A signaling-only participant for tests: a real WebSocket to /rtc, no media.

It keeps every message, answers nothing on its own, and can leave politely or drop its TCP
connection abruptly (an RST, as when a laptop lid closes mid-session behind a NAT reset).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import struct
import time
from typing import Any

import aiohttp

_ids = itertools.count(1)
# a well-behaved client stays under the server's per-socket limit (20/s, burst 40)
PACE_PER_S = 15.0
PACE_BURST = 30.0


class WireClient:
    """One participant's signaling socket."""

    def __init__(self, base_url: str, label: str = "") -> None:
        self.url = base_url.replace("http", "ws", 1).rstrip("/") + "/rtc"
        self.label = label
        self.messages: list[dict[str, Any]] = []
        self.me: dict[str, Any] | None = None
        self.resume: str | None = None
        self.close_code: int | None = None
        self.closed = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._arrived = asyncio.Condition()
        self._tokens = PACE_BURST
        self._paced_at = time.monotonic()

    # --- connecting
    async def open(self) -> None:
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(self.url, max_msg_size=0, heartbeat=None)
        self._reader = asyncio.ensure_future(self._read())

    async def join(self, grant: str, *, resume: str | None = None,
                   timeout_s: float = 10.0) -> dict[str, Any]:
        """Open and send `join`; the `joined` message, or the error that refused it."""
        await self.open()
        msg: dict[str, Any] = {"type": "join", "v": 1, "grant": grant}
        if resume is not None:
            msg["resume"] = resume
        await self.send(msg)
        found = await self.wait_for(lambda m: m.get("type") in ("joined", "error"), timeout_s)
        if found.get("type") == "joined":
            self.me = found["participant"]
            self.resume = found["resume"]
        else:
            # a refused join is followed by a 1008 close
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closed.wait(), timeout_s)
        return found

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for msg in self._ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                data = json.loads(msg.data)
                async with self._arrived:
                    self.messages.append(data)
                    self._arrived.notify_all()
        except (aiohttp.ClientError, ConnectionError, RuntimeError):
            pass
        finally:
            self.close_code = self._ws.close_code
            self.closed.set()
            async with self._arrived:
                self._arrived.notify_all()

    # --- talking
    async def _pace(self) -> None:
        now = time.monotonic()
        self._tokens = min(PACE_BURST, self._tokens + (now - self._paced_at) * PACE_PER_S)
        self._paced_at = now
        if self._tokens < 1:
            await asyncio.sleep((1 - self._tokens) / PACE_PER_S)
            self._tokens, self._paced_at = 1.0, time.monotonic()
        self._tokens -= 1

    async def send(self, message: dict[str, Any] | str) -> None:
        assert self._ws is not None
        await self._pace()
        text = message if isinstance(message, str) else json.dumps(message)
        with contextlib.suppress(ConnectionError, RuntimeError, aiohttp.ClientError):
            await self._ws.send_str(text)

    async def wait_for(self, predicate: Any, timeout_s: float = 10.0,
                       start: int = 0) -> dict[str, Any]:
        """The first message (from index `start`) that satisfies `predicate`."""
        async def find() -> dict[str, Any]:
            async with self._arrived:
                while True:
                    for m in self.messages[start:]:
                        if predicate(m):
                            return m
                    if self.closed.is_set():
                        raise ConnectionError(f"{self.label}: socket closed ({self.close_code})")
                    await self._arrived.wait()
        return await asyncio.wait_for(find(), timeout_s)

    async def request(self, message: dict[str, Any], timeout_s: float = 10.0) -> dict[str, Any]:
        """Send with a fresh id; the reply or error that refers to it."""
        ref = f"r{next(_ids)}"
        start = len(self.messages)
        await self.send({**message, "id": ref})
        return await self.wait_for(lambda m: m.get("ref") == ref, timeout_s, start)

    async def command(self, name: str, **fields: Any) -> dict[str, Any]:
        return await self.request({"type": "command", "name": name, **fields})

    async def sync(self, timeout_s: float = 10.0) -> None:
        """A round trip: everything sent before it has been handled by the server."""
        await self.request({"type": "ping"}, timeout_s)

    # --- going
    async def leave(self, timeout_s: float = 5.0) -> None:
        await self.send({"type": "leave"})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closed.wait(), timeout_s)
        await self.close()

    async def drop(self) -> None:
        """Close the TCP connection abruptly (RST), with no WebSocket close."""
        if self._ws is not None:
            sock = self._ws.get_extra_info("socket")
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn = self._ws._response.connection  # noqa: SLF001 (the transport is the point)
            if conn is not None and conn.transport is not None:
                conn.transport.abort()
        await self.close()

    async def close(self) -> None:
        if self._ws is not None and not self._ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), 2.0)
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 2.0)
        if self._session is not None:
            await self._session.close()
        self.closed.set()

    @property
    def is_open(self) -> bool:
        return self._ws is not None and not self._ws.closed and not self.closed.is_set()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == kind]
