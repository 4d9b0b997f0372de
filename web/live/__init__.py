"""Live sessions that outlive the process and ride out database outages.

- `writer`: the write-behind path from rooms to the store (bounded, alarmed, never awaited
  by a room);
- `persistence`: one room's link to it, called by the session controller after each
  decision;
- `rooms`: opening a session's room with its state taken back from the store;
- `registry`: used grants and reconnect tokens across restarts, and closing empty rooms;
- `lifecycle`: taking rooms back at start, telling everyone on a graceful stop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from web import keys as app_keys
from web.control import keys as control_keys
from web.ops.metrics import OPS

from .keys import WRITER
from .lifecycle import alert_hosts, announce_stop, restore_rooms
from .registry import LiveRoomRegistry
from .writer import DurableWriter

SPOOL_FILE = "pending-records.jsonl"


def setup_live(app: web.Application) -> None:
    """Attach the writer, take rooms back at start, announce a graceful stop.

    Call after the control plane's store is set up (its migrations run first).
    """
    settings = app[control_keys.CONTROL_SETTINGS]
    writer = DurableWriter(app[control_keys.STORE], spool_path=settings.data_dir / SPOOL_FILE)
    app[WRITER] = writer
    writer.on_alarm(alert_hosts(app))
    registry = app.get(app_keys.ROOMS)
    if isinstance(registry, LiveRoomRegistry):
        registry.writer = writer

    async def live_ctx(app: web.Application) -> AsyncIterator[None]:
        # IT sees the queue (depth, drops, the database's state) in /metrics
        OPS.set_audit_queue_source(lambda: writer.depth)
        OPS.set_record_queue_source(writer.gauges)
        await writer.start()
        # room states kept over the last stop go in before the rooms are taken back
        await writer.replay_rooms()
        await restore_rooms(app)
        if isinstance(registry, LiveRoomRegistry):
            registry.start_reaper()
        yield
        await writer.aclose()
        OPS.release_record_queue(writer.gauges)

    app.cleanup_ctx.append(live_ctx)
    app.on_shutdown.append(announce_stop)


__all__ = ["WRITER", "DurableWriter", "LiveRoomRegistry", "setup_live"]
