"""Service settings: defaults, environment, and secrets kept in the data dir."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path


class SettingsError(ValueError):
    """A setting that cannot be used; the message names it."""


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
    # key for real names at rest, given directly (CONFIDE_DATA_KEY); else read from
    # `data_key_file`, generated there on first start
    data_key: str = ""
    # where the data key(s) live: keep it off the data dir's disk and out of its backups
    # (CONFIDE_DATA_KEY_FILE; default: data_dir/data_key)
    data_key_file: Path | None = None
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
    # HTTPS served by aiohttp itself (PEM files); behind a proxy, the proxy does it
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # reverse proxies (CIDRs) whose X-Forwarded-For / X-Forwarded-Proto are believed
    trusted_proxies: list[str] = field(default_factory=list)
    # TURN servers handed to clients with per-join credentials (coturn's use-auth-secret)
    turn_urls: list[str] = field(default_factory=list)
    turn_secret: str = ""
    # the UDP ports the server's ICE sockets may bind (inclusive), for a firewall to name
    ice_port_range: tuple[int, int] | None = None
    # GET /metrics: a bearer token, else loopback clients only
    metrics_token: str = ""
    # "json" (one object per line) or "text"
    log_format: str = "json"
    # this node's id among several sharing one database (rooms it runs are taken back at start)
    node_id: str = "local"

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return self.public_base_url or f"{scheme}://{self.host}:{self.port}"

    @property
    def key_file(self) -> Path:
        """The data key file (used when no key is given directly)."""
        return self.data_key_file or self.data_dir / "data_key"

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


def parse_cidrs(raw: str) -> list[str]:
    """CIDRs separated by commas or spaces (a bare address is a /32 or /128)."""
    out = []
    for item in raw.replace(",", " ").split():
        try:
            out.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise SettingsError(f"CONFIDE_TRUSTED_PROXIES: {item!r} is not a CIDR") from None
    return out


def parse_port_range(raw: str) -> tuple[int, int] | None:
    """"50000-50100" (inclusive) or None when empty."""
    raw = raw.strip()
    if not raw:
        return None
    low, sep, high = raw.partition("-")
    try:
        first, last = int(low), int(high if sep else low)
    except ValueError:
        raise SettingsError(f"CONFIDE_ICE_PORT_RANGE: {raw!r} is not LOW-HIGH") from None
    if not 1024 <= first <= last <= 65535:
        raise SettingsError(
            f"CONFIDE_ICE_PORT_RANGE: {raw!r} must be within 1024-65535, low to high"
        )
    return first, last


def _path(raw: str | None) -> Path | None:
    return Path(raw) if raw else None


def owner_only_dir(path: Path) -> None:
    """Create `path` readable by its owner only, and close up one that others could read
    (it holds the database, the secrets and records kept over a stop)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o700)


def load_settings(data_dir: str | Path | None = None, **overrides: object) -> Settings:
    """Settings from the environment (CONFIDE_*), then overrides, secrets filled from data dir."""
    env = os.environ
    log_format = env.get("CONFIDE_LOG_FORMAT", "json").strip() or "json"
    if log_format not in ("json", "text"):
        raise SettingsError("CONFIDE_LOG_FORMAT must be json or text")
    settings = Settings(
        data_dir=Path(data_dir or env.get("CONFIDE_DATA_DIR", "./var")),
        grant_secret=env.get("CONFIDE_GRANT_SECRET", ""),
        data_key=env.get("CONFIDE_DATA_KEY", ""),
        data_key_file=_path(env.get("CONFIDE_DATA_KEY_FILE")),
        database_url=env.get("CONFIDE_DATABASE_URL", ""),
        redis_url=env.get("CONFIDE_REDIS_URL", ""),
        public_base_url=env.get("CONFIDE_PUBLIC_URL", ""),
        node_id=env.get("CONFIDE_NODE_ID", "").strip() or "local",
        media_processes=int(env["CONFIDE_MEDIA_PROCESSES"])
        if env.get("CONFIDE_MEDIA_PROCESSES", "").strip() else None,
        tls_cert=_path(env.get("CONFIDE_TLS_CERT")),
        tls_key=_path(env.get("CONFIDE_TLS_KEY")),
        trusted_proxies=parse_cidrs(env.get("CONFIDE_TRUSTED_PROXIES", "")),
        turn_urls=env.get("CONFIDE_TURN_URLS", "").replace(",", " ").split(),
        turn_secret=env.get("CONFIDE_TURN_SECRET", ""),
        ice_port_range=parse_port_range(env.get("CONFIDE_ICE_PORT_RANGE", "")),
        metrics_token=env.get("CONFIDE_METRICS_TOKEN", ""),
        log_format=log_format,
    )
    ice = env.get("CONFIDE_ICE_SERVERS")
    if ice:
        # JSON list of {"urls": [...], "username": ..., "credential": ...}
        settings.ice_servers = [IceServer(**item) for item in json.loads(ice)]
    for key, value in overrides.items():
        if value is not None:
            setattr(settings, key, value)
    settings.data_dir = Path(settings.data_dir)
    owner_only_dir(settings.data_dir)
    if not settings.grant_secret:
        settings.grant_secret = _secret_file(settings.data_dir / "grant_secret")
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise SettingsError("HTTPS needs both a certificate and its key (--tls-cert, --tls-key)")
    if settings.turn_urls and not settings.turn_secret:
        raise SettingsError("CONFIDE_TURN_URLS needs CONFIDE_TURN_SECRET (coturn's static-auth-secret)")
    if not settings.data_key:
        # the key ring file; its first key is read here, the store reads the whole ring
        from web.store.keyring import ensure_key_file

        ensure_key_file(settings.key_file)
    return settings
