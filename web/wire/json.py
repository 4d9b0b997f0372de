"""JSON from clients, bounded: size is checked by the caller, depth and Unicode here."""

from __future__ import annotations

import json
from typing import Any

# the deepest structure any message or body of ours has is 4 levels (group rules in a body);
# 32 leaves room and stops a deeply nested document before any code walks it
MAX_DEPTH = 32


class JsonRejected(ValueError):
    """Input that is not acceptable JSON; `code` is one of bad_json, too_deep, invalid_unicode."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0])


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Decode JSON text; refuse invalid UTF-8, lone surrogates and nesting past `max_depth`."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise JsonRejected("invalid_unicode", "not UTF-8 text") from None
    try:
        value = json.loads(text)
    except RecursionError:
        # the decoder itself gave up: far deeper than we allow
        raise JsonRejected("too_deep", f"JSON nested deeper than {max_depth} levels") from None
    except ValueError:
        raise JsonRejected("bad_json", "not valid JSON") from None
    _check(value, max_depth)
    return value


def _check(value: Any, max_depth: int) -> None:
    # iterative, so a deep value cannot exhaust the stack here either
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict | list):
            if depth > max_depth:
                raise JsonRejected("too_deep", f"JSON nested deeper than {max_depth} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    _check_text(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def _check_text(value: str) -> None:
    # json.loads turns "\ud800" escapes into lone surrogates: those are not text
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise JsonRejected("invalid_unicode", "contains invalid Unicode") from None
