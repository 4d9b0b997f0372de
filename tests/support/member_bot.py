"""A member as a `confide bot`: redeemed from their invite link, and agreeing to the group's
checklist the way the page does (every item), for live tests that need members past pre-join."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from web.bot import Bot


def checklist_of(bot: Bot) -> list[dict[str, Any]] | None:
    """The checklist the server asked this member to confirm, once it has."""
    return next((m["checklist"] for m in bot.messages
                 if m.get("type") == "self_state" and m.get("checklist")), None)


async def redeemed_bot(base_url: str, token: str, **bot_options: Any) -> Bot:
    """Redeem the invite token over the API and connect a bot with the grant; it waits at
    pre-join until the checklist has arrived."""
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base_url}/api/v1/invites/redeem", json={"token": token}) as r:
            body = await r.text()
            assert r.status == 200, body
    bot = Bot(f"{base_url}/room#grant={json.loads(body)['grant']}", **bot_options)
    await bot.connect()
    await checklist_arrived(bot)
    return bot


async def checklist_arrived(bot: Bot, timeout_s: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while checklist_of(bot) is None:
        assert asyncio.get_running_loop().time() < deadline, "no checklist in time"
        await asyncio.sleep(0.1)


async def agree(bot: Bot) -> None:
    """Confirm every item of the checklist (it must have arrived)."""
    checklist = checklist_of(bot)
    assert checklist is not None, "no checklist yet"
    await bot.send({"type": "command", "name": "confirm_checklist",
                    "answers": [c["id"] for c in checklist]})
