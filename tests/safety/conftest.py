"""Fixtures for clinical safety: the control plane with a hazard log in a temp dir."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.control.conftest import (  # noqa: F401 (fixtures)
    DATA_KEY,
    PASSWORD,
    Api,
    Clock,
    clock,
    db_url,
    make_user,
    postgres_server,
    store,
)
from web.control import keys, setup_control_plane
from web.safety.config import REPO_ROOT, SafetyConfig
from web.safety.keys import SAFETY_CONFIG
from web.settings import load_settings

REPO_LOG = REPO_ROOT / "hazard_log.md"


@dataclass
class SafetyApi(Api):
    """The API plus the hazard log file the service reads."""

    log_path: Path = Path()

    def write_log(self, text: str) -> None:
        self.log_path.write_text(text, encoding="utf-8")

    def read_log(self) -> str:
        return self.log_path.read_text(encoding="utf-8")

    async def user(self, username: str, role: str) -> Caller:
        """Create an account and log it in; calls made as them carry their own cookie."""
        await self.store.run(_create, username, role)
        resp = await self.client.post(
            "/api/v1/auth/login", json={"username": username, "password": PASSWORD}
        )
        assert resp.status == 200, await resp.text()
        token = resp.cookies["confide_session"].value
        csrf = str((await resp.json())["csrf_token"])
        # several people share this test client: nobody's cookie is sent by default
        self.client.session.cookie_jar.clear()
        return Caller(self, token, csrf)


@dataclass
class Caller:
    """One logged-in person."""

    api: SafetyApi
    token: str
    csrf: str

    async def call(self, method: str, path: str, json: Any = None) -> tuple[int, Any]:
        headers = {"Cookie": f"confide_session={self.token}", "X-CSRF-Token": self.csrf}
        resp = await self.api.client.request(method, "/api/v1" + path, json=json, headers=headers)
        if resp.content_type == "application/json":
            return resp.status, await resp.json()
        return resp.status, await resp.text()


def _create(tx: Any, username: str, role: str) -> None:
    from web.store import accounts

    accounts.create_user(tx, username=username, role=role, password=PASSWORD)


MakeApi = Callable[..., Awaitable[SafetyApi]]


@pytest.fixture
async def make_api(
    aiohttp_client: Callable[..., Any],
    tmp_path: Path,
    clock: Clock,  # noqa: F811 (the fixture)
) -> AsyncIterator[MakeApi]:
    """Build the app on a database URL (SQLite by default) with a copy of the repo's log."""
    count = 0

    async def build(
        database_url: str = "", log_text: str | None = None, evidence_path: Path | None = None
    ) -> SafetyApi:
        nonlocal count
        count += 1
        root = tmp_path / f"app{count}"
        settings = load_settings(
            root / "data",
            database_url=database_url,
            data_key=DATA_KEY,
            public_base_url="http://confide.test",
        )
        log_path = root / "hazard_log.md"
        log_path.write_text(
            log_text if log_text is not None else REPO_LOG.read_text(encoding="utf-8"),
            encoding="utf-8",
        )
        app = web.Application()
        setup_control_plane(app, settings)
        # the evidence the log names is in this repository's tests/; the evidence record is
        # the test's own (none unless given)
        app[SAFETY_CONFIG] = SafetyConfig(
            log_path=log_path,
            repo_root=REPO_ROOT,
            evidence_path=evidence_path or root / "no-evidence-record.json",
        )
        app[keys.STORE].clock = clock
        client = await aiohttp_client(app)
        return SafetyApi(client, app, log_path)

    yield build


@pytest.fixture
async def api(make_api: MakeApi) -> SafetyApi:
    return await make_api()
