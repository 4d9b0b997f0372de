"""A media worker process: runs publications' `VideoProcessor`s for the server (sfu/workers.py).

Started by the server with one end of a socket pair; reads control messages and source
packets, writes encoded packets, keyframe requests and privacy events back. Exits at end of
stream (the server closed its end or died). Run: python -m sfu.worker_main --fd N --factory M:F
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import os
import socket
import struct
from collections.abc import Callable
from typing import Any

from confidentiality.profiles import Profile

from . import heap
from .processor import FrameTransform, VideoProcessor
from .stats import MEDIA
from .workers import (
    CLOSE,
    EVENT,
    KEYFRAME,
    OPEN,
    OUT_PACKET,
    PACKET,
    PROFILE,
    RESYNC,
    SOURCE_KEYFRAME,
    STATS,
    STREAM,
    encode_message,
    event_body,
    packet_body,
    parse_packet,
    read_message,
)

logger = logging.getLogger("sfu.worker")

# below the server's own priority: the server's event loop receives and sends every packet
# of the room and must never wait behind a transform. The scheduler shares CPU per thread,
# and a worker runs a dozen threads for its publications, so at the same priority a busy
# worker starved the loop until sockets overflowed; when cores are short, processed video
# should lose frames (latest frame wins), not the whole room its packets
WORKER_NICE = 19
# how often this process's counters (transform times, placeholders) go to the server
STATS_INTERVAL_S = 1.0

Factory = Callable[[Profile, str, Callable[[Any], None]], FrameTransform]


def load_factory(path: str) -> Factory:
    """`module:callable`, imported here (the server names it; nothing else is accepted)."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"factory must be module:callable, got {path!r}")
    factory: Factory = getattr(importlib.import_module(module_name), attr)
    return factory


def _size(value: Any) -> tuple[int, int] | None:
    return (int(value[0]), int(value[1])) if value else None


class _Publication:
    """One publication's processor here, and the epoch its output is tagged with."""

    def __init__(self, handle: int, spec: dict[str, Any], factory: Factory,
                 loop: asyncio.AbstractEventLoop, send: Callable[[int, int, bytes], None]
                 ) -> None:
        self.handle = handle
        self._send = send
        self._loop = loop
        self._factory = factory
        self.display_name = str(spec["display_name"])
        self.epoch = int(spec.get("epoch", 0))
        self.transform = factory(Profile(spec["profile"]), self.display_name, self._event)
        self.processor = VideoProcessor(
            transform=self.transform,
            emit=self._emit,
            request_source_keyframe=lambda: send(SOURCE_KEYFRAME, handle, b""),
            loop=loop,
            name=str(spec.get("name", f"video-{handle}")),
            bitrate_bps=int(spec["bitrate_bps"]),
            max_size=_size(spec.get("max_size")),
        )

    def _emit(self, packet: Any, keyframe: bool, epoch: int) -> None:
        self._send(OUT_PACKET, self.handle, packet_body(epoch, packet, packet.pts or 0, keyframe))

    def _event(self, event: Any) -> None:
        # called from the pipeline's thread
        with contextlib.suppress(RuntimeError):  # loop closed at exit
            self._loop.call_soon_threadsafe(self._send, EVENT, self.handle, event_body(event))

    def set_profile(self, profile: Profile, epoch: int) -> None:
        set_profile = getattr(self.transform, "set_profile", None)
        if set_profile is not None:
            set_profile(profile)
        else:
            # a transform that cannot change profile is replaced, never reused
            old, self.transform = self.transform, self._factory(profile, self.display_name,
                                                                self._event)
            self.processor.set_transform(self.transform)
            old.close()
        # after the profile: a frame tagged with the new epoch was made under the new profile;
        # the server drops older ones, so the new epoch's output starts at a keyframe
        self.processor.epoch = epoch
        self.processor.request_keyframe()


async def serve(sock: socket.socket, factory: Factory) -> None:
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_unix_connection(sock=sock)

    def send(kind: int, handle: int, body: bytes) -> None:
        if not writer.is_closing():
            writer.write(encode_message(kind, handle, body))

    def send_stats() -> None:
        drained = MEDIA.drain()
        if drained is not None:
            send(STATS, 0, json.dumps(drained).encode())

    async def stats_loop() -> None:
        while True:
            await asyncio.sleep(STATS_INTERVAL_S)
            send_stats()

    stats_task = asyncio.ensure_future(stats_loop())
    pubs: dict[int, _Publication] = {}
    closing: set[asyncio.Task[None]] = set()
    while True:
        try:
            kind, handle, body = await read_message(reader)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, struct.error):
            break
        try:
            if kind == OPEN:
                if handle not in pubs:
                    pubs[handle] = _Publication(handle, json.loads(body), factory, loop, send)
                continue
            pub = pubs.get(handle)
            if pub is None:
                continue
            if kind == PACKET:
                epoch, packet, keyframe = parse_packet(body)
                pub.processor.submit(packet, keyframe)
            elif kind == RESYNC:
                pub.processor.resync()
            elif kind == KEYFRAME:
                pub.processor.request_keyframe()
            elif kind == STREAM:
                data = json.loads(body)
                pub.processor.set_stream(int(data["bitrate_bps"]), _size(data.get("max_size")))
            elif kind == PROFILE:
                data = json.loads(body)
                pub.set_profile(Profile(data["profile"]), int(data["epoch"]))
            elif kind == CLOSE:
                del pubs[handle]
                task = asyncio.ensure_future(pub.processor.aclose())
                closing.add(task)
                task.add_done_callback(closing.discard)
                # what the pipeline frees goes back to the OS, not to this process's arenas
                task.add_done_callback(lambda _: heap.trim_soon(loop))
        except Exception:  # one bad message must not stop the other publications
            logger.exception("media worker: message %d for %d failed", kind, handle)
    for pub in pubs.values():
        pub.processor.stop()
    await asyncio.gather(*(p.processor.aclose() for p in pubs.values()), *closing,
                         return_exceptions=True)
    stats_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await stats_task


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--factory", required=True)
    args = parser.parse_args(argv)
    os.nice(WORKER_NICE)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sock = socket.socket(fileno=args.fd)
    asyncio.run(serve(sock, load_factory(args.factory)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
