"""The API's route table: one list drives the router, access checks, parsing and OpenAPI.

A route declares who may call it (`access`), the typed body it takes and the typed answer it
gives. `bind` builds the aiohttp handler from exactly those declarations: the login and role
check, the CSRF check, parsing the body into its model before the handler runs, and holding
the answer to its model. The OpenAPI document is made from the same declarations, so the
two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from web.wire.validation import ReplyModel, WireModel

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# what a route's function returns: the answer's fields (held to the route's response model)
# or, for cookies and files, a response it built itself
Answer = dict[str, Any] | web.StreamResponse
RouteFunction = Callable[..., Awaitable[Answer]]

PUBLIC = ("public",)
ANY = ("any",)
# a member acting through their redeemed link: the secret their page holds, in MEMBER_HEADER
MEMBER = ("member",)
MEMBER_HEADER = "X-Confide-Member"

B = TypeVar("B", bound=WireModel)


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # relative to /api/v1
    handler: RouteFunction
    summary: str
    # who may call: PUBLIC, ANY (logged in), or role names; the only place this is said
    access: tuple[str, ...] = ANY
    body: type[WireModel] | None = None
    response: type[ReplyModel] | None = None
    status: int = 200
    tag: str = "control"
    # the answer's media type when it is not JSON (CSV exports)
    media_type: str = "application/json"
    # the error code for a logged-in caller of the wrong role
    role_error: str = "forbidden_role"

    @property
    def public(self) -> bool:
        return self.access == PUBLIC

    @property
    def member(self) -> bool:
        return self.access == MEMBER


@dataclass(frozen=True)
class MemberKey:
    """The secret of a member's redeemed link, as their page sent it (checked by the store,
    in the same transaction as whatever the route does with it)."""

    secret: str


BODY = web.RequestKey("api_body", BaseModel)


def body_of(request: web.Request, model: type[B]) -> B:
    """The request's body, parsed by the router into its route's model."""
    body = request[BODY]
    if not isinstance(body, model):
        raise TypeError(f"this route's body is {type(body).__name__}, not {model.__name__}")
    return body
