"""Checks on text coming into the store: type, length, Unicode, control characters."""

from __future__ import annotations

import unicodedata
from typing import Any

from .errors import InvalidInput


def text(value: object, field: str, *, max_len: int, min_len: int = 1) -> str:
    """Trimmed, NFC text within the length limits, or InvalidInput naming the field only."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text", code="invalid_field")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # lone surrogates arrive through JSON escapes ("\\ud800") and are not text
        raise InvalidInput(f"{field} is not valid Unicode", code="invalid_unicode") from None
    value = unicodedata.normalize("NFC", value).strip()
    if len(value) > max_len:
        raise InvalidInput(f"{field} is longer than {max_len} characters", code="field_too_long")
    if len(value) < min_len:
        raise InvalidInput(f"{field} is required", code="field_required")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in value):
        raise InvalidInput(f"{field} contains control characters", code="invalid_characters")
    return value


def optional_text(value: object, field: str, *, max_len: int) -> str | None:
    """Like text(), but None or "" mean absent."""
    if value is None or value == "":
        return None
    return text(value, field, max_len=max_len)


def json_size_ok(value: Any, max_chars: int) -> bool:
    """True when the JSON form of value fits in max_chars."""
    import json

    return len(json.dumps(value)) <= max_chars
