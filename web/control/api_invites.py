"""Invites seen from the member's side (redeem, resume) and the clinician's revoke."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from aiohttp import web

from web.ops.metrics import OPS
from web.store import invites
from web.store.accounts import UserInfo
from web.store.errors import StoreError

from . import keys
from .grants import participant_grant, with_node
from .http import anonymous_allowance, client_address, store_of
from .routes import PUBLIC, Answer, Route, body_of
from .schemas import GrantAnswer, InviteAnswer, Redeem, Resume


async def redeem(request: web.Request) -> Answer:
    """Use a link once: a participant grant with the pseudonym, and a resume secret."""
    await anonymous_allowance(request, "invite.redeem")
    body = body_of(request, Redeem)
    with counted_refusal():
        found = await store_of(request).run(
            invites.redeem, body.token, address=client_address(request)
        )
    return await with_node(
        request, participant_grant(request.config_dict[keys.CONTROL_SETTINGS], found)
    )


async def resume(request: web.Request) -> Answer:
    """A fresh grant for the holder of a redeemed link (reconnect), checked again."""
    await anonymous_allowance(request, "invite.resume")
    body = body_of(request, Resume)
    with counted_refusal():
        found = await store_of(request).run(
            invites.resume, body.resume, address=client_address(request)
        )
    return await with_node(
        request, participant_grant(request.config_dict[keys.CONTROL_SETTINGS], found)
    )


@contextlib.contextmanager
def counted_refusal() -> Iterator[None]:
    """Count a refused redeem or resume by its code (metrics: confide_join_refusals)."""
    try:
        yield
    except StoreError as exc:
        OPS.join_refused("invite", exc.code)
        raise


async def revoke(request: web.Request, user: UserInfo) -> Answer:
    """Withdraw a link."""
    found = await store_of(request).run(invites.revoke, user, request.match_info["invite_id"])
    return {"invite": found.to_json()}


ROUTES = [
    Route("POST", "/invites/redeem", redeem, "Redeem an invite link (once)", PUBLIC,
          body=Redeem, response=GrantAnswer, tag="invites"),
    Route("POST", "/invites/resume", resume, "A fresh grant for a reconnect", PUBLIC,
          body=Resume, response=GrantAnswer, tag="invites"),
    Route("POST", "/invites/{invite_id}/revoke", revoke, "Revoke an invite", ("clinician",),
          response=InviteAnswer, tag="invites"),
]
