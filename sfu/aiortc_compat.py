"""Every use of aiortc's private parts, in one place (aiortc 1.16).

aiortc has no public way to take packets or encoded frames from a receiver, to send a PLI or
a NACK, to narrow a transceiver's negotiated codecs after an offer, to route a subscriber's
keyframe request, or to send RTP packets it did not make itself (and answer the NACKs for
them, and report them in its sender reports, and read the receiver reports and REMB that come
back); and its SDP parser and RTCP packet classes, which we must agree with
line for line, is not documented API. Each of those lives here, and
`tests/sfu/test_aiortc_compat.py` checks every one against the installed aiortc, so an
upgrade that changes them fails there, loudly, rather than somewhere in the media path.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from aiortc import RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver, clock
from aiortc import rtcrtpreceiver as _receiver_module
from aiortc import rtp as _rtp
from aiortc.sdp import SessionDescription

SUPPORTED_AIORTC = "1.16"

# name-mangled private attributes of RTCRtpReceiver
_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_DECODER_THREAD = "_RTCRtpReceiver__decoder_thread"
_JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"
_TIMESTAMP_MAPPER = "_RTCRtpReceiver__timestamp_mapper"
# and of RTCRtpSender: what its sender reports (RTCP SR) say was sent
_SENDER_NTP = "_RTCRtpSender__ntp_timestamp"
_SENDER_RTP_TIMESTAMP = "_RTCRtpSender__rtp_timestamp"
_SENDER_OCTETS = "_RTCRtpSender__octet_count"
_SENDER_PACKETS = "_RTCRtpSender__packet_count"
_SENDER_COUNTERS = (_SENDER_NTP, _SENDER_RTP_TIMESTAMP, _SENDER_OCTETS, _SENDER_PACKETS)
MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"


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


def replace_jitter_buffer(receiver: RTCRtpReceiver, replacement: Any) -> None:
    """Hand every packet to `replacement.add(packet)` instead of aiortc's jitter buffer.

    aiortc calls it for each RTP packet, after decrypting it, unwrapping a retransmission
    (RTX) and noting gaps for its NACKs, and with the depayloaded data as `packet._data`; it
    expects `(send_a_pli, encoded_frame_or_None)` back. The buffer releases a frame only when
    the next begins (one frame interval late); ours forwards the packet at once.
    """
    if not hasattr(receiver, _JITTER_BUFFER):
        raise AiortcContractError("unsupported aiortc version: receiver has no jitter buffer")
    if getattr(receiver, _DECODER_THREAD, None) is not None:
        raise RuntimeError("receiver already started: install on the track event")
    setattr(receiver, _JITTER_BUFFER, replacement)


def jitter_buffer(receiver: RTCRtpReceiver) -> Any:
    """What the receiver hands its packets to (ours, once replaced)."""
    return getattr(receiver, _JITTER_BUFFER)


def sent_rtp_timestamp(receiver: RTCRtpReceiver, pts: int) -> int | None:
    """The RTP timestamp a frame this receiver decoded was sent with, or None before its
    first packet. aiortc counts a decoded frame's pts from the first timestamp it received
    (unwrapped); the sender's own numbering is what says when, in its stream, a frame was
    sent (a bot tells frames sent after a switch from frames still queued from before)."""
    origin = getattr(getattr(receiver, _TIMESTAMP_MAPPER, None), "_origin", None)
    if origin is None:
        return None
    return (pts + int(origin)) & 0xFFFFFFFF


NackSender = Callable[[int, list[int]], Coroutine[Any, Any, None]]


def nack_sender(receiver: RTCRtpReceiver) -> NackSender | None:
    """The receiver's NACK sender (`await send(media_ssrc, lost_sequence_numbers)`)."""
    send: NackSender | None = getattr(receiver, "_send_rtcp_nack", None)
    return send


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


def sender_ssrcs(sender: RTCRtpSender) -> tuple[int, int]:
    """The sender's media and retransmission SSRCs, as its SDP announces them."""
    return int(sender._ssrc), int(sender._rtx_ssrc)


def send_payload_types(transceiver: RTCRtpTransceiver) -> tuple[int, int | None]:
    """The payload type the sender sends (the first negotiated codec, as aiortc's sender
    uses) and its RTX payload type, if RTX was negotiated for it."""
    codecs = transceiver._codecs
    if not codecs:
        raise RuntimeError("no codec negotiated")
    media = codecs[0]
    rtx = next((c.payloadType for c in codecs
                if c.mimeType.lower().endswith("/rtx")
                and c.parameters.get("apt") == media.payloadType), None)
    if media.payloadType is None:
        raise RuntimeError("codec without a payload type")
    return int(media.payloadType), rtx


def mid_extension_id(transceiver: RTCRtpTransceiver) -> int | None:
    """The negotiated header extension id of the MID, if any."""
    for ext in transceiver._headerExtensions:
        if ext.uri == MID_URI:
            return int(ext.id)
    return None


SendRtp = Callable[[bytes], Coroutine[Any, Any, None]]


def rtp_sender(sender: RTCRtpSender) -> SendRtp:
    """Send a serialized RTP packet the way the sender does: SRTP-protected, over its
    (possibly bundled) transport. Raises ConnectionError while DTLS is not up."""

    def send(data: bytes) -> Coroutine[Any, Any, None]:
        return sender.transport._send_rtp(data)  # type: ignore[no-any-return]

    return send


def count_sent(sender: RTCRtpSender, rtp_timestamp: int, payload_bytes: int) -> None:
    """Record a packet sent past the sender's own loop, so its sender reports stay true (a
    receiver maps RTP time to wall-clock time and counts loss from them)."""
    setattr(sender, _SENDER_NTP, clock.current_ntp_time())
    setattr(sender, _SENDER_RTP_TIMESTAMP, rtp_timestamp)
    setattr(sender, _SENDER_OCTETS, getattr(sender, _SENDER_OCTETS) + payload_bytes)
    setattr(sender, _SENDER_PACKETS, getattr(sender, _SENDER_PACKETS) + 1)


Retransmit = Callable[[int], Coroutine[Any, Any, None]]


def answer_nacks(sender: RTCRtpSender, retransmit: Retransmit) -> None:
    """A subscriber's NACK for a sequence number calls `await retransmit(seq)`: the packets
    were sent past the sender's own loop, so only we have them."""
    sender._retransmit = retransmit  # type: ignore[method-assign,assignment]


RtcpObserver = Callable[[Any], None]


def observe_rtcp(sender: RTCRtpSender, observe: RtcpObserver) -> None:
    """Call `observe(packet)` with each RTCP packet routed to the sender (receiver reports,
    REMB, NACK, PLI), before aiortc handles it."""
    handle = sender._handle_rtcp_packet

    async def observed(packet: Any) -> None:
        try:
            observe(packet)
        finally:
            await handle(packet)

    sender._handle_rtcp_packet = observed  # type: ignore[method-assign]


def loss_reports(packet: Any) -> list[tuple[int, float]]:
    """(SSRC, fraction lost 0..1) for each report block of a receiver or sender report; an
    empty list for any other RTCP packet."""
    if not isinstance(packet, (_rtp.RtcpRrPacket, _rtp.RtcpSrPacket)):
        return []
    return [(int(r.ssrc), r.fraction_lost / 256) for r in packet.reports]


def remb(packet: Any) -> tuple[int, tuple[int, ...]] | None:
    """The receiver's estimate of its downlink (REMB) if `packet` is one: bits per second,
    and the streams (SSRCs) it was made from. A browser leaves audio out of it."""
    if not isinstance(packet, _rtp.RtcpPsfbPacket) or packet.fmt != _rtp.RTCP_PSFB_APP:
        return None
    try:
        bitrate, ssrcs = _rtp.unpack_remb_fci(packet.fci)
    except ValueError:
        return None
    return int(bitrate), tuple(int(s) for s in ssrcs)


def check_contract() -> None:
    """Raise AiortcContractError if a private part used above is missing (cheap, no I/O)."""
    missing = []
    if not hasattr(RTCRtpReceiver, "_send_rtcp_pli"):
        missing.append("RTCRtpReceiver._send_rtcp_pli")
    if not hasattr(RTCRtpSender, "_send_keyframe"):
        missing.append("RTCRtpSender._send_keyframe")
    for name in ("_retransmit", "_handle_rtcp_packet"):
        if not hasattr(RTCRtpSender, name):
            missing.append(f"RTCRtpSender.{name}")
    if not hasattr(_receiver_module, "TimestampMapper"):
        missing.append("aiortc.rtcrtpreceiver.TimestampMapper")
    if not hasattr(RTCRtpReceiver, "_send_rtcp_nack"):
        missing.append("RTCRtpReceiver._send_rtcp_nack")
    for name in ("RtcpRrPacket", "RtcpSrPacket", "RtcpPsfbPacket", "unpack_remb_fci",
                 "RTCP_PSFB_APP"):
        if not hasattr(_rtp, name):
            missing.append(f"aiortc.rtp.{name}")
    if not hasattr(SessionDescription, "parse"):
        missing.append("aiortc.sdp.SessionDescription.parse")
    if missing:
        raise AiortcContractError("unsupported aiortc version: missing " + ", ".join(missing))
