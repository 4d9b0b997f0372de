"""Errors raised by session policy, each with a stable code that is safe to send to a client."""

from __future__ import annotations


class SessionRulesError(Exception):
    """Base class: `code` is stable; the message never contains a real name."""

    code = "session_rules_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class InvalidRules(SessionRulesError):
    """Group rules that are contradictory, out of range or of the wrong type."""

    code = "invalid_rules"


class IllegalTransition(SessionRulesError):
    """A lobby state change that the state machine does not allow."""

    code = "illegal_transition"


class InvalidCommand(SessionRulesError):
    """A command from the wire that is not one we know or is badly formed."""

    code = "invalid_command"


class ChecklistError(SessionRulesError):
    """Checklist answers that name unknown items or are badly formed."""

    code = "invalid_checklist"


class HazardLogError(SessionRulesError):
    """A hazard log that cannot be read at all (not one with line-numbered issues)."""

    code = "invalid_hazard_log"


class WorkshopError(SessionRulesError):
    """A hazard-workshop answer that is incomplete or names an unknown question."""

    code = "invalid_workshop_answer"


class UnknownIncidentKind(SessionRulesError):
    """An incident kind that maps to no hazard."""

    code = "unknown_incident_kind"


class MeasureError(SessionRulesError):
    """Answers to a questionnaire that are incomplete, out of range or name no measure."""

    code = "invalid_measure"


class FeedbackError(SessionRulesError):
    """An after-session feedback form that names unknown questions or answers out of range."""

    code = "invalid_feedback"
