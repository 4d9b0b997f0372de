"""Leaving, dropping silently, and coming and going 100 times."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import time
from pathlib import Path

import psutil

from tests.support.proc import bot_process, confide_server
from web.bot import Bot, ColorTrack, ToneTrack


async def _wait_for(predicate, timeout_s: float, step_s: float = 0.05) -> float:  # type: ignore[no-untyped-def]
    """Seconds until predicate held."""
    start = asyncio.get_running_loop().time()
    while not predicate():
        waited = asyncio.get_running_loop().time() - start
        assert waited < timeout_s, f"condition not met within {timeout_s} s"
        await asyncio.sleep(step_s)
    return asyncio.get_running_loop().time() - start


async def test_clean_leave_and_tab_close_vanish_within_10_s(server) -> None:  # type: ignore[no-untyped-def]
    watcher = Bot(server.link("g", "Robin"), video=ColorTrack("red"), audio=ToneTrack())
    leaver = Bot(server.link("g", "Ash"), video=ColorTrack("green"), audio=ToneTrack())
    closer = Bot(server.link("g", "Wren"), video=ColorTrack("blue"), audio=ToneTrack())
    await watcher.connect()
    await leaver.connect()
    await closer.connect()
    room = server.app[__import__("web.keys").keys.ROOMS].rooms["g"]
    await _wait_for(lambda: len(watcher.participants) == 2 and all(
        p.video_frames > 3 for p in watcher.peers.values()), 20)
    await leaver.leave()  # the Leave button
    took = await _wait_for(lambda: leaver.me["id"] not in watcher.participants, 10)
    assert took < 10
    await closer.close()  # the tab closes: no goodbye, the socket just ends
    took = await _wait_for(lambda: closer.me["id"] not in watcher.participants, 10)
    assert took < 10
    # their tracks and peers are released on the server
    assert set(room.participants) == {watcher.me["id"]}
    # what the watcher still receives is only its own self-view
    slots = room.participants[watcher.me["id"]].subscriptions
    assert {s.publisher_id for s in slots} <= {None, watcher.me["id"]}
    await watcher.leave()


async def test_silent_drop_vanishes_within_40_s(tmp_path: Path) -> None:
    async with confide_server(tmp_path / "var") as srv:
        watcher = Bot(srv.link("g", "Robin"), video=ColorTrack("red"), audio=ToneTrack())
        await watcher.connect()
        proc = bot_process(srv.link("g", "Ash"), seconds=300)
        try:
            await _wait_for(lambda: any(p.video_frames > 5 for p in watcher.peers.values()), 30)
            assert len(watcher.participants) == 1, watcher.participants
            (dropped,) = watcher.participants
            # freeze the process: its sockets stay open but nothing answers any more,
            # exactly like a laptop lid closing or a network vanishing
            os.kill(proc.pid, signal.SIGSTOP)
            took = await _wait_for(lambda: dropped not in watcher.participants, 40, 0.25)
            print(f"silent drop detected after {took:.1f} s")
            assert took < 40
            assert not watcher.errors
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            await watcher.leave()


AT_ONCE = 4


async def test_100_join_leave_cycles_keep_rss_within_10_percent(tmp_path: Path) -> None:
    async with confide_server(tmp_path / "var") as srv:
        server_proc = psutil.Process(srv.proc.pid)
        anchor = Bot(srv.link("g", "Robin"), video=ColorTrack("red"), audio=ToneTrack())
        await anchor.connect()

        async def cycle(i: int) -> None:
            bot = Bot(srv.link("g", f"Guest{i}"), video=ColorTrack("green"), audio=ToneTrack(),
                      decode_video=False)
            await bot.connect()
            await bot.wait_published()
            await _wait_for(lambda: bot.peers.get(anchor.me["id"]) is not None
                            and bot.peers[anchor.me["id"]].video_frames > 0, 20)
            await bot.leave()

        async def batch(first: int) -> None:
            # members come and go a few at a time, as a group gathers: the same hundred
            # cycles in a third of the time, and overlapping joins and leaves are the harder
            # case for anything left behind
            await asyncio.gather(*(cycle(first + j) for j in range(AT_ONCE)))

        # warm up: imports, codec tables, allocator pools (as many peers at once as below)
        for i in range(0, 12, AT_ONCE):
            await batch(i)
        await asyncio.sleep(1.0)
        start_rss = server_proc.memory_info().rss
        started = time.monotonic()
        for i in range(0, 100, AT_ONCE):
            await batch(100 + i)
        await _wait_for(lambda: len(anchor.participants) == 0, 10)
        await asyncio.sleep(2.0)
        gc.collect()
        end_rss = server_proc.memory_info().rss
        growth = end_rss / start_rss - 1
        print(f"100 cycles in {time.monotonic() - started:.0f} s; server RSS "
              f"{start_rss / 2**20:.1f} → {end_rss / 2**20:.1f} MiB ({growth:+.1%})")
        assert growth < 0.10
        # the room is back to one participant and nothing else on the server
        assert not anchor.errors
        await anchor.leave()
