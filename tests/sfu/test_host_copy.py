"""The clinician's own copy of a member's video (sfu/host_copy.py), without a network: its
fan-out takes only a host's slot, and a copy that needs no transform forwards the source's
packets with no second encode. The same paths with real peers and Haar on what each receives:
tests/session/test_clinician_view_live.py."""

from __future__ import annotations

import pytest

from confidentiality.profiles import Profile
from sfu.fanout import HostsOnly, PacketTrack
from sfu.host_copy import HostCopy
from sfu.media_packet import MediaPacket

KEY = b"\x10\x02\x00\x9d\x01\x2a\x40\x01\xf0\x00"  # a VP8 keyframe header: 320x240


def _keyframe(seq: int) -> MediaPacket:
    return MediaPacket(7, seq, seq * 100, True, b"\x90" + KEY, keyframe=True, frame_start=True,
                       header_size=1)


def _copy(profile: Profile) -> HostCopy:
    asked: list[int] = []
    return HostCopy(name="host-test", profile=profile, display_name="", media_workers=None,
                    make_transform=lambda p: pytest.fail("no transform for `none`"),
                    request_source_keyframe=lambda: asked.append(1), bitrate_bps=300_000,
                    max_size=None)


async def test_a_peer_slot_cannot_be_attached_to_the_host_copy() -> None:
    copy = _copy(Profile.NONE)
    peer, host = PacketTrack("video"), PacketTrack("video", for_host=True)
    with pytest.raises(HostsOnly):
        peer.attach(copy.fanout)
    assert peer.fanout is None and copy.fanout.subscriber_count == 0
    host.attach(copy.fanout)
    assert host.fanout is copy.fanout
    # the lighter view reaches the host's slot and nothing the peer holds
    copy.on_packet(_keyframe(1))
    assert len(host._queue) == 1 and len(peer._queue) == 0  # noqa: SLF001
    await copy.aclose()
    assert host.fanout is None


async def test_a_copy_that_needs_no_transform_forwards_packets_and_encodes_nothing() -> None:
    copy = _copy(Profile.NONE)
    assert not copy.second_encode and not copy.needs_frames
    host = PacketTrack("video", for_host=True)
    host.attach(copy.fanout)
    packet = _keyframe(5)
    copy.on_packet(packet)
    # the very payload, not a re-encode of it
    assert host._queue[0][3] is packet.payload  # noqa: SLF001
    copy.on_frame((b"frame", 500, True))  # no decoder: whole frames are not wanted
    assert len(host._queue) == 1  # noqa: SLF001
    await copy.aclose()
    copy.on_packet(_keyframe(6))
    assert host.fanout is None and len(host._queue) == 0  # noqa: SLF001
