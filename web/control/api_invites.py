"""Invites seen from the member's side (redeem, resume) and the clinician's revoke."""

from __future__ import annotations

from aiohttp import web

from web.store import invites
from web.store.accounts import UserInfo

from . import keys
from .grants import participant_grant
from .http import authed, client_address, read_json, store_of
from .routes import Route


async def redeem(request: web.Request) -> web.StreamResponse:
    """Use a link once: a participant grant with the pseudonym, and a resume secret."""
    body = await read_json(request)
    found = await store_of(request).run(
        invites.redeem, body.get("token"), address=client_address(request)
    )
    return web.json_response(participant_grant(request.config_dict[keys.CONTROL_SETTINGS], found))


async def resume(request: web.Request) -> web.StreamResponse:
    """A fresh grant for the holder of a redeemed link (reconnect), checked again."""
    body = await read_json(request)
    found = await store_of(request).run(
        invites.resume, body.get("resume"), address=client_address(request)
    )
    return web.json_response(participant_grant(request.config_dict[keys.CONTROL_SETTINGS], found))


@authed("clinician")
async def revoke(request: web.Request, user: UserInfo) -> web.StreamResponse:
    """Withdraw a link."""
    found = await store_of(request).run(invites.revoke, user, request.match_info["invite_id"])
    return web.json_response({"invite": found.to_json()})


ROUTES = [
    Route(
        "POST",
        "/invites/redeem",
        redeem,
        "Redeem an invite link (once)",
        ("public",),
        {"token": "string"},
        "invites",
    ),
    Route(
        "POST",
        "/invites/resume",
        resume,
        "A fresh grant for a reconnect",
        ("public",),
        {"resume": "string"},
        "invites",
    ),
    Route(
        "POST",
        "/invites/{invite_id}/revoke",
        revoke,
        "Revoke an invite",
        ("clinician",),
        tag="invites",
    ),
]
