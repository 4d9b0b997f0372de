"""`confide join-link` and `confide bot` as a user runs them."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from sfu.grants import verify_grant
from tests.support.proc import confide_server
from web.bot import Bot, ColorTrack, ToneTrack, parse_link
from web.settings import load_settings


def test_join_link_prints_a_link_with_a_valid_grant(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "web.cli", "join-link", "--room", "r1", "--name", "Robin",
         "--role", "host", "--profile", "blur", "--data-dir", str(tmp_path),
         "--base-url", "http://127.0.0.1:9"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    assert out.startswith("http://127.0.0.1:9/room#grant=")
    _, token = parse_link(out)
    grant = verify_grant(token, load_settings(tmp_path).grant_secret, room="r1")
    assert (grant.display_name, grant.role, grant.profile.value) == ("Robin", "host", "blur")


async def test_bot_reports_what_it_received(tmp_path: Path) -> None:
    async with confide_server(tmp_path / "var") as srv:
        peer = Bot(srv.link("r", "Ash"), video=ColorTrack("green"), audio=ToneTrack())
        await peer.connect()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "web.cli", "bot", "--link", srv.link("r", "Robin"),
                "--pattern", "colors", "--seconds", "4",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            await peer.leave()
        text = out.decode()
        assert proc.returncode == 0, text
        assert "joined as Robin (admitted)" in text
        line = next(t for t in text.splitlines() if t.strip().startswith("Ash:"))
        fps = float(line.split("video ")[1].split(" fps")[0])
        # a rate was measured and reported; not judged: Ash's video is blurred by media
        # workers at the lowest priority, and this test shares the cores with others
        assert fps > 0, line
        assert "640x480" in line and "dBFS" in line
