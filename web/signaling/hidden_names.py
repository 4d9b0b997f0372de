"""The names-hidden rule at a member's socket: every name of another member becomes their
"Member N" before the message is queued.

This sits on the one path every message to that member takes, so no sender (the room's
roster, join and leave notices, chat, prompts) can forget the rule. Pseudonyms are swapped
in participant views (`id` with `display_name`), in chat (`from` with `display_name`) and,
as whole words, in any other text the server wrote. What members type (`text`) and SDP are
left as they are: the first is a person's own words, the second names nobody.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Send = Callable[[dict[str, Any]], None]
# fields never rewritten: a member's own words, and session descriptions
_UNTOUCHED = frozenset({"text", "sdp"})
# fields that say whose name a `display_name` is
_WHOSE = ("id", "from", "participant_id")


def hide_names(
    send: Send,
    *,
    pseudonyms: Callable[[], Mapping[str, str]],
    alias: Callable[[str], str],
) -> Send:
    """Wrap `send` so that members' pseudonyms (`pseudonyms()`: pid → name) never pass it."""

    def filtered(message: dict[str, Any]) -> None:
        names = dict(pseudonyms())
        send(_rewrite(message, names, alias, _pattern(names)))

    return filtered


def _pattern(names: Mapping[str, str]) -> re.Pattern[str] | None:
    if not names:
        return None
    # longest first, whole words only: "Kit" must not change "Kitchen"
    alternatives = sorted({n for n in names.values() if n}, key=len, reverse=True)
    if not alternatives:
        return None
    return re.compile(r"\b(" + "|".join(re.escape(n) for n in alternatives) + r")\b")


def _rewrite(
    value: Any,
    names: Mapping[str, str],
    alias: Callable[[str], str],
    pattern: re.Pattern[str] | None,
) -> Any:
    if isinstance(value, dict):
        out = {
            k: v if k in _UNTOUCHED else _rewrite(v, names, alias, pattern)
            for k, v in value.items()
        }
        if "display_name" in value:
            whose = next((value[k] for k in _WHOSE if isinstance(value.get(k), str)), None)
            if isinstance(whose, str) and whose in names:
                out["display_name"] = alias(whose)
        return out
    if isinstance(value, list):
        return [_rewrite(v, names, alias, pattern) for v in value]
    if isinstance(value, str) and pattern is not None:
        by_name = {n: pid for pid, n in names.items()}
        return pattern.sub(lambda m: alias(by_name[m.group(1)]), value)
    return value
