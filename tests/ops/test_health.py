"""/readyz against real failures: a stopped PostgreSQL, media workers that cannot start, a
hazard log that cannot be read; /healthz stays a bare liveness answer throughout."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sfu.workers import MediaWorkers
from tests.support.servers import running_postgres
from web import keys
from web.app import create_app
from web.safety.config import SafetyConfig
from web.safety.keys import SAFETY_CONFIG
from web.settings import load_settings


def _metric(text: str, name: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    return 0.0


async def test_ready_until_postgres_stops(
    aiohttp_client: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "hazard_log.md"
    log.write_bytes(SafetyConfig().log_path.read_bytes())
    monkeypatch.setenv("CONFIDE_HAZARD_LOG", str(log))
    with running_postgres() as pg:
        settings = load_settings(tmp_path / "data", database_url=pg.create_database(),
                                 media_processes=0)
        client = await aiohttp_client(create_app(settings))
        resp = await client.get("/readyz")
        assert resp.status == 200 and await resp.json() == {"status": "ready"}
        errors_before = _metric(await (await client.get("/metrics")).text(),
                                "confide_db_errors_total")
        assert _metric(await (await client.get("/metrics")).text(), "confide_database_up") == 1
        pg.stop()
        resp = await client.get("/readyz")
        body = await resp.json()
        # degraded, still serving: sessions in progress carry on without the database
        assert resp.status == 200 and body["status"] == "degraded"
        assert body["reasons"] == ["database: OperationalError"]
        # alive all the same, and the failure is counted and shown
        assert (await client.get("/healthz")).status == 200
        metrics = await (await client.get("/metrics")).text()
        assert _metric(metrics, "confide_db_errors_total") > errors_before
        assert _metric(metrics, "confide_database_up") == 0
        # a database outage alone is degraded; with another failure the node is not ready
        kept = log.read_bytes()
        log.unlink()
        resp = await client.get("/readyz")
        assert resp.status == 503
        assert await resp.json() == {
            "status": "not_ready",
            "reasons": ["database: OperationalError", "hazard log: unreadable"],
        }
        log.write_bytes(kept)
        pg.start()
        resp = await client.get("/readyz")
        assert resp.status == 200 and await resp.json() == {"status": "ready"}
        assert _metric(await (await client.get("/metrics")).text(), "confide_database_up") == 1


async def test_not_ready_without_a_readable_hazard_log(
    aiohttp_client: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "hazard_log.md"
    log.write_bytes(SafetyConfig().log_path.read_bytes())
    monkeypatch.setenv("CONFIDE_HAZARD_LOG", str(log))
    settings = load_settings(tmp_path / "data", media_processes=0)
    app = create_app(settings)
    client = await aiohttp_client(app)
    assert app[SAFETY_CONFIG].log_path == log
    assert (await client.get("/readyz")).status == 200
    log.unlink()  # a deployment that lost its log
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert (await resp.json())["reasons"] == ["hazard log: unreadable"]


async def test_not_ready_when_media_workers_keep_dying(
    aiohttp_client: Callable[..., Any], tmp_path: Path
) -> None:
    settings = load_settings(tmp_path / "data", dev=True)
    app = create_app(settings)
    client = await aiohttp_client(app)
    metrics = await (await client.get("/metrics")).text()
    restarts_before = _metric(metrics, "confide_media_worker_restarts_total")
    # a broken install: the worker cannot import what it must run, so it dies at start
    workers = MediaWorkers(1, factory="confide_module_that_is_not_there:factory")
    app[keys.ROOMS].media_workers = workers
    from confidentiality.profiles import Profile

    workers.open(name="v", profile=Profile.BLUR, display_name="x", bitrate_bps=300_000,
                 max_size=None, emit=lambda *a: None, request_source_keyframe=lambda: None,
                 on_event=lambda e: None)
    for _ in range(200):
        if workers.given_up:
            break
        await asyncio.sleep(0.1)
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert (await resp.json())["reasons"] == [
        "media workers: 1 kept dying and were given up"]
    metrics = await (await client.get("/metrics")).text()
    assert _metric(metrics, "confide_media_worker_restarts_total") == restarts_before + 2
    assert _metric(metrics, "confide_media_workers") == 0  # running: none left
    await workers.aclose()
