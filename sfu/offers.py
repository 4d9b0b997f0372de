"""What a client's SDP may contain, checked before aiortc applies any of it.

The check and aiortc must see the same lines: aiortc splits on every Unicode line break
(`str.splitlines`: a bare CR, VT, FF, FS, GS, RS, NEL, LS, PS), so a check that splits only on
LF can be shown one media section while aiortc applies many. Here the SDP must be ASCII with
CRLF (or LF) line ends and nothing else; it is rebuilt with CRLF, counted with aiortc's own
parser, and only that rebuilt text is handed to aiortc. Everything is refused before the peer
connection changes, because `setRemoteDescription` creates transceivers as it goes and a
failure half way would leave them behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from . import aiortc_compat
from .errors import ProtocolError

MAX_SDP_BYTES = 32 * 1024
# the longest line a browser writes is a candidate or an fmtp line (~200 bytes)
MAX_LINE_BYTES = 1024
# counted on the raw lines before parsing: a client never needs more than audio and video
MAX_MEDIA_SECTIONS = 4
# every remote candidate is paired and checked by ICE: a bound on that work. A browser on a
# laptop with VPN, IPv6 and TURN repeats ~13 candidates in each of its two sections
MAX_CANDIDATES = 64
# what each kind must be offered as (both legs of a forwarded stream use one codec)
REQUIRED_CODEC = {"audio": "opus", "video": "vp8"}
CODECS_KEPT = {"audio": ("opus",), "video": ("vp8", "rtx")}

# every line break str.splitlines knows, besides LF (and the CR of a CRLF)
OTHER_LINE_BREAKS = frozenset("\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


@dataclass(frozen=True)
class MediaSection:
    kind: str
    mid: str


@dataclass(frozen=True)
class CheckedSdp:
    """An SDP that passed: its CRLF text (the only text to hand aiortc) and its sections."""

    sdp: str
    media: tuple[MediaSection, ...]

    def count(self, kind: str) -> int:
        return sum(1 for m in self.media if m.kind == kind)


def _refuse(message: str, code: str = "bad_sdp") -> ProtocolError:
    return ProtocolError(message, code=code)


def canonical_sdp(sdp: object) -> str:
    """The SDP as CRLF lines, or a `bad_sdp` refusal: size, encoding, line breaks, lengths."""
    if not isinstance(sdp, str) or not sdp.strip():
        raise _refuse("field 'sdp' must be a non-empty string")
    if len(sdp) > MAX_SDP_BYTES:
        raise _refuse(f"SDP too large (limit {MAX_SDP_BYTES} bytes)")
    lines = sdp.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out = []
    for number, raw in enumerate(lines, 1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if any(ch in OTHER_LINE_BREAKS for ch in line):
            raise _refuse(f"SDP line {number} has a line break other than CRLF")
        if not line.isascii() or any(ord(ch) < 0x20 and ch != "\t" or ch == "\x7f"
                                     for ch in line):
            raise _refuse(f"SDP line {number} has a character that is not printable ASCII")
        if len(line) > MAX_LINE_BYTES:
            raise _refuse(f"SDP line {number} is longer than {MAX_LINE_BYTES} bytes")
        out.append(line)
    return "\r\n".join(out) + "\r\n"


def check_offer(
    sdp: object,
    *,
    allowed: Mapping[str, int],
    existing: Sequence[tuple[str, str | None]] = (),
) -> CheckedSdp:
    """Check an offer for a connection that may carry `allowed[kind]` tracks of each kind.

    `existing` lists the connection's transceivers as (kind, mid): aiortc maps a section to
    the transceiver of the same kind and mid, and makes a new transceiver for any other, so
    the limit counts the transceivers the connection would have after this offer.
    """
    text = canonical_sdp(sdp)
    lines = text.split("\r\n")
    sections = sum(1 for line in lines if line.startswith("m="))
    if sections == 0:
        raise _refuse("SDP has no media sections")
    if sections > MAX_MEDIA_SECTIONS:
        raise _refuse(f"SDP has {sections} media sections (at most {MAX_MEDIA_SECTIONS})",
                      "too_many_tracks")
    if sum(1 for line in lines if line.startswith("a=candidate:")) > MAX_CANDIDATES:
        raise _refuse(f"SDP has more than {MAX_CANDIDATES} ICE candidates")
    try:
        parsed = aiortc_compat.parse_sdp(text)
    except Exception as exc:  # aiortc asserts, indexes and converts as it parses
        raise _refuse(f"SDP could not be parsed ({type(exc).__name__})") from None
    if len(parsed.media) != sections:
        # cannot happen with CRLF lines; if aiortc ever splits otherwise, refuse
        raise _refuse("SDP media sections are ambiguous")
    media: list[MediaSection] = []
    mids: set[str] = set()
    for index, m in enumerate(parsed.media):
        where = f"media section {index}"
        if m.kind not in allowed:
            raise _refuse(f"{where}: {m.kind!r} media is not accepted here")
        if not 0 <= m.port <= 65535:
            raise _refuse(f"{where}: port {m.port} is out of range")
        mid = m.rtp.muxId
        if not mid:
            raise _refuse(f"{where}: no a=mid")
        if mid in mids:
            raise _refuse(f"{where}: duplicate a=mid {mid!r}")
        mids.add(mid)
        if m.ice is None or not m.ice.usernameFragment or not m.ice.password:
            raise _refuse(f"{where}: no ICE credentials (a=ice-ufrag, a=ice-pwd)")
        if m.dtls is None or not m.dtls.fingerprints:
            raise _refuse(f"{where}: no DTLS fingerprint (a=fingerprint)")
        if m.dtls.role is None:
            raise _refuse(f"{where}: no DTLS role (a=setup)")
        if not m.rtcp_mux:
            raise _refuse(f"{where}: RTCP must be multiplexed (a=rtcp-mux)")
        names = {c.mimeType.split("/")[-1].lower() for c in m.rtp.codecs}
        if REQUIRED_CODEC[m.kind] not in names:
            raise _refuse(f"{m.kind} must be offered as {REQUIRED_CODEC[m.kind].upper()}",
                          "codec_unsupported")
        media.append(MediaSection(m.kind, mid))
    _check_track_count(media, allowed, existing)
    return CheckedSdp(text, tuple(media))


def _check_track_count(
    media: Sequence[MediaSection], allowed: Mapping[str, int],
    existing: Sequence[tuple[str, str | None]],
) -> None:
    known = {mid: kind for kind, mid in existing if mid is not None}
    for section in media:
        kind = known.get(section.mid)
        if kind is not None and kind != section.kind:
            raise _refuse(f"a=mid {section.mid!r} was {kind}, now {section.kind}")
    for kind, limit in allowed.items():
        had = sum(1 for k, _ in existing if k == kind)
        new = sum(1 for s in media if s.kind == kind and s.mid not in known)
        if had + new > limit:
            what = "track" if limit == 1 else "tracks"
            raise _refuse(f"at most {limit} {kind} {what} may be sent here", "too_many_tracks")


class OfferBudget:
    """How many offers a participant may have applied: a token bucket.

    Each applied offer can start a privacy pipeline in a media worker that every room shares
    (its models take a good part of a second of CPU to load), so a client offering in a loop
    would slow everyone's video. A browser offers once or twice per admission or preview.
    """

    def __init__(self, *, burst: float = 6.0, per_s: float = 1 / 3,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = burst
        self.per_s = per_s
        self._clock = clock
        self._tokens = burst
        self._updated = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.per_s)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False
