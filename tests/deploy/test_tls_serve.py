"""`confide serve --tls-cert --tls-key`: HTTPS from aiohttp itself, HSTS and Secure cookies."""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from tests.support.servers import free_port
from tests.support.tls import make_certificates


async def test_serve_over_https_with_hsts_and_secure_cookies(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "certs")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFIDE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "web.cli", "serve", "--demo", "--port", str(port),
         "--data-dir", str(tmp_path / "data"), "--tls-cert", str(certs.cert),
         "--tls-key", str(certs.key)],
        env={**env, "CONFIDE_MEDIA_PROCESSES": "0", "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "Confide listening on" in line:
                break
        out = "".join(lines)
        assert f"Confide listening on https://127.0.0.1:{port}" in out
        cso = re.search(r"clinical safety officer: username (\S+)\s+password (\S+)", out)
        assert cso is not None
        base = f"https://127.0.0.1:{port}"
        connector = aiohttp.TCPConnector(ssl=certs.client_context())
        async with aiohttp.ClientSession(connector=connector) as http:
            for _ in range(100):
                try:
                    async with http.get(base + "/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    time.sleep(0.1)
            async with http.get(base + "/login") as resp:
                assert resp.status == 200
                assert resp.headers["Strict-Transport-Security"] == "max-age=63072000"
            async with http.post(base + "/api/v1/auth/login", json={
                    "username": cso.group(1), "password": cso.group(2)}) as resp:
                assert resp.status == 200
                cookies = resp.headers.getall("Set-Cookie")
            assert len(cookies) == 2 and all("Secure" in c for c in cookies)
        # a client that does not trust the certificate is refused by its own TLS check
        async with aiohttp.ClientSession() as http:
            try:
                async with http.get(base + "/healthz"):
                    raise AssertionError("an untrusted certificate was accepted")
            except aiohttp.ClientConnectorCertificateError as exc:
                assert isinstance(exc.certificate_error, ssl.SSLCertVerificationError)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "certs")
    done = subprocess.run(
        [sys.executable, "-m", "web.cli", "serve", "--port", str(free_port()),
         "--data-dir", str(tmp_path / "data"), "--tls-cert", str(certs.cert)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 2
    assert "HTTPS needs both a certificate and its key" in done.stderr
