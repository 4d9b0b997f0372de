"""Keep the four parts' boundaries honest by walking every import with `ast`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN: dict[str, frozenset[str]] = {
    # pure policy: events in, decisions out; no media, network, database or event loop
    # (and no wire models: the wire layer turns messages into its plain commands)
    "session_rules": frozenset({"aiortc", "av", "cv2", "mediapipe", "aiohttp", "sqlalchemy",
                                "socket", "asyncio", "sfu", "web", "pydantic"}),
    # transforms know frames, never rooms or the web
    "confidentiality": frozenset({"aiortc", "aiohttp", "sfu", "web", "session_rules"}),
    # the media plane knows nothing clinical (it may use confidentiality's transforms)
    "sfu": frozenset({"web", "session_rules"}),
}


def imported_roots(path: Path) -> list[tuple[int, str]]:
    """Top-level module names imported by a file, with their line numbers."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id == "__import__" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value.split(".")[0]))
    return found


def violations(package: str) -> list[str]:
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, name in imported_roots(path):
            if name in FORBIDDEN[package]:
                out.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_stay_inside_its_layer(package: str) -> None:
    assert (ROOT / package).is_dir()
    assert violations(package) == []


def test_the_walker_catches_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom aiortc.mediastreams import MediaStreamTrack\n"
                   "def f():\n    import asyncio.tasks\n    return __import__('cv2')\n")
    assert imported_roots(bad) == [(1, "os"), (2, "aiortc"), (4, "asyncio"), (5, "cv2")]
