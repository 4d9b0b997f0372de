"""A real coturn (Debian's `turnserver`) running the shipped deploy/coturn/turnserver.conf
on loopback.

Only what a test machine needs is changed: addresses (127.0.0.1), ports (free ones), the
secret, the certificate and the log paths. Because the relay's peers here are on loopback,
which the shipped file rightly denies, the test adds `allow-loopback-peers` and allows
127.0.0.1 alone; every other denied range stays denied (and a test checks one is).
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .servers import free_port
from .tls import Certificates

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = REPO_ROOT / "deploy" / "coturn" / "turnserver.conf"
TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"
PUBLIC = "203.0.113.10"


@dataclass
class Coturn:
    port: int  # UDP and TCP
    tls_port: int
    secret: str
    relay_ports: tuple[int, int]
    log: Path
    process: subprocess.Popen[bytes]

    def urls(self) -> list[str]:
        return [f"turn:127.0.0.1:{self.port}?transport=udp",
                f"turn:127.0.0.1:{self.port}?transport=tcp"]


def _udp_range(size: int) -> tuple[int, int]:
    # a block of ports free now, for the relays (coturn needs an even start)
    import random

    for _ in range(200):
        first = random.randrange(20000, 29000) & ~1
        socks = []
        try:
            for port in range(first, first + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return first, first + size - 1
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free UDP range for the TURN relays")


def render(*, port: int, tls_port: int, relay: tuple[int, int], secret: str,
           certs: Certificates, root: Path) -> str:
    text = SHIPPED.read_text()
    for old, new in (
        (f"listening-ip={PUBLIC}\n", ""),
        ("listening-port=3478", f"listening-port={port}"),
        ("tls-listening-port=5349", f"tls-listening-port={tls_port}"),
        (f"relay-ip={PUBLIC}", "relay-ip=127.0.0.1"),
        (f"external-ip={PUBLIC}\n", ""),
        ("min-port=40000", f"min-port={relay[0]}"),
        ("max-port=44999", f"max-port={relay[1]}"),
        ("static-auth-secret=CHANGE-ME-to-the-value-of-CONFIDE_TURN_SECRET",
         f"static-auth-secret={secret}"),
        ("/etc/letsencrypt/live/turn.example.nhs.uk/fullchain.pem", str(certs.cert)),
        ("/etc/letsencrypt/live/turn.example.nhs.uk/privkey.pem", str(certs.key)),
        ("log-file=/var/log/turnserver/turnserver.log", f"log-file={root}/turn.log"),
        ("pidfile=/run/turnserver/turnserver.pid", f"pidfile={root}/turn.pid"),
    ):
        if old not in text:
            raise AssertionError(f"turnserver.conf: expected {old!r} in the shipped file")
        text = text.replace(old, new)
    return text + (
        "\n# test machine only: the peers are on loopback\n"
        "allow-loopback-peers\nallowed-peer-ip=127.0.0.1\n"
        f"userdb={root}/turndb\nno-stdout-log\n"
    )


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def running_coturn(certs: Certificates) -> Iterator[Coturn]:
    root = Path(tempfile.mkdtemp(prefix="confide-coturn-"))
    port, tls_port = free_port(), free_port()
    relay = _udp_range(40)
    secret = secrets.token_urlsafe(24)
    conf = root / "turnserver.conf"
    conf.write_text(render(port=port, tls_port=tls_port, relay=relay, secret=secret,
                           certs=certs, root=root))
    process = subprocess.Popen([TURNSERVER, "-c", str(conf)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not (_listening(port) and _listening(tls_port)):
            if process.poll() is not None or time.monotonic() > deadline:
                log = (root / "turn.log").read_text()[-3000:] if (root / "turn.log").exists() else ""
                raise RuntimeError(f"turnserver did not start:\n{log}")
            time.sleep(0.05)
        yield Coturn(port, tls_port, secret, relay, root / "turn.log", process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)
