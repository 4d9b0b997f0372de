"""Confide servers and bots as real child processes (for RSS and silent-drop tests)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from sfu.grants import mint_grant
from web.settings import load_settings


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, data_dir: Path) -> None:
        self.proc = proc
        self.port = port
        self.data_dir = data_dir
        self.settings = load_settings(data_dir)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def link(self, room: str, name: str, **kw: object) -> str:
        grant = mint_grant(self.settings.grant_secret, room=room, display_name=name, **kw)  # type: ignore[arg-type]
        return f"{self.base_url}/room#grant={grant}"


@contextlib.asynccontextmanager
async def confide_server(data_dir: Path, *extra: str,
                         env: dict[str, str] | None = None) -> AsyncIterator[ServerProcess]:
    """`confide serve --dev` in a child process (with `env` added to its environment),
    stopped afterwards."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    load_settings(data_dir)  # create the secrets before the child reads them
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "web.cli", "serve", "--dev", "--port", str(port),
         "--data-dir", str(data_dir), *extra],
        stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    server = ServerProcess(proc, port, data_dir)
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(f"{server.base_url}/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if proc.poll() is not None:
                    raise RuntimeError("server exited: " + (data_dir / "server.log").read_text())
                await asyncio.sleep(0.1)
        yield server
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def bot_process(link: str, seconds: float, *, color: str = "colors") -> subprocess.Popen[bytes]:
    """`confide bot` publishing a colour pattern, as a child process."""
    return subprocess.Popen(
        [sys.executable, "-m", "web.cli", "bot", "--link", link, "--pattern", color,
         "--seconds", str(seconds)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
