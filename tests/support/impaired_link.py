"""An impaired network link in user space: a UDP relay that drops, delays, reorders and
rate-limits, put between one client connection and the server (this kernel has no netem).

ICE on loopback makes the relay's place easy to choose: each side learns the other's address
from the candidates in the SDP, so the client is told the server is at the relay's
client-facing port, and the server is told the client is at the relay's server-facing port.
Both sides' connectivity checks, consent refreshes, DTLS, RTP and RTCP then all go through
the relay, each direction with its own impairment.
"""

from __future__ import annotations

import asyncio
import random
import re
from dataclasses import dataclass, field
from typing import Any, cast

from web.bot import Bot

_CANDIDATE = re.compile(
    r"^a=candidate:(\S+) (\d+) (udp|UDP) (\d+) (\S+) (\d+) typ host(.*)$")


@dataclass
class Impairment:
    """What one direction of the link does to each datagram."""

    loss: float = 0.0
    # every datagram is delayed by delay_ms plus a uniform 0..jitter_ms (so it reorders)
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    # a bottleneck: datagrams leave at this rate; one that would wait longer than queue_ms
    # in its queue is dropped (a home router's drop-tail buffer)
    rate_bps: int | None = None
    queue_ms: float = 200.0


@dataclass
class DirectionStats:
    datagrams: int = 0
    dropped_loss: int = 0
    dropped_queue: int = 0
    bytes_delivered: int = 0


@dataclass
class _Direction:
    impairment: Impairment
    rng: random.Random
    stats: DirectionStats = field(default_factory=DirectionStats)
    next_free_s: float = 0.0


class _Side(asyncio.DatagramProtocol):
    def __init__(self, link: ImpairedLink, facing: str) -> None:
        self.link = link
        self.facing = facing
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # the selector loop's datagram transport is not a DatagramTransport subclass
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.link._received(self.facing, data, addr)


class ImpairedLink:
    """One client connection's path to the server: `to_server` and `to_client` impairments."""

    def __init__(self, *, to_server: Impairment | None = None,
                 to_client: Impairment | None = None, seed: int = 1) -> None:
        self.to_server = _Direction(to_server or Impairment(), random.Random(seed))
        self.to_client = _Direction(to_client or Impairment(), random.Random(seed + 1))
        self._client_side: _Side | None = None
        self._server_side: _Side | None = None
        self.client_addr: tuple[str, int] | None = None
        self.server_addr: tuple[str, int] | None = None
        self.closed = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        _, self._client_side = await loop.create_datagram_endpoint(
            lambda: _Side(self, "client"), local_addr=("127.0.0.1", 0))
        _, self._server_side = await loop.create_datagram_endpoint(
            lambda: _Side(self, "server"), local_addr=("127.0.0.1", 0))

    @property
    def client_facing_port(self) -> int:
        """Where the client is told the server is."""
        return self._port(self._client_side)

    @property
    def server_facing_port(self) -> int:
        """Where the server is told the client is."""
        return self._port(self._server_side)

    @staticmethod
    def _port(side: _Side | None) -> int:
        assert side is not None and side.transport is not None, "link not started"
        return int(side.transport.get_extra_info("sockname")[1])

    def set_impairment(self, *, to_server: Impairment | None = None,
                       to_client: Impairment | None = None) -> None:
        if to_server is not None:
            self.to_server.impairment = to_server
        if to_client is not None:
            self.to_client.impairment = to_client

    def _received(self, facing: str, data: bytes, addr: tuple[str, int]) -> None:
        if self.closed:
            return
        if facing == "client":
            self.client_addr = addr  # the client's real address: where replies go
            target, out, direction = self.server_addr, self._server_side, self.to_server
        else:
            target, out, direction = self.client_addr, self._client_side, self.to_client
        if target is None or out is None or out.transport is None:
            return
        stats = direction.stats
        stats.datagrams += 1
        imp = direction.impairment
        rng = direction.rng
        if imp.loss and rng.random() < imp.loss:
            stats.dropped_loss += 1
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        delay = 0.0
        if imp.rate_bps:
            start = max(now, direction.next_free_s)
            if start - now > imp.queue_ms / 1000:
                stats.dropped_queue += 1
                return
            direction.next_free_s = start + len(data) * 8 / imp.rate_bps
            delay = direction.next_free_s - now
        delay += (imp.delay_ms + (rng.uniform(0, imp.jitter_ms) if imp.jitter_ms else 0)) / 1000
        stats.bytes_delivered += len(data)
        transport = out.transport
        if delay <= 0:
            transport.sendto(data, target)
        else:
            loop.call_later(delay, self._send_later, transport, data, target)

    def _send_later(self, transport: asyncio.DatagramTransport, data: bytes,
                    target: tuple[str, int]) -> None:
        if not self.closed and not transport.is_closing():
            transport.sendto(data, target)

    # --- SDP: point each side at the relay
    def client_sdp(self, sdp: str) -> str:
        """The client's SDP as the server should see it: its candidates at the relay."""
        self.client_addr = self.client_addr or first_host_candidate(sdp)
        return point_candidates_at(sdp, self.server_facing_port)

    def server_sdp(self, sdp: str) -> str:
        """The server's SDP as the client should see it: its candidates at the relay."""
        self.server_addr = first_host_candidate(sdp) or self.server_addr
        return point_candidates_at(sdp, self.client_facing_port)

    def close(self) -> None:
        self.closed = True
        for side in (self._client_side, self._server_side):
            if side is not None and side.transport is not None:
                side.transport.close()


def first_host_candidate(sdp: str) -> tuple[str, int] | None:
    for line in sdp.splitlines():
        m = _CANDIDATE.match(line)
        if m and m.group(5) == "127.0.0.1":
            return m.group(5), int(m.group(6))
    return None


def point_candidates_at(sdp: str, port: int) -> str:
    """Keep one loopback UDP host candidate per section, at `port`; drop every other one."""
    out = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            m = _CANDIDATE.match(line)
            if not m or m.group(5) != "127.0.0.1":
                continue
            line = (f"a=candidate:{m.group(1)} {m.group(2)} {m.group(3)} {m.group(4)} "
                    f"127.0.0.1 {port} typ host{m.group(7)}")
        out.append(line)
    return "\r\n".join(out) + "\r\n"


class LinkedBot(Bot):
    """A bot whose connections go through impaired links (by leg: "publish", "subscribe")."""

    def __init__(self, link: str, *, links: dict[str, ImpairedLink], **kwargs: Any) -> None:
        super().__init__(link, **kwargs)
        self.links = links

    def outgoing_sdp(self, leg: str, sdp: str) -> str:
        relay = self.links.get(leg)
        return relay.client_sdp(sdp) if relay is not None else sdp

    def incoming_sdp(self, leg: str, sdp: str) -> str:
        relay = self.links.get(leg)
        return relay.server_sdp(sdp) if relay is not None else sdp

    async def close(self) -> None:
        await super().close()
        for relay in self.links.values():
            relay.close()


async def open_links(**legs: tuple[Impairment, Impairment]) -> dict[str, ImpairedLink]:
    """Started links by leg name: (to_server, to_client) impairments for each."""
    links = {}
    for seed, (leg, (up, down)) in enumerate(legs.items()):
        relay = ImpairedLink(to_server=up, to_client=down, seed=seed * 7 + 3)
        await relay.start()
        links[leg] = relay
    return links
