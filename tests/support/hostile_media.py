"""Hostile SDP offers and VP8 frames, and a driver that sends them to a real server.

Everything starts from what a real aiortc client sends (its own offer, frames from a real VP8
encoder) and is then broken the ways an attacker would: line breaks that hide media sections,
hundreds of sections, huge attributes, duplicate MIDs, unknown codecs, missing ICE or DTLS
lines; keyframes claiming huge pictures, truncated partitions, garbage. Offers go over a real
signaling socket; frames go over a real aiortc peer connection into the server's media path.

Used by tests/sfu/test_hostile_media.py (a bounded run) and bench/fuzz_media.py (thousands).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fractions
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
import av
import numpy as np
import psutil
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from confidentiality.profiles import Profile
from sfu.grants import Permissions, mint_grant
from sfu.ice import rtc_configuration
from web.bot import Bot, _vp8_only, encode_clip

Path_ = Literal["publish", "preview"]

# every line break Python's str.splitlines knows besides LF and CRLF
LINE_BREAKS = ("\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")
# what a refused offer may be told; anything else (internal_error, a closed socket) is a defect
TYPED_REFUSALS = frozenset({
    "bad_sdp", "too_many_tracks", "codec_unsupported", "too_many_offers", "wrong_state",
    "bad_field", "not_admitted", "permission_denied",
})
ANSWER = "answer"


# --- SDP ------------------------------------------------------------------------------------
def _mids(sdp: str) -> tuple[str, ...]:
    return tuple(line[6:] for line in sdp.splitlines() if line.startswith("a=mid:"))


def split_sdp(sdp: str) -> tuple[list[str], list[list[str]]]:
    """Session lines and media sections of a CRLF SDP."""
    session: list[str] = []
    sections: list[list[str]] = []
    for line in sdp.rstrip("\r\n").split("\r\n"):
        if line.startswith("m="):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
        else:
            session.append(line)
    return session, sections


def join_sdp(session: list[str], sections: list[list[str]]) -> str:
    return "\r\n".join(session + [line for s in sections for line in s]) + "\r\n"


def _with_mid(section: list[str], mid: str) -> list[str]:
    return [f"a=mid:{mid}" if line.startswith("a=mid:") else line for line in section]


def _without(sdp: str, *prefixes: str) -> str:
    session, sections = split_sdp(sdp)
    keep = [line for line in session if not line.startswith(prefixes)]
    return join_sdp(keep, [[line for line in s if not line.startswith(prefixes)]
                           for s in sections])


def _video(sections: list[list[str]]) -> list[str]:
    return next(s for s in sections if s[0].startswith("m=video"))


@dataclass(frozen=True)
class SdpInput:
    """One hostile offer and what the server may answer: error codes, or ANSWER."""

    name: str
    sdp: Any
    expect: frozenset[str]


def _refused(name: str, sdp: Any, *codes: str) -> SdpInput:
    return SdpInput(name, sdp, frozenset(codes or ("bad_sdp",)))


def hidden_tracks(base: str, rng: random.Random, path: Path_) -> SdpInput:
    """The defect: later sections after a bare CR (or another line break) than LF."""
    session, sections = split_sdp(base)
    brk = rng.choice(LINE_BREAKS)
    hidden = [line for i in range(rng.randint(1, 18)) for line in _with_mid(_video(sections), f"h{i}")]
    text = join_sdp(session, sections)[:-2] + brk + brk.join(hidden) + "\r\n"
    return _refused(f"hidden_tracks[{ord(brk):#06x}]", text)


def visible_extra_track(base: str, rng: random.Random, path: Path_) -> SdpInput:
    session, sections = split_sdp(base)
    extra = [_with_mid(_video(sections), f"x{i}") for i in range(rng.randint(1, 2))]
    return _refused("extra_video_track", join_sdp(session, sections + extra), "too_many_tracks")


def many_sections(base: str, rng: random.Random, path: Path_) -> SdpInput:
    session, sections = split_sdp(base)
    count = rng.choice((5, 50, 200, 400))
    extra = [["m=video 9 UDP/TLS/RTP/SAVPF 96", "c=IN IP4 0.0.0.0", f"a=mid:m{i}", "a=rtcp-mux",
              "a=rtpmap:96 VP8/90000"] for i in range(count)]
    return _refused(f"sections[{count}]", join_sdp(session, sections + extra),
                    "bad_sdp", "too_many_tracks")


def huge_attribute(base: str, rng: random.Random, path: Path_) -> SdpInput:
    session, sections = split_sdp(base)
    size = rng.choice((1500, 8000, 20000, 31000))
    which = rng.choice(("x-fuzz", "ice-ufrag", "fingerprint", "ssrc", "fmtp"))
    line = {
        "x-fuzz": "a=x-fuzz:" + "A" * size,
        "ice-ufrag": "a=ice-ufrag:" + "u" * size,
        "fingerprint": "a=fingerprint:sha-256 " + ":".join(["AB"] * (size // 3)),
        "ssrc": "a=ssrc:1 cname:" + "c" * size,
        "fmtp": "a=fmtp:97 " + ";".join(f"p{i}=1" for i in range(size // 5)),
    }[which]
    _video(sections).append(line)
    return _refused(f"huge[{which},{size}]", join_sdp(session, sections))


def duplicate_mid(base: str, rng: random.Random, path: Path_) -> SdpInput:
    session, sections = split_sdp(base)
    if len(sections) == 1:
        sections.append(list(sections[0]))
    else:
        sections[1] = _with_mid(sections[1], next(
            line[6:] for line in sections[0] if line.startswith("a=mid:")))
    return _refused("duplicate_mid", join_sdp(session, sections))


def unknown_codec(base: str, rng: random.Random, path: Path_) -> SdpInput:
    choices = ["VP8/90000"] + (["opus/48000/2"] if "opus/" in base else [])
    codec = rng.choice(choices)
    name = "X-FUZZ/" + codec.split("/", 1)[1]
    return _refused(f"unknown_codec[{codec.split('/')[0]}]", base.replace(codec, name),
                    "codec_unsupported")


def extra_unknown_codec(base: str, rng: random.Random, path: Path_) -> SdpInput:
    # a codec we do not know beside VP8 is fine: it is left out of the answer
    session, sections = split_sdp(base)
    video = _video(sections)
    video[0] += " 120"
    video.append("a=rtpmap:120 X-FUZZ/90000")
    return SdpInput("extra_unknown_codec", join_sdp(session, sections), frozenset({ANSWER}))


def missing_line(base: str, rng: random.Random, path: Path_) -> SdpInput:
    prefix = rng.choice(("a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:", "a=setup:",
                         "a=rtcp-mux", "a=mid:"))
    return _refused(f"missing[{prefix.rstrip(':')}]", _without(base, prefix))


def bad_value(base: str, rng: random.Random, path: Path_) -> SdpInput:
    session, sections = split_sdp(base)
    video = _video(sections)
    which = rng.choice(("payload_type", "setup", "port", "rtpmap", "extmap", "candidate"))
    if which == "payload_type":
        video[0] = video[0].rsplit(" ", 1)[0] + rng.choice((" 300", " -1", " abc", " 1e3"))
    elif which == "setup":
        video[:] = [f"a=setup:{rng.choice(('holdconn', 'sideways', ''))}"
                    if line.startswith("a=setup:") else line for line in video]
    elif which == "port":
        video[0] = video[0].replace(video[0].split()[1], rng.choice(("x", "99999999999")), 1)
    elif which == "rtpmap":
        video.append("a=rtpmap:97")
    elif which == "extmap":
        video.append("a=extmap:notanumber urn:x")
    else:
        video.append("a=candidate:1 1 udp notapriority 127.0.0.1 9 typ host")
    return _refused(f"bad_value[{which}]", join_sdp(session, sections))


def many_candidates(base: str, rng: random.Random, path: Path_) -> SdpInput:
    session, sections = split_sdp(base)
    video = _video(sections)
    count = rng.choice((65, 120))
    video += [f"a=candidate:c{i} 1 udp {2130706431 - i} 127.0.0.{1 + i % 250} {10000 + i} typ host"
              for i in range(count)]
    return _refused(f"candidates[{count}]", join_sdp(session, sections))


def data_channel(base: str, rng: random.Random, path: Path_) -> SdpInput:
    session, sections = split_sdp(base)
    ice = [line for line in _video(sections)
           if line.startswith(("a=ice-", "a=fingerprint:", "a=setup:"))]
    sections.append(["m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "c=IN IP4 0.0.0.0",
                     "a=mid:dc", "a=sctp-port:5000", *ice])
    return _refused("data_channel", join_sdp(session, sections))


def odd_characters(base: str, rng: random.Random, path: Path_) -> SdpInput:
    ch = rng.choice(("\x00", "\x07", "\x1b", "\x7f", "é", "\u0663", "\ufeff", "\U0001d7d8"))
    at = rng.randrange(len(base))
    return _refused(f"character[{ord(ch):#x}]", base[:at] + ch + base[at:])


def not_an_sdp(base: str, rng: random.Random, path: Path_) -> SdpInput:
    value = rng.choice(("", "   ", "v=0", "m=video", "\r\n" * 50, 5, None, ["v=0"], {"sdp": 1}))
    codes = ("bad_sdp",) if isinstance(value, str) else ("bad_field",)
    return _refused(f"not_an_sdp[{type(value).__name__}]", value, *codes)


def random_edit(base: str, rng: random.Random, path: Path_) -> SdpInput:
    """Seeded edits of the real offer: the server may accept the result or refuse it, but
    must answer either way with something typed."""
    lines = base.rstrip("\r\n").split("\r\n")
    edits = []
    for _ in range(rng.randint(1, 4)):
        op = rng.choice(("delete", "duplicate", "swap", "truncate_line", "replace_char"))
        i = rng.randrange(len(lines))
        edits.append(op)
        if op == "delete" and len(lines) > 1:
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "truncate_line":
            lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
        elif lines[i]:
            k = rng.randrange(len(lines[i]))
            lines[i] = lines[i][:k] + chr(rng.randrange(0x21, 0x7F)) + lines[i][k + 1:]
    return SdpInput("random_edit[" + ",".join(sorted(set(edits))) + "]",
                    "\r\n".join(lines) + "\r\n", TYPED_REFUSALS | {ANSWER})


SDP_MUTATIONS: tuple[Callable[[str, random.Random, Path_], SdpInput], ...] = (
    hidden_tracks, hidden_tracks, visible_extra_track, many_sections, huge_attribute,
    duplicate_mid, unknown_codec, extra_unknown_codec, missing_line, missing_line, bad_value,
    many_candidates, data_channel, odd_characters, not_an_sdp, random_edit, random_edit,
)


async def real_offer(kinds: tuple[str, ...]) -> str:
    """What a real aiortc client offers for these kinds (send-only, VP8 and Opus)."""
    pc = RTCPeerConnection(rtc_configuration([]))
    try:
        for kind in kinds:
            _vp8_only(pc.addTransceiver(kind, direction="sendonly"))
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)
    finally:
        await pc.close()


# --- VP8 ------------------------------------------------------------------------------------
def real_clip(frames: int = 20, width: int = 320, height: int = 240) -> list[bytes]:
    """Real VP8 frames (a keyframe every 10) of a moving pattern."""
    out = []
    for i in range(frames):
        img = np.zeros((height, width, 3), np.uint8)
        img[:, (i * 7) % width:, 0] = 200
        img[(i * 5) % height:, :, 2] = 150
        out.append(img)
    return encode_clip(out, keyframe_every=10)


def with_size(keyframe: bytes, width: int, height: int) -> bytes:
    """A real keyframe whose header claims another picture size."""
    head = bytearray(keyframe)
    head[6:8] = (width & 0x3FFF).to_bytes(2, "little")
    head[8:10] = (height & 0x3FFF).to_bytes(2, "little")
    return bytes(head)


OVERSIZED = ((16383, 16383), (8192, 8192), (4096, 4096), (1921, 1089), (8000, 300), (0, 0),
             (1, 1), (15, 4000))


def hostile_frame(rng: random.Random, clip: list[bytes]) -> tuple[str, bytes]:
    """One hostile VP8 frame: (kind, payload)."""
    keyframe, inter = clip[0], clip[rng.randrange(1, len(clip))]
    kind = rng.choice(("oversized", "oversized", "truncated_keyframe", "truncated_inter",
                       "garbage", "garbage_keyframe", "flipped", "valid"))
    if kind == "oversized":
        return kind, with_size(keyframe, *rng.choice(OVERSIZED))
    if kind == "truncated_keyframe":
        return kind, keyframe[: rng.randint(1, len(keyframe) - 1)]
    if kind == "truncated_inter":
        return kind, inter[: rng.randint(1, max(1, len(inter) - 1))]
    if kind == "garbage":
        return kind, rng.randbytes(rng.randint(1, 3000))
    if kind == "garbage_keyframe":
        return kind, keyframe[:10] + rng.randbytes(rng.randint(0, 3000))
    if kind == "flipped":
        data = bytearray(keyframe)
        for _ in range(rng.randint(1, 40)):
            data[rng.randrange(10, len(data))] ^= 1 << rng.randrange(8)
        return kind, bytes(data)
    return kind, clip[rng.randrange(len(clip))]


class HostileVideoTrack(MediaStreamTrack):
    """Sends hostile VP8 frames (aiortc packetizes them as they are) at a steady rate."""

    kind = "video"

    def __init__(self, frames: Callable[[], tuple[str, bytes]], fps: int = 30) -> None:
        super().__init__()
        self._frames = frames
        self.fps = fps
        self.sent: collections.Counter[str] = collections.Counter()
        self._count = 0
        self._start: float | None = None

    async def recv(self) -> av.Packet:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self._count / self.fps - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        kind, data = self._frames()
        packet = av.Packet(data)
        packet.pts = int(self._count * 90000 / self.fps)
        packet.time_base = fractions.Fraction(1, 90000)
        self._count += 1
        self.sent[kind] += 1
        return packet


# --- a hostile member on a real socket ------------------------------------------------------
class HostileClient:
    """A member's signaling socket that sends exactly what it is told to."""

    def __init__(self, ws_url: str, grant: str) -> None:
        self.ws_url = ws_url
        self.grant = grant
        self.messages: list[dict[str, Any]] = []
        self.me: dict[str, Any] = {}
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._seen: asyncio.Event = asyncio.Event()
        self._next = 0
        self.closed_with: int | None = None
        self.pc: RTCPeerConnection | None = None
        # the mids of the last offer this connection accepted (its transceivers, by mid)
        self.accepted_mids: tuple[str, ...] | None = None

    async def join(self) -> dict[str, Any]:
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(self.ws_url, heartbeat=None)
        await self._ws.send_json({"type": "join", "v": 1, "grant": self.grant})
        self._reader = asyncio.ensure_future(self._read())
        joined = await self.wait_for(lambda m: m.get("type") in ("joined", "error"))
        if joined.get("type") != "joined":
            raise RuntimeError(f"join refused: {joined}")
        self.me = joined["participant"]
        return joined

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            self.messages.append(data)
            ref = data.get("ref")
            waiter = self._waiters.pop(str(ref), None) if ref is not None else None
            if waiter is not None and not waiter.done():
                waiter.set_result(data)
            self._seen.set()
        self.closed_with = self._ws.close_code

    async def wait_for(self, match: Callable[[dict[str, Any]], bool],
                       timeout_s: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        checked = 0
        while True:
            for msg in self.messages[checked:]:
                if match(msg):
                    return msg
            checked = len(self.messages)
            left = deadline - time.monotonic()
            if left <= 0 or self.closed_with is not None:
                raise TimeoutError(f"no such message (socket closed: {self.closed_with})")
            self._seen.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._seen.wait(), left)

    async def request(self, message: dict[str, Any], timeout_s: float = 20.0) -> dict[str, Any]:
        """Send with an id; the reply (answer or error) that names it."""
        assert self._ws is not None
        self._next += 1
        ref = f"h{self._next}"
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters[ref] = waiter
        await self._ws.send_str(json.dumps({**message, "id": ref}))
        try:
            return await asyncio.wait_for(waiter, timeout_s)
        finally:
            self._waiters.pop(ref, None)

    async def send(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        await self._ws.send_str(json.dumps(message))

    async def close(self, *, say_goodbye: bool = True) -> None:
        if self.pc is not None:
            with contextlib.suppress(Exception):
                await self.pc.close()
        if self._ws is not None and not self._ws.closed:
            if say_goodbye:
                with contextlib.suppress(Exception):
                    await self._ws.send_json({"type": "leave"})
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5.0)
        if self._session is not None:
            await self._session.close()


# --- measuring a server and its workers -----------------------------------------------------
@dataclass(frozen=True)
class ProcessFigures:
    threads: int
    rss_bytes: int
    worker_pids: tuple[int, ...]
    by_process: tuple[tuple[str, int, int], ...]  # (name, threads, rss)
    # thread names (Linux: /proc/PID/task/*/comm) over all the processes, to show what grew
    thread_names: collections.Counter[str] = field(default_factory=collections.Counter)

    def threads_gained(self, since: ProcessFigures) -> dict[str, int]:
        return {k: v for k, v in (self.thread_names - since.thread_names).items() if v}

    @property
    def rss_mib(self) -> float:
        return self.rss_bytes / 2**20

    def describe(self) -> str:
        parts = ", ".join(f"{n}: {t} threads {r / 2**20:.0f} MiB" for n, t, r in self.by_process)
        return f"{self.threads} threads, {self.rss_mib:.0f} MiB ({parts})"


def measure(server_pid: int) -> ProcessFigures:
    """Threads and RSS of the server process and its media worker processes."""
    server = psutil.Process(server_pid)
    rows = [("server", server.num_threads(), server.memory_info().rss)]
    workers = []
    for child in server.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            rows.append((f"worker {child.pid}", child.num_threads(), child.memory_info().rss))
            workers.append(child.pid)
    names: collections.Counter[str] = collections.Counter()
    for pid in (server_pid, *workers):
        for comm in Path(f"/proc/{pid}/task").glob("*/comm"):
            with contextlib.suppress(OSError):
                names[comm.read_text().strip()] += 1
    return ProcessFigures(sum(r[1] for r in rows), sum(r[2] for r in rows), tuple(workers),
                          tuple(rows), names)


class WitnessWatch:
    """Samples how many frames a subscriber gets from a publisher; the longest stall."""

    def __init__(self, subscriber: Bot, publisher_id: str, interval_s: float = 0.1) -> None:
        self.subscriber = subscriber
        self.publisher_id = publisher_id
        self.interval_s = interval_s
        self.longest_gap_s = 0.0
        self.started_at = 0.0
        self.frames_at_start = 0
        self.frames = 0
        self._task: asyncio.Task[None] | None = None

    def _count(self) -> int:
        peer = self.subscriber.peers.get(self.publisher_id)
        return peer.video_frames if peer is not None else 0

    async def _run(self) -> None:
        last_count, last_change = self._count(), time.monotonic()
        while True:
            await asyncio.sleep(self.interval_s)
            count, now = self._count(), time.monotonic()
            if count != last_count:
                last_count, last_change = count, now
            self.longest_gap_s = max(self.longest_gap_s, now - last_change)

    def start(self) -> None:
        self.started_at = time.monotonic()
        self.frames_at_start = self._count()
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        self.frames = self._count() - self.frames_at_start
        self.duration_s = time.monotonic() - self.started_at
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def fps(self) -> float:
        duration = getattr(self, "duration_s", 0.0)
        return self.frames / duration if duration else 0.0


# --- the driver -----------------------------------------------------------------------------
@dataclass
class FuzzReport:
    sdp_inputs: int = 0
    vp8_frames: int = 0
    members: int = 0
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    kinds: collections.Counter[str] = field(default_factory=collections.Counter)
    frame_kinds: collections.Counter[str] = field(default_factory=collections.Counter)
    video_refused_notices: int = 0
    unexpected: list[str] = field(default_factory=list)

    @property
    def inputs(self) -> int:
        return self.sdp_inputs + self.vp8_frames


class HostileDriver:
    """Sends hostile members, one after another, into a room of a running server.

    Each member joins (a host in the room sends it to the lobby when it is to use the preview
    path), sends a few mutated offers over its socket, and often then a real peer connection
    whose video is hostile VP8; then it leaves, or its socket simply drops.
    """

    def __init__(self, base_url: str, grant_secret: str, room: str, host: Bot, *,
                 seed: int = 1) -> None:
        self.ws_url = base_url.replace("http", "ws", 1) + "/rtc"
        self.grant_secret = grant_secret
        self.room = room
        self.host = host
        self.rng = random.Random(seed)
        self.report = FuzzReport()
        self.base: dict[Path_, str] = {}
        self.clip: list[bytes] = []
        self._member = 0

    async def prepare(self) -> None:
        self.base = {"publish": await real_offer(("audio", "video")),
                     "preview": await real_offer(("video",))}
        self.clip = await asyncio.to_thread(real_clip)

    def _note(self, problem: str) -> None:
        self.report.unexpected.append(problem)

    async def run(self, inputs: int) -> FuzzReport:
        """Send at least `inputs` hostile inputs (offers and frames)."""
        if not self.base:
            await self.prepare()
        target = self.report.inputs + inputs
        while self.report.inputs < target:
            await self.member(target - self.report.inputs)
        return self.report

    async def member(self, budget: int) -> None:
        rng = self.rng
        self._member += 1
        self.report.members += 1
        path: Path_ = rng.choice(("publish", "preview"))
        profile = rng.choice((Profile.BLUR, Profile.BLUR, Profile.FACE_MASK, Profile.NONE))
        grant = mint_grant(self.grant_secret, room=self.room, display_name=f"Hostile{self._member}",
                           profile=profile, permissions=Permissions(subscribe=False))
        client = HostileClient(self.ws_url, grant)
        await client.join()
        try:
            if path == "preview":
                await self.host.send({"type": "command", "name": "send_to_lobby",
                                      "target": client.me["id"]})
                await client.wait_for(lambda m: m.get("type") == "sent_to_lobby")
            if self._member % 2 == 0:
                # frames first, then offers against the live connection (renegotiations)
                budget -= await self._hostile_video(client, path, min(budget, rng.randint(20, 60)))
                offers = rng.randint(0, 6)
            else:
                offers = rng.randint(10, 40)
            for _ in range(min(budget, offers)):
                await self._offer(client, path)
                budget -= 1
        finally:
            await client.close(say_goodbye=rng.random() < 0.7)

    async def _offer(self, client: HostileClient, path: Path_) -> None:
        mutation = self.rng.choice(SDP_MUTATIONS)(self.base[path], self.rng, path)
        self.report.sdp_inputs += 1
        self.report.kinds[mutation.name.split("[")[0]] += 1
        try:
            reply = await client.request({"type": f"{path}_offer", "sdp": mutation.sdp})
        except TimeoutError:
            self._note(f"{mutation.name}: no reply (socket closed: {client.closed_with})")
            return
        expect = mutation.expect
        if client.accepted_mids not in (None, _mids(self.base[path])):
            # an earlier edit this connection accepted renamed a section: the same kind under
            # the real offer's mid is then one more transceiver, beyond what may be sent
            expect = expect | {"too_many_tracks"}
        if reply.get("type") == "error":
            code = str(reply.get("code"))
            self.report.outcomes[code] += 1
            if code not in expect and code != "too_many_offers":
                self._note(f"{mutation.name}: {code}: {reply.get('message')}")
        else:
            self.report.outcomes[ANSWER] += 1
            if ANSWER not in expect:
                self._note(f"{mutation.name}: accepted ({reply.get('type')})")
            elif isinstance(mutation.sdp, str):
                client.accepted_mids = _mids(mutation.sdp)

    async def _hostile_video(self, client: HostileClient, path: Path_, frames: int) -> int:
        """A real connection whose video is hostile; returns the inputs it sent."""
        track = HostileVideoTrack(lambda: hostile_frame(self.rng, self.clip))
        pc = client.pc = RTCPeerConnection(rtc_configuration([]))
        if path == "publish":
            # the same sections as the base offer, so later offers renegotiate this one
            _vp8_only(pc.addTransceiver("audio", direction="sendonly"))
        _vp8_only(pc.addTransceiver(track, direction="sendonly"))
        await pc.setLocalDescription(await pc.createOffer())
        reply = await client.request({"type": f"{path}_offer", "sdp": pc.localDescription.sdp})
        self.report.sdp_inputs += 1
        if reply.get("type") == "error":
            # the offer budget may be spent by the offers before it: a typed refusal
            self.report.outcomes[str(reply.get("code"))] += 1
            if reply.get("code") not in TYPED_REFUSALS:
                self._note(f"real offer: {reply}")
            return 1
        self.report.outcomes[ANSWER] += 1
        client.accepted_mids = _mids(pc.localDescription.sdp)
        await pc.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
        deadline = time.monotonic() + 20 + frames / track.fps
        while sum(track.sent.values()) < frames and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        sent = sum(track.sent.values())
        if sent < frames:
            self._note(f"hostile video: only {sent} of {frames} frames went out "
                       f"({pc.connectionState})")
        self.report.vp8_frames += sent
        self.report.frame_kinds.update(track.sent)
        await asyncio.sleep(0.3)  # let the last frames arrive before the member goes
        if track.sent["oversized"]:
            notices = [m for m in client.messages if m.get("code") == "video_refused"]
            self.report.video_refused_notices += len(notices)
        for msg in client.messages:
            if msg.get("type") == "error" and msg.get("code") == "internal_error":
                self._note(f"internal error: {msg}")
        return 1 + sent


# --- a whole run: a witness pair, hostile members, figures before and after ----------------
@dataclass
class LoadResult:
    report: FuzzReport
    baseline: ProcessFigures
    after: ProcessFigures
    settled_s: float
    elapsed_s: float
    witness_fps: float
    witness_longest_gap_s: float
    witness_fps_before: float
    worker_pids_before: tuple[int, ...]
    witness_errors: list[dict[str, Any]]

    def growth(self) -> tuple[float, float]:
        """(threads, RSS) after / baseline - 1."""
        return (self.after.threads / self.baseline.threads - 1,
                self.after.rss_bytes / self.baseline.rss_bytes - 1)

    def lines(self) -> list[str]:
        threads, rss = self.growth()
        r = self.report
        return [
            f"hostile inputs: {r.inputs} ({r.sdp_inputs} offers, {r.vp8_frames} VP8 frames) "
            f"from {r.members} members in {self.elapsed_s:.0f} s",
            "offer outcomes: " + ", ".join(f"{k} {v}" for k, v in r.outcomes.most_common()),
            "offer kinds: " + ", ".join(f"{k} {v}" for k, v in sorted(r.kinds.items())),
            "frame kinds: " + ", ".join(f"{k} {v}" for k, v in sorted(r.frame_kinds.items())),
            f"video_refused notices: {r.video_refused_notices}",
            f"baseline: {self.baseline.describe()}",
            f"after:    {self.after.describe()} (settled in {self.settled_s:.1f} s)",
            f"growth: threads {threads:+.1%}, RSS {rss:+.1%}"
            + (f" (threads gained: {gained})" if (gained := self.after.threads_gained(
                self.baseline)) else ""),
            f"witness: {self.witness_fps_before:.1f} fps before, {self.witness_fps:.1f} fps "
            f"during, longest gap {self.witness_longest_gap_s:.2f} s",
            f"unexpected: {len(r.unexpected)}" + "".join(f"\n  {u}" for u in r.unexpected[:20]),
        ]


# long enough for the last pipelines to close and their memory to be trimmed (sfu/heap.py)
SETTLE_MIN_S = 5.0


async def _settle(measure_now: Callable[[], ProcessFigures], baseline: ProcessFigures,
                  bound: float, timeout_s: float) -> tuple[ProcessFigures, float]:
    """Figures once threads and RSS are back within `bound` of baseline (or at timeout),
    measured no sooner than `SETTLE_MIN_S` after everyone left."""
    started = time.monotonic()
    await asyncio.sleep(SETTLE_MIN_S)
    while True:
        now = measure_now()
        ok = (now.threads <= baseline.threads * (1 + bound)
              and now.rss_bytes <= baseline.rss_bytes * (1 + bound))
        if ok or time.monotonic() - started > timeout_s:
            return now, time.monotonic() - started
        await asyncio.sleep(1.0)


async def hostile_load(base_url: str, grant_secret: str, server_pid: int, *, inputs: int,
                       warmup: int, seed: int = 1, bound: float = 0.10,
                       progress: Callable[[str], None] | None = None) -> LoadResult:
    """A witness pair streams (a blurred member, the host watching) while `inputs` hostile
    inputs arrive; threads and RSS of the server and its workers before and after."""
    say = progress or (lambda line: None)
    room = "hostile"
    witness = Bot(_link(base_url, grant_secret, "Robin", profile=Profile.BLUR),
                  video=_witness_video())
    host = Bot(_link(base_url, grant_secret, "Clinician", role="host"), publish=False,
               decode_video=False)
    await witness.connect()
    await host.connect()
    try:
        wid = witness.me["id"]
        deadline = time.monotonic() + 60
        while not (wid in host.peers and host.peers[wid].video_frames > 15):
            assert time.monotonic() < deadline, "the witness pair never streamed"
            await asyncio.sleep(0.1)
        before = WitnessWatch(host, wid)
        before.start()
        driver = HostileDriver(base_url, grant_secret, room, host, seed=seed)
        await driver.prepare()
        say(f"warm-up: {warmup} hostile inputs")
        await driver.run(warmup)
        await _wait_alone(host, wid)
        await asyncio.sleep(3.0)
        await before.stop()
        baseline = measure(server_pid)
        say(f"baseline: {baseline.describe()}")
        warm = driver.report
        driver.report = FuzzReport()
        watch = WitnessWatch(host, wid)
        watch.start()
        started = time.monotonic()
        while driver.report.inputs < inputs:
            await driver.member(inputs - driver.report.inputs)
            if driver.report.members % 10 == 0:
                say(f"{driver.report.inputs} inputs, witness longest gap "
                    f"{watch.longest_gap_s:.2f} s")
        elapsed = time.monotonic() - started
        await _wait_alone(host, wid)
        after, settled = await _settle(lambda: measure(server_pid), baseline, bound, 60.0)
        await watch.stop()
        driver.report.unexpected[:0] = warm.unexpected
        return LoadResult(driver.report, baseline, after, settled, elapsed, watch.fps,
                          watch.longest_gap_s, before.fps, baseline.worker_pids,
                          witness.errors + host.errors)
    finally:
        await witness.leave()
        await host.leave()


def _link(base_url: str, secret: str, name: str, **kw: Any) -> str:
    return f"{base_url}/room#grant=" + mint_grant(secret, room="hostile", display_name=name, **kw)


def _witness_video() -> MediaStreamTrack:
    from web.bot import ColorTrack

    return ColorTrack("red")


async def _wait_alone(host: Bot, witness_id: str, timeout_s: float = 60.0) -> None:
    """Until the host sees nobody but the witness (every hostile member has gone)."""
    deadline = time.monotonic() + timeout_s
    while set(host.participants) != {witness_id}:
        assert time.monotonic() < deadline, f"still in the room: {set(host.participants)}"
        await asyncio.sleep(0.2)
