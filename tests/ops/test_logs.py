"""Logs as JSON lines: a traceback for every 500 without the exception's text, and an access
log that keeps invite tokens and query secrets out."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from web.app import create_app
from web.control import keys as control_keys
from web.ops.logs import AccessLogger, JsonFormatter, TextFormatter, redact_target
from web.settings import load_settings
from web.store import accounts

from ..control.conftest import PASSWORD
from ..support.servers import free_port

SECRET = "Araminta Quillfeather"


def test_redact_target() -> None:
    assert redact_target("/i/AbC-123_token") == "/i/[redacted]"
    assert redact_target("/i/AbC-123_token/extra") == "/i/[redacted]/extra"
    assert redact_target("/api/v1/audit", "limit=5&token=abc&before=9") == (
        "/api/v1/audit?limit=5&token=[redacted]&before=9")
    assert redact_target("/room", "s3cr3tgrant") == "/room?[redacted]"
    assert redact_target("/static/room.js") == "/static/room.js"


def _create(tx: Any, username: str, role: str) -> None:
    accounts.create_user(tx, username=username, role=role, password=PASSWORD)


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise KeyError(SECRET)


async def test_a_500_logs_type_and_frames_never_the_message(
    aiohttp_client: Callable[..., Any], tmp_path: Path, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings(tmp_path / "data", media_processes=0)
    client = await aiohttp_client(create_app(settings))
    await client.app[control_keys.STORE].run(_create, "admin.a", "admin")
    resp = await client.post("/api/v1/auth/login",
                             json={"username": "admin.a", "password": PASSWORD})
    assert resp.status == 200
    monkeypatch.setattr(accounts, "list_users", _boom)
    with caplog.at_level(logging.ERROR):
        resp = await client.get("/api/v1/users")
    assert resp.status == 500
    assert (await resp.json())["error"]["code"] == "internal_error"
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["level"] == "error" and entry["msg"].startswith("internal error in GET")
    assert entry["error"] == "builtins.KeyError"
    frames = entry["traceback"][0]["frames"]
    assert any(frame.endswith("in _boom") for frame in frames)
    assert any("web/control/api_admin.py" in frame for frame in frames)
    assert SECRET not in line
    text = TextFormatter().format(record)
    assert "builtins.KeyError (message withheld)" in text and SECRET not in text


async def test_access_log_lines_are_json_with_tokens_redacted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(tmp_path / "data", media_processes=0,
                             trusted_proxies=["127.0.0.1/32"])
    app = create_app(settings)
    logger = logging.getLogger("confide.access.test")
    runner = web.AppRunner(app, access_log_class=AccessLogger, access_log=logger)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    token = "tok-" + "x9Z" * 10
    try:
        with caplog.at_level(logging.INFO, logger="confide.access.test"):
            async with aiohttp.ClientSession() as session:
                for path in (f"/i/{token}", f"/api/v1/audit?limit=3&token={token}"):
                    async with session.get(f"http://127.0.0.1:{port}{path}",
                                           headers={"X-Forwarded-For": "198.51.100.8"}):
                        pass
    finally:
        await runner.cleanup()
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == logger.name]
    assert len(lines) == 2
    entries = [json.loads(line) for line in lines]
    assert [e["target"] for e in entries] == [
        "/i/[redacted]", "/api/v1/audit?limit=3&token=[redacted]"]
    assert [e["status"] for e in entries] == [200, 401]
    assert {e["client"] for e in entries} == {"198.51.100.8"}
    assert all(e["type"] == "access" and e["method"] == "GET" for e in entries)
    assert not any(token in line for line in lines)
