"""A `confide serve` child process that can be killed and started again on the same port and
data, a scheduled session in its store, and members who join and come back as a page does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from session_rules.checklists import GROUP_AGREEMENT
from web.bot import Bot
from web.control import data_keys
from web.control import keys as control_keys
from web.settings import Settings, load_settings
from web.store import Store, open_store

from .proc import free_port
from .session import OpenSession, open_session


class ConfideProcess:
    """`confide serve --dev` as a child process; `kill` and `start` keep port and data."""

    def __init__(self, data_dir: Path, *, database_url: str = "",
                 env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.database_url = database_url
        self.extra_env = dict(env or {})
        data_dir.mkdir(parents=True, exist_ok=True)
        # the secrets exist before the child starts, so the test can mint and read with them
        self.settings: Settings = load_settings(data_dir, database_url=database_url)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "server.log"
        self.starts = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def store_url(self) -> str:
        return self.settings.effective_database_url

    def spawn(self) -> None:
        """Start the process (returns at once; see `ready`)."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.extra_env}
        if self.database_url:
            env["CONFIDE_DATABASE_URL"] = self.database_url
        log = open(self.log_path, "ab")  # noqa: SIM115 (closed by the child's exit)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "web.cli", "serve", "--dev", "--port", str(self.port),
             "--data-dir", str(self.data_dir)],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
        log.close()
        self.starts += 1

    async def ready(self, timeout_s: float = 60.0) -> float:
        """Wait until /healthz answers; returns the time (monotonic) it first did."""
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.get(f"{self.base_url}/healthz") as resp:
                        if resp.status == 200:
                            return time.monotonic()
                except aiohttp.ClientError:
                    pass
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise RuntimeError("server exited:\n" + self.log_path.read_text()[-4000:])
                if time.monotonic() > deadline:
                    raise TimeoutError("server did not start")
                await asyncio.sleep(0.05)

    async def start(self) -> float:
        self.spawn()
        return await self.ready()

    def kill(self, sig: int = signal.SIGKILL, timeout_s: float = 30.0) -> None:
        """Send `sig` and wait for the process to end."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"server did not stop on signal {sig}") from None

    async def readiness(self) -> tuple[int, dict[str, Any]]:
        """`GET /readyz`: its status and body."""
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{self.base_url}/readyz") as resp:
                return resp.status, dict(await resp.json())

    async def metrics(self) -> dict[str, float]:
        """`GET /metrics` (a loopback client may read it): each sample, labels summed."""
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{self.base_url}/metrics") as resp:
                assert resp.status == 200, resp.status
                return parse_metrics(await resp.text())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def session_in(server: ConfideProcess, **kwargs: Any) -> tuple[OpenSession, Store]:
    """A scheduled session, open now, made in the server's own store."""
    store = open_store(server.store_url, data_keys(server.settings))
    app = {control_keys.STORE: store, control_keys.CONTROL_SETTINGS: server.settings}
    return open_session(app, server.base_url, **kwargs), store


def host_link(s: OpenSession, server: ConfideProcess) -> str:
    app = {control_keys.STORE: s.store, control_keys.CONTROL_SETTINGS: server.settings}
    return f"{server.base_url}/room#grant={s.host_grant(app)}"


def invite_states(s: OpenSession, pseudonym: str) -> list[str]:
    """The state of every link issued to a member for the session, as the store has it."""
    from web.store import invites

    listed = s.store.call(invites.list_for_session, s.clinician, s.session_id)
    return [i.state for i in listed if i.member_id == s.member_ids[pseudonym]]


async def http_json(method: str, url: str, body: Any = None) -> tuple[int, dict[str, Any],
                                                                       dict[str, str]]:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, url, json=body) as resp:
            data = await resp.json(content_type=None)
            return resp.status, dict(data or {}), dict(resp.headers)


async def http_text(url: str) -> str:
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            assert resp.status == 200, resp.status
            return await resp.text()


async def redeem(s: OpenSession, pseudonym: str) -> dict[str, Any]:
    """Redeem a member's invite as their page does: the grant and the reconnect secret."""
    token = s.links[pseudonym].rsplit("/", 1)[1]
    status, body, _ = await http_json("POST", f"{s.base_url}/api/v1/invites/redeem",
                                      {"token": token})
    assert status == 200, body
    return body


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text: each sample's value by name, summed over its labels."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name] = out.get(sample.name, 0.0) + float(sample.value)
    return out


async def wait_for(predicate: Callable[[], Any], timeout_s: float = 20.0,
                   what: str = "condition", step_s: float = 0.005) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout_s} s")
        await asyncio.sleep(step_s)


async def wait_async(predicate: Callable[[], Awaitable[Any]], timeout_s: float = 20.0,
                     what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout_s} s")
        await asyncio.sleep(0.1)


@dataclass
class Member:
    """Someone in the session as their page is: a grant, a reconnect token, a socket (bot)."""

    name: str
    link: str
    participant_id: str
    resume: str | None = None
    # the invite's reconnect secret (from redeeming the link)
    invite_resume: str | None = None
    bot: Bot | None = None
    bot_kwargs: dict[str, Any] = field(default_factory=dict)
    history: list[Bot] = field(default_factory=list)

    async def connect(self, *, resume: str | None = None, timeout_s: float = 10.0) -> Bot:
        bot = Bot(self.link, **{"publish": False, "decode_video": False, **self.bot_kwargs})
        self.bot = bot
        self.history.append(bot)
        await bot.connect(timeout_s, resume=resume)
        self.resume = bot.resume
        return bot

    async def command(self, name: str, ref: str, **fields: Any) -> dict[str, Any]:
        """A command and its reply (ok or error)."""
        bot = self.bot
        assert bot is not None
        await bot.send({"type": "command", "name": name, "id": ref, **fields})
        return await wait_for(lambda: next(
            (m for m in bot.messages if m.get("ref") == ref), None), 10, f"reply {ref}")

    def last(self, mtype: str) -> dict[str, Any] | None:
        assert self.bot is not None
        return next((m for m in reversed(self.bot.messages) if m.get("type") == mtype), None)

    async def come_back(self, timeout_s: float = 30.0) -> float:
        """Reconnect as the page does after a drop: the same grant and the reconnect token,
        again and again with backoff until the server answers. Returns when joined."""
        old = self.bot
        if old is not None:
            await old.close()
        delay = 0.1
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                await self.connect(resume=self.resume, timeout_s=5.0)
                return time.monotonic()
            except (aiohttp.ClientError, OSError, TimeoutError):
                if self.bot is not None:
                    await self.bot.close()
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)

    async def close(self) -> None:
        for bot in self.history:
            await bot.close()


async def agree(member: Member) -> None:
    """Confirm the group agreement (every item)."""
    reply = await member.command("confirm_checklist", "agree",
                                 answers=[item.id for item in GROUP_AGREEMENT])
    assert reply["type"] == "ok", reply


async def member_of(s: OpenSession, name: str, **bot_kwargs: Any) -> Member:
    """A member who redeemed their link and is connected (in pre-join)."""
    body = await redeem(s, name)
    member = Member(name, f"{s.base_url}/room#grant={body['grant']}", body["participant_id"],
                    invite_resume=body["resume"], bot_kwargs=bot_kwargs)
    await member.connect()
    return member


async def join_refusal(link: str, resume: str | None = None, timeout_s: float = 10.0) -> str:
    """Join with `link` and return the code of the refusal (fails if it is let in)."""
    from web.bot import parse_link

    ws_url, grant = parse_link(link)
    msg: dict[str, Any] = {"type": "join", "v": 1, "grant": grant}
    if resume:
        msg["resume"] = resume
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url) as ws:
            await ws.send_json(msg)
            while True:
                got = await asyncio.wait_for(ws.receive(), timeout_s)
                if got.type != aiohttp.WSMsgType.TEXT:
                    raise AssertionError(f"socket closed without a typed refusal ({got.type})")
                data = got.json()
                assert data.get("type") != "joined", f"let in: {data}"
                if data.get("type") == "error":
                    return str(data["code"])
