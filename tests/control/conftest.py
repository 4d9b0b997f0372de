"""Fixtures for the control plane: stores on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.support.servers import postgres_server, redis_server  # noqa: F401 (fixtures)
from web.control import keys, setup_control_plane
from web.settings import Settings, load_settings
from web.store import Store, accounts, open_store
from web.store.accounts import UserInfo

DATA_KEY = "test-data-key-0123456789abcdef"
PASSWORD = "a long enough password"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2030, 3, 5, 18, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    server = request.getfixturevalue("postgres_server")
    return str(server.create_database())


@pytest.fixture
def store(db_url: str, clock: Clock) -> Iterator[Store]:
    s = open_store(db_url, DATA_KEY, clock=clock)
    yield s
    s.dispose()


def make_user(store: Store, username: str, role: str = "clinician") -> UserInfo:
    return store.call(accounts.create_user, username=username, role=role, password=PASSWORD)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        tmp_path / "data", database_url="", data_key=DATA_KEY, public_base_url="http://confide.test"
    )


@dataclass
class Api:
    """A test client with the app's store at hand."""

    client: TestClient
    app: web.Application

    @property
    def store(self) -> Store:
        return self.app[keys.STORE]

    async def login(self, username: str, password: str = PASSWORD) -> str:
        resp = await self.client.post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        )
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["csrf_token"])

    async def call(
        self, method: str, path: str, csrf: str | None = None, json: Any = None, **kwargs: Any
    ) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": csrf} if csrf else {}
        resp = await self.client.request(method, path, json=json, headers=headers, **kwargs)
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body


@pytest.fixture
async def api(
    aiohttp_client: Callable[..., Any], settings: Settings, clock: Clock
) -> AsyncIterator[Api]:
    app = web.Application()
    setup_control_plane(app, settings)
    app[keys.STORE].clock = clock
    client = await aiohttp_client(app)
    yield Api(client, app)
