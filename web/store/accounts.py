"""Accounts: users and roles, password checks with backoff, login sessions."""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from . import audit
from .db import Store, Tx, new_id, sha256_hex
from .errors import AuthFailed, Conflict, InvalidInput, NotFound, Throttled
from .models import ROLES, LoginSession, LoginThrottle, User
from .validate import text

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 256
LOGIN_TTL = timedelta(hours=12)
# backoff: this many failures are free, then the lock doubles per failure up to the cap
FREE_FAILURES_PER_USER = 5
# one address may be a whole clinic behind NAT: allow more before slowing it down
FREE_FAILURES_PER_ADDRESS = 20
MAX_LOCK = timedelta(minutes=15)
FAILURE_MEMORY = timedelta(hours=1)

_hasher = PasswordHasher()
# verified when the username is unknown, so that timing does not reveal which names exist
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class UserInfo:
    id: str
    username: str
    role: str
    display_name: str
    participant_id: str
    disabled: bool = False

    def to_json(self) -> dict[str, str | bool]:
        return {
            "id": self.id,
            "username": self.username,
            "role": self.role,
            "display_name": self.display_name,
            "disabled": self.disabled,
        }


@dataclass(frozen=True)
class LoginResult:
    user: UserInfo
    session_token: str  # goes in the HttpOnly cookie, stored only hashed
    csrf_token: str
    expires_at: datetime


def _info(user: User) -> UserInfo:
    return UserInfo(user.id, user.username, user.role, user.display_name, user.participant_id,
                    bool(user.disabled))


def check_username(username: object) -> str:
    """A valid username (lower-case letters, digits, . _ -; 2-64) or InvalidInput."""
    if not isinstance(username, str) or not USERNAME_RE.fullmatch(username):
        raise InvalidInput(
            "username must be 2-64 characters: lower-case letters, digits, '.', '_' or '-'",
            code="invalid_username",
        )
    return username


def check_password(password: object) -> str:
    """A password of acceptable length or InvalidInput."""
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(
            f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters",
            code="invalid_password",
        )
    return password


def create_user(
    tx: Tx,
    *,
    username: object,
    role: object,
    password: object,
    display_name: object = None,
    actor: str = "system",
) -> UserInfo:
    """A new account; the password is stored as an Argon2id hash."""
    username = check_username(username)
    password = check_password(password)
    if not isinstance(role, str) or role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", code="invalid_role")
    name = text(display_name or username, "display_name", max_len=64)
    if tx.db.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict("a user with this username exists", code="username_taken")
    user = User(
        id=new_id("u"),
        username=username,
        role=role,
        password_hash=_hasher.hash(password),
        display_name=name,
        participant_id=new_id("h"),
        disabled=False,
        created_at=tx.now,
    )
    tx.db.add(user)
    audit.append(tx, actor, "user.created", user.id, {"role": role, "username": username})
    return _info(user)


def list_users(tx: Tx) -> list[UserInfo]:
    """All accounts, by username."""
    return [_info(u) for u in tx.db.scalars(select(User).order_by(User.username))]


def get_user(tx: Tx, user_id: str) -> UserInfo:
    """One account by id."""
    user = tx.db.get(User, user_id)
    if user is None:
        raise NotFound("no such user", code="user_not_found")
    return _info(user)


def find_user(tx: Tx, username: str) -> UserInfo:
    """One account by username."""
    user = tx.db.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound("no such user", code="user_not_found")
    return _info(user)


def count_users(tx: Tx) -> int:
    """How many accounts exist (0 on a fresh install)."""
    return len(tx.db.scalars(select(User.id)).all())


def _throttle_rows(tx: Tx, keys: list[str]) -> dict[str, LoginThrottle]:
    """The throttle rows for `keys`, created if missing and locked for this transaction.

    The insert comes first: on SQLite it takes the database's write lock (so concurrent
    attempts queue here, not after their checks), on PostgreSQL the rows are locked with
    FOR UPDATE. Either way, checking and counting one attempt is one atomic step.
    """
    dialect = tx.db.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    for key in sorted(keys):  # one order everywhere: no deadlock between two attempts
        tx.db.execute(
            insert(LoginThrottle)
            .values(key=key, failures=0, last_failure_at=tx.now)
            .on_conflict_do_nothing(index_elements=["key"])
        )
    rows = tx.db.scalars(
        select(LoginThrottle)
        .where(LoginThrottle.key.in_(keys))
        .order_by(LoginThrottle.key)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    return {row.key: row for row in rows}


def _locked_for(row: LoginThrottle, now: datetime) -> int:
    if row.locked_until is None or row.locked_until <= now:
        return 0
    return max(1, int((row.locked_until - now).total_seconds() + 0.999))


def _count_failure(row: LoginThrottle, now: datetime, free: int) -> None:
    if now - row.last_failure_at > FAILURE_MEMORY:
        row.failures = 0
    row.failures += 1
    row.last_failure_at = now
    if row.failures > free:
        lock = min(MAX_LOCK, timedelta(seconds=2 ** min(row.failures - free - 1, 20)))
        row.locked_until = now + lock


def _uncount_failure(row: LoginThrottle, free: int) -> None:
    # the attempt was counted as a failure before the password was checked; it was not one
    row.failures = max(0, row.failures - 1)
    if row.failures <= free:
        row.locked_until = None


@dataclass(frozen=True)
class LoginAttempt:
    """An attempt counted against its throttles, waiting for its password check."""

    username: str
    address: str
    user_key: str
    addr_key: str
    user_id: str | None
    password_hash: str


def begin_login(tx: Tx, *, username: object, password: object, address: str) -> LoginAttempt:
    """Check the throttles and count this attempt as a failure until it proves otherwise."""
    if not isinstance(username, str) or not isinstance(password, str):
        raise InvalidInput("username and password are required", code="invalid_request")
    # keys are bounded so an absurd username cannot bloat the throttle table
    user_key = "user:" + username[:64].lower()
    addr_key = "addr:" + address[:64]
    rows = _throttle_rows(tx, [user_key, addr_key])
    wait = max(_locked_for(rows[user_key], tx.now), _locked_for(rows[addr_key], tx.now))
    if wait:
        audit.append(tx, "anonymous", "login.throttled", username[:64], {"address": address})
        raise Throttled("too many failed logins: try again later", retry_after_s=wait)
    _count_failure(rows[user_key], tx.now, FREE_FAILURES_PER_USER)
    _count_failure(rows[addr_key], tx.now, FREE_FAILURES_PER_ADDRESS)
    user = tx.db.scalar(select(User).where(User.username == username))
    usable = user is not None and not user.disabled
    return LoginAttempt(
        username[:64], address, user_key, addr_key,
        user.id if usable and user is not None else None,
        user.password_hash if usable and user is not None else _DUMMY_HASH,
    )


def finish_login(tx: Tx, attempt: LoginAttempt, *, ok: bool, password: str) -> LoginResult:
    """After the password check: a login session, or the failure (already counted)."""
    user = tx.db.get(User, attempt.user_id) if attempt.user_id and ok else None
    if user is None or user.disabled:
        audit.append(tx, "anonymous", "login.failed", attempt.username,
                     {"address": attempt.address})
        raise AuthFailed("username or password is wrong", keep_changes=True)
    rows = _throttle_rows(tx, [attempt.user_key, attempt.addr_key])
    _uncount_failure(rows[attempt.addr_key], FREE_FAILURES_PER_ADDRESS)
    tx.db.delete(rows[attempt.user_key])
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    expires = tx.now + LOGIN_TTL
    tx.db.add(
        LoginSession(
            token_hash=sha256_hex(token),
            user_id=user.id,
            csrf_token=csrf,
            created_at=tx.now,
            expires_at=expires,
        )
    )
    audit.append(tx, f"user:{user.id}", "login.succeeded", user.id, {"address": attempt.address})
    return LoginResult(_info(user), token, csrf, expires)


def login(store: Store, *, username: object, password: object, address: str) -> LoginResult:
    """Check a password (with backoff per username and per address); open a login session.

    Blocking (two short transactions around the password hash check): call it in a thread.
    """
    attempt = store.call(begin_login, username=username, password=password, address=address)
    assert isinstance(password, str)
    ok: bool
    try:
        ok = bool(_hasher.verify(attempt.password_hash, password[:MAX_PASSWORD]))
    except (VerificationError, InvalidHashError):
        ok = False
    return store.call(finish_login, attempt, ok=ok and attempt.user_id is not None,
                      password=password)


@dataclass(frozen=True)
class Authenticated:
    user: UserInfo
    csrf_token: str


def session_user(tx: Tx, token: str) -> Authenticated | None:
    """The user behind a login-session cookie, or None when unknown or expired."""
    if not token or len(token) > 200:
        return None
    row = tx.db.get(LoginSession, sha256_hex(token))
    if row is None or row.expires_at <= tx.now:
        return None
    user = tx.db.get(User, row.user_id)
    if user is None or user.disabled:
        return None
    return Authenticated(_info(user), row.csrf_token)


def csrf_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison of the CSRF token."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def logout(tx: Tx, token: str) -> None:
    """End a login session (safe twice)."""
    row = tx.db.get(LoginSession, sha256_hex(token))
    if row is not None:
        audit.append(tx, f"user:{row.user_id}", "logout", row.user_id)
        tx.db.delete(row)


def _end_sessions(tx: Tx, user_id: str) -> int:
    result = tx.db.execute(delete(LoginSession).where(LoginSession.user_id == user_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _target(tx: Tx, user_id: str) -> User:
    user = tx.db.get(User, user_id)
    if user is None:
        raise NotFound("no such user", code="user_not_found")
    return user


def set_disabled(tx: Tx, actor: UserInfo | str, user_id: str, disabled: bool) -> UserInfo:
    """Disable an account (a leaver: it cannot log in and its sessions end now) or enable it
    again. Audited; nobody disables their own account (the last admin could lock all out)."""
    actor_ref = actor if isinstance(actor, str) else f"user:{actor.id}"
    if not isinstance(actor, str) and actor.id == user_id and disabled:
        raise Conflict("you cannot disable your own account", code="cannot_disable_self")
    user = _target(tx, user_id)
    if bool(user.disabled) == disabled:
        return _info(user)  # already so: nothing to record
    user.disabled = disabled
    ended = _end_sessions(tx, user.id) if disabled else 0
    audit.append(tx, actor_ref, "user.disabled" if disabled else "user.enabled", user.id,
                 {"sessions_ended": ended} if disabled else {})
    return _info(user)


def reset_password(tx: Tx, actor: UserInfo | str, user_id: str, password: object) -> UserInfo:
    """Set a new password (an admin's reset): every login session of the account ends, its
    failed-login backoff is cleared, and the reset is audited (never the password)."""
    actor_ref = actor if isinstance(actor, str) else f"user:{actor.id}"
    password = check_password(password)
    user = _target(tx, user_id)
    user.password_hash = _hasher.hash(password)
    ended = _end_sessions(tx, user.id)
    tx.db.execute(delete(LoginThrottle).where(LoginThrottle.key == "user:" + user.username))
    audit.append(tx, actor_ref, "user.password_reset", user.id, {"sessions_ended": ended})
    return _info(user)


def purge_expired(tx: Tx) -> tuple[int, int]:
    """Delete expired login sessions and stale login backoff rows; (sessions, throttles)."""
    sessions = tx.db.execute(delete(LoginSession).where(LoginSession.expires_at <= tx.now))
    stale = tx.now - FAILURE_MEMORY
    throttles = tx.db.execute(
        delete(LoginThrottle).where(
            LoginThrottle.last_failure_at < stale,
            (LoginThrottle.locked_until.is_(None)) | (LoginThrottle.locked_until <= tx.now),
        )
    )
    return (int(sessions.rowcount or 0), int(throttles.rowcount or 0))  # type: ignore[attr-defined]


def user_by_participant(tx: Tx, ref: str) -> UserInfo | None:
    """The account behind a user id or a host participant id, if any."""
    user = tx.db.get(User, ref) or tx.db.scalar(select(User).where(User.participant_id == ref))
    return _info(user) if user is not None and not user.disabled else None
