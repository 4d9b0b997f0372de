"""Three aiortc participants in one room receive each other's video and audio."""

from __future__ import annotations

import asyncio

from sfu import aiortc_compat
from sfu.subscriber_sdp import ABS_SEND_TIME
from web.bot import Bot, ColorTrack, ToneTrack


async def _wait_for(predicate, timeout_s: float = 20.0, step_s: float = 0.1) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step_s)


async def test_three_participants_receive_each_others_video_and_audio(server) -> None:  # type: ignore[no-untyped-def]
    colors = {"Robin": "red", "Ash": "green", "Wren": "blue"}
    bots = {
        name: Bot(server.link("group", name), video=ColorTrack(color), audio=ToneTrack())
        for name, color in colors.items()
    }
    try:
        for bot in bots.values():
            await bot.connect()
        ids = {name: bot.me["id"] for name, bot in bots.items()}

        def everyone_sees_everyone() -> bool:
            for name, bot in bots.items():
                for other, pid in ids.items():
                    if other == name:
                        continue
                    peer = bot.peers.get(pid)
                    if peer is None or peer.video_frames < 10 or peer.audio_frames < 20:
                        return False
            return True

        await _wait_for(everyone_sees_everyone, 30.0)
        for name, bot in bots.items():
            assert not bot.errors, bot.errors
            for other, pid in ids.items():
                if other == name:
                    continue
                peer = bot.peers[pid]
                # the colour each receiver decodes is the one that publisher sent
                dominant = max(peer.colors, key=peer.colors.get)  # type: ignore[arg-type]
                assert dominant == colors[other], (name, other, peer.colors)
                assert (peer.width, peer.height) == (640, 480)
                assert peer.audio_level_dbfs > -30, peer.audio_level_dbfs
                assert peer.display_name == other
            # the subscriber leg carries no abs-send-time: nothing uses its bandwidth
            # estimate, so neither side pays for it per packet (the publisher leg keeps it)
            offers = [m["sdp"] for m in bot.messages if m.get("type") == "subscribe_offer"]
            assert offers and not any(ABS_SEND_TIME in sdp for sdp in offers)
            assert bot.sub_pc is not None and bot.sub_pc.localDescription is not None
            assert ABS_SEND_TIME not in bot.sub_pc.localDescription.sdp
            assert bot.pub_pc is not None and bot.pub_pc.remoteDescription is not None
            assert ABS_SEND_TIME in bot.pub_pc.remoteDescription.sdp
            # each publisher's audio and video are one stream of their own, the one a browser
            # keeps in sync (one stream for everyone would sync one member's lips only)
            last = [m for m in bot.messages if m.get("type") == "subscribe_offer"][-1]
            streams: dict[str, set[tuple[str, str]]] = {}
            for section in aiortc_compat.parse_sdp(last["sdp"]).media:
                info = last["tracks"].get(section.rtp.muxId)
                if info is not None:
                    assert section.msid is not None
                    streams.setdefault(section.msid.split(" ")[0], set()).add(
                        (info["participant_id"], section.kind))
            # (and the member's own picture as the group sees it, the self-view, on its own)
            expected = [{(pid, "audio"), (pid, "video")} if other != name else {(pid, "video")}
                        for other, pid in ids.items()]
            assert sorted(streams.values(), key=sorted) == sorted(expected, key=sorted), streams
    finally:
        for bot in bots.values():
            await bot.leave()


async def test_a_host_in_a_room_without_muting_on_entry_is_heard(server) -> None:  # type: ignore[no-untyped-def]
    # the room holds a muted host's audio; where the group's rule is not to mute on entry,
    # the host starts unmuted like everyone else, and a host bot that never presses a
    # button is heard
    host = Bot(server.link("heard", "Host", role="host"), video=ColorTrack("red"),
               audio=ToneTrack())
    member = Bot(server.link("heard", "Robin"), video=ColorTrack("blue"), audio=ToneTrack())
    try:
        await host.connect()
        await member.connect()
        host_id = host.me["id"]

        def heard() -> bool:
            peer = member.peers.get(host_id)
            return peer is not None and peer.audio_frames >= 20 and peer.video_frames >= 5

        await _wait_for(heard, 30.0)
        assert member.peers[host_id].audio_level_dbfs > -30
        assert not host.errors and not member.errors
    finally:
        await member.leave()
        await host.leave()
