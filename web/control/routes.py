"""The API's route table: one list drives both the router and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # relative to /api/v1
    handler: Handler
    summary: str
    # who may call: "public", "any" (logged in), or role names
    access: tuple[str, ...] = ("any",)
    body: dict[str, str] = field(default_factory=dict)  # field name -> JSON type
    tag: str = "control"
