"""A scheduled session on a real server, driven the way its users drive it: invites redeemed
and host grants minted through the HTTP API, signaling over real WebSockets.

The rooms' clock can be moved by hand (`advance`), so the 30 s reconnect grace can be passed
without waiting for it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from sfu.room import Room
from web import keys
from web.session_control import SessionController

from .session import OpenSession, open_session
from .wire_client import WireClient


class ManualClock:
    """Real time plus whatever the test has skipped."""

    def __init__(self) -> None:
        self.skipped_s = 0.0

    def __call__(self) -> float:
        return time.time() + self.skipped_s

    def advance(self, seconds: float) -> None:
        self.skipped_s += seconds


@dataclass
class LiveSession:
    app: Any
    base_url: str
    session: OpenSession
    clock: ManualClock
    http: aiohttp.ClientSession
    csrf: str = ""
    clients: list[WireClient] = field(default_factory=list)

    @property
    def api(self) -> str:
        return self.base_url + "/api/v1"

    async def login(self) -> None:
        async with self.http.post(self.api + "/auth/login", json={
            "username": self.session.clinician.username, "password": self.session.password,
        }) as resp:
            assert resp.status == 200, await resp.text()
            self.csrf = (await resp.json())["csrf_token"]

    async def post(self, path: str, body: dict[str, Any] | None = None,
                   *, authed: bool = True) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": self.csrf} if authed else {}
        async with self.http.post(self.api + path, json=body or {}, headers=headers) as resp:
            return resp.status, await resp.json()

    async def host_grant(self) -> str:
        """A fresh host grant, as the clinician's page gets one."""
        if not self.csrf:
            await self.login()
        status, body = await self.post(f"/sessions/{self.session.session_id}/host-grant")
        assert status == 200, body
        return str(body["grant"])

    async def redeem(self, pseudonym: str) -> dict[str, Any]:
        """Open the member's invite link: their grant and resume secret."""
        token = self.session.links[pseudonym].rsplit("/", 1)[1]
        status, body = await self.post("/invites/redeem", {"token": token}, authed=False)
        assert status == 200, body
        return dict(body)

    async def resume(self, secret: str) -> tuple[int, Any]:
        """A fresh grant for a redeemed link (how a member's page comes back)."""
        return await self.post("/invites/resume", {"resume": secret}, authed=False)

    async def end_through_api(self) -> tuple[int, Any]:
        if not self.csrf:
            await self.login()
        return await self.post(f"/sessions/{self.session.session_id}/status",
                               {"status": "ended"})

    def client(self, label: str) -> WireClient:
        made = WireClient(self.base_url, label)
        self.clients.append(made)
        return made

    @property
    def room(self) -> Room | None:
        return self.app[keys.ROOMS].rooms.get(self.session.session_id)

    @property
    def controller(self) -> SessionController | None:
        room = self.room
        return room.controller if room is not None else None

    def disagreements(self) -> list[str]:
        controller = self.controller
        return controller.disagreements() if controller is not None else []

    async def aclose(self) -> None:
        for c in self.clients:
            await c.close()
        await self.http.close()


async def live_session(server: Any, *, rules: dict[str, Any] | None = None,
                       members: tuple[tuple[str, str], ...] | None = None,
                       username: str = "dr.hale") -> LiveSession:
    """A session open now on `server` (the tests' real server), with a movable room clock."""
    clock = ManualClock()
    server.app[keys.ROOMS].clock = clock
    kwargs: dict[str, Any] = {"rules": rules, "username": username}
    if members is not None:
        kwargs["members"] = members
    opened = open_session(server.app, server.base_url, **kwargs)
    # unsafe: keep cookies for an IP address (the server is on 127.0.0.1)
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    return LiveSession(server.app, server.base_url, opened, clock, http)
