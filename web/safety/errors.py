"""Errors of the clinical-safety part of the service."""

from __future__ import annotations


class SafetyError(Exception):
    """Base class: `code` is stable and the message is safe to show."""

    code = "safety_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class SafetyConfigError(SafetyError):
    """The safety settings (log path, workshop questions) cannot be used."""

    code = "invalid_safety_config"


class HazardLogUnreadable(SafetyError):
    """The hazard log file cannot be read or is not UTF-8 text."""

    code = "hazard_log_unreadable"


class EvidenceRecordError(SafetyError):
    """The evidence record is missing, unreadable, malformed or changed since CI made it."""

    code = "evidence_record_invalid"
