"""The contract with aiortc's private parts (sfu/aiortc_compat.py), checked on real objects.

An aiortc upgrade that renames, removes or changes any of them must fail here, loudly, and
not somewhere in the media path (a forwarded stream that silently decodes, a keyframe request
that goes nowhere, an offer whose sections we count differently from aiortc).
"""

from __future__ import annotations

import asyncio
import inspect
import queue

import aiortc
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
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    pack_remb_fci,
)

from sfu import aiortc_compat
from sfu.encoder import Vp8EncodeOnce
from sfu.fanout import Fanout, PacketTrack
from sfu.ice import rtc_configuration
from sfu.offers import check_offer
from sfu.packetizer import Vp8Packetizer
from tests.support.hostile_media import join_sdp, real_offer, split_sdp
from web.bot import ColorTrack


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


async def _connected_pair(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)


async def test_the_jitter_buffer_can_be_replaced_and_gets_every_packet_as_it_arrives() -> None:
    sender_pc = RTCPeerConnection(rtc_configuration([]))
    receiver_pc = RTCPeerConnection(rtc_configuration([]))
    got: list[object] = []

    class Buffer:
        def add(self, packet: object) -> tuple[bool, None]:
            got.append(packet)
            return False, None

    try:
        sender_pc.addTransceiver(ColorTrack("red"), direction="sendonly")

        @receiver_pc.on("track")
        def on_track(track: object) -> None:
            receiver = next(t.receiver for t in receiver_pc.getTransceivers()
                            if t.receiver.track is track)
            aiortc_compat.replace_jitter_buffer(receiver, Buffer())
            assert isinstance(aiortc_compat.jitter_buffer(receiver), Buffer)
            # the NACK sender takes the media SSRC and the lost sequence numbers
            send_nack = aiortc_compat.nack_sender(receiver)
            assert send_nack is not None and inspect.iscoroutinefunction(send_nack)
            assert list(inspect.signature(send_nack).parameters) == ["media_ssrc", "lost"]

        await _connected_pair(sender_pc, receiver_pc)
        for _ in range(100):
            if len(got) > 10:
                break
            await asyncio.sleep(0.05)
        packet = got[0]
        # what PacketIngest reads of each packet, after aiortc decrypted and unwrapped it
        for name in ("sequence_number", "timestamp", "marker", "payload", "ssrc"):
            assert hasattr(packet, name), name
        assert isinstance(packet.payload, bytes) and packet.payload  # type: ignore[attr-defined]
        # and the jitter buffer is called where aiortc's own would have reassembled frames
        source = inspect.getsource(RTCRtpReceiver._handle_rtp_packet)
        assert "self.__jitter_buffer.add(packet)" in source
        assert source.index("unwrap_rtx") < source.index("__jitter_buffer.add")
        assert source.index("__nack_generator") < source.index("__jitter_buffer.add")
    finally:
        await sender_pc.close()
        await receiver_pc.close()


async def test_a_slot_sends_its_own_packets_through_the_sender_and_answers_nacks() -> None:
    server = RTCPeerConnection(rtc_configuration([]))
    client = RTCPeerConnection(rtc_configuration([]))
    decoded: list[av.VideoFrame] = []
    seen_rtcp: list[object] = []
    try:
        transceiver = server.addTransceiver("video", direction="sendonly")
        transceiver.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                                         if c.mimeType.split("/")[1].lower() in ("vp8", "rtx")])
        slot = PacketTrack("video")
        slot.bind(transceiver)
        transceiver.sender.replaceTrack(slot)
        aiortc_compat.observe_rtcp(transceiver.sender, seen_rtcp.append)

        async def consume(track: MediaStreamTrack) -> None:
            while True:
                try:
                    decoded.append(await track.recv())  # type: ignore[arg-type]
                except MediaStreamError:
                    return

        tasks: list[asyncio.Task[None]] = []
        client.on("track", lambda track: tasks.append(asyncio.ensure_future(consume(track))))
        await _connected_pair(server, client)
        # what the SDP announced is what the slot sends with
        ssrc, rtx_ssrc = aiortc_compat.sender_ssrcs(transceiver.sender)
        sdp = server.localDescription.sdp
        assert f"a=ssrc-group:FID {ssrc} {rtx_ssrc}" in sdp
        pt, rtx_pt = aiortc_compat.send_payload_types(transceiver)
        assert f"a=rtpmap:{pt} VP8/90000" in sdp and f"a=fmtp:{rtx_pt} apt={pt}" in sdp
        ext_id = aiortc_compat.mid_extension_id(transceiver)
        assert f"a=extmap:{ext_id} {aiortc_compat.MID_URI}" in sdp

        fanout = Fanout("video", lambda: None)
        slot.attach(fanout)
        packetizer = Vp8Packetizer()
        encoder = Vp8EncodeOnce()
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(np.full((240, 320, 3), 10 * i, np.uint8),
                                               format="rgb24")
            frame.pts = i * 6000
            for packet, key in encoder.encode(frame, keyframe=i == 0):
                for rtp in packetizer.packetize(bytes(packet), i * 6000, key):
                    fanout.publish(rtp)
            await asyncio.sleep(1 / 15)
        for _ in range(60):
            if len(decoded) >= 15:
                break
            await asyncio.sleep(0.05)
        # the client's own aiortc decoded what the slot sent past the sender's own loop
        assert len(decoded) >= 15 and (decoded[0].width, decoded[0].height) == (320, 240)
        stats = await transceiver.sender.getStats()
        outbound = next(s for s in stats.values() if s.type == "outbound-rtp")
        # the sender's reports count what the slot sent
        assert outbound.packetsSent == slot.writer.packets_sent > 0
        assert outbound.bytesSent == slot.writer.octets_sent
        # a NACK routed to the sender reaches the slot's history (and RTCP is observed first)
        nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=ssrc)
        last = slot.writer._last_sent_seq  # noqa: SLF001
        assert last is not None
        nack.lost = [last]
        await transceiver.sender._handle_rtcp_packet(nack)  # noqa: SLF001
        assert slot.writer.retransmitted == 1 and seen_rtcp[-1] is nack
        # the client's receiver reports come back to the sender: loss per stream, as the
        # downlink estimate reads it (sfu/downlink.py)
        for _ in range(60):
            if any(aiortc_compat.loss_reports(p) for p in seen_rtcp):
                break
            await asyncio.sleep(0.05)
        reports = [r for p in seen_rtcp for r in aiortc_compat.loss_reports(p)]
        assert reports and all(0.0 <= lost <= 1.0 for _, lost in reports), reports
        assert ssrc in {reported for reported, _ in reports}
        assert aiortc_compat.loss_reports(nack) == [] and aiortc_compat.remb(nack) is None
        remb = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0,
                              fci=pack_remb_fci(300_000, [ssrc]))
        assert aiortc_compat.remb(remb) == (300_000, (ssrc,))
        for task in tasks:
            task.cancel()
    finally:
        await server.close()
        await client.close()


async def test_a_decoded_frame_gives_back_the_rtp_timestamp_it_was_sent_with() -> None:
    # the receiver counts pts from its first timestamp; the sender's numbering is recovered
    sender_pc = RTCPeerConnection(rtc_configuration([]))
    receiver_pc = RTCPeerConnection(rtc_configuration([]))
    on_wire: set[int] = set()
    decoded: list[int | None] = []
    tasks: list[asyncio.Task[None]] = []

    async def consume(track: MediaStreamTrack, receiver: RTCRtpReceiver) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            assert frame.pts is not None
            decoded.append(aiortc_compat.sent_rtp_timestamp(receiver, frame.pts))

    try:
        sender_pc.addTransceiver(ColorTrack("red"), direction="sendonly")

        @receiver_pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            receiver = next(t.receiver for t in receiver_pc.getTransceivers()
                            if t.receiver.track is track)
            buffer = aiortc_compat.jitter_buffer(receiver)
            real_add = buffer.add

            def add(packet: object) -> object:
                on_wire.add(packet.timestamp)  # type: ignore[attr-defined]
                return real_add(packet)

            buffer.add = add
            tasks.append(asyncio.ensure_future(consume(track, receiver)))

        await _connected_pair(sender_pc, receiver_pc)
        for _ in range(100):
            if len(decoded) > 5:
                break
            await asyncio.sleep(0.05)
        assert len(decoded) > 5
        # aiortc's own sender starts at a random timestamp, so a match is no accident
        assert all(ts in on_wire for ts in decoded), (decoded, sorted(on_wire)[:5])
    finally:
        await sender_pc.close()
        await receiver_pc.close()
        for task in tasks:
            task.cancel()
