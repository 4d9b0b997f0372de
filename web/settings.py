"""Service settings: defaults, environment, and secrets kept in the data dir."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class IceServer:
    urls: list[str]
    username: str | None = None
    credential: str | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"urls": self.urls}
        if self.username is not None:
            out["username"] = self.username
        if self.credential is not None:
            out["credential"] = self.credential
        return out


@dataclass
class Settings:
    data_dir: Path = Path("./var")
    host: str = "127.0.0.1"
    port: int = 8080
    # dev mode: ad-hoc rooms, join links minted by the CLI
    dev: bool = False
    # the grant signing secret; generated into the data dir when not given
    grant_secret: str = ""
    # key for real names at rest; generated into the data dir when not given
    data_key: str = ""
    database_url: str = ""
    redis_url: str = ""
    # ICE servers handed to every client and used by the server's own peers:
    # none on loopback by default, never an implicit public STUN server
    ice_servers: list[IceServer] = field(default_factory=list)
    # let the server offer 127.0.0.1 candidates (loopback-only machines, tests)
    ice_loopback: bool = True
    max_participants_per_room: int = 16
    public_base_url: str = ""
    # worker processes for processed video (sfu/workers.py); None: one per core;
    # 0: threads in the server's own process
    media_processes: int | None = None
    # hold every outgoing signaling message to the protocol's models and fail loudly when
    # one drifts (tests); in service a drift is logged and the message still goes out
    strict_wire: bool = False

    @property
    def base_url(self) -> str:
        return self.public_base_url or f"http://{self.host}:{self.port}"

    @property
    def sqlite_url(self) -> str:
        return f"sqlite:///{(self.data_dir / 'confide.sqlite3').resolve()}"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or self.sqlite_url


def _secret_file(path: Path) -> str:
    # created once with owner-only permissions, then reused across restarts
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def load_settings(data_dir: str | Path | None = None, **overrides: object) -> Settings:
    """Settings from the environment (CONFIDE_*), then overrides, secrets filled from data dir."""
    env = os.environ
    settings = Settings(
        data_dir=Path(data_dir or env.get("CONFIDE_DATA_DIR", "./var")),
        grant_secret=env.get("CONFIDE_GRANT_SECRET", ""),
        data_key=env.get("CONFIDE_DATA_KEY", ""),
        database_url=env.get("CONFIDE_DATABASE_URL", ""),
        redis_url=env.get("CONFIDE_REDIS_URL", ""),
        public_base_url=env.get("CONFIDE_PUBLIC_URL", ""),
        media_processes=int(env["CONFIDE_MEDIA_PROCESSES"])
        if env.get("CONFIDE_MEDIA_PROCESSES", "").strip() else None,
    )
    ice = env.get("CONFIDE_ICE_SERVERS")
    if ice:
        # JSON list of {"urls": [...], "username": ..., "credential": ...}
        settings.ice_servers = [IceServer(**item) for item in json.loads(ice)]
    for key, value in overrides.items():
        if value is not None:
            setattr(settings, key, value)
    settings.data_dir = Path(settings.data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if not settings.grant_secret:
        settings.grant_secret = _secret_file(settings.data_dir / "grant_secret")
    if not settings.data_key:
        settings.data_key = _secret_file(settings.data_dir / "data_key")
    return settings
