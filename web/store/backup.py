"""Backup and restore: every table as JSON lines in one consistent read, gzip-compressed.

The format is the same for SQLite and PostgreSQL, so a backup of one restores into the other.
Real names and contact details stay encrypted as stored: a backup holds no key, and restoring
needs the key file it was written with (kept apart, see docs/deploy.md). Login sessions and
login backoff are left out: a restored service starts with nobody logged in.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.engine import Connection

from .db import Store
from .errors import StoreError
from .models import Base
from .rotation import ENCRYPTED_FIELDS

FORMAT = "confide-backup"
VERSION = 1
SKIPPED_TABLES = frozenset({"login_sessions", "login_throttle"})


class BackupError(StoreError):
    code = "backup_error"


@dataclass(frozen=True)
class BackupReport:
    path: Path
    revision: str
    rows: dict[str, int]


def _tables() -> list[Table]:
    return [t for t in Base.metadata.sorted_tables if t.name not in SKIPPED_TABLES]


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, bytes):
        return {"$b64": base64.b64encode(value).decode()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        if "$dt" in value:
            return datetime.fromisoformat(value["$dt"])
        if "$b64" in value:
            return base64.b64decode(value["$b64"])
    return value


def _revision(conn: Connection) -> str:
    return str(MigrationContext.configure(conn).get_current_revision() or "")


def _snapshot(conn: Connection) -> None:
    # one consistent view of every table while the service keeps writing
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN")
        conn.exec_driver_sql("SELECT 1 FROM sqlite_master LIMIT 1")


def backup(store: Store, path: Path) -> BackupReport:
    """Write every table (but login state) to `path` (gzip'd JSON lines), atomically."""
    tmp = path.with_name(path.name + ".partial")
    rows: dict[str, int] = {}
    engine = store.engine
    options: dict[str, Any] = {}
    if engine.dialect.name == "postgresql":
        options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    with engine.connect().execution_options(**options) as conn:
        _snapshot(conn)
        revision = _revision(conn)
        with gzip.open(tmp, "wt", encoding="utf-8") as out:
            header = {"format": FORMAT, "version": VERSION, "revision": revision,
                      "created_at": datetime.now(UTC).isoformat(),
                      "tables": [t.name for t in _tables()]}
            out.write(json.dumps(header) + "\n")
            for table in _tables():
                count = 0
                for row in conn.execute(select(table).order_by(*table.primary_key.columns)):
                    record = {k: _encode(v) for k, v in row._mapping.items()}
                    out.write(json.dumps({"t": table.name, "r": record}) + "\n")
                    count += 1
                rows[table.name] = count
        conn.rollback()
    tmp.replace(path)
    return BackupReport(path, revision, rows)


def _lines(fh: IO[str]) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(fh, 1):
        try:
            item = json.loads(line)
        except ValueError:
            raise BackupError(f"backup line {number} is not JSON") from None
        if not isinstance(item, dict):
            raise BackupError(f"backup line {number} is not an object")
        yield item


def restore(store: Store, path: Path) -> BackupReport:
    """Load a backup into an empty, migrated database, in one transaction; the values it
    holds encrypted must open with the store's key ring, or nothing is restored."""
    store.migrate()
    tables = {t.name: t for t in _tables()}
    rows: dict[str, int] = {}
    try:
        fh = gzip.open(path, "rt", encoding="utf-8")
        header = json.loads(fh.readline())
    except (OSError, ValueError, EOFError) as exc:
        raise BackupError(f"{path.name} is not a Confide backup ({type(exc).__name__})") from None
    with fh, store.engine.begin() as conn:
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise BackupError(f"{path.name} is not a Confide backup")
        if header.get("version") != VERSION:
            raise BackupError(f"backup format version {header.get('version')} is not known")
        revision = _revision(conn)
        if header.get("revision") != revision:
            raise BackupError(
                f"the backup is of schema {header.get('revision')}, this database is at "
                f"{revision}: restore with the release that made the backup, then upgrade"
            )
        for table in tables.values():
            if conn.execute(select(func.count()).select_from(table)).scalar_one():
                raise BackupError(f"the database is not empty (table {table.name} has rows)")
        for item in _lines(fh):
            target = tables.get(str(item.get("t")))
            if target is None:
                raise BackupError(f"the backup names an unknown table {item.get('t')!r}")
            record = {k: _decode(v) for k, v in dict(item.get("r") or {}).items()}
            conn.execute(insert(target), [record])
            rows[target.name] = rows.get(target.name, 0) + 1
        if conn.dialect.name == "postgresql":
            _reset_sequences(conn)
        _check_readable(store, conn)
    return BackupReport(path, revision, rows)


def _reset_sequences(conn: Connection) -> None:
    # ids given explicitly do not move a serial column's sequence: move it past them
    for table in _tables():
        for column in table.primary_key.columns:
            if column.autoincrement is True or (
                column.autoincrement == "auto" and column.type.python_type is int
            ):
                conn.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                    f"GREATEST((SELECT MAX({column.name}) FROM {table.name}), 1))"
                ))


def _check_readable(store: Store, conn: Connection) -> None:
    for field in ENCRYPTED_FIELDS:
        table = field.model.__table__
        col = table.c[field.column]
        for row_id, stored in conn.execute(select(table.c.id, col).where(col.is_not(None))):
            try:
                store.cipher.decrypt(stored, context=field.context(_Id(row_id)))
            except StoreError:
                raise BackupError(
                    "the backup's encrypted values do not open with this data key ring: "
                    "restore with the key file the backup was made with (nothing restored)"
                ) from None


@dataclass(frozen=True)
class _Id:
    id: str
