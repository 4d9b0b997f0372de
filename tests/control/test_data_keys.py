"""The data key outside the data dir, and `confide admin rotate-data-key` on SQLite and
PostgreSQL: nothing lost, the old key gone, and a rotation killed halfway finishes when run
again."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from web.cli import main as confide
from web.settings import load_settings
from web.store import Store, accounts, audit, groups
from web.store.crypto import key_id_of
from web.store.errors import StoreError
from web.store.keyring import KeyFile, Keyring, parse, read_key_file
from web.store.models import Member
from web.store.rotation import rotate_data_key, values_by_key

from .conftest import PASSWORD


def test_key_file_formats() -> None:
    assert parse("  bare-key-from-before \n") == Keyring("v1", {"v1": "bare-key-from-before"})
    ring = parse("k2 newer\nk1 older\n")
    assert ring.primary == "k2" and ring.retired == ["k1"]
    assert parse(ring.dump()) == ring
    fresh = ring.with_new_primary()
    assert fresh.primary == "k3" and fresh.retired == ["k2", "k1"]
    assert fresh.only_primary().keys == {"k3": fresh.keys["k3"]}
    for bad in ("", "k1 a b", "K1 x", "k1 x\nk1 y"):
        with pytest.raises(StoreError):
            parse(bad)


def test_the_key_can_live_outside_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "keys" / "confide-data-key"
    monkeypatch.setenv("CONFIDE_DATA_KEY_FILE", str(key_file))
    data_dir = tmp_path / "data"
    settings = load_settings(data_dir)
    assert settings.key_file == key_file
    assert key_file.exists() and not (data_dir / "data_key").exists()
    # owner-only, like every secret the service makes
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert read_key_file(key_file).primary == "k1"


def _populate(store: Store, count: int) -> dict[str, tuple[str, str | None]]:
    """A clinician, a group, and `count` members with real names (every other with contact
    details). Returns member id → (real name, contact) as entered."""
    clinician = store.call(accounts.create_user, username="dr.k", role="clinician",
                           password=PASSWORD)
    group = store.call(groups.create_group, clinician, name="Rotation group")
    expected: dict[str, tuple[str, str | None]] = {}
    for i, pseudonym in enumerate(("Finch", "Robin", "Lark")):  # through the real path
        made = store.call(groups.add_member, clinician, group.id, real_name=f"Ada Lovelace {i}",
                          pseudonym=pseudonym, contact=f"07700 900{i:03d}")
        expected[made.id] = (f"Ada Lovelace {i}", f"07700 900{i:03d}")

    def bulk(tx: Any) -> None:
        # many more, quickly: the same encryption, without the pseudonym checks
        for i in range(count - 3):
            mid = f"m_bulk{i:05d}"
            real = f"Grace Hopper {i}"
            contact = f"grace{i}@example.org" if i % 2 else None
            tx.db.add(Member(
                id=mid, group_id=group.id, participant_id=f"p_bulk{i:05d}",
                pseudonym=f"Wren{i}", pseudonym_skeleton=f"wren{i}",
                real_name_enc=tx.cipher.encrypt(real, context=f"member:{mid}:real_name"),
                contact_enc=tx.cipher.encrypt(contact, context=f"member:{mid}:contact")
                if contact else None,
                profile=None, active=True, created_at=tx.now,
            ))
            expected[mid] = (real, contact)

    store.call(bulk)
    return expected


def _values(expected: dict[str, tuple[str, str | None]]) -> int:
    """How many encrypted values those members have (a name each, and their contacts)."""
    return len(expected) + sum(1 for _, contact in expected.values() if contact)


def _read_all(store: Store) -> dict[str, tuple[str, str | None]]:
    def read(tx: Any) -> dict[str, tuple[str, str | None]]:
        out = {}
        for m in tx.db.query(Member).all():
            real = tx.cipher.decrypt(m.real_name_enc, context=f"member:{m.id}:real_name")
            contact = (tx.cipher.decrypt(m.contact_enc, context=f"member:{m.id}:contact")
                       if m.contact_enc else None)
            out[m.id] = (real, contact)
        return out

    return store.call(read)


def test_rotation_reencrypts_everything_and_retires_the_old_key(
    db_url: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "data_key"
    key_file.write_text("legacy-bare-key-written-by-an-older-release\n")
    store = Store(db_url, KeyFile(key_file))
    store.migrate()
    expected = _populate(store, 60)
    total = _values(expected)
    assert store.call(values_by_key) == {"v1": total}
    report = rotate_data_key(store, key_file, batch_size=7)
    assert (report.primary, report.retired, report.rewrapped) == ("k1", ["v1"], total)
    assert not report.resumed
    assert read_key_file(key_file).keys.keys() == {"k1"}
    assert store.call(values_by_key) == {"k1": total}
    assert _read_all(store) == expected
    # the old key is gone: a store with only it reads nothing
    old = Store(db_url, "legacy-bare-key-written-by-an-older-release")
    with pytest.raises(StoreError):
        _read_all(old)
    old.dispose()
    (event,) = store.call(audit.list_events, limit=5, before_id=None,
                          action="data_key.rotated")
    assert event.detail == {"retired": ["v1"], "rewrapped": total, "values": total,
                            "resumed": False}
    # and again: a second full rotation to k2
    assert rotate_data_key(store, key_file).primary == "k2"
    assert _read_all(store) == expected
    store.dispose()


class Stop(Exception):
    pass


def test_a_rotation_stopped_halfway_is_finished_by_the_next_run(
    db_url: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "data_key"
    store = Store(db_url, KeyFile(key_file))
    key_file.write_text(Keyring("k1", {"k1": "first-key-0123456789"}).dump())
    store.migrate()
    expected = _populate(store, 40)
    batches = 0

    def stop_after_two(n: int) -> None:
        nonlocal batches
        batches += 1
        if batches == 2:
            raise Stop

    with pytest.raises(Stop):
        rotate_data_key(store, key_file, batch_size=10, on_batch=stop_after_two)
    # halfway: both keys in the file, values under both, every one readable (the service
    # reading the same file goes on working)
    ring = read_key_file(key_file)
    assert ring.primary == "k2" and ring.retired == ["k1"]
    total = _values(expected)
    assert store.call(values_by_key) == {"k2": 20, "k1": total - 20}
    service = Store(db_url, KeyFile(key_file))
    assert _read_all(service) == expected
    # a value the service writes now uses the new key
    clinician = service.call(accounts.find_user, "dr.k")
    group_id = service.call(lambda tx: tx.db.query(Member).first().group_id)
    added = service.call(groups.add_member, clinician, group_id, real_name="Mary Somerville",
                         pseudonym="Heron", contact=None)
    expected[added.id] = ("Mary Somerville", None)
    stored = service.call(lambda tx: tx.db.get(Member, added.id).real_name_enc)
    assert key_id_of(stored) == "k2"
    # run again: it finishes this rotation instead of starting another
    report = rotate_data_key(store, key_file, batch_size=10)
    assert report.resumed and report.primary == "k2" and report.retired == ["k1"]
    assert report.rewrapped == total - 20
    assert read_key_file(key_file).keys.keys() == {"k2"}
    assert _read_all(service) == expected
    service.dispose()
    store.dispose()


async def test_rotate_data_key_killed_mid_run_then_run_again(
    db_url: str, tmp_path: Path
) -> None:
    # the real command in its own process, killed with SIGKILL while it works
    data_dir = tmp_path / "data"
    key_file = tmp_path / "secrets" / "confide-data-key"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CONFIDE_")},
           "CONFIDE_DATA_KEY_FILE": str(key_file), "CONFIDE_DATABASE_URL": db_url}
    settings_env = {"CONFIDE_DATA_KEY_FILE": str(key_file)}
    os.environ.update(settings_env)
    try:
        settings = load_settings(data_dir, database_url=db_url)
    finally:
        for k in settings_env:
            os.environ.pop(k, None)
    store = Store(db_url, KeyFile(settings.key_file))
    store.migrate()
    expected = _populate(store, 400)
    proc = subprocess.Popen(
        [sys.executable, "-m", "web.cli", "admin", "rotate-data-key", "--batch-size", "1",
         "--data-dir", str(data_dir)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        for _ in range(3000):
            counts = store.call(values_by_key)
            if len(counts) == 2 and counts.get("k2", 0) >= 5:
                break
            assert proc.poll() is None, "the rotation finished before it could be stopped"
            await asyncio.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    counts = store.call(values_by_key)
    assert set(counts) == {"k1", "k2"} and sum(counts.values()) == _values(expected)
    assert _read_all(store) == expected
    done = subprocess.run(
        [sys.executable, "-m", "web.cli", "admin", "rotate-data-key", "--data-dir",
         str(data_dir)],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "finished the rotation to data key k2" in done.stdout
    assert store.call(values_by_key) == {"k2": _values(expected)}
    assert read_key_file(key_file).keys.keys() == {"k2"}
    assert _read_all(store) == expected
    store.dispose()


def test_a_key_in_the_environment_is_not_rotated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONFIDE_DATA_KEY", "an-environment-key-0123456789")
    assert confide(["admin", "rotate-data-key", "--data-dir", str(tmp_path)]) == 2
    assert "cannot be rotated" in capsys.readouterr().err
