"""Errors raised by the media plane, each with a stable code for the wire."""

from __future__ import annotations


class SfuError(Exception):
    """Base class: `code` is stable and safe to send to a client."""

    code = "sfu_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class GrantError(SfuError):
    code = "invalid_grant"


class ProtocolError(SfuError):
    code = "protocol_error"


class InvalidStateError(SfuError):
    code = "invalid_state"


class PermissionDenied(SfuError):
    code = "permission_denied"


class RoomFull(SfuError):
    code = "room_full"
