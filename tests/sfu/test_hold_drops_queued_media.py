"""A hold (mute, stop video, pause, "someone came in") takes effect at once: what a
subscriber's slot had queued but not yet sent (up to 0.6 s of audio) is dropped with it.

The queue is made real: the host's subscriber connection is still being set up (its answer
held back) while the member speaks, so their audio waits in the host's slot, as it does for
anyone whose connection is slow to start or whose sender falls behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from sfu.fanout import AUDIO_QUEUE_FRAMES
from web import keys
from web.bot import Bot, ColorTrack, ToneTrack


async def _wait_for(predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


class SlowToAnswer(Bot):
    """A bot whose subscriber answers wait until `release` is set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.release = asyncio.Event()

    async def _on_subscribe_offer(self, data: dict[str, Any]) -> None:
        async def later() -> None:
            await self.release.wait()
            await Bot._on_subscribe_offer(self, data)

        task = asyncio.ensure_future(later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


@pytest.mark.parametrize("hold", ["host_mutes", "someone_came_in", "host_pauses"])
async def test_no_queued_audio_goes_out_once_a_hold_starts(server, hold: str) -> None:  # type: ignore[no-untyped-def]
    host = SlowToAnswer(server.link("h", "Clinician", role="host"), publish=False)
    member = Bot(server.link("h", "Robin"), audio=ToneTrack(), video=ColorTrack("red"))
    await host.connect()
    await member.connect()
    try:
        room = server.app[keys.ROOMS].rooms["h"]
        pid = member.me["id"]
        await member.wait_published()
        slot = next(s for s in room.participants[host.me["id"]].subscriptions
                    if s.publisher_id == pid and s.transceiver.kind == "audio")
        # the member's audio fills the host's slot while its connection is not up yet
        await _wait_for(lambda: len(slot.track._queue) == AUDIO_QUEUE_FRAMES)  # noqa: SLF001
        sender, command = {
            "host_mutes": (host, {"name": "mute", "target": pid}),
            "someone_came_in": (member, {"name": "someone_came_in"}),
            "host_pauses": (host, {"name": "pause"}),
        }[hold]
        await sender.send({"type": "command", **command, "id": "hold"})
        await _wait_for(lambda: any(m.get("ref") == "hold" for m in sender.messages))
        assert next(m for m in sender.messages if m.get("ref") == "hold")["type"] == "ok"
        # the hold took effect: nothing of the member's speech is left to be sent
        assert len(slot.track._queue) == 0  # noqa: SLF001
        sent_at_hold = slot.track.packets_sent
        host.release.set()
        # the host's connection comes up (and carries the member's video, unless held too)...
        await _wait_for(lambda: host.sub_pc is not None
                        and host.sub_pc.connectionState == "connected", 30)
        if hold == "host_mutes":
            await _wait_for(lambda: pid in host.peers and host.peers[pid].video_frames > 10, 30)
        await asyncio.sleep(1.5)
        # ...but not one audio packet of the held track, then or since
        assert slot.track.packets_sent - sent_at_hold <= 1
        assert pid not in host.peers or host.peers[pid].audio_frames <= 1
        assert not host.errors and not member.errors
    finally:
        await member.leave()
        await host.leave()
