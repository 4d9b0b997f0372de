"""The client address behind a reverse proxy: believed only from trusted proxies, read from the
right of X-Forwarded-For; login throttling and the audit log use it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from web.app import create_app
from web.control import keys
from web.control.proxies import TrustedProxies
from web.settings import load_settings
from web.store import accounts, audit

from .conftest import DATA_KEY, PASSWORD

PROXIES = TrustedProxies(["10.0.0.0/8", "2001:db8::/32"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        # not a proxy: its headers prove nothing
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),
        ("127.0.0.1", ["198.51.100.1"], "127.0.0.1"),
        # one proxy: the hop it added is the client
        ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),
        # the client wrote its own header first: only the proxy's appended hop counts
        ("10.0.0.2", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),
        ("10.0.0.2", ["6.6.6.6", "198.51.100.1"], "198.51.100.1"),
        # two proxies in a row
        ("10.0.0.2", ["198.51.100.1, 10.9.9.9"], "198.51.100.1"),
        # spoofing a trusted address on the left gains nothing
        ("10.0.0.2", ["10.1.1.1, 198.51.100.1"], "198.51.100.1"),
        # a proxy without a header, or only trusted hops: the nearest proxy
        ("10.0.0.2", [], "10.0.0.2"),
        ("10.0.0.2", ["10.1.1.1"], "10.1.1.1"),
        # garbage never becomes an address (a client could vary it to dodge throttling)
        ("10.0.0.2", ["198.51.100.1, not-an-ip"], "10.0.0.2"),
        ("10.0.0.2", ["evil, 10.3.3.3"], "10.3.3.3"),
        # ports and IPv6, IPv4-mapped peers
        ("10.0.0.2", ["198.51.100.1:5555"], "198.51.100.1"),
        ("2001:db8::5", ["[2001:db8:ffff::1]:443, 2a00:1450::1"], "2a00:1450::1"),
        ("::ffff:10.0.0.2", ["198.51.100.7"], "198.51.100.7"),
    ],
)
def test_client_address_rule(peer: str, forwarded: list[str], client: str) -> None:
    assert PROXIES.client(peer, forwarded) == client


def test_the_scheme_is_believed_only_from_a_proxy() -> None:
    assert PROXIES.scheme("10.0.0.2", "http", "https") == "https"
    assert PROXIES.scheme("203.0.113.9", "http", "https") == "http"
    assert PROXIES.scheme("10.0.0.2", "http", "gopher") == "http"
    assert PROXIES.scheme("203.0.113.9", "https", None) == "https"


def _create(tx: Any, username: str) -> None:
    accounts.create_user(tx, username=username, role="clinician", password=PASSWORD)


async def _client(
    aiohttp_client: Callable[..., Any], tmp_path: Path, trusted: list[str]
) -> Any:
    settings = load_settings(
        tmp_path / "data", data_key=DATA_KEY, public_base_url="http://confide.test",
        trusted_proxies=trusted, media_processes=0,
    )
    return await aiohttp_client(create_app(settings))


async def _until_throttled(client: Any, forwarded: Callable[[int], str]) -> list[int]:
    """Wrong passwords (a new username each time) until the address is throttled."""
    statuses: list[int] = []
    for i in range(40):
        statuses.append(await _fail_login(client, f"nobody{i}", forwarded(i)))
        if statuses[-1] == 429:
            break
    return statuses


async def _fail_login(client: Any, username: str, forwarded: str | None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    resp = await client.post(
        "/api/v1/auth/login", json={"username": username, "password": "wrong password!"},
        headers=headers,
    )
    return int(resp.status)


async def test_behind_a_trusted_proxy_one_clients_typos_lock_out_only_that_client(
    aiohttp_client: Callable[..., Any], tmp_path: Path
) -> None:
    # the test client connects from 127.0.0.1: that is the proxy
    client = await _client(aiohttp_client, tmp_path, ["127.0.0.1/32"])
    store = client.app[keys.STORE]
    await store.run(_create, "dr.real")
    statuses = await _until_throttled(client, lambda i: "6.6.6.6, 198.51.100.1")
    # the address's free failures, then backoff
    assert statuses[:20] == [401] * 20 and statuses[-1] == 429
    # another person behind the same proxy logs in at once
    resp = await client.post(
        "/api/v1/auth/login", json={"username": "dr.real", "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.2"},
    )
    assert resp.status == 200
    # the audit log names the real client, never the proxy or the spoofed hop
    events = await store.run(audit.list_events, limit=100, before_id=None, action=None)
    addresses = {
        e.detail.get("address") for e in events if e.action.startswith("login.")
    }
    assert addresses == {"198.51.100.1", "198.51.100.2"}


async def test_an_untrusted_peer_cannot_claim_an_address(
    aiohttp_client: Callable[..., Any], tmp_path: Path
) -> None:
    # only 10.0.0.0/8 is a proxy: the test client (127.0.0.1) is a client like any other
    client = await _client(aiohttp_client, tmp_path, ["10.0.0.0/8"])
    store = client.app[keys.STORE]
    # a fresh forged address per try does not escape the per-address backoff
    statuses = await _until_throttled(client, lambda i: f"198.51.100.{i}")
    assert statuses[:20] == [401] * 20 and statuses[-1] == 429
    events = await store.run(audit.list_events, limit=100, before_id=None, action=None)
    assert {e.detail.get("address") for e in events if e.action.startswith("login.")} == {
        "127.0.0.1"
    }
