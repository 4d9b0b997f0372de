"""The composition root: HTTP routes, signaling, static client, control plane."""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web

from sfu.ice import set_loopback_only, set_port_range
from sfu.turn import TurnServers
from sfu.workers import MediaWorkers

from . import keys
from .control.proxies import TRUSTED_PROXIES, TrustedProxies, is_https
from .live.registry import LiveRoomRegistry
from .ops import setup_ops
from .settings import Settings
from .signaling import websocket_handler
from .wiring import (
    PRIVACY_FACTORY,
    alert_live_room,
    end_live_room,
    privacy_transform_factory,
    room_setup,
)

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"

# a strict policy: the client is our own plain modules; nothing else may run or load
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; connect-src 'self' ws: wss:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
# two years: browsers then refuse plain HTTP to this host, even on a typed http:// link
HSTS = "max-age=63072000"


@web.middleware
async def security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Permissions-Policy", "camera=(self), microphone=(self)")
    if request.path.endswith((".html", "/")) or request.path in ("/room", "/join"):
        response.headers.setdefault("Cache-Control", "no-store")
    if is_https(request):
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


async def _page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "room.html")


def _ice_json(settings: Settings) -> list[dict[str, object]]:
    return [server.to_json() for server in settings.ice_servers]


def create_app(settings: Settings) -> web.Application:
    """Build the application; rooms and the control plane share one event loop."""
    app = web.Application(middlewares=[security_headers], client_max_size=256 * 1024)
    app[keys.SETTINGS] = settings
    app[TRUSTED_PROXIES] = TrustedProxies(settings.trusted_proxies)
    if settings.ice_loopback:
        set_loopback_only(True)
    set_port_range(settings.ice_port_range)
    turn = TurnServers(settings.turn_urls, settings.turn_secret) if settings.turn_urls else None
    # rooms whose used grants and reconnect tokens outlive a restart; empty ones close
    registry = LiveRoomRegistry(
        ice_servers=_ice_json(settings),
        allow_adhoc=settings.dev,
        transform_factory=privacy_transform_factory,
        room_setup=room_setup(app),
        # the same factory, run in worker processes (started on first use)
        media_workers=None if settings.media_processes == 0
        else MediaWorkers(settings.media_processes, factory=PRIVACY_FACTORY),
        client_ice_servers=turn.for_grant if turn is not None else None,
    )
    app[keys.ROOMS] = registry

    async def rooms_ctx(app: web.Application) -> AsyncIterator[None]:
        yield
        await app[keys.ROOMS].aclose()

    app.cleanup_ctx.append(rooms_ctx)
    app.router.add_get(
        "/rtc",
        websocket_handler(keys.ROOMS, lambda a: a[keys.SETTINGS].grant_secret,
                          strict=settings.strict_wire, router_key=keys.ROUTER),
    )
    setup_ops(app)
    app.router.add_get("/room", _page)
    app.router.add_get("/accessibility", _accessibility)
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
    _setup_control_plane(app, settings)
    if settings.redis_url:
        # one of several nodes: rooms placed through Redis, records in the shared PostgreSQL
        from web.cluster import setup_cluster

        setup_cluster(app, settings)
    return app


async def _accessibility(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC_DIR / "accessibility.html")


async def _index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC_DIR / "index.html")


def _setup_control_plane(app: web.Application, settings: Settings) -> None:
    try:
        control = importlib.import_module("web.control")
    except ModuleNotFoundError:
        return
    setup = getattr(control, "setup_control_plane", None)
    if setup is not None:
        setup(app, settings)
        from web.control import keys as control_keys

        # a session the clinician ends through the API ends its live room at once
        async def end_room(session_id: str) -> None:
            await end_live_room(app, session_id)

        app[control_keys.SESSION_END_LISTENERS].append(end_room)

        from web.ops.metrics import OPS

        app[control_keys.STORE].on_db_error = OPS.db_error
        app[control_keys.STORE].on_db_ok = OPS.db_ok

        # a risk flag on a member's measures reaches the session's hosts at once
        async def alert_room(session_id: str, participant_id: str, kind: str) -> None:
            await alert_live_room(app, session_id, participant_id, kind)

        app[control_keys.HOST_ALERT_LISTENERS].append(alert_room)
