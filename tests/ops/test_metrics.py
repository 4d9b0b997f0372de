"""/metrics as Prometheus reads it, in a live room of real aiortc peers; who may read it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import RunningServer
from web.app import create_app
from web.bot import Bot, ColorTrack, ToneTrack
from web.settings import load_settings

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample, keyed by name and labels, read with prometheus_client's own parser."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(base_url: str, **headers: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(
        base_url + "/metrics", headers=headers
    ) as resp:
        return resp.status, await resp.text()


async def _until(check: Callable[[], Any], timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.25)


@pytest.mark.realtime
async def test_counters_move_in_a_live_room_and_name_nobody(server: RunningServer) -> None:
    room = "room-9c41e7"
    _, text = await scrape(server.base_url)
    before = parse(text)
    host = Bot(server.link(room, "Clinician", role="host"), video=ColorTrack("red"),
               audio=ToneTrack())
    member = Bot(server.link(room, "Robin", profile="blur"), video=ColorTrack("blue"),
                 audio=ToneTrack())
    try:
        for bot in (host, member):
            await bot.connect()

        async def flowing() -> bool:
            # video both ways; audio at least one way (a room's rules may mute on entry)
            peers = [p for bot in (host, member) for p in bot.peers.values()]
            return (all(any(p.video_frames > 20 for p in bot.peers.values())
                        for bot in (host, member))
                    and any(p.audio_frames > 20 for p in peers))

        await _until(flowing, 60)
        # a join with a grant signed by someone else is refused, and counted by its code
        async with aiohttp.ClientSession() as session, session.ws_connect(
            server.base_url.replace("http", "ws") + "/rtc"
        ) as ws:
            await ws.send_json({"type": "join", "v": 1, "grant": "x" + host.grant})
            refused = await ws.receive_json(timeout=10)
        assert refused["code"] == "invalid_grant"

        status, text = await scrape(server.base_url)
        assert status == 200
        now = parse(text)
        assert value(now, "confide_rooms") == 1
        assert value(now, "confide_participants", state="admitted") == 2
        assert value(now, "confide_participants", state="lobby") == 0
        assert value(now, "confide_publications", kind="video", profile="none") == 1
        assert value(now, "confide_publications", kind="video", profile="blur") == 1
        assert value(now, "confide_publications", kind="audio", profile="") == 2
        for kind in ("audio", "video"):
            for name in ("confide_media_packets_forwarded_total",
                         "confide_media_bytes_forwarded_total"):
                assert value(now, name, kind=kind) > value(before, name, kind=kind), (name, kind)
        # the blurred stream was transformed in a media worker process: its times came back
        assert (value(now, "confide_transform_seconds_count")
                > value(before, "confide_transform_seconds_count"))
        assert value(now, "confide_transform_seconds_sum") > 0
        assert value(now, "confide_event_loop_lag_seconds_count") > 0
        assert value(now, "confide_media_workers", state="running") >= 1
        assert value(now, "confide_join_refusals_total", stage="signaling",
                     code="invalid_grant") == value(
            before, "confide_join_refusals_total", stage="signaling", code="invalid_grant") + 1
        assert value(now, "process_cpu_seconds_total") > 0
        # aggregated: no room, participant, name or grant appears anywhere
        for secret in (room, "Robin", "Clinician", host.me["id"], member.me["id"], host.grant):
            assert secret not in text

        # liveness says nothing about who is here
        async with aiohttp.ClientSession() as session, session.get(
            server.base_url + "/healthz"
        ) as resp:
            assert resp.status == 200 and await resp.json() == {"status": "ok"}
    finally:
        for bot in (host, member):
            await bot.leave()


async def test_invite_refusals_are_counted(server: RunningServer) -> None:
    _, text = await scrape(server.base_url)
    before = parse(text)
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            async with session.post(server.base_url + "/api/v1/invites/redeem",
                                    json={"token": "not-a-real-invite-token"}) as resp:
                assert resp.status >= 400
                code = (await resp.json())["error"]["code"]
    _, text = await scrape(server.base_url)
    name = "confide_join_refusals_total"
    assert value(parse(text), name, stage="invite", code=code) == value(
        before, name, stage="invite", code=code) + 2


async def test_who_may_read_the_metrics(
    aiohttp_client: Callable[..., Any], tmp_path: Path
) -> None:
    # behind a proxy (the test client's 127.0.0.1 is trusted), the client is the forwarded one
    settings = load_settings(tmp_path / "a", dev=True, trusted_proxies=["127.0.0.1/32"],
                             media_processes=0)
    client = await aiohttp_client(create_app(settings))
    assert (await client.get("/metrics")).status == 200
    resp = await client.get("/metrics", headers={"X-Forwarded-For": "198.51.100.4"})
    assert resp.status == 403
    # with a token, only the token counts
    settings = load_settings(tmp_path / "b", dev=True, metrics_token="s3cret-scrape-token",
                             media_processes=0)
    client = await aiohttp_client(create_app(settings))
    assert (await client.get("/metrics")).status == 401
    bad = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert bad.status == 401
    good = await client.get("/metrics",
                            headers={"Authorization": "Bearer s3cret-scrape-token"})
    assert good.status == 200 and "confide_rooms" in await good.text()
