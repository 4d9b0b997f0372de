"""The clinician's own copy of a consenting member's video, for hosts only.

A group may let its clinician see a member who consents through a lighter profile than the
group does (the group sees an avatar, the clinician the face with the background blurred).
The copy is a second decode → transform → encode of the same source frames, or, when the
clinician's profile needs no transform (`none`), the source's packets forwarded as they
arrive with no encode at all. It has its own fan-out; `Room._attach` is the one place that
points a slot at it, and only for a host.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import av

from confidentiality.profiles import Profile

from .fanout import Fanout
from .ingest import Frame
from .media_packet import MediaPacket
from .packetizer import Vp8Packetizer
from .processor import FrameTransform, VideoProcessor
from .tap import VIDEO_TIME_BASE
from .workers import MediaWorkers, RemoteProcessor

TransformMaker = Callable[[Profile], FrameTransform]


class HostCopy:
    """Hosts' view of one video publication under `profile`."""

    def __init__(
        self,
        *,
        name: str,
        profile: Profile,
        display_name: str,
        make_transform: TransformMaker,
        request_source_keyframe: Callable[[], None],
        media_workers: MediaWorkers | None,
        bitrate_bps: int,
        max_size: tuple[int, int] | None,
    ) -> None:
        self.profile = profile
        self._request_source_keyframe = request_source_keyframe
        self.fanout = Fanout("video", self._request_keyframe, hosts_only=True)
        self.closed = False
        self._packetizer = Vp8Packetizer()
        self._processor: VideoProcessor | RemoteProcessor | None = None
        if profile.needs_pixels:
            if media_workers is not None:
                self._processor = media_workers.open(
                    name=name, profile=profile, display_name=display_name,
                    bitrate_bps=bitrate_bps, max_size=max_size, emit=self._emit,
                    request_source_keyframe=request_source_keyframe, on_event=no_events,
                )
            else:
                self._processor = VideoProcessor(
                    transform=make_transform(profile), emit=self._emit,
                    request_source_keyframe=request_source_keyframe,
                    loop=asyncio.get_running_loop(), name=name,
                    bitrate_bps=bitrate_bps, max_size=max_size,
                )
            self._processor.request_keyframe()
        # the copy's first subscriber starts at a keyframe of its source
        request_source_keyframe()

    @property
    def second_encode(self) -> bool:
        """True when this copy runs its own transform and encoder (not forwarded packets)."""
        return self._processor is not None

    @property
    def needs_frames(self) -> bool:
        return self._processor is not None

    def on_packet(self, packet: MediaPacket) -> None:
        """A source packet as it arrives (accepted: not held, an allowed picture size)."""
        if not self.closed and self._processor is None:
            self.fanout.publish(packet)

    def on_frame(self, frame: Frame) -> None:
        """A whole source frame, for the copy's own decoder."""
        processor = self._processor
        if self.closed or processor is None:
            return
        data, timestamp, keyframe = frame
        packet = av.Packet(data)
        packet.pts = packet.dts = timestamp
        packet.time_base = VIDEO_TIME_BASE
        processor.submit(packet, keyframe)

    def _emit(self, packet: av.Packet, keyframe: bool, epoch: int) -> None:
        processor = self._processor
        if self.closed or processor is None or epoch != processor.epoch:
            return
        for rtp in self._packetizer.packetize(bytes(packet), packet.pts or 0, keyframe):
            self.fanout.publish(rtp)

    def _request_keyframe(self) -> None:
        if self._processor is None:
            self._request_source_keyframe()
        else:
            self._processor.request_keyframe()

    def set_stream(self, bps: int, max_size: tuple[int, int] | None) -> None:
        if self._processor is not None:
            self._processor.set_stream(bps, max_size)

    def flush(self) -> None:
        """Drop what subscribers have queued (a hold starts now)."""
        self.fanout.flush()

    def resync(self) -> None:
        """After a hold: the decoder starts again from a fresh keyframe."""
        if self._processor is not None:
            self._processor.resync()
            self._processor.request_keyframe()

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.fanout.close()
        if self._processor is not None:
            processor, self._processor = self._processor, None
            await processor.aclose()


def no_events(event: Any) -> None:
    """The hosts' copy reports nothing: the group's pipeline already reports the member's
    privacy events, and a copy that fails closed shows the hosts its placeholder."""
