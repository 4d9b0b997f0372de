"""The contract with aiortc's private parts (sfu/aiortc_compat.py), checked on real objects.

An aiortc upgrade that renames, removes or changes any of them must fail here, loudly, and
not somewhere in the media path (a forwarded stream that silently decodes, a keyframe request
that goes nowhere, an offer whose sections we count differently from aiortc).
"""

from __future__ import annotations

import inspect
import queue

import aiortc
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.rtp import RTCP_PSFB_FIR, RTCP_PSFB_PLI, RtcpPsfbPacket

from sfu import aiortc_compat
from sfu.ice import rtc_configuration
from sfu.offers import check_offer
from tests.support.hostile_media import join_sdp, real_offer, split_sdp


def test_the_installed_aiortc_is_the_one_this_module_was_written_for() -> None:
    # on an upgrade: review every function in sfu/aiortc_compat.py, then change this
    assert aiortc.__version__.startswith(aiortc_compat.SUPPORTED_AIORTC + "."), (
        f"aiortc {aiortc.__version__}: re-check sfu/aiortc_compat.py against it")
    aiortc_compat.check_contract()


async def test_the_receiver_decoder_queue_can_be_replaced_before_it_starts() -> None:
    pc = RTCPeerConnection(rtc_configuration([]))
    try:
        receiver = pc.addTransceiver("video", direction="recvonly").receiver
        # the decoder thread is handed this queue when the receiver starts
        assert isinstance(aiortc_compat.decoder_queue(receiver), queue.Queue)
        ours: queue.Queue[object] = queue.Queue()
        aiortc_compat.replace_decoder_queue(receiver, ours)
        assert aiortc_compat.decoder_queue(receiver) is ours
        # and the decoder thread reads exactly that attribute
        source = inspect.getsource(type(receiver).receive)
        assert "self.__decoder_queue" in source and "decoder_worker" in source
    finally:
        await pc.close()


async def test_the_pli_sender_takes_a_media_ssrc() -> None:
    pc = RTCPeerConnection(rtc_configuration([]))
    try:
        receiver = pc.addTransceiver("video", direction="recvonly").receiver
        send = aiortc_compat.pli_sender(receiver)
        assert send is not None and inspect.iscoroutinefunction(send)
        assert list(inspect.signature(send).parameters) == ["media_ssrc"]
    finally:
        await pc.close()


async def test_a_subscribers_pli_and_fir_reach_the_routed_callback() -> None:
    pc = RTCPeerConnection(rtc_configuration([]))
    try:
        sender = pc.addTransceiver("video", direction="sendonly").sender
        asked: list[int] = []
        aiortc_compat.route_keyframe_requests(sender, lambda: asked.append(1))
        for fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            await sender._handle_rtcp_packet(  # noqa: SLF001
                RtcpPsfbPacket(fmt=fmt, ssrc=1, media_ssrc=sender._ssrc))  # noqa: SLF001
        assert asked == [1, 1]
    finally:
        await pc.close()


async def test_codecs_negotiated_from_an_offer_can_be_narrowed_before_the_answer() -> None:
    offer = await real_offer(("audio", "video"))
    pc = RTCPeerConnection(rtc_configuration([]))
    try:
        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        video = next(t for t in pc.getTransceivers() if t.kind == "video")
        assert set(aiortc_compat.negotiated_codec_names(video)) == {"vp8", "rtx"}
        aiortc_compat.keep_codecs(video, ("vp8",))
        assert aiortc_compat.negotiated_codec_names(video) == ["vp8"]
        await pc.setLocalDescription(await pc.createAnswer())
        assert "rtx/90000" not in pc.localDescription.sdp.split("m=video")[1]
    finally:
        await pc.close()


async def test_aiortc_parses_the_sections_our_check_counts() -> None:
    offer = await real_offer(("audio", "video"))
    checked = check_offer(offer, allowed={"audio": 1, "video": 1})
    parsed = aiortc_compat.parse_sdp(checked.sdp)
    assert [(m.kind, m.rtp.muxId) for m in parsed.media] == [
        (m.kind, m.mid) for m in checked.media]
    # and it still splits on a bare CR: why only CRLF text is ever handed to it
    session, sections = split_sdp(offer)
    bare_cr = join_sdp(session, sections).replace("\r\n", "\r")
    assert len(aiortc_compat.parse_sdp(bare_cr).media) == 2
