"""The store: one engine, transactions run in worker threads, a clock and the field cipher."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from . import migrate
from .crypto import FieldCipher
from .errors import StoreError
from .keyring import Keyring, KeySource

P = ParamSpec("P")
T = TypeVar("T")
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """A random opaque id (80 bits) with a type prefix, e.g. "g_3f9c..."."""
    return f"{prefix}_{secrets.token_hex(10)}"


def sha256_hex(value: str) -> str:
    """Hex sha256 of a secret, for storing tokens without storing them."""
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass
class Tx:
    """What a repository function gets: the open transaction, the time, the cipher."""

    db: Session
    now: datetime
    cipher: FieldCipher


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for SQLite or PostgreSQL; parameters never appear in error messages or logs."""
    if url.startswith("postgresql://"):
        # psycopg 3 is the driver we ship
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    # hide_parameters: a failed statement's message would otherwise quote the values bound to it
    kwargs: dict[str, Any] = {"hide_parameters": True, "future": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 5}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class Store:
    """Database access for the control plane. Sync core; `run()` is the async entry point."""

    def __init__(
        self, url: str, data_key: str | Keyring | KeySource, *, clock: Clock = utcnow
    ) -> None:
        self.engine = make_engine(url)
        self.cipher = FieldCipher(data_key)
        self.clock = clock
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # told of every database failure (not of refusals): the metrics count them
        self.on_db_error: Callable[[BaseException], None] | None = None

    def migrate(self) -> None:
        """Apply pending migrations."""
        migrate.upgrade(self.engine)

    def call(self, fn: Callable[Concatenate[Tx, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(tx, ...)` in one transaction, committed on success, rolled back on error."""
        with self._sessions() as db:
            try:
                result = fn(Tx(db=db, now=self.clock(), cipher=self.cipher), *args, **kwargs)
            except StoreError as exc:
                if exc.keep_changes:
                    db.commit()
                else:
                    db.rollback()
                raise
            except BaseException as exc:
                if isinstance(exc, SQLAlchemyError) and self.on_db_error is not None:
                    self.on_db_error(exc)
                db.rollback()
                raise
            try:
                db.commit()
            except SQLAlchemyError as exc:
                if self.on_db_error is not None:
                    self.on_db_error(exc)
                raise
            return result

    async def run(
        self, fn: Callable[Concatenate[Tx, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`call()` in a worker thread, so database I/O never blocks the event loop."""
        return await asyncio.to_thread(functools.partial(self.call, fn, *args, **kwargs))

    def dispose(self) -> None:
        """Close pooled connections; safe twice."""
        self.engine.dispose()


def open_store(
    url: str, data_key: str | Keyring | KeySource, *, clock: Clock = utcnow
) -> Store:
    """A store with its migrations applied."""
    store = Store(url, data_key, clock=clock)
    store.migrate()
    return store
