"""`confide bot`: a headless participant that joins, publishes, subscribes and reports."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import math
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from confidentiality.frames import fit_size
from sfu import aiortc_compat
from sfu.ice import rtc_configuration, set_loopback_only

VIDEO_CLOCK = 90000
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 200, 30),
    "blue": (30, 30, 220),
    "yellow": (220, 220, 30),
    "magenta": (220, 30, 220),
    "cyan": (30, 220, 220),
}
STAMP_BITS = 32
STAMP_BLOCK = 16  # px: survives VP8 at our bitrates
# a join sent on to the server that runs the room (a typed `redirect`) is followed this often
MAX_REDIRECTS = 3


def classify_color(rgb_mean: np.ndarray) -> str:
    """The name of the test colour nearest to a frame's mean colour."""
    best, dist = "unknown", 1e9
    for name, ref in COLORS.items():
        d = float(np.linalg.norm(rgb_mean - np.array(ref, float)))
        if d < dist:
            best, dist = name, d
    return best if dist < 90 else "unknown"


def write_stamp(img: np.ndarray, value: int) -> None:
    """Draw a 32-bit value as black/white blocks along the top row (for latency)."""
    for bit in range(STAMP_BITS):
        on = (value >> bit) & 1
        x = bit * STAMP_BLOCK
        img[0:STAMP_BLOCK, x : x + STAMP_BLOCK] = 255 if on else 0


def read_stamp(img: np.ndarray) -> int | None:
    """The value write_stamp drew, or None when the picture is too narrow to hold it (a
    server's smaller layer for a large room is scaled, so its stamp is gone anyway)."""
    if img.shape[1] < STAMP_BITS * STAMP_BLOCK or img.shape[0] < STAMP_BLOCK:
        return None
    value = 0
    for bit in range(STAMP_BITS):
        x = bit * STAMP_BLOCK
        block = img[4 : STAMP_BLOCK - 4, x + 4 : x + STAMP_BLOCK - 4]
        if block.mean() > 127:
            value |= 1 << bit
    return value


class ColorTrack(MediaStreamTrack):
    """Solid colour video (optionally time-stamped) at a fixed rate."""

    kind = "video"

    def __init__(self, color: str = "red", *, width: int = 640, height: int = 480,
                 fps: int = 15, stamp: bool = False) -> None:
        super().__init__()
        self.color = color
        self.width, self.height, self.fps = width, height, fps
        self.stamp = stamp
        self._start: float | None = None
        self._count = 0
        self._base = self._painted(width, height)
        self._full = (width, height)

    def _painted(self, width: int, height: int) -> np.ndarray:
        base = np.zeros((height, width, 3), np.uint8)
        base[:, :] = COLORS[self.color]
        return base

    def set_max_size(self, width: int, height: int) -> None:
        """The server's `publish_layer`: send no larger than this, as a browser does."""
        w, h = fit_size(*self._full, width, height)
        if (w, h) != (self.width, self.height):
            self.width, self.height = w, h
            self._base = self._painted(w, h)

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        target = self._start + self._count / self.fps
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        img = self._base
        if self.stamp:
            img = self._base.copy()
            write_stamp(img, int(time.time() * 1000) & 0xFFFFFFFF)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = int(self._count * VIDEO_CLOCK / self.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        return frame


class ToneTrack(MediaStreamTrack):
    """A quiet sine tone, 20 ms frames, so receivers can measure an audio level."""

    kind = "audio"

    def __init__(self, freq_hz: float = 440.0, amplitude: float = 0.2) -> None:
        super().__init__()
        self.freq_hz = freq_hz
        self.amplitude = amplitude
        self._start: float | None = None
        self._samples = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        rate, n = 48000, 960
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self._samples / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        t = (np.arange(n) + self._samples) / rate
        pcm = (np.sin(2 * math.pi * self.freq_hz * t) * self.amplitude * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, rate)
        self._samples += n
        return frame


class FileVideoTrack(MediaStreamTrack):
    """A video file played in a loop at a steady rate with monotonic timestamps.

    aiortc's MediaPlayer restarts timestamps when it loops (a VP8 encoder then refuses the
    frames) and reads ahead without limit, so the file is read here one frame at a time.
    """

    kind = "video"

    def __init__(self, path: str, fps: int = 15) -> None:
        super().__init__()
        self.path = path
        self.fps = fps
        self._container: Any = None
        self._frames: Any = None
        self._start: float | None = None
        self._count = 0
        self._lock = threading.Lock()
        self._stopped = False

    def _read(self) -> av.VideoFrame:
        # runs in a worker thread: demuxing and decoding stay off the event loop; the lock
        # keeps stop() from closing the file under a decode in progress
        with self._lock:
            if self._stopped:
                raise MediaStreamError
            return self._read_locked()

    def _read_locked(self) -> av.VideoFrame:
        for _ in range(2):
            if self._frames is None:
                self._container = av.open(self.path)
                self._frames = self._container.decode(video=0)
            try:
                return next(self._frames)
            except StopIteration:
                self._container.close()
                self._container = self._frames = None
        raise MediaStreamError

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self._count / self.fps - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = await asyncio.to_thread(self._read)
        frame.pts = int(self._count * VIDEO_CLOCK / self.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        return frame

    def stop(self) -> None:
        super().stop()
        with self._lock:
            self._stopped = True
            if self._container is not None:
                self._container.close()
                self._container = self._frames = None


def encode_clip(frames: list[np.ndarray], *, keyframe_every: int = 15) -> list[bytes]:
    """Encode RGB frames to VP8 once (a keyframe every `keyframe_every` frames), for
    PreEncodedTrack: many publishers can then send real video without encoding it."""
    from sfu.encoder import Vp8EncodeOnce

    encoder = Vp8EncodeOnce()
    out: list[bytes] = []
    for i, rgb in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = i * 6000
        for packet, _ in encoder.encode(frame, keyframe=i % keyframe_every == 0):
            out.append(bytes(packet))
    return out


class PreEncodedTrack(MediaStreamTrack):
    """Loops already-encoded VP8 frames at a steady rate (aiortc sends packets as they are).

    A load test's publishers cost next to nothing this way, so the machine's cores measure
    the server rather than the test's own encoders.
    """

    kind = "video"

    def __init__(self, packets: list[bytes], fps: int = 15, *, size: tuple[int, int] = (640, 480),
                 smaller: dict[tuple[int, int], list[bytes]] | None = None) -> None:
        super().__init__()
        if not packets:
            raise ValueError("no packets to send")
        self.packets = packets
        self.fps = fps
        # the same clip encoded at smaller (width, height), each starting on a keyframe: what
        # a browser's encoder sends when the server asks for less (`set_max_size`)
        self._layers = {**(smaller or {}), size: packets}
        self._start: float | None = None
        self._count = 0
        self._offset = 0

    def set_max_size(self, width: int, height: int) -> None:
        """Send the largest encoding that fits (else the smallest), from its first frame."""
        fits = [s for s in self._layers if s[0] <= width and s[1] <= height]
        size = max(fits, key=lambda s: s[0] * s[1]) if fits else min(
            self._layers, key=lambda s: s[0] * s[1])
        if self._layers[size] is not self.packets:
            self.packets = self._layers[size]
            self._offset = self._count

    async def recv(self) -> av.Packet:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self._count / self.fps - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        packet = av.Packet(self.packets[(self._count - self._offset) % len(self.packets)])
        packet.pts = int(self._count * VIDEO_CLOCK / self.fps)
        packet.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        return packet


@dataclass
class PeerStats:
    """What this bot received from one remote participant."""

    participant_id: str
    display_name: str = ""
    video_frames: int = 0
    video_first_s: float | None = None
    video_last_s: float | None = None
    width: int = 0
    height: int = 0
    audio_frames: int = 0
    audio_rms: float = 0.0
    colors: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    # the last decoded frame's RTP timestamp as its sender numbered it: tells a frame sent
    # after a given moment from one still queued in this receiver from before it
    video_rtp_timestamp: int | None = None

    @property
    def fps(self) -> float:
        if self.video_frames < 2 or self.video_first_s is None or self.video_last_s is None:
            return 0.0
        span = self.video_last_s - self.video_first_s
        return (self.video_frames - 1) / span if span > 0 else 0.0

    @property
    def audio_level_dbfs(self) -> float:
        return 20 * math.log10(self.audio_rms) if self.audio_rms > 0 else -120.0

    def to_json(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        return {
            "participant_id": self.participant_id,
            "display_name": self.display_name,
            "video_frames": self.video_frames,
            "fps": round(self.fps, 2),
            "resolution": f"{self.width}x{self.height}" if self.width else None,
            "audio_frames": self.audio_frames,
            "audio_level_dbfs": round(self.audio_level_dbfs, 1),
            "colors": self.colors,
            "latency_ms_p50": round(lat[len(lat) // 2], 1) if lat else None,
        }


def parse_link(link: str) -> tuple[str, str]:
    """Split a join link into (signaling URL, grant)."""
    url = urllib.parse.urlsplit(link)
    params = urllib.parse.parse_qs(url.fragment)
    grant = (params.get("grant") or [""])[0]
    if not grant or url.scheme not in ("http", "https"):
        raise ValueError("not a Confide join link (expected …/room#grant=…)")
    scheme = "wss" if url.scheme == "https" else "ws"
    return urllib.parse.urlunsplit((scheme, url.netloc, "/rtc", "", "")), grant


def _vp8_only(transceiver: Any) -> None:
    caps = RTCRtpSender.getCapabilities(transceiver.kind).codecs
    names = ("vp8", "rtx") if transceiver.kind == "video" else ("opus",)
    transceiver.setCodecPreferences([c for c in caps if c.mimeType.split("/")[1].lower() in names])


class Bot:
    """A programmable participant: tests drive it directly, the CLI wraps it."""

    def __init__(
        self,
        link: str,
        *,
        video: MediaStreamTrack | None = None,
        audio: MediaStreamTrack | None = None,
        publish: bool = True,
        decode_video: bool = True,
        on_video_frame: Any = None,
        on_audio_frame: Any = None,
    ) -> None:
        self.ws_url, self.grant = parse_link(link)
        # where the link pointed: the socket may be sent on to the room's own server
        self.entry_url = self.ws_url
        self.redirects: list[str] = []
        self.video = video
        self.audio = audio
        self.publish = publish
        self.decode_video = decode_video
        # honour the server's `publish_layer` (send no larger than the gallery shows), as the
        # browser client does; off, the bot keeps its source's size whatever it is asked
        self.follow_publish_layer = True
        self.on_video_frame = on_video_frame
        self.on_audio_frame = on_audio_frame
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.pub_pc: RTCPeerConnection | None = None
        self.sub_pc: RTCPeerConnection | None = None
        self.ice_servers: list[dict[str, object]] = []
        self.me: dict[str, Any] = {}
        self.participants: dict[str, dict[str, Any]] = {}
        self.peers: dict[str, PeerStats] = {}
        self.self_view = PeerStats("self")
        self.messages: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.state = "new"
        self.resume: str | None = None
        self._mid_map: dict[str, dict[str, Any]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reader: asyncio.Task[None] | None = None
        self._joined = asyncio.Event()
        self._admitted = asyncio.Event()
        self._published = asyncio.Event()
        self._redirected = asyncio.Event()
        self.closed = asyncio.Event()

    # --- connection
    async def connect(self, timeout_s: float = 10.0, *, resume: str | None = None) -> None:
        """Join (following the server's redirects to the room's own server)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        for _ in range(MAX_REDIRECTS + 1):
            self._redirected = asyncio.Event()
            if self.session is None:
                self.session = aiohttp.ClientSession()
            self.ws = await self.session.ws_connect(self.ws_url, heartbeat=None, autoping=True)
            msg: dict[str, Any] = {"type": "join", "v": 1, "grant": self.grant}
            if resume:
                msg["resume"] = resume
            await self.ws.send_json(msg)
            self.closed.clear()
            self._reader = asyncio.ensure_future(self._read_loop())
            joined = asyncio.ensure_future(self._joined.wait())
            moved = asyncio.ensure_future(self._redirected.wait())
            try:
                await asyncio.wait({joined, moved}, return_when=asyncio.FIRST_COMPLETED,
                                   timeout=max(0.1, deadline - asyncio.get_running_loop().time()))
            finally:
                joined.cancel()
                moved.cancel()
            if self._joined.is_set():
                return
            if not self._redirected.is_set():
                raise TimeoutError("not joined in time")
            # the room runs elsewhere: the same grant and token go there
            await self.ws.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 2.0)
            self.ws_url = self.redirects[-1]
        raise TimeoutError("too many redirects")

    async def wait_admitted(self, timeout_s: float = 15.0) -> None:
        await asyncio.wait_for(self._admitted.wait(), timeout_s)

    async def wait_published(self, timeout_s: float = 15.0) -> None:
        await asyncio.wait_for(self._published.wait(), timeout_s)

    async def send(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send_json(message)

    async def _read_loop(self) -> None:
        assert self.ws is not None
        try:
            async for msg in self.ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                self.messages.append(data)
                try:
                    await self._handle(data)
                except Exception as exc:  # keep reading: report, don't die
                    self.errors.append({"type": "error", "code": "bot", "message": repr(exc)})
        finally:
            self.closed.set()

    async def _handle(self, data: dict[str, Any]) -> None:
        mtype = data.get("type")
        if mtype == "joined":
            self.me = data["participant"]
            self.ice_servers = data.get("ice_servers", [])
            self.resume = data.get("resume")
            self._set_roster(data.get("participants", []))
            self.state = self.me["state"]
            self._joined.set()
            if self.state == "admitted":
                await self._on_admitted()
        elif mtype == "admitted":
            self.state = "admitted"
            self._set_roster(data.get("participants", []))
            await self._on_admitted()
        elif mtype == "sent_to_lobby":
            self.state = "lobby"
            self._admitted.clear()
            self._published.clear()
            if self.pub_pc is not None:
                await self.pub_pc.close()
                self.pub_pc = None
        elif mtype in ("participant_joined", "participant_updated"):
            p = data["participant"]
            if p["id"] == self.me.get("id"):
                self.me = p
                return
            self.participants[p["id"]] = p
            self._peer(p["id"]).display_name = p["display_name"]
        elif mtype == "participant_left":
            self.participants.pop(data["participant_id"], None)
        elif mtype == "publish_answer":
            assert self.pub_pc is not None
            await self.pub_pc.setRemoteDescription(
                RTCSessionDescription(sdp=self.incoming_sdp("publish", data["sdp"]),
                                      type="answer")
            )
            self._published.set()
        elif mtype == "subscribe_offer":
            await self._on_subscribe_offer(data)
        elif mtype == "publish_layer":
            set_max_size = getattr(self.video, "set_max_size", None)
            if set_max_size is not None and self.follow_publish_layer:
                set_max_size(int(data["max_width"]), int(data["max_height"]))
        elif mtype == "redirect":
            url = str(data.get("url", ""))
            if url.startswith(("ws://", "wss://")):
                self.redirects.append(url)
                self._redirected.set()
        elif mtype == "error":
            self.errors.append(data)

    def _set_roster(self, people: list[dict[str, Any]]) -> None:
        for p in people:
            self.participants[p["id"]] = p
            self._peer(p["id"]).display_name = p["display_name"]

    def _peer(self, pid: str) -> PeerStats:
        if pid not in self.peers:
            self.peers[pid] = PeerStats(pid)
        return self.peers[pid]

    async def _on_admitted(self) -> None:
        self._admitted.set()
        if self.publish and (self.video is not None or self.audio is not None):
            await self.start_publishing()

    async def start_publishing(self) -> None:
        pc = self.pub_pc = RTCPeerConnection(rtc_configuration(self.ice_servers))
        if self.audio is not None:
            _vp8_only(pc.addTransceiver(self.audio, direction="sendonly"))
        if self.video is not None:
            _vp8_only(pc.addTransceiver(self.video, direction="sendonly"))
        await pc.setLocalDescription(await pc.createOffer())
        await self.send({"type": "publish_offer",
                         "sdp": self.outgoing_sdp("publish", pc.localDescription.sdp),
                         "id": "pub"})

    async def _on_subscribe_offer(self, data: dict[str, Any]) -> None:
        if self.sub_pc is None:
            pc = self.sub_pc = RTCPeerConnection(rtc_configuration(self.ice_servers))

            @pc.on("track")
            def on_track(track: MediaStreamTrack) -> None:
                transceiver = next(
                    (t for t in pc.getTransceivers() if t.receiver.track is track), None
                )
                mid = transceiver.mid if transceiver else None
                task = asyncio.ensure_future(self._consume(
                    track, mid, transceiver.receiver if transceiver else None))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        self._mid_map = dict(data.get("tracks", {}))
        await self.sub_pc.setRemoteDescription(RTCSessionDescription(
            sdp=self.incoming_sdp("subscribe", data["sdp"]), type="offer"))
        await self.sub_pc.setLocalDescription(await self.sub_pc.createAnswer())
        await self.send({"type": "subscribe_answer",
                         "sdp": self.outgoing_sdp("subscribe", self.sub_pc.localDescription.sdp)})

    # where a test puts something between this bot and the server (an impaired link)
    def outgoing_sdp(self, leg: str, sdp: str) -> str:
        """The SDP this bot sends on its `leg` ("publish" or "subscribe")."""
        return sdp

    def incoming_sdp(self, leg: str, sdp: str) -> str:
        """The SDP this bot applies from the server on its `leg`."""
        return sdp

    async def _consume(self, track: MediaStreamTrack, mid: str | None,
                       receiver: RTCRtpReceiver | None = None) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            # the slot may carry another participant after renegotiation: look up each time
            info = self._mid_map.get(mid or "", {})
            pid = info.get("participant_id")
            if not pid:
                continue
            # our own video comes back as the group sees it (self-view): kept apart
            peer = self.self_view if pid == self.me.get("id") else self._peer(pid)
            now = loop.time()
            if isinstance(frame, av.VideoFrame):
                peer.video_frames += 1
                peer.video_first_s = peer.video_first_s or now
                peer.video_last_s = now
                peer.width, peer.height = frame.width, frame.height
                if receiver is not None and frame.pts is not None:
                    peer.video_rtp_timestamp = aiortc_compat.sent_rtp_timestamp(
                        receiver, frame.pts)
                if self.decode_video:
                    img = frame.to_ndarray(format="rgb24")
                    center = img[STAMP_BLOCK * 2 :, :]
                    color = classify_color(center.reshape(-1, 3).mean(axis=0))
                    peer.colors[color] = peer.colors.get(color, 0) + 1
                    stamp = read_stamp(img)
                    if stamp is not None:
                        lat = ((int(time.time() * 1000) & 0xFFFFFFFF) - stamp) & 0xFFFFFFFF
                        if lat < 10_000:
                            peer.latencies_ms.append(float(lat))
                    if self.on_video_frame is not None:
                        self.on_video_frame(pid, img)
            elif isinstance(frame, av.AudioFrame):
                peer.audio_frames += 1
                pcm = frame.to_ndarray().astype(np.float32) / 32768.0
                rms = float(np.sqrt(np.mean(pcm**2))) if pcm.size else 0.0
                peer.audio_rms = 0.9 * peer.audio_rms + 0.1 * rms if peer.audio_frames > 1 else rms
                if self.on_audio_frame is not None:
                    self.on_audio_frame(pid, rms)

    def report(self) -> dict[str, Any]:
        return {
            "me": {"id": self.me.get("id"), "display_name": self.me.get("display_name"),
                   "state": self.state},
            "peers": [p.to_json() for p in self.peers.values()],
            "errors": self.errors,
        }

    async def leave(self) -> None:
        if self.ws is not None and not self.ws.closed:
            with contextlib.suppress(Exception):
                await self.ws.send_json({"type": "leave"})
        await self.close()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for pc in (self.pub_pc, self.sub_pc):
            if pc is not None:
                with contextlib.suppress(Exception):
                    await pc.close()
        self.pub_pc = self.sub_pc = None
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 2.0)
        if self.session is not None:
            await self.session.close()
        for track in (self.video, self.audio):
            if track is not None:
                track.stop()


async def run_bot(
    link: str,
    *,
    video: str | None = None,
    pattern: str | None = None,
    seconds: float = 10.0,
    json_output: bool = False,
    ice_loopback: bool = True,
) -> int:
    """Join, publish, subscribe for `seconds`, print what was received; 0 if all peers seen."""
    if ice_loopback:
        set_loopback_only(True)
    audio: MediaStreamTrack = ToneTrack()
    video_track: MediaStreamTrack
    if video:
        video_track = FileVideoTrack(video)
    else:
        video_track = ColorTrack("red" if pattern is None else "green", stamp=True)
    bot = Bot(link, video=video_track, audio=audio)
    try:
        await bot.connect()
        await asyncio.sleep(seconds)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        print(f"could not join: {type(exc).__name__}: {exc}")
        return 2
    finally:
        await bot.leave()
    report = bot.report()
    if json_output:
        print(json.dumps(report, indent=2))
    else:
        me = report["me"]
        print(f"joined as {me['display_name']} ({me['state']})")
        for peer in report["peers"]:
            print(
                f"  {peer['display_name'] or peer['participant_id']}: "
                f"video {peer['fps']} fps {peer['resolution'] or '-'}, "
                f"audio {peer['audio_level_dbfs']} dBFS ({peer['audio_frames']} frames)"
            )
        for err in report["errors"]:
            print(f"  error {err.get('code')}: {err.get('message')}")
    ok = not report["errors"] and all(p["video_frames"] > 0 for p in report["peers"])
    return 0 if ok else 1
