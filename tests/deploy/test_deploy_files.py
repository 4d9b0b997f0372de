"""The deployment files say what the service actually accepts: the unit's command line parses,
every setting in the example settings file is one the service reads, and the file loads."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from web.cli import build_parser
from web.settings import load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"


def _unit_value(unit: Path, key: str) -> str:
    (line,) = [ln for ln in unit.read_text().splitlines() if ln.startswith(key + "=")]
    return line.split("=", 1)[1]


def test_the_unit_runs_a_command_the_service_accepts() -> None:
    argv = shlex.split(_unit_value(DEPLOY / "systemd" / "confide.service", "ExecStart"))
    assert argv[0] == "/opt/confide/venv/bin/confide"
    args = build_parser().parse_args(argv[1:])
    assert (args.command, args.host, args.port) == ("serve", "127.0.0.1", 8080)
    # HTTP on loopback behind nginx, but media on the public address
    assert args.ice_loopback is False
    assert _unit_value(DEPLOY / "systemd" / "confide.service", "EnvironmentFile") == (
        "/etc/confide/confide.env")
    # its own CPU controller: the niced media workers then compete only with Confide's loop
    assert int(_unit_value(DEPLOY / "systemd" / "confide.service", "CPUWeight")) >= 100


def _example() -> dict[str, str]:
    text = (DEPLOY / "systemd" / "confide.env.example").read_text()
    return dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )


def test_every_example_setting_is_read_by_the_service() -> None:
    source = "\n".join(p.read_text() for p in (REPO_ROOT / "web").rglob("*.py"))
    read = set(re.findall(r'"(CONFIDE_[A-Z_]+)"', source))
    example = _example()
    assert example and set(example) <= read, set(example) - read


def test_the_example_settings_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in _example().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CONFIDE_DATA_KEY_FILE", str(tmp_path / "keys" / "data-key"))
    settings = load_settings(tmp_path / "data")
    assert settings.base_url == "https://confide.example.nhs.uk"
    assert settings.ice_port_range == (50000, 50999)
    assert settings.trusted_proxies == ["127.0.0.1/32", "::1/128"]
    assert [u.split(":", 1)[0] for u in settings.turn_urls] == ["turn", "turn", "turns"]
    assert settings.turn_urls[2].startswith("turns:turn.example.nhs.uk:443")
    assert settings.database_url.startswith("postgresql+psycopg://")
