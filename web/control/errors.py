"""Errors of the HTTP API: a stable code, an HTTP status, a message safe to show anyone."""

from __future__ import annotations

from web.store import errors as store_errors


class ApiError(Exception):
    """Raised by handlers; rendered as {"error": {"code", "message"}} with `status`."""

    def __init__(
        self, status: int, code: str, message: str, *, extra: dict[str, object] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.extra = extra or {}

    @property
    def message(self) -> str:
        return str(self.args[0])


# invite refusals whose status differs from their class default
_INVITE_STATUS = {
    "invite_not_found": 404,
    "invite_already_redeemed": 409,
    "invite_revoked": 410,
    "invite_expired": 410,
    "invite_not_yet_valid": 403,
    "resume_invalid": 401,
}

_STATUS: list[tuple[type[store_errors.StoreError], int]] = [
    (store_errors.NotFound, 404),
    (store_errors.Conflict, 409),
    (store_errors.InvalidInput, 400),
    (store_errors.InvalidTransition, 409),
    (store_errors.Forbidden, 403),
    (store_errors.AuthFailed, 401),
    (store_errors.Throttled, 429),
    (store_errors.GateClosed, 409),
    # the database is away or locked: a clear "try again in a moment", with Retry-After
    (store_errors.StoreUnavailable, 503),
]


def from_store(exc: store_errors.StoreError) -> ApiError:
    """The API error for a store error."""
    extra: dict[str, object] = {}
    if isinstance(exc, store_errors.GateClosed):
        extra["unmet"] = exc.unmet
    if isinstance(exc, store_errors.InviteRefused):
        return ApiError(_INVITE_STATUS.get(exc.code, 403), exc.code, exc.message)
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return ApiError(status, exc.code, exc.message, extra=extra)
    return ApiError(500, exc.code, exc.message)
