"""A real Chromium page reaches its group through a node that does not run the room: the page
is served by that node, its socket is redirected to the room's node, and its video reaches the
host there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from tests.support.browser import chromium
from tests.support.cluster import Cluster
from tests.support.faces import astronaut_frames, write_y4m
from tests.support.live import Member, host_link, wait_for
from tests.support.member_page import agree
from tests.support.servers import PostgresServer, RedisServer

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.postgres]


async def _stage(page: Page, stage: str, timeout_s: float = 30.0) -> None:
    await page.wait_for_function("(s) => window.confide && window.confide.stage === s",
                                 arg=stage, timeout=timeout_s * 1000)


async def _js(page: Page, expr: str) -> Any:
    return await page.evaluate(f"() => ({expr})")


async def test_a_page_on_another_node_is_sent_to_the_rooms_node(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer,
) -> None:
    cluster = Cluster(tmp_path, database_url=postgres_server.create_database(),
                      redis_url=redis_server.url, count=2)
    video = write_y4m(tmp_path / "astronaut.y4m", astronaut_frames("static", 15), fps=15)
    host: Member | None = None
    try:
        await cluster.start()
        s, _ = cluster.session("n2", "dr.hale")
        # the host (a bot) opens the room: it is placed on n1 (equal headroom, smaller id)
        host = Member("host", host_link(s, cluster.nodes["n2"]), s.clinician.participant_id)
        await host.connect()
        assert (await cluster.placements())[s.session_id]["node_id"] == "n1"
        robin_id = s.participant_ids["Robin"]
        async with chromium(video) as browser:
            page = await (await browser.new_context()).new_page()
            # Robin's invite link, and so the page, is on n2
            assert s.links["Robin"].startswith(cluster.nodes["n2"].base_url)
            await page.goto(s.links["Robin"])
            await page.click("#btn-join")
            await _stage(page, "prejoin")
            # the socket was sent on to n1, with the same grant: one join, no error
            url = await _js(page, "window.confide.signaling.url")
            assert url == f"ws://127.0.0.1:{cluster.nodes['n1'].port}/rtc", url
            assert page.url.startswith(cluster.nodes["n2"].base_url)
            await agree(page)
            reply = await host.command("admit", "a1", target=robin_id)
            assert reply["type"] == "ok", reply
            await _stage(page, "room")
            # Robin's camera reaches the host through the room's node
            assert host.bot is not None
            await wait_for(lambda: host.bot.peers.get(robin_id) is not None  # type: ignore[union-attr]
                           and host.bot.peers[robin_id].video_frames > 15, 30,  # type: ignore[union-attr]
                           "Robin's video at the host")
            assert await _js(page, "window.confide.joins") == 1
            assert await _js(page, "window.confide.errors") == []
    finally:
        if host is not None:
            await host.close()
        cluster.stop()

