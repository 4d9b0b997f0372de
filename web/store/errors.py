"""Errors raised by the store, each with a stable code that is safe to show to a caller."""

from __future__ import annotations


class StoreError(Exception):
    """Base class: `code` is stable; the message never quotes a real name or a secret."""

    code = "store_error"

    def __init__(
        self, message: str, *, code: str | None = None, keep_changes: bool = False
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        # a refusal that must leave a trace (audit of a replayed invite, a failed login's
        # throttle counter) commits what was written before it was raised
        self.keep_changes = keep_changes

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class NotFound(StoreError):
    code = "not_found"


class Conflict(StoreError):
    code = "conflict"


class InvalidInput(StoreError):
    code = "invalid_input"


class InvalidTransition(StoreError):
    code = "invalid_transition"


class Forbidden(StoreError):
    code = "forbidden"


class AuthFailed(StoreError):
    code = "invalid_credentials"


class Throttled(StoreError):
    code = "login_throttled"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, keep_changes=True)
        self.retry_after_s = retry_after_s


class StoreUnavailable(StoreError):
    """The database cannot be reached, is locked or timed out: try again in a moment."""

    code = "service_unavailable"
    retry_after_s = 5

    @property
    def message(self) -> str:
        return "the service cannot reach its records just now: try again in a moment"


class InviteRefused(StoreError):
    """An invite could not be used: expired, revoked, already redeemed, unknown."""

    code = "invite_invalid"


class GateClosed(StoreError):
    """A session may not open its lobby yet; `unmet` lists what is missing."""

    code = "gate_closed"

    def __init__(self, message: str, *, unmet: list[str]) -> None:
        super().__init__(message, keep_changes=True)
        self.unmet = unmet
