"""One publication's packets, handed to every subscriber as they arrive, never re-encoded."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable

from aiortc import RTCRtpTransceiver
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .media_packet import MediaPacket
from .rtp_writer import Outgoing, RtpWriter
from .stats import MEDIA

logger = logging.getLogger(__name__)

# packets waiting in a slot: ~1 s of 640x480 video, or 0.6 s of 20 ms audio frames: enough
# to ride out a scheduling hiccup, small enough that latency stays bounded
VIDEO_QUEUE_PACKETS = 96
AUDIO_QUEUE_FRAMES = 32
# a video slot still waiting for a keyframe this long after asking asks again: a keyframe
# request (PLI) or the keyframe itself can be lost, and a publisher sends no periodic ones
KEYFRAME_RETRY_S = 1.0


class PacketTrack(MediaStreamTrack):
    """A subscriber's slot: carries the packets of whichever publication it is attached to.

    aiortc's sender stops for good when its track ends, so a subscriber's transceiver keeps
    one slot track for its whole life and the slot is re-pointed when publishers come and go.
    The sender's own loop calls `recv()` once it has started; the slot then sends its
    packets from there, each renumbered for this subscriber (sfu/rtp_writer.py), and never
    returns a frame for aiortc to encode or packetize.
    """

    def __init__(self, kind: str, *, for_host: bool = False) -> None:
        super().__init__()
        self.kind = kind
        # a host's slot: the only kind a hosts-only fan-out (the clinician's view) accepts
        self.for_host = for_host
        self._fanout: Fanout | None = None
        self.writer = RtpWriter(kind)
        self._queue: collections.deque[Outgoing] = collections.deque(
            maxlen=VIDEO_QUEUE_PACKETS if kind == "video" else AUDIO_QUEUE_FRAMES
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

    def bind(self, transceiver: RTCRtpTransceiver) -> None:
        """Send through this transceiver's sender (and answer its subscriber's NACKs)."""
        self.writer.bind(transceiver)

    def attach(self, fanout: Fanout) -> None:
        """Start carrying `fanout`'s packets (from its next keyframe for video)."""
        self.detach()
        if self.kind == "video":
            # the subscriber may hold a hole from before (see RtpWriter.leap)
            self.writer.leap()
        self._fanout = fanout
        try:
            fanout._add(self)
        except Exception:
            self._fanout = None
            raise

    def detach(self) -> None:
        """Stop carrying the current publication; the slot stays open."""
        fanout, self._fanout = self._fanout, None
        if fanout is not None:
            fanout.unsubscribe(self)
        self.flush()

    def push(self, packet: MediaPacket) -> None:
        if self.readyState != "live":
            return
        if self._need_keyframe:
            if not packet.keyframe:
                self.packets_dropped += 1
                MEDIA.dropped(self.kind, 1, len(packet.payload))
                if time.monotonic() - self._asked_at >= KEYFRAME_RETRY_S:
                    self.request_keyframe()
                return
            self._need_keyframe = False
            self.writer.restart()
        out = self.writer.map(packet, time.monotonic())
        if out is None:
            self.packets_dropped += 1
            MEDIA.dropped(self.kind, 1, len(packet.payload))
            if packet.stream != self.writer.stream and self.kind == "video":
                # another stream began mid-picture (a layer or mode switch): wait for its
                # keyframe rather than show a broken one
                self._need_keyframe = True
                self.request_keyframe()
            return
        if len(self._queue) == self._queue.maxlen:
            if self.kind == "video":
                # a gap in an inter-coded stream corrupts every later frame until the
                # next keyframe: drop the backlog and restart at a keyframe
                self.packets_dropped += len(self._queue) + 1
                MEDIA.dropped(self.kind, len(self._queue) + 1,
                              sum(len(o[3]) for o in self._queue) + len(out[3]))
                self.flush()
                self.request_keyframe()
                return
            self.packets_dropped += 1  # the deque drops the oldest
            MEDIA.dropped(self.kind, 1, len(self._queue[0][3]))
        self._queue.append(out)
        self._ready.set()

    async def recv(self) -> None:  # type: ignore[override]
        """Called by aiortc's sender loop once the sender has started: send from here on."""
        self.writer.start()
        while True:
            while not self._queue:
                if self.readyState != "live":
                    raise MediaStreamError
                self._ready.clear()
                await self._ready.wait()
            out = self._queue.popleft()
            self.packets_sent += 1
            try:
                await self.writer.send(out)
            except ConnectionError:
                # not connected yet, or no longer: aiortc would end the slot for good
                self.packets_dropped += 1
                MEDIA.dropped(self.kind, 1, len(out[3]))
            else:
                MEDIA.forwarded(self.kind, len(out[3]))

    def flush(self) -> None:
        """Drop what was not sent yet; video restarts at a keyframe."""
        self._queue.clear()
        self.writer.restart()
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


class HostsOnly(RuntimeError):
    """A peer's slot was pointed at a stream meant for hosts only."""


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
    """Copies each packet of one publication's stream to every subscriber's slot."""

    def __init__(self, kind: str, request_keyframe: Callable[[], None], *,
                 hosts_only: bool = False) -> None:
        self.kind = kind
        # the clinician's own view of a member (sfu/host_copy.py): a peer's slot is refused
        self.hosts_only = hosts_only
        self._tracks: set[PacketTrack] = set()
        self._each: tuple[PacketTrack, ...] = ()
        self._keyframes = KeyframeLimiter(request_keyframe)
        self.closed = False

    @property
    def subscriber_count(self) -> int:
        return len(self._tracks)

    def _add(self, track: PacketTrack) -> None:
        if self.closed:
            raise RuntimeError("publication has ended")
        if self.hosts_only and not track.for_host:
            # fail closed, whatever the caller decided: a peer never gets the host's stream
            raise HostsOnly("the clinician's own view goes to hosts only")
        self._tracks.add(track)
        self._each = tuple(self._tracks)
        if self.kind == "video":
            # a late joiner needs a keyframe to start
            track.request_keyframe()

    def unsubscribe(self, track: PacketTrack) -> None:
        self._tracks.discard(track)
        self._each = tuple(self._tracks)

    def publish(self, packet: MediaPacket) -> None:
        for track in self._each:
            track.push(packet)

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
        self._each = ()
