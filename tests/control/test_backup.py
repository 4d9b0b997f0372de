"""`confide admin backup` and the documented restore, SQLite to PostgreSQL and back: every
row comes back, encrypted values open with the same key file and no other, and the restored
service works (logins, real names for the clinician, new audit entries)."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from web.cli import main as confide
from web.control.admin_cli import _store
from web.settings import load_settings
from web.store import accounts, audit, groups, invites, safety, sessions
from web.store.backup import SKIPPED_TABLES
from web.store.models import Base

from ..support.servers import PostgresServer
from .conftest import PASSWORD


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A key file outside every data dir, as the deploy guide sets it up."""
    for key in list(os.environ):
        if key.startswith("CONFIDE_"):
            monkeypatch.delenv(key)
    key_file = tmp_path / "keys" / "data-key"
    monkeypatch.setenv("CONFIDE_DATA_KEY_FILE", str(key_file))
    yield key_file


def _fill(data_dir: Path) -> dict[str, str]:
    """A working service's worth of records, through the real repository functions."""
    store = _store(load_settings(data_dir))
    try:
        clinician = store.call(accounts.create_user, username="dr.b", role="clinician",
                               password=PASSWORD)
        cso = store.call(accounts.create_user, username="cso.b", role="cso", password=PASSWORD)
        group = store.call(groups.create_group, clinician, name="Backup group")
        names = {}
        for real, pseudo, contact in (("Ada Lovelace", "Finch", "07700 900001"),
                                      ("Grace Hopper", "Robin", None)):
            member = store.call(groups.add_member, clinician, group.id, real_name=real,
                                pseudonym=pseudo, contact=contact)
            names[member.id] = real
        session = store.call(sessions.schedule, clinician, group.id,
                             starts_at=store.clock().isoformat(), duration_min=60)
        for member_id in names:
            store.call(invites.issue, clinician, session.id, member_id)
        store.call(safety.sign_off, cso, content_hash="a" * 64, comment="reviewed",
                   log_text="# log\n")
        accounts.login(store, username="dr.b", password=PASSWORD, address="192.0.2.7")
        return names
    finally:
        store.dispose()


def _dump(data_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Every table but login state, as plain rows (for comparing two databases)."""
    store = _store(load_settings(data_dir))
    out: dict[str, list[dict[str, Any]]] = {}
    try:
        with store.engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                if table.name in SKIPPED_TABLES:
                    continue
                rows = conn.execute(select(table).order_by(*table.primary_key.columns))
                out[table.name] = [dict(r._mapping) for r in rows]
    finally:
        store.dispose()
    return out


def _roster(data_dir: Path) -> dict[str, str]:
    store = _store(load_settings(data_dir))
    try:
        clinician = store.call(accounts.find_user, "dr.b")
        (group,) = store.call(groups.list_groups, clinician)
        return {e.member.id: e.real_name for e in store.call(groups.group_roster, clinician, group.id)}
    finally:
        store.dispose()


def test_backup_then_restore_into_postgresql_and_back(
    env: Path, tmp_path: Path, postgres_server: PostgresServer,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    source = tmp_path / "source"
    names = _fill(source)
    out = tmp_path / "confide-backup.jsonl.gz"
    assert confide(["admin", "backup", "--out", str(out), "--data-dir", str(source)]) == 0
    assert "backup " in capsys.readouterr().out
    # the backup holds no key and no login state, and names only as ciphertext
    with gzip.open(out, "rt") as fh:
        text = fh.read()
    header = json.loads(text.splitlines()[0])
    assert header["format"] == "confide-backup" and "login_sessions" not in header["tables"]
    assert "Ada Lovelace" not in text and env.read_text().split()[1] not in text

    # restore, as the guide says, into an empty PostgreSQL database with the same key file
    target = tmp_path / "restored"
    pg_url = postgres_server.create_database()
    before = _dump(source)
    monkeypatch.setenv("CONFIDE_DATABASE_URL", pg_url)
    assert confide(["admin", "restore", str(out), "--data-dir", str(target)]) == 0
    assert "every encrypted value opens with this data key" in capsys.readouterr().out
    assert _dump(target) == before
    assert _roster(target) == names
    # the restored service works: a login, a new audit entry after the restored ones
    store = _store(load_settings(target))
    try:
        accounts.login(store, username="dr.b", password=PASSWORD, address="192.0.2.8")
        events = store.call(audit.list_events, limit=1, before_id=None, action=None)
        assert events[0].action == "login.succeeded"
        assert events[0].id > max(r["id"] for r in before["audit_events"])
    finally:
        store.dispose()
    # and a restore into a database that has data is refused
    assert confide(["admin", "restore", str(out), "--data-dir", str(target)]) == 2
    assert "not empty" in capsys.readouterr().err

    # PostgreSQL back to SQLite: the same rows again
    again = tmp_path / "again.jsonl.gz"
    assert confide(["admin", "backup", "--out", str(again), "--data-dir", str(target)]) == 0
    in_postgres = _dump(target)
    monkeypatch.delenv("CONFIDE_DATABASE_URL")
    sqlite_target = tmp_path / "sqlite-again"
    assert confide(["admin", "restore", str(again), "--data-dir", str(sqlite_target)]) == 0
    assert _dump(sqlite_target) == in_postgres
    assert _roster(sqlite_target) == names


def test_restore_with_the_wrong_key_restores_nothing(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = tmp_path / "source"
    _fill(source)
    out = tmp_path / "b.jsonl.gz"
    assert confide(["admin", "backup", "--out", str(out), "--data-dir", str(source)]) == 0
    monkeypatch.setenv("CONFIDE_DATA_KEY_FILE", str(tmp_path / "other-key"))
    target = tmp_path / "target"
    assert confide(["admin", "restore", str(out), "--data-dir", str(target)]) == 2
    assert "do not open with this data key ring" in capsys.readouterr().err
    assert all(not rows for rows in _dump(target).values())
