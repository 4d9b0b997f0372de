"""Several `confide serve` processes as one service: one real PostgreSQL database, one real
Redis, each node with its own port, data dir, node id and public URL (the secrets shared)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.live import ConfideProcess, Member
from tests.support.proc import free_port
from tests.support.servers import _redis_ping
from tests.support.session import OpenSession
from web.store import Store

SHARED_SECRETS = ("grant_secret", "data_key")


class Cluster:
    """`count` nodes named n1, n2, …; every node shares the database, Redis and secrets."""

    def __init__(self, root: Path, *, database_url: str, redis_url: str, count: int = 3) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.nodes: dict[str, ConfideProcess] = {}
        first: Path | None = None
        for i in range(1, count + 1):
            node_id = f"n{i}"
            data_dir = root / node_id
            if first is not None:
                # one service: the same grant secret and data key on every node
                data_dir.mkdir(parents=True, mode=0o700)
                for name in SHARED_SECRETS:
                    shutil.copy2(first / name, data_dir / name)
            node = ConfideProcess(data_dir, database_url=database_url)
            node.extra_env.update({
                "CONFIDE_REDIS_URL": redis_url,
                "CONFIDE_NODE_ID": node_id,
                "CONFIDE_PUBLIC_URL": node.base_url,
                # one worker process per node is plenty for bots that publish nothing
                "CONFIDE_MEDIA_PROCESSES": "0",
            })
            first = first or data_dir
            self.nodes[node_id] = node

    async def start(self) -> None:
        import redis

        # a fresh directory: nothing left of an earlier test's nodes and rooms
        client = redis.Redis.from_url(self.redis_url)
        client.flushdb()
        client.close()
        for node in self.nodes.values():
            node.spawn()
        for node in self.nodes.values():
            await node.ready()

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()

    def session(self, entry: str, username: str) -> tuple[OpenSession, Store]:
        """A session open now, whose links point at node `entry`."""
        from tests.support.session import open_session
        from web.control import data_keys
        from web.control import keys as control_keys
        from web.store import open_store

        server = self.nodes[entry]
        # the data key from the node's key file, as the node reads it
        store = open_store(server.store_url, data_keys(server.settings))
        app = {control_keys.STORE: store, control_keys.CONTROL_SETTINGS: server.settings}
        return open_session(app, server.base_url, username=username), store

    async def nodes_cli(self, *args: str) -> tuple[int, str]:
        """`confide nodes …` against this service's Redis. Awaited, never run blocking: the
        command takes seconds to start on a busy machine, and meanwhile the test's own
        sockets must keep answering the servers' pings, or the servers drop them."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "web.cli", "nodes", *args,
            env={**os.environ, "CONFIDE_REDIS_URL": self.redis_url},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 60)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        assert proc.returncode is not None
        return proc.returncode, out.decode() + err.decode()

    async def placements(self) -> dict[str, dict[str, Any]]:
        """room id -> its owner record, as `confide nodes --json` shows it."""
        code, out = await self.nodes_cli("--json")
        assert code == 0, out
        return {r["room_id"]: r for r in json.loads(out)["rooms"]}

    async def live_nodes(self) -> dict[str, dict[str, Any]]:
        code, out = await self.nodes_cli("--json")
        assert code == 0, out
        return {n["node_id"]: n for n in json.loads(out)["nodes"]}


def node_of(member: Member, cluster: Cluster) -> str:
    """The node a member's socket is connected to now."""
    assert member.bot is not None
    port = int(member.bot.ws_url.rsplit(":", 1)[1].split("/", 1)[0])
    return next(n for n, p in cluster.nodes.items() if p.port == port)


async def api_post(base_url: str, path: str, body: Any, username: str,
                   password: str) -> tuple[int, Any]:
    """POST to the API as a logged-in user (with the CSRF header)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.post(f"{base_url}/api/v1/auth/login",
                                json={"username": username, "password": password}) as resp:
            assert resp.status == 200, await resp.text()
            csrf = (await resp.json())["csrf_token"]
        async with session.post(f"{base_url}/api/v1{path}", json=body,
                                headers={"X-CSRF-Token": csrf}) as resp:
            return resp.status, await resp.json()


async def admin_get(base_url: str, path: str, username: str, password: str) -> tuple[int, Any]:
    """GET an admin API path with a logged-in session."""
    # cookies from an IP address (loopback) are kept only by an "unsafe" jar
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.post(f"{base_url}/api/v1/auth/login",
                                json={"username": username, "password": password}) as resp:
            assert resp.status == 200, await resp.text()
        async with session.get(f"{base_url}/api/v1{path}") as resp:
            return resp.status, await resp.json()




class RedisProcess:
    """A throwaway redis-server on a fixed port that a test stops and starts again (empty, as
    a restarted Redis without persistence is)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.root.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while not _redis_ping(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): every call hangs until `resume`, and keys whose TTL
        passed meanwhile are gone when it answers again, as after a long stall."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
