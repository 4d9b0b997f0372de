"""Typed models for what clients send, and their validation errors as stable codes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

# field names are echoed to the sender only, and never more than this much of one
_MAX_NAME = 40


class WireModel(BaseModel):
    """A message or body from a client: no unknown fields, no type coercion, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ReplyModel(BaseModel):
    """Something the server sends: every field declared, so schemas say exactly what goes out."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Code:
    """Annotated metadata: the error code a field's problems get instead of the default."""

    code: str


@dataclass(frozen=True)
class Codes:
    """The codes one protocol uses for the three kinds of field problem."""

    unknown: str
    wrong: str
    missing: str


SIGNALING_CODES = Codes(unknown="unknown_field", wrong="bad_field", missing="bad_field")
# the same codes the store gives for the same mistakes
HTTP_CODES = Codes(unknown="unknown_field", wrong="invalid_field", missing="field_required")


@dataclass(frozen=True)
class FieldProblem:
    """The first thing wrong with a message: a stable code, the field, a message for people."""

    code: str
    field: str
    message: str


# how pydantic names the member of a union that failed, in an error's path: not fields
_UNION_LABELS = frozenset({"str", "int", "float", "bool", "none", "list", "dict"})


def field_name(loc: tuple[int | str, ...]) -> str:
    """A dotted field path, shortened: it may be text the client made up."""
    parts = [str(loc[0])] + [
        str(p) for p in loc[1:]
        if not (isinstance(p, str) and (p in _UNION_LABELS or "-" in p or "[" in p))
    ]
    name = ".".join(parts)
    return name if len(name) <= _MAX_NAME else name[: _MAX_NAME - 1] + "…"


def problem(
    exc: ValidationError, model: type[BaseModel] | None, codes: Codes, *, skip: int = 0
) -> FieldProblem:
    """The first error of a validation as a typed problem; `skip` drops tag parts of the path."""
    err = exc.errors(include_url=False, include_input=False)[0]
    loc = tuple(err["loc"])[skip:]
    name = field_name(loc) if loc else "message"
    kind = err["type"]
    custom = _field_code(model, loc)
    if kind == "extra_forbidden":
        return FieldProblem(codes.unknown, name, f'unknown field "{name}"')
    if kind == "missing":
        return FieldProblem(custom or codes.missing, name, f'field "{name}" is required')
    return FieldProblem(custom or codes.wrong, name, f'field "{name}": {_reason(err)}')


def _field_code(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> str | None:
    if model is None or not loc or not isinstance(loc[0], str):
        return None
    info = model.model_fields.get(loc[0])
    if info is None:
        return None
    for meta in info.metadata:
        if isinstance(meta, Code):
            return meta.code
    return None


def _reason(err: Any) -> str:
    # pydantic's own wording names the expected type or values, never the input
    text = str(err.get("msg", "invalid value"))
    return text[:1].lower() + text[1:]
