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
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator

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


class OpsCounters:
    """This process's counters that are not media counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.join_refusals: Counter[tuple[str, str]] = Counter()
        self.db_errors = 0
        self.loop_lag_s = Histogram(LOOP_LAG_BUCKETS_S)
        self._audit_queue_depth: Callable[[], int] | None = None

    def join_refused(self, stage: str, code: str) -> None:
        """A join refused at `stage` ("invite": redeeming a link; "signaling": the room)."""
        with self._lock:
            self.join_refusals[(stage, code[:64])] += 1

    def db_error(self, exc: BaseException | None = None) -> None:
        with self._lock:
            self.db_errors += 1

    def set_audit_queue_source(self, depth: Callable[[], int] | None) -> None:
        """Register how many audit events wait to be written (a bounded queue that rides
        out a database outage reports its length here); None unregisters."""
        self._audit_queue_depth = depth

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
    yield GaugeMetricFamily(
        "confide_audit_queue_depth", "Audit events waiting to be written",
        value=OPS.audit_queue_depth(),
    )
    refusals = CounterMetricFamily(
        "confide_join_refusals", "Joins refused, by stage and code", labels=["stage", "code"]
    )
    for (stage, code), n in sorted(OPS.join_refusals.items()):
        refusals.add_metric([stage, code], n)
    yield refusals


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
