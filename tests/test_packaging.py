"""The service as an IT team installs it: a wheel in a fresh venv, outside the checkout.

The wheel is built from a copy of the source tree; the venv sees only the wheel and the
distributions the wheel declares (and theirs), linked from this venv's site-packages so that
nothing is downloaded. So an undeclared import fails here, and pytest cannot be imported.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.servers import free_port
from web.safety.evidence import EvidenceRecord, write_record

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("sfu", "confidentiality", "session_rules", "web")
# declared, but loaded by name rather than imported: SQLAlchemy picks the driver from the URL
LOADED_BY_NAME = {"psycopg"}


def _imported_distributions() -> dict[str, set[str]]:
    """Distribution name → the service's modules that import it (top-level imports found by
    walking every module's syntax tree, function-level imports included)."""
    owners = metadata.packages_distributions()
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (REPO_ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    top = name.split(".", 1)[0]
                    if top in sys.stdlib_module_names or top in PACKAGES:
                        continue
                    for dist in owners.get(top, [top]):
                        found.setdefault(canonicalize_name(dist), set()).add(
                            str(path.relative_to(REPO_ROOT)))
    return found


def _declared() -> set[str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}


def test_runtime_dependencies_are_what_the_service_imports() -> None:
    imported = _imported_distributions()
    declared = _declared()
    undeclared = {d: sorted(m)[:3] for d, m in imported.items() if d not in declared}
    assert not undeclared, f"imported but not declared: {undeclared}"
    unused = declared - set(imported) - {canonicalize_name(n) for n in LOADED_BY_NAME}
    assert not unused, f"declared but never imported: {sorted(unused)}"
    # the test and lint tools stay out of the service
    assert not declared & {"pytest", "playwright", "mypy", "ruff", "scikit-image", "psutil"}


def _runtime_closure(root: str) -> dict[str, metadata.Distribution]:
    """The distribution `root` needs at run time, and everything those need in turn."""
    out: dict[str, metadata.Distribution] = {}
    todo: list[tuple[str, frozenset[str]]] = [(root, frozenset())]
    while todo:
        name, extras = todo.pop()
        dist = metadata.distribution(name)
        key = canonicalize_name(name)
        seen = key in out
        out[key] = dist
        for raw in dist.requires or []:
            req = Requirement(raw)
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if req.marker is not None and not any(req.marker.evaluate(env) for env in envs):
                continue
            if not seen or extras:
                todo.append((req.name, frozenset(req.extras)))
    return out


def _link_site(dists: dict[str, metadata.Distribution], target: Path) -> None:
    """Link each distribution's top-level files (its packages and its .dist-info) into `target`."""
    target.mkdir(parents=True)
    for dist in dists.values():
        base = Path(str(dist.locate_file("")))
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            src = base / top
            dst = target / top
            if src.exists() and not dst.exists():
                dst.symlink_to(src)


def _source_copy(dest: Path) -> Path:
    """The checkout's files as git knows them (tracked, or new and not ignored)."""
    listed = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "ls-files", "-z", "--cached", "--others",
         "--exclude-standard"],
        capture_output=True, check=True, timeout=60,
    ).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = REPO_ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def _cited_test_record(source: Path) -> EvidenceRecord:
    """An evidence record naming every test the hazard log cites, as collected by pytest and
    honestly marked as not run here ("skipped"): what this test checks is that an installed
    service reads the record, not the outcome of the suite."""
    from session_rules.hazard_log import content_hash, parse_hazard_log

    log_bytes = (source / "hazard_log.md").read_bytes()
    log = parse_hazard_log(log_bytes.decode())
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         *sorted(log.test_files())],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=300,
    )
    collected = {line.strip() for line in done.stdout.splitlines() if "::" in line}
    assert collected, done.stdout[-2000:]
    return EvidenceRecord(
        commit="packaging-test",
        created_at="2026-01-01T00:00:00+00:00",
        hazard_log_hash=content_hash(log_bytes),
        junit_sha256="0" * 64,
        results=dict.fromkeys(collected, "skipped"),
    )


@dataclass
class Installed:
    root: Path
    python: Path
    confide: Path
    env: dict[str, str]
    record: EvidenceRecord

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(a) for a in args], cwd=self.root, env=self.env, capture_output=True,
            text=True, check=False, timeout=timeout,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """Build the wheel from a copy of the tree and install it into a fresh venv elsewhere."""
    root = tmp_path_factory.mktemp("it-team")
    source = _source_copy(root / "source")
    record = _cited_test_record(source)
    # the CI step: the record goes where the build picks it up
    write_record(record, source / "web" / "safety" / "shipped" / "evidence-record.json")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CONFIDE_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(root / "dist"),
         str(source)],
        cwd=root, env=env, capture_output=True, text=True, check=False, timeout=600,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (root / "dist").glob("confide-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    site = next((venv / "lib").glob("python3.*/site-packages"))
    # the declared runtime dependencies only, from this venv (no download)
    deps = _runtime_closure("confide")
    del deps["confide"]  # that one comes from the wheel
    _link_site(deps, root / "deps")
    (site / "confide-runtime-deps.pth").write_text(str(root / "deps") + "\n")
    python = venv / "bin" / "python"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         str(wheel)],
        cwd=root, env=env, capture_output=True, text=True, check=False, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    shutil.rmtree(source)  # nothing may come from the source tree
    yield Installed(root, python, venv / "bin" / "confide", env, record)


def test_the_installed_package_has_everything_and_no_test_tools(installed: Installed) -> None:
    done = installed.run(installed.python, "-c", """
import importlib, pkgutil, sys
import web, sfu, confidentiality, session_rules
count = 0
for pkg in (web, sfu, confidentiality, session_rules):
    for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        if mod.name == "web.store.migrations.env":
            continue  # runs only inside alembic
        importlib.import_module(mod.name)
        count += 1
print(count, web.__file__)
for tool in ("pytest", "playwright", "skimage", "mypy"):
    try:
        importlib.import_module(tool)
    except ModuleNotFoundError:
        print("absent", tool)
""")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.split("\n")
    count, location = lines[0].split(" ", 1)
    assert int(count) > 60
    assert location.startswith(str(installed.root / "venv"))
    assert set(lines[1:]) - {""} == {
        "absent pytest", "absent playwright", "absent skimage", "absent mypy"}


def test_hazards_check_works_from_the_shipped_log_and_record(installed: Installed) -> None:
    done = installed.run(installed.confide, "hazards", "check")
    assert done.returncode == 0, done.stdout
    assert "cited tests found in the evidence record of packaging-te" in done.stdout
    log_hash = installed.record.hazard_log_hash
    assert "hazard log OK: " in done.stdout and f"hash {log_hash}" in done.stdout
    # the record says the tests were not run here, and `evidence` says so
    done = installed.run(installed.confide, "hazards", "evidence")
    assert done.returncode == 1
    assert "SKIPPED  tests/" in done.stdout and "FAIL" not in done.stdout


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def test_confide_serve_demo_from_the_installed_package(installed: Installed) -> None:
    import json

    port = free_port()
    data = installed.root / "data"
    proc = subprocess.Popen(
        [str(installed.confide), "serve", "--demo", "--port", str(port), "--data-dir", str(data)],
        cwd=installed.root, env={**installed.env, "CONFIDE_MEDIA_PROCESSES": "0"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    output: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        for line in proc.stdout:
            output.append(line)
            if "Confide listening on" in line or time.monotonic() > deadline:
                break
        text = "".join(output)
        assert "Confide listening on" in text, text[-3000:]
        cso = re.search(r"clinical safety officer: username (\S+)\s+password (\S+)", text)
        invite = re.search(r"(http://\S+/i/\S+)", text)
        assert cso is not None and invite is not None, text
        for _ in range(100):
            try:
                status, _, _ = _get(base + "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        assert status == 200
        # pages and static files come from the package
        for path, needle in (("/", b"<html"), ("/login", b"<form"),
                             ("/static/room.js", b"import"), ("/cso/", b"Evidence per control"),
                             (invite.group(1).removeprefix(base), b"Join your group")):
            status, body, _ = _get(base + path)
            assert status == 200 and needle in body, path
        # migrations ran: the demo's CSO can log in, and sees the shipped log and record
        login = urllib.request.Request(
            base + "/api/v1/auth/login", method="POST",
            data=json.dumps({"username": cso.group(1), "password": cso.group(2)}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(login, timeout=10) as resp:
            cookie = resp.headers["Set-Cookie"].split(";", 1)[0]
        status, body, _ = _get(base + "/api/v1/safety/hazard-log", {"Cookie": cookie})
        log = json.loads(body)
        assert status == 200 and log["ok"] is True, log["issues"][:3]
        assert log["hash"] == installed.record.hazard_log_hash
        status, body, _ = _get(base + "/api/v1/safety/evidence", {"Cookie": cookie})
        evidence = json.loads(body)
        assert evidence["record"]["commit"] == "packaging-test"
        assert evidence["record"]["record_hash"] == installed.record.record_hash
        assert evidence["record_matches_log"] is True
        assert {c["status"] for c in evidence["controls"]} == {"skipped", "procedure"}
        # ready, and its metrics readable from loopback
        status, body, _ = _get(base + "/readyz")
        assert status == 200 and json.loads(body) == {"status": "ready"}
        status, body, headers = _get(base + "/metrics")
        assert status == 200 and b"confide_rooms 0.0" in body
        assert headers["Content-Type"].startswith("text/plain")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # what it logged after start: JSON lines, the invite's token never among them
    assert proc.stdout is not None
    logged = proc.stdout.read()
    token = invite.group(1).rsplit("/", 1)[1]
    assert token not in logged
    entries = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    access = [e for e in entries if e.get("type") == "access"]
    assert {"target": "/i/[redacted]", "status": 200} in [
        {"target": e["target"], "status": e["status"]} for e in access]
