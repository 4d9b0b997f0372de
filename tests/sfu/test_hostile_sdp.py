"""Hostile offers over the real signaling socket: typed refusals, nothing opened, nothing kept.

A member's offer is counted with aiortc's own parser and refused before the peer connection
changes. The defect these guard against: sections after a bare CR (or another Unicode line
break) were invisible to the old check but applied by aiortc, and on the preview path each one
opened a privacy pipeline in the media worker that was never closed.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiortc import RTCPeerConnection

from confidentiality.profiles import Profile
from session_rules.rules import GroupRules
from sfu.grants import Permissions, mint_grant
from sfu.ice import rtc_configuration
from sfu.room import MAX_PUBLICATIONS_PER_PARTICIPANT, Room
from tests.support.hostile_media import (
    ANSWER,
    LINE_BREAKS,
    SDP_MUTATIONS,
    HostileClient,
    join_sdp,
    real_offer,
    split_sdp,
)
from web import keys
from web.bot import Bot, ColorTrack, _vp8_only
from web.session_control import SessionController


async def _wait_for(predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def _lobby_room(server: Any, room_id: str) -> Room:
    """A room whose rules hold members in the lobby, as a scheduled session's do."""
    registry = server.app[keys.ROOMS]
    room = Room(room_id, transform_factory=registry.transform_factory,
                media_workers=registry.media_workers)
    rules = GroupRules(lobby_required=True, allowed_profiles=frozenset(Profile),
                       minimum_profile=Profile.NONE)
    room.controller = SessionController(room, rules, skip_agreement=True)
    registry.rooms[room_id] = room
    return room


def _processors(server: Any) -> int:
    """Publications the media workers are processing now (each a pipeline in a worker)."""
    workers = server.app[keys.ROOMS].media_workers
    return sum(len(w.processors) for w in workers.workers)


def _hidden(base: str, brk: str, count: int) -> str:
    session, sections = split_sdp(base)
    video = sections[0]
    hidden = [line.replace("a=mid:0", f"a=mid:h{i}") for i in range(count) for line in video]
    return join_sdp(session, sections)[:-2] + brk + brk.join(hidden) + "\r\n"


@pytest.fixture
async def lobby(server) -> AsyncIterator[tuple[Room, Bot, HostileClient]]:  # type: ignore[no-untyped-def]
    """A lobby room, its host, and a member waiting in its lobby (profile blur)."""
    room = _lobby_room(server, "lobby-room")
    host = Bot(server.link("lobby-room", "Clinician", role="host"), publish=False)
    await host.connect()
    grant = mint_grant(server.settings.grant_secret, room="lobby-room", display_name="Mallory",
                       profile=Profile.BLUR, permissions=Permissions(subscribe=False))
    member = HostileClient(server.base_url.replace("http", "ws") + "/rtc", grant)
    await member.join()
    assert room.participants[member.me["id"]].state.value == "lobby"
    yield room, host, member
    await member.close()
    await host.leave()


@pytest.mark.parametrize("brk", LINE_BREAKS, ids=[f"{ord(b):#06x}" for b in LINE_BREAKS])
async def test_sections_hidden_behind_other_line_breaks_are_refused(server, lobby, brk: str) -> None:  # type: ignore[no-untyped-def]
    room, _, member = lobby
    before = _processors(server)
    base = await real_offer(("video",))
    reply = await member.request({"type": "preview_offer", "sdp": _hidden(base, brk, 12)})
    assert reply["type"] == "error" and reply["code"] == "bad_sdp", reply
    assert "line break" in reply["message"]
    # nothing was opened for it: no publication, no pipeline in a worker
    assert room.open_publications(member.me["id"]) == 0
    assert room.participants[member.me["id"]].preview_pc is None
    assert _processors(server) == before
    # the same sections on lines of their own are seen, and refused as what they are
    reply = await member.request({"type": "preview_offer", "sdp": _hidden(base, "\r\n", 12)})
    assert reply["code"] == "too_many_tracks", reply


async def test_a_preview_replaces_the_last_and_leaving_releases_it(server, lobby) -> None:  # type: ignore[no-untyped-def]
    room, host, member = lobby
    pid = member.me["id"]
    before = _processors(server)
    pcs = []
    for _ in range(6):
        # real offers from real peers: each accepted preview opens a pipeline in a worker
        pc = RTCPeerConnection(rtc_configuration([]))
        pcs.append(pc)
        _vp8_only(pc.addTransceiver(ColorTrack("green"), direction="sendonly"))
        await pc.setLocalDescription(await pc.createOffer())
        reply = await member.request({"type": "preview_offer", "sdp": pc.localDescription.sdp})
        assert reply["type"] == "preview_answer", reply
        # one preview at a time: the one before, its publication and its pipeline are gone
        assert room.open_publications(pid) == 1
        assert _processors(server) == before + 1
    # the seventh within seconds is one too many: offers are rate-limited per member
    reply = await member.request({"type": "preview_offer", "sdp": pcs[-1].localDescription.sdp})
    assert reply["code"] == "too_many_offers", reply
    assert room.open_publications(pid) == 1
    await member.close()
    await _wait_for(lambda: pid not in room.participants)
    assert room.open_publications(pid) == 0
    assert _processors(server) == before
    for pc in pcs:
        await pc.close()


async def test_the_cap_on_open_tracks_holds_even_past_the_offer_check(server, lobby) -> None:  # type: ignore[no-untyped-def]
    # the offer check already keeps a connection to one track per kind; should anything ever
    # slip past it, a member still cannot hold more than the cap of publications (pipelines)
    room, _, member = lobby
    participant = room.participants[member.me["id"]]
    pc = RTCPeerConnection(rtc_configuration([]))
    try:
        for _ in range(MAX_PUBLICATIONS_PER_PARTICIPANT + 2):
            pc.addTransceiver("video", direction="recvonly")
        opened = [room._open_publication(participant, t.receiver, "video", always_process=False)  # noqa: SLF001
                  for t in pc.getTransceivers()]
        assert sum(p is not None for p in opened) == MAX_PUBLICATIONS_PER_PARTICIPANT
        await member.wait_for(lambda m: m.get("code") == "too_many_tracks")
        await room.leave(participant.id)
        assert room.open_publications(participant.id) == 0
    finally:
        await pc.close()


@pytest.fixture
async def witnesses(server) -> AsyncIterator[tuple[Bot, Bot]]:  # type: ignore[no-untyped-def]
    """A member publishing blurred video and the host watching it: unaffected by all below."""
    a = Bot(server.link("group", "Robin", profile=Profile.BLUR), video=ColorTrack("red"))
    b = Bot(server.link("group", "Clinician", role="host"), publish=False)
    await a.connect()
    await b.connect()
    await _wait_for(lambda: a.me["id"] in b.peers and b.peers[a.me["id"]].video_frames > 5, 30)
    yield a, b
    before = b.peers[a.me["id"]].video_frames
    await _wait_for(lambda: b.peers[a.me["id"]].video_frames > before + 5, 15)
    assert not a.errors and not b.errors, (a.errors, b.errors)
    await a.leave()
    await b.leave()


@pytest.mark.parametrize("path", ["publish", "preview"])
async def test_every_kind_of_hostile_offer_gets_a_typed_answer(server, witnesses, path: str) -> None:  # type: ignore[no-untyped-def]
    _, host = witnesses
    room = server.app[keys.ROOMS].rooms["group"]
    base = await real_offer(("audio", "video") if path == "publish" else ("video",))
    rng = random.Random(7)
    seen: dict[str, set[str]] = {}
    for round_ in range(3):
        # a fresh member each round, so the offer budget is not what answers
        grant = mint_grant(server.settings.grant_secret, room="group", display_name=f"M{round_}",
                           profile=Profile.BLUR, permissions=Permissions(subscribe=False))
        member = HostileClient(server.base_url.replace("http", "ws") + "/rtc", grant)
        await member.join()
        pid = member.me["id"]
        if path == "preview":
            await host.send({"type": "command", "name": "send_to_lobby", "target": pid})
            await member.wait_for(lambda m: m.get("type") == "sent_to_lobby")
        for mutate in dict.fromkeys(SDP_MUTATIONS):  # each kind once per round
            mutation = mutate(base, rng, path)  # type: ignore[arg-type]
            reply = await member.request({"type": f"{path}_offer", "sdp": mutation.sdp})
            outcome = reply["code"] if reply["type"] == "error" else ANSWER
            assert outcome in mutation.expect | {"too_many_offers"}, (mutation.name, reply)
            assert reply.get("code") != "internal_error"
            seen.setdefault(mutation.name.split("[")[0], set()).add(outcome)
            # never more than one track of each kind, whatever was offered
            assert room.open_publications(pid) <= 2
        await member.close()
        await _wait_for(lambda pid=pid: room.open_publications(pid) == 0)  # type: ignore[misc]
    assert seen["hidden_tracks"] == {"bad_sdp"}
    assert seen["extra_video_track"] == {"too_many_tracks"}
    assert seen["unknown_codec"] == {"codec_unsupported"}
    assert seen["missing"] == {"bad_sdp"} and seen["duplicate_mid"] == {"bad_sdp"}
    assert ANSWER in seen["extra_unknown_codec"]
