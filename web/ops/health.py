"""`/healthz` (is the process alive) and `/readyz` (can it serve a session now).

Both are unauthenticated, for load balancers and systemd; neither says anything about who
is using the service. `/readyz` answers 503 with the reasons when media workers could not be
kept running or the hazard log cannot be read (without it no session may start).

A database that does not answer makes the node `degraded`, answered with 200: sessions in
progress carry on (commands, media, reconnects within the grace never wait for it) and
their records wait in a bounded queue, so the node must keep receiving its members; new
joins are told to try again in a moment by the API itself. The queue's depth, drops and the
database's state are in `/metrics`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from sqlalchemy import text

from web.store.errors import StoreUnavailable

from .. import keys

logger = logging.getLogger(__name__)

DB_TIMEOUT_S = 3.0


async def healthz(request: web.Request) -> web.StreamResponse:
    """Alive: the event loop answers. Nothing else is revealed."""
    return web.json_response({"status": "ok"}, headers={"Cache-Control": "no-store"})


async def _database(app: web.Application) -> str | None:
    from web.control import keys as control_keys

    store = app.get(control_keys.STORE)
    if store is None:
        return None  # no control plane in this application

    def ping(tx: Any) -> None:
        tx.db.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(store.run(ping), DB_TIMEOUT_S)
    except TimeoutError:
        return f"database: no answer within {DB_TIMEOUT_S:.0f} s"
    except StoreUnavailable as exc:
        # the driver's error type only: its message can quote a statement's values
        cause = exc.__cause__
        return f"database: {type(getattr(cause, 'orig', None) or cause or exc).__name__}"
    except Exception as exc:
        return f"database: {type(exc).__name__}"
    from .metrics import OPS

    queue = OPS.record_queue()
    if queue is not None and not queue.writing:
        # it answers reads but refuses writes (a SQLite file locked by another writer)
        return f"database: records cannot be written (for {queue.not_writing_for_s:.0f} s)"
    return None


def _media_workers(app: web.Application) -> str | None:
    workers = app[keys.ROOMS].media_workers
    if workers is None:
        return None  # processed video runs in threads of this process
    if workers.closed:
        return "media workers: stopped"
    if workers.given_up:
        return f"media workers: {workers.given_up} kept dying and were given up"
    return None


async def _hazard_log(app: web.Application) -> str | None:
    from web.safety.errors import HazardLogUnreadable
    from web.safety.keys import SAFETY_CONFIG
    from web.safety.logfile import read_log

    config = app.get(SAFETY_CONFIG)
    if config is None:
        return None
    try:
        await asyncio.to_thread(read_log, config.log_path)
    except HazardLogUnreadable:
        return "hazard log: unreadable"
    return None


async def readyz(request: web.Request) -> web.StreamResponse:
    """Ready: database, media workers and hazard log. 503 with the reasons when media
    workers or the hazard log fail; 200 `degraded` with the reason when only the database
    does (see the module docstring)."""
    app = request.app
    database = await _database(app)
    failed = [r for r in (_media_workers(app), await _hazard_log(app)) if r]
    reasons = [r for r in (database, *failed) if r]
    if failed:
        logger.warning("not ready: %s", "; ".join(reasons))
        return web.json_response(
            {"status": "not_ready", "reasons": reasons}, status=503,
            headers={"Cache-Control": "no-store"},
        )
    if database is not None:
        logger.warning("degraded: %s; sessions in progress carry on", database)
        return web.json_response(
            {"status": "degraded", "reasons": reasons}, headers={"Cache-Control": "no-store"},
        )
    return web.json_response({"status": "ready"}, headers={"Cache-Control": "no-store"})


def setup_health(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
