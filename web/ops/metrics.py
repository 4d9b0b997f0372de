"""`GET /metrics` in Prometheus' text format: aggregated numbers, never a name or an id.

Room, participant and publication counts are read from the room registry at scrape time;
media counters come from sfu.stats (worker processes included); the rest are counted here.
Labels take values from small fixed sets (media kind, profile, participant state, error
code), so no label can carry a person.

Access: with CONFIDE_METRICS_TOKEN set, a scraper sends `Authorization: Bearer <token>`;
without it, only clients on loopback are answered (a reverse proxy's clients are not: their
address is the forwarded one).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector

from sfu.participant import ParticipantState
from sfu.stats import MEDIA, Histogram

from .. import keys

# event-loop lag buckets, seconds: a frame at 15 fps has 66 ms
LOOP_LAG_BUCKETS_S: tuple[float, ...] = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
LOOP_PROBE_S = 0.25


@dataclass(frozen=True)
class RecordQueueGauges:
    """A queue of records (attendance, agreement answers, incidents, audit) that rides out
    a database outage: what it holds, has written and has lost since the process started."""

    # False while the queue's writes fail (a database that still answers reads may refuse
    # writes: a SQLite file locked by another writer), and for how long
    writing: bool
    not_writing_for_s: float
    pending: int
    capacity: int
    written: int
    # records given up because the queue was full, by record kind (a small fixed set)
    dropped: Mapping[str, int]
    # records the store refused for their content (never retried)
    refused: int
    # live rooms whose latest state (who is admitted, removed, the host) is not yet stored
    rooms_pending: int = 0


class OpsCounters:
    """This process's counters that are not media counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.join_refusals: Counter[tuple[str, str]] = Counter()
        self.db_errors = 0
        # since when (monotonic) the last database call found the database unreachable
        self.db_down_since: float | None = None
        self.loop_lag_s = Histogram(LOOP_LAG_BUCKETS_S)
        self._audit_queue_depth: Callable[[], int] | None = None
        self._record_queue: Callable[[], RecordQueueGauges] | None = None

    def join_refused(self, stage: str, code: str) -> None:
        """A join refused at `stage` ("invite": redeeming a link; "signaling": the room)."""
        with self._lock:
            self.join_refusals[(stage, code[:64])] += 1

    def db_error(self, exc: BaseException | None = None) -> None:
        """A database call failed; `StoreUnavailable` (down, locked, timed out) marks the
        database down until a call succeeds."""
        from web.store.errors import StoreUnavailable

        with self._lock:
            self.db_errors += 1
            if isinstance(exc, StoreUnavailable) and self.db_down_since is None:
                self.db_down_since = time.monotonic()

    def db_ok(self) -> None:
        """A database call succeeded."""
        if self.db_down_since is not None:
            with self._lock:
                self.db_down_since = None

    def db_down_for(self) -> float | None:
        """Seconds the database has been unreachable, or None while it answers."""
        since = self.db_down_since
        return None if since is None else time.monotonic() - since

    def set_audit_queue_source(self, depth: Callable[[], int] | None) -> None:
        """Register how many audit events wait to be written (a bounded queue that rides
        out a database outage reports its length here); None unregisters."""
        self._audit_queue_depth = depth

    def set_record_queue_source(self, gauges: Callable[[], RecordQueueGauges] | None) -> None:
        """Register the record queue's gauges (see `RecordQueueGauges`); None unregisters."""
        self._record_queue = gauges

    def release_record_queue(self, gauges: Callable[[], RecordQueueGauges]) -> None:
        """Unregister the queue registered with `gauges` (and its depth), if still the one."""
        if self._record_queue == gauges:
            self._record_queue = None
            self._audit_queue_depth = None

    def record_queue(self) -> RecordQueueGauges | None:
        source = self._record_queue
        if source is None:
            return None
        try:
            return source()
        except Exception:  # a broken source must not break the scrape
            return None

    def audit_queue_depth(self) -> int:
        source = self._audit_queue_depth
        if source is None:
            return 0  # audit events are written in the request's own transaction
        try:
            return int(source())
        except Exception:  # a broken source must not break the scrape
            return -1


# this process's counters
OPS = OpsCounters()


def _histogram(name: str, doc: str, hist: Histogram, scale: float) -> HistogramMetricFamily:
    buckets = []
    running = 0
    for bound, count in zip(hist.bounds, hist.counts, strict=False):
        running += count
        buckets.append((repr(bound * scale), float(running)))
    buckets.append(("+Inf", float(hist.count)))
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=hist.total * scale)


class ServiceCollector:
    """The numbers of one application (one node)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def describe(self) -> list[Metric]:
        return []  # collected fresh on every scrape

    def collect(self) -> Iterator[Metric]:
        rooms = self.app[keys.ROOMS]
        live = [r for r in list(rooms.rooms.values()) if not r.closed]
        yield GaugeMetricFamily("confide_rooms", "Rooms open on this node", value=len(live))
        people = GaugeMetricFamily(
            "confide_participants", "Participants connected, by state", labels=["state"]
        )
        states = Counter(
            p.state.value for r in live for p in list(r.participants.values())
        )
        for state in (ParticipantState.ADMITTED, ParticipantState.LOBBY):
            people.add_metric([state.value], states.get(state.value, 0))
        yield people
        pubs = GaugeMetricFamily(
            "confide_publications", "Published tracks, by kind and privacy profile",
            labels=["kind", "profile"],
        )
        counts: Counter[tuple[str, str]] = Counter()
        for room in live:
            for participant in list(room.participants.values()):
                for pub in list(participant.publications.values()):
                    profile = pub.profile.value if pub.kind == "video" else ""
                    counts[(pub.kind, profile)] += 1
        for (kind, profile), n in sorted(counts.items()):
            pubs.add_metric([kind, profile], n)
        yield pubs
        yield from self._media(rooms)
        yield from _ops()

    def _media(self, rooms: object) -> Iterator[Metric]:
        for name, doc, values in (
            ("confide_media_packets_forwarded", "Packets sent to subscribers",
             MEDIA.packets_forwarded),
            ("confide_media_bytes_forwarded", "Bytes sent to subscribers", MEDIA.bytes_forwarded),
            ("confide_media_packets_dropped", "Packets dropped by bounded subscriber queues",
             MEDIA.packets_dropped),
            ("confide_media_bytes_dropped", "Bytes dropped by bounded subscriber queues",
             MEDIA.bytes_dropped),
        ):
            family = CounterMetricFamily(name, doc, labels=["kind"])
            for kind, value in sorted(values.items()):
                family.add_metric([kind], value)
            yield family
        yield CounterMetricFamily(
            "confide_media_worker_restarts", "Media worker processes restarted after dying",
            value=MEDIA.worker_restarts,
        )
        yield CounterMetricFamily(
            "confide_media_audio_first",
            "Times a subscriber's downlink was too weak for others' video (audio first)",
            value=MEDIA.audio_first,
        )
        yield CounterMetricFamily(
            "confide_media_stalls",
            "Times a processed video made nothing for 3 s while its camera kept sending "
            "(media workers starved of CPU); the group saw that member's video paused",
            value=MEDIA.stalls,
        )
        yield CounterMetricFamily(
            "confide_media_placeholder_frames",
            "Placeholder frames sent instead of a picture (fail closed)",
            value=MEDIA.placeholder_frames,
        )
        yield _histogram(
            "confide_transform_seconds", "Time to run the privacy transform on one frame",
            MEDIA.transform_ms, 0.001,
        )
        workers = getattr(rooms, "media_workers", None)
        running = GaugeMetricFamily(
            "confide_media_workers", "Media worker processes, by state", labels=["state"]
        )
        alive = len(workers.workers) if workers is not None else 0
        running.add_metric(["running"], alive)
        running.add_metric(["given_up"], getattr(workers, "given_up", 0) if workers else 0)
        yield running


def _ops() -> Iterator[Metric]:
    yield _histogram(
        "confide_event_loop_lag_seconds",
        f"How late the event loop woke from a {LOOP_PROBE_S} s sleep", OPS.loop_lag_s, 1.0,
    )
    yield CounterMetricFamily(
        "confide_db_errors", "Database operations that failed", value=OPS.db_errors
    )
    yield from _database()
    yield GaugeMetricFamily(
        "confide_audit_queue_depth",
        "Records (audit, attendance, agreement answers, incidents) waiting to be written",
        value=OPS.audit_queue_depth(),
    )
    yield from _record_queue(OPS.record_queue())
    refusals = CounterMetricFamily(
        "confide_join_refusals", "Joins refused, by stage and code", labels=["stage", "code"]
    )
    for (stage, code), n in sorted(OPS.join_refusals.items()):
        refusals.add_metric([stage, code], n)
    yield refusals


def database_down_for() -> float | None:
    """Seconds the database has been unreachable or refusing the record queue's writes, or
    None while it answers and takes them."""
    down_for = OPS.db_down_for()
    queue = OPS.record_queue()
    if queue is not None and not queue.writing:
        down_for = max(down_for or 0.0, queue.not_writing_for_s)
    return down_for


def _database() -> Iterator[Metric]:
    down_for = database_down_for()
    yield GaugeMetricFamily(
        "confide_database_up",
        "0 while the database is unreachable (down, timed out) or refuses the record "
        "queue's writes (locked), 1 otherwise",
        value=1 if down_for is None else 0,
    )
    yield GaugeMetricFamily(
        "confide_database_unavailable_seconds",
        "How long the database has been unavailable (0 while it answers)",
        value=round(down_for or 0.0, 1),
    )


def _record_queue(gauges: RecordQueueGauges | None) -> Iterator[Metric]:
    if gauges is None:
        return  # records are written in the request's own transaction
    yield GaugeMetricFamily(
        "confide_room_states_pending",
        "Live rooms whose latest state is not yet in the store (a restart needs it there)",
        value=gauges.rooms_pending,
    )
    yield GaugeMetricFamily(
        "confide_records_capacity", "Records the queue holds before it must drop some",
        value=gauges.capacity,
    )
    yield CounterMetricFamily(
        "confide_records_written", "Records written from the queue", value=gauges.written
    )
    dropped = CounterMetricFamily(
        "confide_records_dropped", "Records lost because the queue was full, by kind",
        labels=["kind"],
    )
    for kind, n in sorted(gauges.dropped.items()):
        dropped.add_metric([kind], n)
    yield dropped
    yield CounterMetricFamily(
        "confide_records_refused", "Records the store refused for their content",
        value=gauges.refused,
    )


METRICS_REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)


def _allowed(request: web.Request) -> bool:
    from web.control.proxies import client_address

    token = request.app[keys.SETTINGS].metrics_token
    if token:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    try:
        return ipaddress.ip_address(client_address(request)).is_loopback
    except ValueError:
        return False


async def metrics_handler(request: web.Request) -> web.StreamResponse:
    """The node's metrics (see the module docstring for who may read them)."""
    if not _allowed(request):
        if request.app[keys.SETTINGS].metrics_token:
            raise web.HTTPUnauthorized(
                text="metrics need a bearer token", headers={"WWW-Authenticate": "Bearer"}
            )
        raise web.HTTPForbidden(text="metrics are served to loopback clients only")
    body = await asyncio.to_thread(generate_latest, request.app[METRICS_REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST,
                                            "Cache-Control": "no-store"})


async def _loop_lag(app: web.Application) -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()

    async def probe() -> None:
        while True:
            started = loop.time()
            await asyncio.sleep(LOOP_PROBE_S)
            OPS.loop_lag_s.observe(max(0.0, loop.time() - started - LOOP_PROBE_S))

    task = asyncio.ensure_future(probe())
    yield
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


def setup_metrics(app: web.Application) -> None:
    """Register /metrics and the event-loop probe on the main application."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(app))
    # CPU seconds and memory of this process (Linux)
    ProcessCollector(registry=registry)
    app[METRICS_REGISTRY] = registry
    app.cleanup_ctx.append(_loop_lag)
    app.router.add_get("/metrics", metrics_handler)
