"""The subscriber offer's text edits (sfu/subscriber_sdp.py), on a real aiortc offer."""

from __future__ import annotations

from aiortc import RTCPeerConnection

from sfu import aiortc_compat
from sfu.ice import rtc_configuration
from sfu.subscriber_sdp import ABS_SEND_TIME, subscriber_offer_sdp


async def test_each_publishers_sections_become_their_own_stream() -> None:
    pc = RTCPeerConnection(rtc_configuration([]))
    try:
        for kind in ("audio", "video", "audio", "video", "video"):
            pc.addTransceiver(kind, direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        before = aiortc_compat.parse_sdp(sdp).media
        # aiortc names every track as one stream
        assert len({m.msid.split(" ")[0] for m in before if m.msid}) == 1
        assert ABS_SEND_TIME in sdp
        mids = [m.rtp.muxId for m in before]
        streams = {mids[0]: "p_robin", mids[1]: "p_robin", mids[2]: "p_wren", mids[3]: "p_wren"}
        edited = subscriber_offer_sdp(sdp, streams)
        after = aiortc_compat.parse_sdp(edited).media
        assert [m.msid.split(" ")[0] for m in after[:4]] == [  # type: ignore[union-attr]
            "p_robin", "p_robin", "p_wren", "p_wren"]
        # the track ids are kept, and so is an idle slot's stream
        assert [m.msid.split(" ")[1] for m in after] == [  # type: ignore[union-attr]
            m.msid.split(" ")[1] for m in before]  # type: ignore[union-attr]
        assert after[4].msid == before[4].msid
        assert ABS_SEND_TIME not in edited and edited.endswith("\r\n")
        # nothing else changed
        strip = [line for line in sdp.splitlines()
                 if not line.startswith("a=msid:") and ABS_SEND_TIME not in line]
        assert [line for line in edited.splitlines() if not line.startswith("a=msid:")] == strip
    finally:
        await pc.close()
