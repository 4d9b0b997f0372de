"""Focus in a live room of real aiortc peers: under the group's rule a member receives the
clinician's video and no other member's (an independent Haar detector finds the clinician's
face in what they receive and counts no frame from the other member), while everyone still
hears everyone and the clinician sees every member. Switched off and on again by the host,
the members' slots follow at once."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from tests.support.faces import (
    astronaut_frames,
    face_box_in_source,
    faces_overlapping,
    haar_faces,
    write_y4m,
)
from tests.support.live_session import live_session
from tests.support.member_bot import agree, redeemed_bot
from web.bot import Bot, ColorTrack, FileVideoTrack, ToneTrack

RULES = {"focus": True, "minimum_profile": "none", "muted_on_entry": False,
         "allowed_profiles": ["none", "blur", "camera_off"], "lobby_required": True}
FACE = face_box_in_source("static", 0, 30)


async def _wait_for(predicate: Any, timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


def _faces(frames: list[np.ndarray]) -> int:
    # Haar has false positives elsewhere (the suit): look only where the face really is
    return sum(bool(faces_overlapping(haar_faces(img), FACE)) for img in frames)


def _video_slots_from(bot: Bot, publisher_id: str) -> list[str]:
    """Every slot any subscribe offer to `bot` pointed at `publisher_id`'s video."""
    return [mid for m in bot.messages if m.get("type") == "subscribe_offer"
            for mid, t in m["tracks"].items()
            if t.get("participant_id") == publisher_id and t.get("kind") == "video"]


async def _member(base_url: str, token: str, video: Any,
                  frames: dict[str, list[np.ndarray]]) -> Bot:
    bot = await redeemed_bot(base_url, token, video=video, audio=ToneTrack(),
                             on_video_frame=lambda pid, img: frames[pid].append(img))
    await agree(bot)
    return bot


async def test_focus_members_receive_only_the_clinicians_video(server: Any, tmp_path: Path) -> None:
    clip = write_y4m(tmp_path / "face.y4m", astronaut_frames("static", 30))
    live = await live_session(server, rules=RULES)
    host_frames: dict[str, list[np.ndarray]] = defaultdict(list)
    wren_frames: dict[str, list[np.ndarray]] = defaultdict(list)
    robin_frames: dict[str, list[np.ndarray]] = defaultdict(list)
    host = Bot(f"{live.base_url}/room#grant={await live.host_grant()}",
               video=FileVideoTrack(str(clip)), audio=ToneTrack(),
               on_video_frame=lambda pid, img: host_frames[pid].append(img))
    bots = [host]
    try:
        await host.connect()
        tokens = {name: link.rsplit("/", 1)[1] for name, link in live.session.links.items()}
        robin = await _member(live.base_url, tokens["Robin"], FileVideoTrack(str(clip)),
                              robin_frames)
        wren = await _member(live.base_url, tokens["Wren"], ColorTrack("green"), wren_frames)
        bots += [robin, wren]
        await _wait_for(lambda: any(m.get("type") == "lobby" and len(m["waiting"]) >= 2
                                    for m in host.messages), 20)
        await host.send({"type": "command", "name": "admit_all", "id": "all"})
        await _wait_for(lambda: robin.state == "admitted" and wren.state == "admitted", 20)
        admitted = [m for m in wren.messages if m.get("type") == "admitted"]
        assert admitted and admitted[0]["focus"] is True
        host_id, robin_id, wren_id = host.me["id"], robin.me["id"], wren.me["id"]

        # the clinician sees every member; members see the clinician; all hear all
        await _wait_for(lambda: len(wren_frames[host_id]) >= 30
                        and len(host_frames[robin_id]) >= 30
                        and len(robin_frames[host_id]) >= 30, 90)
        await _wait_for(lambda: wren.peers.get(robin_id) is not None
                        and wren.peers[robin_id].audio_frames > 50, 30)
        assert _faces(wren_frames[host_id][-20:]) >= 4
        assert _faces(host_frames[robin_id][-20:]) >= 4
        # ...and no member ever received another member's video: not a frame, not a slot
        assert wren_frames[robin_id] == [] and robin_frames[wren_id] == []
        assert _video_slots_from(wren, robin_id) == [] and _video_slots_from(robin, wren_id) == []
        assert live.disagreements() == []

        # the host switches Focus off: the members see each other again
        await host.send({"type": "command", "name": "focus_off", "id": "off"})
        await _wait_for(lambda: len(wren_frames[robin_id]) >= 30, 60)
        assert _faces(wren_frames[robin_id][-20:]) >= 4
        assert any(m.get("type") == "room_focus" and m["focus"] is False for m in wren.messages)

        # and on again: from the moment it is on, Robin's picture stops reaching Wren
        await host.send({"type": "command", "name": "focus_on", "id": "on"})
        await _wait_for(lambda: any(m.get("type") == "room_focus" and m["focus"] is True
                                    for m in wren.messages), 10)
        await asyncio.sleep(1.0)  # packets already on the wire when the slot was detached
        settled = len(wren_frames[robin_id])
        host_before = len(wren_frames[host_id])
        # while 30 more of the clinician's frames arrive, not one of Robin's does
        await _wait_for(lambda: len(wren_frames[host_id]) >= host_before + 30, 60)
        assert len(wren_frames[robin_id]) == settled
        last = [m for m in wren.messages if m.get("type") == "subscribe_offer"][-1]
        assert not [t for t in last["tracks"].values()
                    if t["participant_id"] == robin_id and t["kind"] == "video"]
        assert live.disagreements() == []
        # a member cannot switch it
        await wren.send({"type": "command", "name": "focus_off", "id": "m"})
        await _wait_for(lambda: any(m.get("ref") == "m" for m in wren.messages), 10)
        (reply,) = [m for m in wren.messages if m.get("ref") == "m"]
        assert reply["type"] == "error" and reply["code"] == "host_only"
    finally:
        for bot in bots:
            await bot.leave()
        await live.aclose()
