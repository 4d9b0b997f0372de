"""The control plane: accounts, groups, members, sessions, invites, audit, HTTP API, pages.

`web.app.create_app` calls `setup_control_plane(app, settings)`; the room wiring calls the
coroutines in `web.control.hooks`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from web.settings import Settings
from web.store import Store, accounts
from web.store.keyring import KeySource, key_source

from . import (
    api_admin,
    api_auth,
    api_clinical,
    api_groups,
    api_invites,
    api_member,
    api_sessions,
    keys,
    openapi,
    pages,
)
from .http import api_errors, bind
from .routes import Route
from .throttle import AnonymousThrottle

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
# how often expired login sessions are deleted
PURGE_INTERVAL_S = 600.0
ROUTES: list[Route] = [
    *api_auth.ROUTES,
    *api_groups.ROUTES,
    *api_sessions.ROUTES,
    *api_invites.ROUTES,
    *api_admin.ROUTES,
    *api_member.ROUTES,
    *api_clinical.ROUTES,
]


def all_routes() -> list[Route]:
    """The control plane's routes and the clinical-safety routes built on them."""
    # imported here: web.safety builds on this package, so it cannot be imported at its top
    from web.cluster.api import ROUTES as CLUSTER_ROUTES
    from web.safety.api import ROUTES as SAFETY_ROUTES

    return [*ROUTES, *SAFETY_ROUTES, *CLUSTER_ROUTES]


def build_api() -> web.Application:
    """The /api/v1 sub-application (JSON errors everywhere under it)."""
    api = web.Application(middlewares=[api_errors])
    routes = all_routes()
    for route in routes:
        api.router.add_route(route.method, route.path, bind(route))
    doc = openapi.document(routes, prefix=API_PREFIX)

    async def openapi_json(request: web.Request) -> web.StreamResponse:
        return web.json_response(doc)

    api.router.add_get("/openapi.json", openapi_json)
    return api


async def _purge_logins(store: Store) -> None:
    """Expired login sessions and stale backoff rows are deleted, not merely ignored."""
    while True:
        try:
            await store.run(accounts.purge_expired)
        except Exception:  # the database may be down for a while: try again later
            logger.warning("could not purge expired login sessions")
        await asyncio.sleep(PURGE_INTERVAL_S)


def data_keys(settings: Settings) -> KeySource:
    """The store's data keys: CONFIDE_DATA_KEY, else the key file (re-read when it changes)."""
    return key_source(settings.data_key, settings.key_file)


def setup_control_plane(app: web.Application, settings: Settings) -> None:
    """Attach the store (migrated on start), the API under /api/v1 and the pages."""
    app[keys.CONTROL_SETTINGS] = settings
    app[keys.LOBBY_GATES] = []
    app[keys.SESSION_END_LISTENERS] = []
    app[keys.SESSION_OPEN_LISTENERS] = []
    app[keys.HOST_ALERT_LISTENERS] = []
    app[keys.ANONYMOUS_THROTTLE] = AnonymousThrottle()
    # creating the engine does no I/O; connecting and migrating happen on start
    app[keys.STORE] = Store(settings.effective_database_url, data_keys(settings))

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        store = app[keys.STORE]
        await asyncio.to_thread(store.migrate)
        purger = asyncio.ensure_future(_purge_logins(store))
        yield
        purger.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await purger
        await asyncio.to_thread(store.dispose)

    app.cleanup_ctx.append(store_ctx)
    app.add_subapp(API_PREFIX, build_api())
    pages.add_pages(app)
    # the clinical-safety gate, the CSO pages and the evidence runner
    from web.safety import setup_safety

    setup_safety(app, settings)
    # live rooms' state in the store, written behind; rooms taken back at start
    from web.live import setup_live

    setup_live(app)


__all__ = ["setup_control_plane", "ROUTES", "API_PREFIX", "all_routes"]
