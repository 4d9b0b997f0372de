"""Every use of aiortc's private parts, in one place (aiortc 1.16).

aiortc has no public way to take encoded frames from a receiver, to send a PLI, to narrow a
transceiver's negotiated codecs after an offer, or to route a subscriber's keyframe request;
and its SDP parser, which we must agree with line for line, is not documented API. Each of
those lives here, and `tests/sfu/test_aiortc_compat.py` checks every one against the
installed aiortc, so an upgrade that changes them fails there, loudly, rather than somewhere
in the media path.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from aiortc import RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.sdp import SessionDescription

SUPPORTED_AIORTC = "1.16"

# name-mangled private attributes of RTCRtpReceiver
_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_DECODER_THREAD = "_RTCRtpReceiver__decoder_thread"


class AiortcContractError(RuntimeError):
    """The installed aiortc no longer has a private part Confide relies on."""


def parse_sdp(text: str) -> SessionDescription:
    """aiortc's own parser: the one `setRemoteDescription` uses, so what we count is what it
    will apply. Raises whatever the parser raises on bad input (callers catch Exception)."""
    return SessionDescription.parse(text)


def replace_decoder_queue(receiver: RTCRtpReceiver, replacement: queue.Queue[Any]) -> None:
    """Hand the receiver's reassembled frames to `replacement` instead of its decoder thread.

    Must run before the receiver starts (on the peer connection's "track" event): the
    decoder thread is given the queue when it starts.
    """
    if not hasattr(receiver, _DECODER_QUEUE):
        raise AiortcContractError("unsupported aiortc version: receiver has no decoder queue")
    if getattr(receiver, _DECODER_THREAD, None) is not None:
        raise RuntimeError("receiver already started: tap must be installed on the track event")
    setattr(receiver, _DECODER_QUEUE, replacement)


def decoder_queue(receiver: RTCRtpReceiver) -> queue.Queue[Any]:
    """The queue the receiver's decoder thread reads (ours, once replaced)."""
    found: queue.Queue[Any] = getattr(receiver, _DECODER_QUEUE)
    return found


PliSender = Callable[[int], Coroutine[Any, Any, None]]


def pli_sender(receiver: RTCRtpReceiver) -> PliSender | None:
    """The receiver's PLI sender (`await send(media_ssrc)`), or None if aiortc has none."""
    send: PliSender | None = getattr(receiver, "_send_rtcp_pli", None)
    return send


def negotiated_codec_names(transceiver: RTCRtpTransceiver) -> list[str]:
    """Lower-case codec names negotiated on the transceiver by the last remote offer."""
    return [c.mimeType.split("/")[1].lower() for c in transceiver._codecs]


def keep_codecs(transceiver: RTCRtpTransceiver, names: Sequence[str]) -> None:
    """Narrow the codecs negotiated from a remote offer to `names`, before the answer.

    `setCodecPreferences` only shapes our own offers; for an answer the offer's common codecs
    are already set, and both legs of a forwarded stream must use the same one.
    """
    transceiver._codecs = [
        c for c in transceiver._codecs if c.mimeType.split("/")[1].lower() in names
    ]


def route_keyframe_requests(sender: RTCRtpSender, request: Callable[[], None]) -> None:
    """A subscriber's PLI/FIR normally flags only the sender's own encoder; call `request`
    instead (the publication's one encoder, or its publisher)."""
    sender._send_keyframe = request  # type: ignore[method-assign]


def check_contract() -> None:
    """Raise AiortcContractError if a private part used above is missing (cheap, no I/O)."""
    missing = []
    if not hasattr(RTCRtpReceiver, "_send_rtcp_pli"):
        missing.append("RTCRtpReceiver._send_rtcp_pli")
    if not hasattr(RTCRtpSender, "_send_keyframe"):
        missing.append("RTCRtpSender._send_keyframe")
    if not hasattr(SessionDescription, "parse"):
        missing.append("aiortc.sdp.SessionDescription.parse")
    if missing:
        raise AiortcContractError("unsupported aiortc version: missing " + ", ".join(missing))
