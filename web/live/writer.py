"""Writing behind the live rooms: nothing on a room's path ever waits for the database.

Rooms hand over what changed and carry on; one task writes it to the store. Three kinds of
work wait here:

- each room's live state: only the latest counts, so a room is marked "changed" and its
  state is read when the write happens (bounded by the number of rooms);
- grants used to join (bounded by the joins of a grant's lifetime);
- records (attendance, agreement answers, incidents, audit, the end of a session): a bounded
  first-in first-out queue. When it is full, the least needed record gives way (the audit
  line of a command before an attendance mark, before an incident), each drop is counted by
  kind, logged as an alarm, and written to the audit log when the database is back.

When the database cannot be reached the writer retries with backoff, raises an alarm (log,
listeners: the hosts of every room) and says when it is back. On a graceful stop, records it
could not write are kept in a file owned by the service and written at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import time
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from session_rules.snapshot import (
    participant_from_dict,
    participant_to_dict,
    session_from_dict,
    session_to_dict,
)
from web.ops.metrics import RecordQueueGauges
from web.store import Store, live_state
from web.store.errors import StoreUnavailable
from web.store.live_state import Fenced, RoomSnapshot

from .records import PendingRecord, RecordKind, RecordsRefused, write_batch

logger = logging.getLogger(__name__)

DEFAULT_CAPACITY = 10_000
BATCH = 200
HEARTBEAT_S = 5.0
RETRY_MIN_S = 0.25
RETRY_MAX_S = 2.0
# the queue is said to be filling when it passes this share of its capacity
FILLING_AT = 0.5
# at most one drop alarm to listeners per this many seconds (every drop is counted)
DROP_ALARM_EVERY_S = 10.0

AlarmKind = Literal["database_unavailable", "database_restored", "queue_filling",
                    "records_dropped"]
AlarmListener = Callable[[AlarmKind, dict[str, Any]], None]


class LiveSource(Protocol):
    """A room whose live state the writer keeps in the store."""

    @property
    def room_id(self) -> str: ...

    @property
    def epoch(self) -> int: ...

    def clock(self) -> float: ...

    def snapshot(self) -> RoomSnapshot: ...

    def fenced(self) -> None: ...


class DurableWriter:
    """The one path from live rooms to the store; every method rooms call returns at once."""

    def __init__(
        self,
        store: Store,
        *,
        capacity: int = DEFAULT_CAPACITY,
        spool_path: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.capacity = max(1, capacity)
        self.spool_path = spool_path
        self.clock = clock
        self._records: deque[PendingRecord] = deque()
        # the batch being written (still in the queue until it is written): a record dropped
        # from it meanwhile that gets written after all is not counted as lost
        self._writing: set[int] = set()
        self._dropped_while_writing: list[PendingRecord] = []
        self._dirty: dict[str, LiveSource] = {}
        # rooms whose state is being written (taken off `_dirty`, not yet in the store)
        self._saving: set[str] = set()
        self._closing: dict[str, tuple[int, float]] = {}
        self._attached: dict[str, LiveSource] = {}
        self._grants: dict[str, tuple[str, str, float]] = {}
        # room states kept at the last stop, written before rooms are taken back
        self._spooled_rooms: list[tuple[RoomSnapshot, int]] = []
        # what was last written of each room: an unchanged state is not written again
        self._written: dict[str, tuple[object, ...]] = {}
        # every record dropped since start, by what it was (e.g. "audit:command:mute")
        self.dropped: Counter[str] = Counter()
        self._dropped_unreported: Counter[str] = Counter()
        # records the store refused for their content (logged; never retried)
        self.refused: Counter[str] = Counter()
        self.written = 0
        self.database_available = True
        self.unavailable_since: float | None = None
        # set while the service stops: departures then are not the members' doing
        self.frozen = False
        self._filling = False
        self._last_drop_alarm = 0.0
        self._listeners: list[AlarmListener] = []
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    # --- what rooms call (never blocks, never raises for the database)
    def record(self, kind: RecordKind, session_id: str, **fields: Any) -> None:
        """Queue one record, stamped now."""
        self._admit(PendingRecord(kind, datetime.now(UTC), session_id, fields))
        self._wake.set()

    def attach(self, source: LiveSource) -> None:
        """Keep this room's state in the store from now on (heartbeats included)."""
        self._attached[source.room_id] = source

    def room_changed(self, source: LiveSource) -> None:
        """The room's state changed: write its latest state soon."""
        if self.frozen or source.room_id not in self._attached:
            return
        self._dirty[source.room_id] = source
        self._wake.set()

    def room_closed(self, source: LiveSource) -> None:
        """The room closed with nobody in it: write its last state and stop heartbeats."""
        if self.frozen or self._attached.get(source.room_id) is not source:
            return
        self._dirty[source.room_id] = source
        self._closing[source.room_id] = (source.epoch, self.clock())
        del self._attached[source.room_id]
        self._wake.set()

    def detach(self, room_id: str) -> None:
        """Another node runs this room now: write nothing more of it from here."""
        self._attached.pop(room_id, None)
        self._dirty.pop(room_id, None)
        self._closing.pop(room_id, None)

    def grant_used(self, jti: str, room_id: str, participant_id: str, expires_at: float) -> None:
        """A grant was used to join: keep it refused after a restart too."""
        self._grants[jti] = (room_id, participant_id, expires_at)
        self._wake.set()

    def pending_for(self, room_id: str) -> bool:
        """True while a room's latest state is not yet in the store."""
        return room_id in self._dirty or room_id in self._saving or room_id in self._closing

    def on_alarm(self, listener: AlarmListener) -> None:
        self._listeners.append(listener)

    # --- gauges (read by health and metrics)
    @property
    def depth(self) -> int:
        """Records waiting for the store."""
        return len(self._records)

    def gauges(self) -> RecordQueueGauges:
        """The queue's gauges for the metrics (dropped records by kind, never by content)."""
        dropped: Counter[str] = Counter()
        for label, n in self.dropped.items():
            dropped[label.split(":", 1)[0]] += n
        return RecordQueueGauges(
            writing=self.database_available,
            not_writing_for_s=round(self.clock() - self.unavailable_since, 1)
            if self.unavailable_since is not None else 0.0,
            pending=self.depth,
            capacity=self.capacity,
            written=self.written,
            dropped=dict(dropped),
            refused=sum(self.refused.values()),
            rooms_pending=len(self._dirty) + len(self._closing),
        )

    # --- lifecycle
    async def start(self) -> None:
        """Take back records kept at the last stop, then start writing."""
        self._load_spool()
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def aclose(self, timeout_s: float = 5.0) -> None:
        """Write what can be written within `timeout_s`; keep the records that could not be
        written in the spool file (and say so). Safe twice.

        A write under way is never cut short (its thread would carry on and the records be
        written twice): each attempt is bounded by the store's own timeouts instead.
        """
        deadline = self.clock() + timeout_s
        task, self._task = self._task, None
        if task is not None:
            self._stop.set()
            self._wake.set()
            await task
        await self._write_until(deadline)
        self._spool_leftovers()

    async def flush(self, timeout_s: float = 5.0) -> bool:
        """Write everything now if the database lets us; True when nothing is left."""
        await self._write_until(self.clock() + timeout_s)
        return not self._pending()

    async def _write_until(self, deadline: float) -> None:
        while self._pending() and self.clock() < deadline:
            try:
                await self._flush()
            except StoreUnavailable:
                await asyncio.sleep(0.2)
            except Exception:
                logger.exception("writer: writing failed")
                return

    def _pending(self) -> bool:
        return bool(self._records or self._dirty or self._saving or self._closing
                    or self._grants)

    # --- the writing task
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = RETRY_MIN_S
        failing = False
        next_beat = loop.time() + HEARTBEAT_S
        while not self._stop.is_set():
            if failing:
                # the database is away: try again later, however much arrives meanwhile
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), backoff)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(0.0, next_beat - loop.time()))
            if self._stop.is_set():
                return
            self._wake.clear()
            try:
                touched = False
                if loop.time() >= next_beat:
                    touched = await self._heartbeat()
                    next_beat = loop.time() + HEARTBEAT_S
                touched = await self._flush() or touched
            except StoreUnavailable as exc:
                self._unavailable(str(exc))
                failing, backoff = True, min(RETRY_MAX_S, backoff * 2 if failing else backoff)
                continue
            except Exception:
                logger.exception("writer: unexpected failure; retrying")
                failing, backoff = True, RETRY_MAX_S
                continue
            if touched:
                self._available()
            failing, backoff = False, RETRY_MIN_S

    async def _heartbeat(self) -> bool:
        owned = [(s.room_id, s.epoch, s.clock()) for s in self._attached.values()]
        if not owned:
            return False
        await self.store.run(live_state.touch_rooms, owned)
        return True

    async def _flush(self) -> bool:
        """Write rooms, then grants, then records; raises StoreUnavailable on the first
        failure (what was not written stays queued). True when the store was reached."""
        async with self._lock:
            return await self._flush_locked()

    async def _flush_locked(self) -> bool:
        touched = False
        for room_id, source in list(self._dirty.items()):
            snap = source.snapshot()
            self._dirty.pop(room_id, None)
            same = (source.epoch, snap.session, tuple(snap.participants),
                    tuple(sorted(snap.resume_hashes.items())))
            if self._written.get(room_id) == same and room_id not in self._closing:
                # nothing a restart needs changed (a chat message, a repeated state)
                continue
            self._saving.add(room_id)
            try:
                await self.store.run(live_state.save_room, snap, epoch=source.epoch)
                self._written[room_id] = same
            except Fenced:
                logger.error("room %s: taken over elsewhere; this node stops writing it", room_id)
                self._attached.pop(room_id, None)
                self._closing.pop(room_id, None)
                source.fenced()
            except BaseException:
                self._dirty.setdefault(room_id, source)
                raise
            finally:
                self._saving.discard(room_id)
            touched = True
        for room_id, (epoch, at) in list(self._closing.items()):
            if room_id in self._dirty:
                continue
            with contextlib.suppress(Fenced):
                await self.store.run(live_state.close_room, room_id, epoch=epoch, now=at)
            self._closing.pop(room_id, None)
            self._written.pop(room_id, None)
            touched = True
        # a room's grants only once its state is written: the state holds the reconnect
        # token of the member who used the grant, and a grant lasting without it would lock
        # that member out of the room on any other node
        grants = {j: g for j, g in self._grants.items() if g[0] not in self._dirty}
        if grants:
            await self.store.run(
                live_state.record_grants, [(j, r, p, e) for j, (r, p, e) in grants.items()]
            )
            for jti in grants:
                self._grants.pop(jti, None)
            touched = True
        while self._records:
            batch = list(itertools.islice(self._records, BATCH))
            self._writing = {id(r) for r in batch}
            try:
                written = await self._write_batch(batch)
            finally:
                self._writing = set()
                late, self._dropped_while_writing = self._dropped_while_writing, []
            done = {id(r) for r in written}
            for record in late:
                if id(record) in done:
                    # dropped while its write was under way, and written all the same
                    self.dropped[record.label] -= 1
                    self._dropped_unreported[record.label] -= 1
            self.dropped += Counter()  # forget zero counts
            self._dropped_unreported += Counter()
            gone = {id(r) for r in batch}
            # the batch is the oldest part of the queue, less anything dropped meanwhile
            while self._records and id(self._records[0]) in gone:
                self._records.popleft()
            self.written += len(written)
            touched = True
        if self._filling and self.depth < self.capacity * FILLING_AT / 2:
            self._filling = False
        if touched and self._dropped_unreported:
            await self._report_drops()
        return touched

    async def _write_batch(self, batch: list[PendingRecord]) -> list[PendingRecord]:
        """Write `batch`; returns the records written (those refused are logged)."""
        todo = list(batch)
        while todo:
            try:
                await self.store.run(write_batch, todo)
                return todo
            except RecordsRefused as exc:
                for bad in exc.records:
                    self.refused[bad.label] += 1
                    # ids and codes only: a record never holds a name
                    logger.error("writer: the store refused a %s record of session %s; "
                                 "it is not retried", bad.label, bad.session_id)
                todo = [r for r in todo if all(r is not bad for bad in exc.records)]
        return todo

    async def _report_drops(self) -> None:
        counts, self._dropped_unreported = dict(self._dropped_unreported), Counter()
        try:
            await self.store.run(
                _audit_drops, counts, capacity=self.capacity
            )
        except BaseException:
            self._dropped_unreported.update(counts)
            raise

    # --- overflow
    def _admit(self, record: PendingRecord) -> None:
        if self.depth >= self.capacity:
            index = _least_needed(self._records, record.priority)
            if index is None:
                self._drop(record)
                return
            victim = self._records[index]
            del self._records[index]
            self._drop(victim)
            if id(victim) in self._writing:
                self._dropped_while_writing.append(victim)
        self._records.append(record)
        if not self._filling and self.depth >= self.capacity * FILLING_AT:
            self._filling = True
            logger.warning("ALARM: %d records wait for the database (capacity %d)",
                           self.depth, self.capacity)
            self._notify("queue_filling", {"pending": self.depth, "capacity": self.capacity})

    def _drop(self, record: PendingRecord) -> None:
        self.dropped[record.label] += 1
        self._dropped_unreported[record.label] += 1
        now = self.clock()
        logger.error("ALARM: record queue full (capacity %d): dropped a %s record "
                     "(%d dropped so far)", self.capacity, record.label, sum(self.dropped.values()))
        if now - self._last_drop_alarm >= DROP_ALARM_EVERY_S:
            self._last_drop_alarm = now
            self._notify("records_dropped", {"dropped": dict(self.dropped)})

    # --- availability
    def _unavailable(self, reason: str) -> None:
        if self.database_available:
            self.database_available = False
            self.unavailable_since = self.clock()
            logger.error("ALARM: the database is unavailable (%s); %d records and %d rooms "
                         "wait in memory", reason, self.depth, len(self._dirty))
            self._notify("database_unavailable", {"pending": self.depth})

    def _available(self) -> None:
        if not self.database_available:
            down_for = self.clock() - (self.unavailable_since or self.clock())
            self.database_available = True
            self.unavailable_since = None
            logger.warning("the database is back after %.1f s; records written (%d so far)",
                           down_for, self.written)
            self._notify("database_restored", {"down_for_s": round(down_for, 1)})

    def _notify(self, kind: AlarmKind, detail: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            try:
                listener(kind, detail)
            except Exception:
                logger.exception("writer: alarm listener failed")

    # --- spool (graceful stop with the database away)
    def _spool_leftovers(self) -> None:
        """Keep what could not be written: records, and each room's latest state (written
        before the rooms are taken back at the next start)."""
        rooms = [(source.snapshot(), source.epoch) for source in self._dirty.values()]
        if self._grants:
            # the grants' own expiry refuses them soon; say how many were not kept
            logger.error("writer: stopping with %d used grants unwritten", len(self._grants))
        if not self._records and not rooms:
            return
        if self.spool_path is None:
            logger.error("ALARM: stopping with %d records and %d room states unwritten and "
                         "nowhere to keep them", len(self._records), len(rooms))
            return
        fd = os.open(self.spool_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as fh:
            for snap, epoch in rooms:
                fh.write(_room_line(snap, epoch) + "\n")
            for record in self._records:
                fh.write(record.to_json() + "\n")
        logger.warning("writer: %d records and %d room states kept in %s; they are written "
                       "at the next start", len(self._records), len(rooms),
                       self.spool_path.name)
        self._records.clear()
        self._dirty.clear()

    def _load_spool(self) -> None:
        path = self.spool_path
        if path is None or not path.exists():
            return
        kept = 0
        for line in path.read_text().splitlines():
            try:
                if line.startswith('{"room":'):
                    self._spooled_rooms.append(_room_from(line))
                else:
                    self._records.append(PendingRecord.from_json(line))
                kept += 1
            except (ValueError, KeyError, TypeError):
                logger.error("writer: an unreadable line of the record spool is skipped")
        path.unlink()
        if kept:
            logger.warning("writer: %d records and room states kept at the last stop will be "
                           "written", kept)

    async def replay_rooms(self) -> int:
        """Write the room states kept at the last stop (before any room is taken back)."""
        done = 0
        spooled, self._spooled_rooms = self._spooled_rooms, []
        for snap, epoch in spooled:
            try:
                await self.store.run(live_state.save_room, snap, epoch=epoch)
                done += 1
            except Fenced:
                logger.error("room %s: a kept state is older than the store's; not written",
                             snap.room_id)
            except StoreUnavailable:
                logger.error("ALARM: room %s: its state kept at the last stop could not be "
                             "written", snap.room_id)
        return done


def _room_line(snap: RoomSnapshot, epoch: int) -> str:
    return json.dumps({"room": {
        "room_id": snap.room_id, "session_id": snap.session_id, "epoch": epoch,
        "session": session_to_dict(snap.session),
        "participants": [participant_to_dict(p) for p in snap.participants],
        "resume_hashes": snap.resume_hashes, "alive_at": snap.alive_at,
    }})


def _room_from(line: str) -> tuple[RoomSnapshot, int]:
    data = json.loads(line)["room"]
    snap = RoomSnapshot(
        room_id=str(data["room_id"]), session_id=str(data["session_id"]),
        session=session_from_dict(data["session"]),
        participants=[participant_from_dict(p) for p in data["participants"]],
        resume_hashes={str(k): str(v) for k, v in data["resume_hashes"].items()},
        alive_at=float(data["alive_at"]),
    )
    return snap, int(data["epoch"])


def _least_needed(queue: deque[PendingRecord], incoming: int) -> int | None:
    """Index of the oldest record of the lowest priority not above `incoming`, if any."""
    best: int | None = None
    best_priority = incoming + 1
    for i, record in enumerate(queue):
        if record.priority < best_priority:
            best, best_priority = i, record.priority
            if best_priority == 0:
                break
    return best


def _audit_drops(tx: Any, counts: dict[str, int], *, capacity: int) -> None:
    from web.store import audit

    # the trail shows its own gap: what was lost, by kind, while the database was away
    audit.append(tx, "service", "records.dropped", "record-queue",
                 {"capacity": capacity, "dropped": counts})
