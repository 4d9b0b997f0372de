"""Processed video in worker processes: encoded packets in, encoded packets out.

Python runs one thread at a time. With a dozen processed publications in the server's own
process, their decode/transform/encode threads held the interpreter often enough that the
event loop, which receives and sends every packet, woke 30-120 ms late (p50/p95 measured in
a 12-person blurred room): frames queued, latency grew and the loop used less than half a
core while work waited. So each processed publication runs in one of a few worker
processes (`sfu.worker_main`, the same `VideoProcessor` and privacy pipeline), and only VP8
crosses: the source's packets in, the one encoded output out, plus small control messages.

Fail closed across the boundary:
- every profile change starts a new *epoch*; packets the worker encoded under an older one
  are dropped here, so a frame made under `none` can never go out after a switch to `blur`;
- a worker that dies takes no picture with it: subscribers keep the last processed frame,
  the host is alerted, and a fresh worker picks the publications up at the next keyframe;
- a worker that falls behind gets no unbounded backlog: packets wait at most
  `MAX_BUFFERED_BYTES` here, beyond that they are dropped until the next source keyframe;
- a worker that is alive but makes nothing (starved of CPU: it runs at the lowest priority,
  so the event loop always wins) sends no placeholder either, so this side notices: a
  publication whose source keeps sending while nothing came back for `STALL_S` is reported
  as paused (a missed deadline, so the host hears of it only if it lasts), and as restored
  at its next output.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import av

from confidentiality.events import PrivacyEvent
from confidentiality.profiles import Profile

from .stats import MEDIA
from .tap import VIDEO_TIME_BASE

logger = logging.getLogger(__name__)

# the wire: a header (body length, message type, publication handle), then the body
HEADER = struct.Struct("!IBI")
# a packet's body starts with: epoch, pts, keyframe flag
PACKET_HEADER = struct.Struct("!Iq?")
MAX_MESSAGE_BYTES = 4 * 1024 * 1024

# to the worker
OPEN, PACKET, RESYNC, KEYFRAME, STREAM, PROFILE, CLOSE = range(1, 8)
# from the worker (STATS: the worker's sfu.stats increments, for the whole process)
OUT_PACKET, SOURCE_KEYFRAME, EVENT, READY, STATS = range(11, 16)

# packets waiting for a slow worker before they are dropped up to the next keyframe:
# ~2 s of a dozen 600 kbps sources
MAX_BUFFERED_BYTES = 2 * 1024 * 1024
# the transform factory the workers build, as "module:callable" (importable in the worker)
DEFAULT_FACTORY = "sfu.publication:pass_through_factory"
STOP_TIMEOUT_S = 5.0
WORKER_MALLOC_ARENAS = 2
# a worker that dies this soon after starting, this many times running, is not restarted
# again (a broken install would otherwise restart forever); its publications stay paused
QUICK_DEATH_S = 10.0
MAX_QUICK_DEATHS = 3
# a source sending this long with nothing back from the worker: its video is paused
STALL_S = 3.0
# ...provided the source sent within this long (a source that stopped is not a stall)
SOURCE_LIVE_S = 1.0
# how often the pool looks for stalls
STALL_CHECK_S = 0.5
# while skipping to a keyframe, ask the source again this often: the keyframe asked for may
# itself arrive while the worker is still congested (and be dropped), or the request may be
# lost; a source that sends keyframes only when asked (aiortc, and a browser's steady
# stream) would otherwise leave the member's video paused for good
SOURCE_KEYFRAME_RETRY_S = 1.0

# (packet, is a keyframe, epoch of the profile it was made under)
PacketEmit = Callable[[av.Packet, bool, int], None]
EventSink = Callable[[PrivacyEvent], None]


def default_process_count() -> int:
    """One worker per core (at least one): the transforms are the server's heaviest work."""
    return max(1, os.cpu_count() or 1)


def encode_message(kind: int, handle: int, body: bytes = b"") -> bytes:
    if len(body) > MAX_MESSAGE_BYTES:
        raise ValueError("message too large")
    return HEADER.pack(len(body), kind, handle) + body


async def read_message(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    """One message; raises IncompleteReadError at end of stream, ValueError on garbage."""
    length, kind, handle = HEADER.unpack(await reader.readexactly(HEADER.size))
    if length > MAX_MESSAGE_BYTES:
        raise ValueError(f"message of {length} bytes")
    body = await reader.readexactly(length) if length else b""
    return kind, handle, body


def packet_body(epoch: int, packet: av.Packet | bytes, pts: int, keyframe: bool) -> bytes:
    return PACKET_HEADER.pack(epoch, pts, keyframe) + bytes(packet)


def parse_packet(body: bytes) -> tuple[int, av.Packet, bool]:
    epoch, pts, keyframe = PACKET_HEADER.unpack_from(body)
    packet = av.Packet(body[PACKET_HEADER.size:])
    packet.pts = pts
    packet.dts = pts
    packet.time_base = VIDEO_TIME_BASE
    return epoch, packet, keyframe


@dataclass
class _Spec:
    """What a worker needs to (re)build a publication's processor."""

    name: str
    profile: str
    display_name: str
    bitrate_bps: int
    max_size: tuple[int, int] | None
    epoch: int = 0

    def open_body(self) -> bytes:
        return json.dumps({
            "name": self.name, "profile": self.profile, "display_name": self.display_name,
            "bitrate_bps": self.bitrate_bps, "epoch": self.epoch,
            "max_size": list(self.max_size) if self.max_size else None,
        }).encode()


class RemoteProcessor:
    """A publication's processing in a worker process; what `Publication` needs of it.

    Lives on the event loop. Also stands in for the transform (`set_profile`), since the
    transform lives in the worker.
    """

    def __init__(self, worker: _Worker, handle: int, spec: _Spec, *, emit: PacketEmit,
                 request_source_keyframe: Callable[[], None], on_event: EventSink) -> None:
        self._worker = worker
        self.handle = handle
        self.spec = spec
        self._emit = emit
        self._request_source_keyframe = request_source_keyframe
        self._on_event = on_event
        self._skip_to_keyframe = False
        self._asked_at = -1e9  # when (monotonic) the source was last asked for a keyframe
        self._lost = False  # the worker died; recovered at its successor's first packet
        # stall watch (monotonic seconds): the first packet in since the last one out, the
        # last packet in, and whether the pause was reported
        self._waiting_since: float | None = None
        self._last_in = 0.0
        self._stalled = False
        self.closed = False
        self.frames_out = 0
        self.dropped_packets = 0

    @property
    def epoch(self) -> int:
        """The current profile's epoch: output tagged with another one is dropped."""
        return self.spec.epoch

    # --- Publication side
    def submit(self, packet: av.Packet, keyframe: bool) -> None:
        if self.closed:
            return
        now = time.monotonic()
        self._last_in = now
        if self._waiting_since is None:
            self._waiting_since = now
        if self._worker.congested():
            # fail safe and bounded: drop up to the next keyframe, which restarts decoding
            if not self._skip_to_keyframe:
                self._skip_to_keyframe = True
                self._ask_source_keyframe(now)
            self._skipped(now)
            return
        if self._skip_to_keyframe:
            if not keyframe:
                self._skipped(now)
                return
            self._skip_to_keyframe = False
            self._send(RESYNC)
        self._send(PACKET, packet_body(self.spec.epoch, packet, packet.pts or 0, keyframe))

    def _skipped(self, now: float) -> None:
        self.dropped_packets += 1
        if now - self._asked_at >= SOURCE_KEYFRAME_RETRY_S:
            self._ask_source_keyframe(now)

    def _ask_source_keyframe(self, now: float) -> None:
        self._asked_at = now
        self._request_source_keyframe()

    def resync(self) -> None:
        self._send(RESYNC)

    def request_keyframe(self) -> None:
        self._send(KEYFRAME)

    def set_stream(self, bps: int, max_size: tuple[int, int] | None) -> None:
        self.spec.bitrate_bps, self.spec.max_size = bps, max_size
        self._send(STREAM, json.dumps({"bitrate_bps": bps,
                                       "max_size": list(max_size) if max_size else None}).encode())

    def set_profile(self, profile: Profile) -> None:
        if Profile(profile).value == self.spec.profile:
            return  # unchanged: the stream goes on
        # a new epoch: whatever the worker encoded before it learns of this is dropped here
        self.spec.profile = Profile(profile).value
        self.spec.epoch += 1
        self._send(PROFILE, json.dumps({"profile": self.spec.profile,
                                        "epoch": self.spec.epoch}).encode())

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._send(CLOSE)
        self._worker.forget(self.handle)

    # --- worker side (on the loop)
    def on_packet(self, body: bytes) -> None:
        epoch, packet, keyframe = parse_packet(body)
        if self.closed or epoch != self.spec.epoch:
            return
        self._waiting_since = None
        if self._lost or self._stalled:
            self._lost = self._stalled = False
            self._on_event(PrivacyEvent("recovered", f"{self.spec.display_name}: video restored"))
        self.frames_out += 1
        self._emit(packet, keyframe, epoch)

    def on_source_keyframe(self) -> None:
        self._request_source_keyframe()

    def on_event(self, body: bytes) -> None:
        data = json.loads(body)
        self._on_event(PrivacyEvent(data["kind"], str(data["detail"]), int(data["faces"]),
                                    late=bool(data.get("late", False))))

    def check_stall(self, now: float) -> None:
        """Report a pause once, when the source is live and its worker has made nothing."""
        since = self._waiting_since
        if (
            self.closed
            or self._stalled
            or self._lost
            or since is None
            or now - since < STALL_S
            or now - self._last_in > SOURCE_LIVE_S
        ):
            return
        self._stalled = True
        MEDIA.stalled()
        logger.warning("processed video %d: nothing from its worker for %.0f s", self.handle,
                       now - since)
        self._on_event(PrivacyEvent(
            "fail_closed", f"{self.spec.display_name}: video paused (the server is too busy "
            "to process it)", late=True))

    def on_worker_lost(self) -> None:
        self._lost = True
        self._on_event(PrivacyEvent(
            "fail_closed", f"{self.spec.display_name}: video paused (processing restarted)"))

    def _send(self, kind: int, body: bytes = b"") -> None:
        if not self.closed or kind == CLOSE:
            self._worker.send(kind, self.handle, body)


class _Worker:
    """One worker process and its socket; restarted when it dies."""

    def __init__(self, pool: MediaWorkers, index: int) -> None:
        self.pool = pool
        self.index = index
        self.processors: dict[int, RemoteProcessor] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        # messages written before the socket is wrapped for the loop (a few ms after start)
        self._early: list[bytes] = []
        self._early_bytes = 0
        self._stopping = False
        self._started_at = 0.0
        self._quick_deaths = 0
        self.restarts = 0
        self.given_up = False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Spawn the process now (synchronous: callers need not wait for it to import)."""
        parent, child = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        # few malloc arenas: glibc gives each new thread an arena of its own (up to 8 a core)
        # and keeps what it freed there. Pipelines come and go with their threads, so a
        # worker grew ~+15 % (262 -> 303 MiB over 160 pipelines) where with two arenas it
        # stays flat (186 -> 194 MiB). An operator's own setting wins
        env.setdefault("MALLOC_ARENA_MAX", str(WORKER_MALLOC_ARENAS))
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "sfu.worker_main", "--fd", str(child.fileno()),
                 "--factory", self.pool.factory],
                pass_fds=(child.fileno(),), env=env, stdin=subprocess.DEVNULL,
            )
        finally:
            child.close()
        self._early, self._early_bytes = [], 0
        self._started_at = time.monotonic()
        self._reader_task = asyncio.ensure_future(self._connect_and_read(parent))

    def congested(self) -> bool:
        writer = self._writer
        if writer is None:
            return self._early_bytes > MAX_BUFFERED_BYTES
        return writer.transport.get_write_buffer_size() > MAX_BUFFERED_BYTES

    def send(self, kind: int, handle: int, body: bytes = b"") -> None:
        message = encode_message(kind, handle, body)
        writer = self._writer
        if writer is None:
            if not self._stopping:
                self._early.append(message)
                self._early_bytes += len(message)
            return
        if writer.is_closing():
            return  # the worker is gone: its successor is sent OPEN again
        writer.write(message)

    def open(self, processor: RemoteProcessor) -> None:
        self.processors[processor.handle] = processor
        self.send(OPEN, processor.handle, processor.spec.open_body())

    def forget(self, handle: int) -> None:
        self.processors.pop(handle, None)

    async def _connect_and_read(self, sock: socket.socket) -> None:
        try:
            reader, writer = await asyncio.open_unix_connection(sock=sock)
        except asyncio.CancelledError:
            sock.close()
            return
        self._writer = writer
        early, self._early, self._early_bytes = self._early, [], 0
        writer.writelines(early)
        try:
            while True:
                kind, handle, body = await read_message(reader)
                if kind == STATS:
                    try:
                        MEDIA.merge(json.loads(body))
                    except (ValueError, TypeError):
                        logger.warning("media worker %d sent unreadable stats", self.index)
                    continue
                processor = self.processors.get(handle)
                if processor is None:
                    continue
                try:
                    if kind == OUT_PACKET:
                        processor.on_packet(body)
                    elif kind == SOURCE_KEYFRAME:
                        processor.on_source_keyframe()
                    elif kind == EVENT:
                        processor.on_event(body)
                except Exception:  # one publication's bad message must not stop the others
                    logger.exception("media worker message for %s failed", handle)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, struct.error):
            pass
        except asyncio.CancelledError:
            return
        if not self._stopping:
            await self._restart()

    async def _restart(self) -> None:
        code = self._proc.poll() if self._proc is not None else None
        await self._close_process(graceful=False)
        for processor in list(self.processors.values()):
            processor.on_worker_lost()
        quick = time.monotonic() - self._started_at < QUICK_DEATH_S
        self._quick_deaths = self._quick_deaths + 1 if quick else 0
        if self._quick_deaths >= MAX_QUICK_DEATHS:
            logger.error("media worker %d keeps stopping (exit %s); not restarting it",
                         self.index, code)
            self.given_up = True
            self._stopping = True  # nothing more is queued for it
            self.pool.retire(self)
            return
        logger.error("media worker %d stopped (exit %s); restarting it", self.index, code)
        await asyncio.sleep(0.5 * self._quick_deaths)
        if self._stopping:
            return
        self.restarts += 1
        MEDIA.worker_restarted()
        self.start()
        for processor in list(self.processors.values()):
            self.send(OPEN, processor.handle, processor.spec.open_body())
            processor.on_source_keyframe()  # the new decoder starts at a keyframe

    async def _close_process(self, *, graceful: bool) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if not graceful:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        try:
            await asyncio.to_thread(proc.wait, STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)

    async def stop(self) -> None:
        self._stopping = True
        task, self._reader_task = self._reader_task, None
        # closing the socket tells the worker to finish; it exits at end of stream
        await self._close_process(graceful=True)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class MediaWorkers:
    """A few worker processes shared by every room on this node; started on first use."""

    def __init__(self, processes: int | None = None, *, factory: str = DEFAULT_FACTORY) -> None:
        self.processes = max(1, processes if processes is not None else default_process_count())
        self.factory = factory
        self._workers: list[_Worker] = []
        self._next_handle = 0
        self._stall_watch: asyncio.Task[None] | None = None
        self.closed = False
        # workers that kept dying at start and were not restarted (a broken install)
        self.given_up = 0

    @property
    def workers(self) -> list[_Worker]:
        return list(self._workers)

    def open(self, *, name: str, profile: Profile, display_name: str, bitrate_bps: int,
                   max_size: tuple[int, int] | None, emit: PacketEmit,
                   request_source_keyframe: Callable[[], None],
                   on_event: EventSink) -> RemoteProcessor:
        """A processor for one publication, on the least busy worker."""
        if self.closed:
            raise RuntimeError("media workers are closed")
        worker = self._pick()
        self._next_handle += 1
        spec = _Spec(name, Profile(profile).value, display_name, bitrate_bps, max_size)
        processor = RemoteProcessor(worker, self._next_handle, spec, emit=emit,
                                    request_source_keyframe=request_source_keyframe,
                                    on_event=on_event)
        worker.open(processor)
        if self._stall_watch is None:
            self._stall_watch = asyncio.ensure_future(self._watch_stalls())
        return processor

    async def _watch_stalls(self) -> None:
        while True:
            await asyncio.sleep(STALL_CHECK_S)
            now = time.monotonic()
            for worker in self._workers:
                for processor in list(worker.processors.values()):
                    try:
                        processor.check_stall(now)
                    except Exception:  # one publication's alert must not stop the watch
                        logger.exception("stall check for %s failed", processor.handle)

    def retire(self, worker: _Worker) -> None:
        """Forget a worker that will not be restarted; new publications get a fresh one."""
        if worker in self._workers:
            self._workers.remove(worker)
            self.given_up += 1

    def _pick(self) -> _Worker:
        idle = [w for w in self._workers if not w.processors]
        if not idle and len(self._workers) < self.processes:
            worker = _Worker(self, len(self._workers))
            worker.start()
            self._workers.append(worker)
            return worker
        return min(self._workers, key=lambda w: len(w.processors))

    async def aclose(self) -> None:
        self.closed = True
        watch, self._stall_watch = self._stall_watch, None
        if watch is not None:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        workers, self._workers = self._workers, []
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)


def event_body(event: Any) -> bytes:
    return json.dumps({"kind": event.kind, "detail": event.detail,
                       "faces": int(getattr(event, "faces", 0)),
                       "late": bool(getattr(event, "late", False))}).encode()
