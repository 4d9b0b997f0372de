"""Shared fixtures: a real Confide server on a loopback port, and join links for it."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web

from sfu.grants import mint_grant
from sfu.ice import set_loopback_only
from web.app import create_app
from web.settings import Settings, load_settings

# the server and aiortc clients in tests offer 127.0.0.1 only (see TESTING in the README)
set_loopback_only(True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RunningServer:
    def __init__(self, app: web.Application, runner: web.AppRunner, settings: Settings) -> None:
        self.app = app
        self.runner = runner
        self.settings = settings

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    def link(self, room: str, name: str, **kwargs: object) -> str:
        grant = mint_grant(self.settings.grant_secret, room=room, display_name=name, **kwargs)  # type: ignore[arg-type]
        return f"{self.base_url}/room#grant={grant}"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    port = free_port()
    return load_settings(tmp_path / "var", host="127.0.0.1", port=port, dev=True, ice_loopback=True,
                         strict_wire=True)


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[RunningServer]:
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    try:
        yield RunningServer(app, runner, settings)
    finally:
        await runner.cleanup()


LinkFactory = Callable[..., str]

# tests whose outcome depends on media flowing in real time (frame rates, freezes, a browser
# decoding, several server processes racing): scripts/test.sh runs them one at a time, after
# the others have shared the machine's cores
_REALTIME_DIRS = {"browser", "sfu", "privacy_room", "cluster", "live", "session"}
# ...except these modules there, which check messages, records and refusals, not media timing
_SHARED_MODULES = {
    "sfu/test_aiortc_compat.py", "sfu/test_downlink.py", "sfu/test_privacy_alerts.py",
    "sfu/test_host_copy.py",
    "sfu/test_hostile_sdp.py", "session/test_host_control.py", "session/test_incoming_video.py",
    "session/test_measures_live.py", "session/test_names_hidden.py",
    "session/test_session_model.py", "live/test_rooms.py", "live/test_writer.py",
}
# ...and these, slow ones included, which mostly wait on a clock (an outage, a heartbeat's
# TTL, a reconnect grace, a dead peer's timeout) or check refusals and memory rather than a
# frame rate: sharing the cores lengthens their waits a little, not their verdicts, and
# waiting side by side takes minutes off the suite
_WAITING_MODULES = {
    "live/test_db_outage.py", "live/test_restart.py", "cluster/test_redis_outage.py",
    "cluster/test_scale_out.py", "cluster/test_placement.py", "sfu/test_lifecycle.py",
    "sfu/test_bad_input.py", "sfu/test_session_commands.py", "sfu/test_cli.py",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).parent
    for item in items:
        try:
            parts = item.path.relative_to(tests_dir).parts
        except ValueError:
            continue
        module = "/".join(parts)
        if module in _WAITING_MODULES:
            continue
        if (
            (parts[0] in _REALTIME_DIRS and module not in _SHARED_MODULES)
            or item.get_closest_marker("browser") is not None
            or item.get_closest_marker("slow") is not None
        ):
            item.add_marker(pytest.mark.realtime)
