"""A member's forms over the real HTTP API, as their page sends them (their link's secret
in the member header), and what a session's clinician sees of them."""

from __future__ import annotations

import secrets
from typing import Any

import aiohttp

from web.control.routes import MEMBER_HEADER

from .live_session import LiveSession


class MemberForms:
    """One member's side of the forms API: their own HTTP client, no login cookie."""

    def __init__(self, live: LiveSession, secret: str) -> None:
        self.live = live
        self.secret = secret
        self.base = f"{live.api}/sessions/{live.session.session_id}/member"
        # everything this member's client received, for checks that nothing leaked to it
        self.received: list[str] = []

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None,
                   *, session_id: str | None = None) -> tuple[int, Any]:
        base = self.base if session_id is None else \
            f"{self.live.api}/sessions/{session_id}/member"
        async with aiohttp.ClientSession() as http, http.request(
            method, base + path, json=body, headers={MEMBER_HEADER: self.secret}
        ) as resp:
            text = await resp.text()
            self.received.append(text)
            return resp.status, (await resp.json()) if resp.content_type == \
                "application/json" else text

    async def forms(self) -> dict[str, Any]:
        status, body = await self.call("GET", "/forms")
        assert status == 200, body
        return dict(body)

    async def location(self, where: str) -> None:
        status, body = await self.call("PUT", "/location", {"location": where})
        assert status == 200, body

    async def measures(self, responses: list[dict[str, Any]], *,
                       submission_id: str | None = None,
                       timing: str = "before") -> tuple[int, Any]:
        return await self.call("POST", "/measures", {
            "submission_id": submission_id or secrets.token_hex(8),
            "timing": timing, "responses": responses,
        })


async def clinical_view(live: LiveSession) -> dict[str, Any]:
    """What the session's clinician's host panel fetches (their login cookie)."""
    if not live.csrf:
        await live.login()
    async with live.http.get(f"{live.api}/sessions/{live.session.session_id}/clinical") as resp:
        assert resp.status == 200, await resp.text()
        return dict((await resp.json())["participants"])
