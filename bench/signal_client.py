"""A signaling-only participant for the resilience benchmarks: no media, exact timings.

Replies are matched to their command by `ref` as they arrive (no polling), so a latency is
the time from sending a command to reading its answer, or to reading the state the server
then sent the member it was about.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import Any

import aiohttp

from web.bot import parse_link

# the page's reconnect backoff (web/static/room.js): exponential, half of it jittered
RECONNECT_BASE_S = 0.5
RECONNECT_MAX_S = 5.0


def page_backoff_s(attempt: int) -> float:
    ceiling = min(RECONNECT_MAX_S, RECONNECT_BASE_S * 2 ** attempt)
    return ceiling / 2 + random.random() * ceiling / 2


class SignalClient:
    def __init__(self, link: str) -> None:
        self.ws_url, self.grant = parse_link(link)
        self.resume: str | None = None
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.joined: dict[str, Any] | None = None
        self.self_states: list[tuple[float, dict[str, Any]]] = []
        self.messages: list[tuple[float, dict[str, Any]]] = []
        self._replies: dict[str, asyncio.Future[tuple[float, dict[str, Any]]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._next = 0
        self.closed = asyncio.Event()

    async def join(self, timeout_s: float = 5.0) -> dict[str, Any]:
        """Join (with the last reconnect token, if any); the `joined` message or an error."""
        await self.close()
        self.closed = asyncio.Event()
        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(self.ws_url, heartbeat=None)
        msg: dict[str, Any] = {"type": "join", "v": 1, "grant": self.grant}
        if self.resume:
            msg["resume"] = self.resume
        first: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._reader = asyncio.ensure_future(self._read(first))
        await self.ws.send_json(msg)
        got = await asyncio.wait_for(first, timeout_s)
        if got.get("type") == "joined":
            self.joined = got
            self.resume = got.get("resume") or self.resume
        return got

    async def come_back(self, deadline_s: float) -> float:
        """Reconnect as the page does (backoff with jitter) until joined; the time it was."""
        attempt = 0
        while True:
            try:
                got = await self.join()
                if got.get("type") == "joined":
                    return time.monotonic()
                raise RuntimeError(f"refused: {got}")
            except (aiohttp.ClientError, OSError, TimeoutError):
                if time.monotonic() > deadline_s:
                    raise
                await asyncio.sleep(page_backoff_s(attempt))
                attempt += 1

    async def _read(self, first: asyncio.Future[dict[str, Any]]) -> None:
        assert self.ws is not None
        try:
            async for msg in self.ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                now = time.monotonic()
                data = msg.json()
                self.messages.append((now, data))
                mtype = data.get("type")
                if not first.done() and mtype in ("joined", "error"):
                    first.set_result(data)
                if mtype == "self_state":
                    self.self_states.append((now, data))
                ref = data.get("ref")
                if isinstance(ref, str) and ref in self._replies:
                    fut = self._replies.pop(ref)
                    if not fut.done():
                        fut.set_result((now, data))
        finally:
            if not first.done():
                first.set_exception(ConnectionError("closed before joining"))
            self.closed.set()

    async def command(self, name: str, **fields: Any) -> tuple[float, dict[str, Any]]:
        """Send a command; (seconds to its reply, the reply)."""
        assert self.ws is not None
        self._next += 1
        ref = f"b{self._next}"
        fut: asyncio.Future[tuple[float, dict[str, Any]]] = (
            asyncio.get_running_loop().create_future())
        self._replies[ref] = fut
        start = time.monotonic()
        await self.ws.send_json({"type": "command", "name": name, "id": ref, **fields})
        at, reply = await asyncio.wait_for(fut, 10.0)
        return at - start, reply

    async def state_after(self, since: float, timeout_s: float = 10.0) -> float:
        """The time of the first own-state message read after `since`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for at, _ in self.self_states:
                if at >= since:
                    return at
            await asyncio.sleep(0.001)
        raise TimeoutError("no state message")

    async def close(self) -> None:
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 2.0)
        if self.session is not None:
            await self.session.close()
        self.ws = self.session = self._reader = None
