"""What the server's offer on a subscriber connection says beyond what aiortc writes.

Two edits, both to the text sent to the client (aiortc itself never reads them back):

- **One media stream per publisher.** aiortc names every track on a connection as part of
  one stream (`a=msid:<the connection's stream id> <track id>`). A browser keeps audio and
  video in sync per stream: with every member's audio and video in one stream, it pairs one
  audio track with the video and leaves the others unsynced, so only one member's lips
  would match their voice. Each publisher's sections are named as that publisher's own
  stream (its pseudonymous participant id, as the offer's track list already carries).
- **No abs-send-time.** It exists for the receiver's bandwidth estimate (REMB). On a
  subscriber leg nothing uses that estimate: forwarded and encode-once streams are one stream
  for every subscriber, and their size and rate follow the room (sfu/bitrate.py). Left in,
  the server would stamp every packet to every subscriber and every subscriber would run the
  estimator on every packet (a sixth of a test client's CPU in a 12-person room). A client
  answers only what was offered, so aiortc then sends no such extension on this leg.
"""

from __future__ import annotations

from collections.abc import Mapping

ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"


def subscriber_offer_sdp(sdp: str, streams: Mapping[str, str]) -> str:
    """`sdp` with each section whose mid is in `streams` named as that stream, and without
    abs-send-time. Sections not in `streams` (idle slots) keep aiortc's stream id."""
    out: list[str] = []
    section: list[str] = []

    def flush() -> None:
        mid = next((line[6:] for line in section if line.startswith("a=mid:")), None)
        stream = streams.get(mid) if mid is not None else None
        for line in section:
            if stream is not None and line.startswith("a=msid:"):
                parts = line[7:].split(" ", 1)
                track = parts[1] if len(parts) == 2 else ""
                line = f"a=msid:{stream} {track}".rstrip()
            out.append(line)
        section.clear()

    for line in sdp.splitlines():
        if line.startswith("a=extmap:") and ABS_SEND_TIME in line:
            continue
        if line.startswith("m="):
            flush()
        section.append(line)
    flush()
    return "\r\n".join(out) + "\r\n"
