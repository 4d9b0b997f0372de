"""`confide admin create-user` as an administrator runs it, then a real login."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from web.control.admin_cli import _store
from web.settings import load_settings
from web.store import accounts


def _create(tmp_path: Path, username: str, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "web.cli", "admin", "create-user", "--role", "clinician",
         "--username", username, "--data-dir", str(tmp_path)],
        input=password + "\n", capture_output=True, text=True, timeout=120,
    )


def test_create_user_from_stdin_then_the_password_works(tmp_path: Path) -> None:
    done = _create(tmp_path, "dr.hale", "a long enough password")
    assert done.returncode == 0, done.stderr
    assert "created clinician dr.hale" in done.stdout
    store = _store(load_settings(tmp_path))
    try:
        result = accounts.login(store, username="dr.hale",
                            password="a long enough password", address="127.0.0.1")
        assert result.user.role == "clinician"
    finally:
        store.dispose()
    # the same name again is refused with a clear message and changes nothing
    again = _create(tmp_path, "dr.hale", "another long password")
    assert again.returncode == 2 and "error:" in again.stderr
    assert "another long password" not in again.stderr
