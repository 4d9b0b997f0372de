"""A published track: its source (a publisher's receiver) and its fan-out to subscribers."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any, Literal

import av
from aiortc import RTCRtpReceiver

from confidentiality.profiles import Profile

from . import aiortc_compat, heap, vp8
from .encoder import DEFAULT_BITRATE_BPS
from .fanout import Fanout, KeyframeLimiter, PacketTrack
from .host_copy import HostCopy, no_events
from .ingest import Frame, PacketIngest, install_ingest, nack_sender
from .media_packet import MediaPacket
from .packetizer import Vp8Packetizer
from .processor import FrameTransform, PassThrough, VideoProcessor
from .tap import VIDEO_TIME_BASE
from .workers import MediaWorkers, RemoteProcessor

logger = logging.getLogger(__name__)

# called from the processing worker thread; the publication marshals events to the loop
EventSink = Callable[[Any], None]
TransformFactory = Callable[[Profile, str, EventSink], FrameTransform]
Mode = Literal["forward", "process", "to_forward"]
# a member told their video is refused (too large) is told again at most this often
REFUSAL_NOTICE_INTERVAL_S = 10.0


def pass_through_factory(profile: Profile, display_name: str, on_event: EventSink) -> FrameTransform:
    return PassThrough()


class Publication:
    """One track a participant publishes. Forwards packets, or processes and encodes once."""

    def __init__(
        self,
        *,
        kind: Literal["audio", "video"],
        owner_id: str,
        receiver: RTCRtpReceiver,
        profile: Profile = Profile.NONE,
        transform_factory: TransformFactory = pass_through_factory,
        always_process: bool = False,
        display_name: str = "",
        on_event: Callable[[Publication, Any], None] | None = None,
        media_workers: MediaWorkers | None = None,
        on_refused: Callable[[Publication, str], None] | None = None,
    ) -> None:
        self.id = "TR_" + uuid.uuid4().hex[:12]
        self.kind = kind
        self.owner_id = owner_id
        self._receiver = receiver
        self._loop = asyncio.get_running_loop()
        self.fanout = Fanout(kind, self._request_keyframe)
        self._transform_factory = transform_factory
        self._display_name = display_name
        self._on_event = on_event
        self._on_refused = on_refused
        self._always_process = always_process
        # processing in a worker process (the server's default), else a thread in this one
        self._workers = media_workers
        self._processor: VideoProcessor | RemoteProcessor | None = None
        # in a worker process the RemoteProcessor stands in for the transform (set_profile)
        self._transform: FrameTransform | RemoteProcessor | None = None
        self._profile = profile
        self._bitrate_bps = DEFAULT_BITRATE_BPS
        self._max_size: tuple[int, int] | None = None
        # (bitrate, largest picture) its publisher was last asked to send (Room: publish_layer)
        self.publish_layer: tuple[int, tuple[int, int]] | None = None
        # held by the host (mute, stop video, pause): nothing is forwarded
        self.held = False
        self._mode: Mode = "forward"
        self.packets_in = 0
        # a keyframe claimed a picture size out of bounds (sfu/vp8.py): it and the frames
        # that follow it (which refer to it) are refused until an acceptable keyframe
        self._oversized = False
        self.refused_frames = 0
        self._refusal_noticed_at = -1e9
        self._source_keyframes = KeyframeLimiter(self._send_source_pli)
        # the hosts' own copy under a lighter profile, for a member who consented
        self.host_copy: HostCopy | None = None
        # the processed stream's packets, made once for every subscriber
        self._packetizer = Vp8Packetizer()
        # packets as they arrive: forwarded at once, or assembled into frames on their
        # marker bit for the processor (sfu/ingest.py)
        self._ingest = PacketIngest(kind, self._on_packet, on_frame=self._on_frame,
                                    need_keyframe=self._request_source_keyframe,
                                    send_nack=nack_sender(receiver))
        install_ingest(receiver, self._ingest)
        if kind == "video":
            self._apply_profile(profile)

    @property
    def profile(self) -> Profile:
        return self._profile

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def processor(self) -> VideoProcessor | RemoteProcessor | None:
        return self._processor

    @property
    def stream(self) -> tuple[int, tuple[int, int] | None]:
        """The encode-once stream's target bitrate and largest picture."""
        return self._bitrate_bps, self._max_size

    def subscribe(self, track: PacketTrack) -> None:
        track.attach(self.fanout)

    def set_profile(self, profile: Profile) -> None:
        """Applies from the next frame; never lets a raw frame through on the way."""
        if self.kind != "video":
            return
        changed = profile != self._profile
        self._profile = profile
        self._apply_profile(profile, changed=changed)

    def set_stream(self, bps: int, max_size: tuple[int, int] | None) -> None:
        """Bitrate and largest picture of the encode-once stream (see sfu/bitrate.py); a
        forwarded stream keeps the source's."""
        self._bitrate_bps = bps
        self._max_size = max_size
        if self._processor is not None:
            self._processor.set_stream(bps, max_size)
        if self.host_copy is not None:
            self.host_copy.set_stream(bps, max_size)

    def set_host_copy(self, profile: Profile | None) -> HostCopy | None:
        """Start (or change, or with None stop) the hosts' own copy under `profile`; returns
        the copy that was replaced, for the caller to close once no slot carries it."""
        if self.kind != "video":
            return None
        old = self.host_copy
        if old is not None and profile == old.profile:
            return None
        self.host_copy = None if profile is None else HostCopy(
            name=f"host-{self.id}", profile=profile, display_name=self._display_name,
            make_transform=lambda p: self._transform_factory(p, self._display_name,
                                                             no_events),
            request_source_keyframe=self._request_source_keyframe,
            media_workers=self._workers, bitrate_bps=self._bitrate_bps,
            max_size=self._max_size,
        )
        self._ingest.assemble = self._needs_frames()
        return old

    def _needs_frames(self) -> bool:
        """Whole frames are assembled while someone decodes this stream."""
        return self._mode != "forward" or (self.host_copy is not None
                                           and self.host_copy.needs_frames)

    def _apply_profile(self, profile: Profile, *, changed: bool = True) -> None:
        transform_profile = getattr(self._transform, "set_profile", None)
        if profile.needs_pixels or self._always_process:
            if self._processor is None and self._workers is not None:
                self._processor = self._transform = self._workers.open(
                    name=f"video-{self.id}",
                    profile=profile,
                    display_name=self._display_name,
                    bitrate_bps=self._bitrate_bps,
                    max_size=self._max_size,
                    emit=self._emit_processed,
                    request_source_keyframe=self._request_source_keyframe,
                    on_event=self._event_from_remote,
                )
            elif self._processor is None:
                self._transform = self._new_transform(profile)
                self._processor = VideoProcessor(
                    transform=self._transform,
                    emit=self._emit_processed,
                    request_source_keyframe=self._request_source_keyframe,
                    loop=self._loop,
                    name=f"video-{self.id}",
                    bitrate_bps=self._bitrate_bps,
                    max_size=self._max_size,
                )
            elif transform_profile is not None:
                transform_profile(profile)
                if changed:
                    self._new_epoch()
            elif isinstance(self._processor, VideoProcessor):
                # a transform that cannot change profile is replaced, never reused
                old, self._transform = self._transform, self._new_transform(profile)
                self._processor.set_transform(self._transform)
                self._new_epoch()
                if old is not None and not isinstance(old, RemoteProcessor):
                    old.close()
            if self._mode != "process":
                self._mode = "process"
                # the processor decodes whole frames, each released on its marker bit
                self._ingest.assemble = True
                # fail closed: raw packets still queued for subscribers must not go out now
                self.fanout.flush()
                self._processor.resync()
                # subscribers now wait for a keyframe: make the very next output one, so the
                # last raw picture does not stay frozen on their screens
                self._processor.request_keyframe()
                # the decoder must start from a fresh source keyframe
                self._request_source_keyframe()
        else:
            if transform_profile is not None:
                transform_profile(profile)
                if changed:
                    self._new_epoch()
            if self._mode == "process":
                # keep sending processed frames until the source's next keyframe, so
                # subscribers can switch streams without a broken picture
                self._mode = "to_forward"
                self._request_source_keyframe()

    def _new_epoch(self) -> None:
        """In this process, the rule a worker process follows (sfu/workers.py): output made
        before the profile changed is dropped, and the new profile's output starts at a
        keyframe. Runs after the transform has the new profile, so a frame tagged with the
        new epoch cannot have been made under the old one."""
        processor = self._processor
        if isinstance(processor, VideoProcessor):
            processor.epoch += 1
            processor.request_keyframe()

    def _new_transform(self, profile: Profile) -> FrameTransform:
        return self._transform_factory(profile, self._display_name, self._event_from_worker)

    def _event_from_remote(self, event: Any) -> None:
        # a worker process's event, already on the loop
        if self._on_event is not None:
            self._on_event(self, event)

    def _event_from_worker(self, event: Any) -> None:
        if self._on_event is None:
            return
        try:
            self._loop.call_soon_threadsafe(self._on_event, self, event)
        except RuntimeError:
            pass  # loop closed during shutdown

    def _on_packet(self, packet: MediaPacket) -> None:
        """A source packet, as it arrives (on the event loop)."""
        self.packets_in += 1
        if self.held:
            return
        allowed = self.kind != "video" or self._picture_allowed(packet)
        if self.host_copy is not None and allowed:
            self.host_copy.on_packet(packet)
        mode = self._mode
        if mode == "process":
            # the processor has it, as part of a frame (`_on_frame`); a refused picture goes
            # there too: the processor refuses it before its decoder and sends a placeholder
            return
        if mode == "forward":
            if allowed:
                self.fanout.publish(packet)
            return
        if packet.keyframe and allowed:
            # "to_forward": subscribers switch to the source at its keyframe
            self._mode = "forward"
            self._ingest.assemble = self._needs_frames()
            self.fanout.publish(packet)

    def _on_frame(self, frame: Frame) -> None:
        """A whole source frame, as soon as its last packet is in (processed streams)."""
        if self.held:
            return
        if self.host_copy is not None:
            self.host_copy.on_frame(frame)
        if self._mode == "forward" or self._processor is None:
            return
        data, timestamp, keyframe = frame
        packet = av.Packet(data)
        packet.pts = packet.dts = timestamp
        packet.time_base = VIDEO_TIME_BASE
        self._processor.submit(packet, keyframe)

    def _picture_allowed(self, packet: MediaPacket) -> bool:
        """False for a keyframe claiming a picture size out of bounds, and what follows it."""
        if packet.keyframe:
            at = packet.header_size
            size = vp8.keyframe_size(packet.payload[at:at + vp8.KEYFRAME_HEADER_BYTES])
            self._oversized = size is not None and not vp8.size_allowed(*size)
        if not self._oversized:
            return True
        if packet.frame_start:
            self.refused_frames += 1
        now = self._loop.time()
        if now - self._refusal_noticed_at >= REFUSAL_NOTICE_INTERVAL_S:
            self._refusal_noticed_at = now
            if self._on_refused is not None:
                self._on_refused(self, "picture_size")
        return False

    def _emit_processed(self, packet: av.Packet, keyframe: bool, epoch: int) -> None:
        # fail closed: drop what was made under an older profile, or finished after a switch
        # back to forwarding or a hold
        processor = self._processor
        if processor is None or epoch != processor.epoch or self._mode == "forward" or self.held:
            return
        for rtp in self._packetizer.packetize(bytes(packet), packet.pts or 0, keyframe):
            self.fanout.publish(rtp)

    def _request_keyframe(self) -> None:
        if self._mode == "forward" or self._processor is None:
            self._request_source_keyframe()
        else:
            self._processor.request_keyframe()

    def _request_source_keyframe(self) -> None:
        if self.kind == "video":
            self._source_keyframes.request()

    def _send_source_pli(self) -> None:
        # aiortc keeps PLI sending private; it is the documented way to ask for a keyframe
        send_pli = aiortc_compat.pli_sender(self._receiver)
        if send_pli is None:
            return
        # every SSRC heard lately: the media one, and the retransmission (RTX) one a browser
        # also sends on (bandwidth probes can come first). A PLI for the RTX SSRC is ignored;
        # one sent only there would leave late subscribers without a picture
        for source in self._receiver.getSynchronizationSources():
            task = asyncio.ensure_future(send_pli(source.source))
            task.add_done_callback(_log_task_error)

    def set_held(self, held: bool) -> None:
        """Stop or resume forwarding (host mute, stop video, pause)."""
        if held and not self.held:
            # the hold starts now: what subscribers have queued but not yet been sent (up to
            # 0.6 s of audio) must not go out after it
            self.fanout.flush()
            if self.host_copy is not None:
                self.host_copy.flush()
        if self.held and not held and self.kind == "video":
            self.held = False
            self._request_keyframe()
            if self.host_copy is not None:
                self.host_copy.resync()
        self.held = held

    @property
    def ingest(self) -> PacketIngest:
        """The source's packets as they arrive (its counters: packets, recovered, ...)."""
        return self._ingest

    async def aclose(self) -> None:
        self._ingest.detach()
        self._source_keyframes.close()
        self.fanout.close()
        if self.host_copy is not None:
            copy, self.host_copy = self.host_copy, None
            await copy.aclose()
        if self._processor is not None:
            processor, self._processor = self._processor, None
            await processor.aclose()
            if isinstance(processor, VideoProcessor):
                # in this process: what its pipeline frees goes back to the OS
                heap.trim_soon(self._loop)


def _log_task_error(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.debug("keyframe request failed: %s", task.exception())
