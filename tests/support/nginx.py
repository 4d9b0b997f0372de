"""A real nginx running the deployment's own configuration (deploy/nginx/) on loopback.

The files are used as shipped, with only what must differ on a test machine replaced: ports
(free ones), certificate paths (a test CA's), log paths (a temp dir) and host names. Each
replacement must match, so a change to the shipped files that the test no longer covers
fails here.
"""

from __future__ import annotations

import contextlib
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
DEPLOY = REPO_ROOT / "deploy" / "nginx"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")

# the names the shipped files use, and what the test machine resolves
WEB_NAME, TURN_NAME = "confide.example.nhs.uk", "turn.example.nhs.uk"
TEST_WEB_NAME, TEST_TURN_NAME = "confide.test", "localhost"


@dataclass
class Nginx:
    https_port: int  # the SNI router (port 443 in production)
    http_port: int  # the redirecting plain-HTTP server (port 80)
    logs: Path
    process: subprocess.Popen[bytes]

    @property
    def base_url(self) -> str:
        return f"https://{TEST_WEB_NAME}:{self.https_port}"

    def access_log(self) -> str:
        path = self.logs / "confide.access.log"
        return path.read_text() if path.exists() else ""


def _replace(text: str, old: str, new: str, *, name: str) -> str:
    if old not in text:
        raise AssertionError(f"{name}: expected {old!r} in the shipped configuration")
    return text.replace(old, new)


def render(
    *, certs: Certificates, logs: Path, confide_port: int, https_port: int,
    http_port: int, inner_port: int, turn_strip_port: int, turn_tls_port: int,
) -> tuple[str, str]:
    """The shipped http and stream configurations with the test machine's values."""
    http = (DEPLOY / "confide.conf").read_text()
    stream = (DEPLOY / "confide-stream.conf").read_text()
    for old, new in (
        ("server 127.0.0.1:8080;", f"server 127.0.0.1:{confide_port};"),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("    listen [::]:80;\n", ""),
        ("listen 127.0.0.1:4443 ssl", f"listen 127.0.0.1:{inner_port} ssl"),
        (f"/etc/letsencrypt/live/{WEB_NAME}/fullchain.pem", str(certs.cert)),
        (f"/etc/letsencrypt/live/{WEB_NAME}/privkey.pem", str(certs.key)),
        ("/var/log/nginx/", f"{logs}/"),
        (WEB_NAME, TEST_WEB_NAME),
    ):
        http = _replace(http, old, new, name="confide.conf")
    for old, new in (
        ("listen 443;", f"listen 127.0.0.1:{https_port};"),
        ("        listen [::]:443;\n", ""),
        (f"{TURN_NAME}   127.0.0.1:5348;", f"{TEST_TURN_NAME}   127.0.0.1:{turn_strip_port};"),
        ("default               127.0.0.1:4443;", f"default   127.0.0.1:{inner_port};"),
        ("listen 127.0.0.1:5348 proxy_protocol;", f"listen 127.0.0.1:{turn_strip_port} proxy_protocol;"),
        ("proxy_pass 127.0.0.1:5349;", f"proxy_pass 127.0.0.1:{turn_tls_port};"),
    ):
        stream = _replace(stream, old, new, name="confide-stream.conf")
    return http, stream


def _main_conf(root: Path, http: str, stream: str) -> str:
    temp = root / "temp"
    temp.mkdir()
    # one process, no user switch: a test server, not a production layout
    return f"""
daemon off;
master_process off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/nginx.error.log info;
load_module {STREAM_MODULE};
events {{ worker_connections 512; }}
http {{
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    access_log off;
{http}
}}
{stream}
"""


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def running_nginx(
    certs: Certificates, *, confide_port: int, turn_tls_port: int | None = None
) -> Iterator[Nginx]:
    """nginx with the shipped configuration, in front of Confide on `confide_port`."""
    root = Path(tempfile.mkdtemp(prefix="confide-nginx-"))
    logs = root / "logs"
    logs.mkdir()
    https_port, http_port, inner_port, strip_port = (free_port() for _ in range(4))
    http, stream = render(
        certs=certs, logs=logs, confide_port=confide_port, https_port=https_port,
        http_port=http_port, inner_port=inner_port, turn_strip_port=strip_port,
        turn_tls_port=turn_tls_port or free_port(),
    )
    conf = root / "nginx.conf"
    conf.write_text(_main_conf(root, http, stream))
    checked = subprocess.run([NGINX, "-t", "-c", str(conf), "-p", str(root)],
                             capture_output=True, text=True, timeout=30, check=False)
    if checked.returncode != 0:
        raise RuntimeError(f"nginx -t failed:\n{checked.stderr}")
    process = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(root)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not (_listening(https_port) and _listening(http_port)):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("nginx did not start: "
                                   + (root / "nginx.error.log").read_text()[-2000:])
            time.sleep(0.05)
        yield Nginx(https_port, http_port, logs, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)
