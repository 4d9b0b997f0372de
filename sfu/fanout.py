"""One publication's encoded packets, handed to every subscriber without re-encoding."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .stats import MEDIA

logger = logging.getLogger(__name__)

# about 0.5 s of video at 30 fps, or 0.6 s of 20 ms audio frames: enough to ride out a
# scheduling hiccup, small enough that latency stays bounded
VIDEO_QUEUE_FRAMES = 16
AUDIO_QUEUE_FRAMES = 32
# a video slot still waiting for a keyframe this long after asking asks again: a keyframe
# request (PLI) or the keyframe itself can be lost, and a publisher sends no periodic ones
KEYFRAME_RETRY_S = 1.0


class PacketTrack(MediaStreamTrack):
    """A subscriber's slot: `recv()` returns the encoded packets of whichever publication
    it is attached to.

    aiortc's sender stops for good when its track ends, so a subscriber's transceiver keeps
    one slot track for its whole life and the slot is re-pointed when publishers come and go.
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._fanout: Fanout | None = None
        self._queue: collections.deque[av.Packet] = collections.deque(
            maxlen=VIDEO_QUEUE_FRAMES if kind == "video" else AUDIO_QUEUE_FRAMES
        )
        self._ready = asyncio.Event()
        # a video subscriber can only start decoding at a keyframe
        self._need_keyframe = kind == "video"
        self._asked_at = -1e9  # when this slot last asked for a keyframe (monotonic)
        self.packets_sent = 0
        self.packets_dropped = 0

    @property
    def fanout(self) -> Fanout | None:
        return self._fanout

    def attach(self, fanout: Fanout) -> None:
        """Start carrying `fanout`'s packets (from its next keyframe for video)."""
        self.detach()
        self._fanout = fanout
        fanout._add(self)

    def detach(self) -> None:
        """Stop carrying the current publication; the slot stays open."""
        fanout, self._fanout = self._fanout, None
        if fanout is not None:
            fanout.unsubscribe(self)
        self._queue.clear()
        self._need_keyframe = self.kind == "video"

    def push(self, packet: av.Packet, keyframe: bool) -> None:
        if self.readyState != "live":
            return
        if self._need_keyframe:
            if not keyframe:
                self.packets_dropped += 1
                MEDIA.dropped(self.kind, 1, packet.size)
                if time.monotonic() - self._asked_at >= KEYFRAME_RETRY_S:
                    self.request_keyframe()
                return
            self._need_keyframe = False
        if len(self._queue) == self._queue.maxlen:
            if self.kind == "video":
                # a gap in an inter-coded stream corrupts every later frame until the
                # next keyframe: drop the backlog and restart at a keyframe
                dropped = len(self._queue) + (0 if keyframe else 1)
                self.packets_dropped += dropped
                MEDIA.dropped(self.kind, dropped, sum(p.size for p in self._queue)
                              + (0 if keyframe else packet.size))
                self._queue.clear()
                if not keyframe:
                    self._need_keyframe = True
                    self.request_keyframe()
                    return
            else:
                self.packets_dropped += 1  # deque drops the oldest
                MEDIA.dropped(self.kind, 1, self._queue[0].size)
        self._queue.append(packet)
        self._ready.set()

    async def recv(self) -> av.Packet:  # type: ignore[override]
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        self.packets_sent += 1
        packet = self._queue.popleft()
        MEDIA.forwarded(self.kind, packet.size)
        return packet

    def flush(self) -> None:
        self._queue.clear()
        self._need_keyframe = self.kind == "video"

    def request_keyframe(self) -> None:
        """A subscriber lost a picture (PLI/FIR): ask the publication's source."""
        self._asked_at = time.monotonic()
        if self._fanout is not None:
            self._fanout.request_keyframe()

    def stop(self) -> None:
        self.detach()
        super().stop()
        self._ready.set()


class KeyframeLimiter:
    """At most one keyframe request per interval; a request inside it is deferred, not lost."""

    def __init__(self, send: Callable[[], None], *, min_interval_s: float = 0.5) -> None:
        self._send = send
        self._min_interval_s = min_interval_s
        self._last = -1e9
        self._deferred: asyncio.TimerHandle | None = None
        self.sent = 0

    def request(self) -> None:
        now = time.monotonic()
        wait = self._last + self._min_interval_s - now
        if wait <= 0:
            self._fire()
        elif self._deferred is None:
            self._deferred = asyncio.get_running_loop().call_later(wait, self._fire)

    def _fire(self) -> None:
        self._deferred = None
        self._last = time.monotonic()
        self.sent += 1
        try:
            self._send()
        except Exception:  # a dead peer must not break the caller
            logger.debug("keyframe request failed", exc_info=True)

    def close(self) -> None:
        if self._deferred is not None:
            self._deferred.cancel()
            self._deferred = None


class Fanout:
    """Copies each encoded packet of one publication to every subscriber's track."""

    def __init__(self, kind: str, request_keyframe: Callable[[], None]) -> None:
        self.kind = kind
        self._tracks: set[PacketTrack] = set()
        self._keyframes = KeyframeLimiter(request_keyframe)
        self.closed = False

    @property
    def subscriber_count(self) -> int:
        return len(self._tracks)

    def _add(self, track: PacketTrack) -> None:
        if self.closed:
            raise RuntimeError("publication has ended")
        self._tracks.add(track)
        if self.kind == "video":
            # a late joiner needs a keyframe to start
            track.request_keyframe()

    def unsubscribe(self, track: PacketTrack) -> None:
        self._tracks.discard(track)

    def publish(self, packet: av.Packet, keyframe: bool) -> None:
        for track in list(self._tracks):
            track.push(packet, keyframe)

    def request_keyframe(self) -> None:
        if not self.closed:
            self._keyframes.request()

    def flush(self) -> None:
        """Drop what subscribers have not been sent yet; they restart at a keyframe."""
        for track in self._tracks:
            track.flush()

    @property
    def keyframe_requests_sent(self) -> int:
        return self._keyframes.sent

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._keyframes.close()
        for track in list(self._tracks):
            track.detach()
        self._tracks.clear()
