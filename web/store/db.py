"""The store: one engine, transactions run in worker threads, a clock and the field cipher."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from . import migrate
from .crypto import FieldCipher
from .errors import StoreError, StoreUnavailable
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


# Timeouts: a database that is away or locked must fail a request in seconds, not hang it.
# Requests then answer "try again in a moment"; rooms never wait on the database at all.
SQLITE_BUSY_TIMEOUT_MS = 3000
PG_CONNECT_TIMEOUT_S = 3
PG_STATEMENT_TIMEOUT_MS = 5000
PG_LOCK_TIMEOUT_MS = 3000
POOL_TIMEOUT_S = 3.0
# database calls run on their own threads: a stalled database cannot starve the default
# executor that other parts of the service use
STORE_THREADS = 8


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL or an in-memory database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database)


def _owner_only(path: Path) -> None:
    # real names (encrypted) and the audit trail live here: nobody else may read the file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if part.exists() and part.stat().st_mode & 0o077:
            os.chmod(part, 0o600)


def make_engine(url: str) -> Engine:
    """An engine for SQLite or PostgreSQL; parameters never appear in error messages or logs."""
    if url.startswith("postgresql://"):
        # psycopg 3 is the driver we ship
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    # hide_parameters: a failed statement's message would otherwise quote the values bound to it
    kwargs: dict[str, Any] = {"hide_parameters": True, "future": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {
            "check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
        }
        path = sqlite_path(url)
        if path is not None:
            _owner_only(path)
    else:
        kwargs["pool_pre_ping"] = True
        kwargs["pool_timeout"] = POOL_TIMEOUT_S
        kwargs["connect_args"] = {
            "connect_timeout": PG_CONNECT_TIMEOUT_S,
            "options": f"-c statement_timeout={PG_STATEMENT_TIMEOUT_MS}"
            f" -c lock_timeout={PG_LOCK_TIMEOUT_MS}",
        }
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _unavailable(exc: sa_exc.SQLAlchemyError) -> StoreUnavailable | None:
    """The database cannot be reached (down, locked, timed out, connection lost), or None
    for any other failure (a constraint, a bad statement: a defect, raised as it is)."""
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        # the type only: a driver's message can quote the statement's values
        cause = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
        return StoreUnavailable(f"the database is not available ({type(cause).__name__})")
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return StoreUnavailable("the database connection was lost")
    return None


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
        # (`StoreUnavailable` when the database cannot be reached), and of each success
        self.on_db_error: Callable[[BaseException], None] | None = None
        self.on_db_ok: Callable[[], None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    def migrate(self) -> None:
        """Apply pending migrations."""
        migrate.upgrade(self.engine)

    def call(self, fn: Callable[Concatenate[Tx, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(tx, ...)` in one transaction, committed on success, rolled back on error.

        A database that cannot be reached (down, locked, timed out) raises
        `StoreUnavailable`: the caller says "try again in a moment".
        """
        return self._call(self.clock(), functools.partial(fn, **kwargs), *args)

    def call_at(
        self, now: datetime, fn: Callable[Concatenate[Tx, P], T], *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """`call()` with the transaction's time set to `now`: records written late (after a
        database outage) keep the time they happened."""
        return self._call(now, functools.partial(fn, **kwargs), *args)

    def _call(self, now: datetime, fn: Callable[..., T], *args: Any) -> T:
        try:
            with self._sessions() as db:
                try:
                    result = fn(Tx(db=db, now=now, cipher=self.cipher), *args)
                except StoreError as exc:
                    if exc.keep_changes:
                        db.commit()
                    else:
                        db.rollback()
                    raise
                except BaseException:
                    db.rollback()
                    raise
                db.commit()
        except sa_exc.SQLAlchemyError as exc:
            unavailable = _unavailable(exc)
            if unavailable is not None:
                unavailable.__cause__ = exc
            if self.on_db_error is not None:
                self.on_db_error(unavailable or exc)
            if unavailable is None:
                raise
            raise unavailable from exc
        except StoreError as exc:
            if self.on_db_ok is not None and not isinstance(exc, StoreUnavailable):
                self.on_db_ok()  # a refusal: the database answered
            raise
        if self.on_db_ok is not None:
            self.on_db_ok()
        return result

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="store")
        return self._executor

    async def run(
        self, fn: Callable[Concatenate[Tx, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`call()` on the store's threads, so database I/O never blocks the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool(), functools.partial(self.call, fn, *args, **kwargs)
        )

    async def run_at(
        self, now: datetime, fn: Callable[Concatenate[Tx, P], T], *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """`call_at()` on the store's threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool(), functools.partial(self.call_at, now, fn, *args, **kwargs)
        )

    def dispose(self) -> None:
        """Close pooled connections; safe twice."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self.engine.dispose()


def open_store(
    url: str, data_key: str | Keyring | KeySource, *, clock: Clock = utcnow
) -> Store:
    """A store with its migrations applied."""
    store = Store(url, data_key, clock=clock)
    store.migrate()
    return store
