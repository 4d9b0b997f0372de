"""Pseudonyms: the names members go by in the group, checked for look-alikes and real names.

Pure functions, no I/O. Uniqueness and real-name checks compare *skeletons*: the name folded
(NFKC, case, accents, spacing, punctuation) and with look-alike characters mapped to one
representative, so "Robin", "R o b i n", "Rоbin" (Cyrillic o) and "R0bin" all collide.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Iterable

from .errors import ConfidentialityError

MIN_LENGTH = 2
MAX_LENGTH = 24
# the characters a pseudonym may use besides letters
_PUNCTUATION = {" ", "-", "'", "\u2019"}

# look-alikes mapped onto one Latin representative (lower case, after casefold)
_CONFUSABLES: dict[str, str] = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "з": "3", "к": "k", "м": "m", "н": "h",
    "о": "o", "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i",
    "ї": "i", "ј": "j", "һ": "h", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ү": "y", "ӏ": "l",
    "ь": "b", "п": "n", "г": "r",
    # Greek
    "α": "a", "β": "b", "γ": "y", "δ": "d", "ε": "e", "ζ": "z", "η": "n", "ι": "i",
    "κ": "k", "μ": "u", "ν": "v", "ο": "o", "ρ": "p", "σ": "o", "ς": "c", "τ": "t",
    "υ": "u", "χ": "x", "ω": "w",
    # Latin look-alikes and digits
    "ı": "i", "ɡ": "g", "ɑ": "a", "ʀ": "r", "ß": "ss", "æ": "ae", "œ": "oe", "ø": "o",
    "ð": "d", "þ": "p", "ł": "l", "đ": "d",
    "0": "o", "1": "l", "2": "z", "3": "e", "4": "a", "5": "s", "6": "b", "7": "t", "8": "b",
    "9": "g", "|": "l", "!": "l", "$": "s", "@": "a",
}  # fmt: skip
# letters that look alike in common fonts (capital I and lower-case l): one class
_SAME_SHAPE = {"i": "l"}
# multi-letter shapes: "rn" reads as "m", "vv" as "w", "cl" as "d"
_DIGRAPHS = (("rn", "m"), ("vv", "w"), ("cl", "d"))

# neutral suggestions: trees, birds, colours, landscape; none is common as a surname
SUGGESTIONS: tuple[str, ...] = (
    "Alder", "Aspen", "Birch", "Cedar", "Elm", "Hazel", "Juniper", "Larch", "Linden", "Maple",
    "Rowan", "Willow", "Yew", "Finch", "Heron", "Kestrel", "Lark", "Linnet", "Plover", "Robin",
    "Swift", "Wren", "Dunlin", "Curlew", "Amber", "Indigo", "Ochre", "Russet", "Saffron", "Slate",
    "Teal", "Umber", "Cove", "Fern", "Brook", "Meadow", "Moss", "Pebble", "Reed", "Sky",
)  # fmt: skip


class PseudonymError(ConfidentialityError, ValueError):
    """A pseudonym was refused; `code` is stable and the message never quotes a real name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0])


def skeleton(text: str) -> str:
    """The comparison form: folded, accent-free, look-alikes unified, no spaces or punctuation."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    # strip accents: decompose, drop combining marks
    decomposed = unicodedata.normalize("NFKD", folded)
    out: list[str] = []
    for ch in decomposed:
        if unicodedata.category(ch).startswith("M"):
            continue
        ch = _CONFUSABLES.get(ch, ch)
        for sub in ch:
            if sub.isalnum():
                out.append(_SAME_SHAPE.get(sub, sub))
    result = "".join(out)
    for pair, single in _DIGRAPHS:
        result = result.replace(pair, single)
    return result


def display_form(text: str) -> str:
    """The stored form: NFC, trimmed, inner runs of spaces collapsed to one."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip()


def _check_shape(name: str) -> None:
    if not MIN_LENGTH <= len(name) <= MAX_LENGTH:
        raise PseudonymError(
            "pseudonym_length",
            f"a pseudonym must be {MIN_LENGTH} to {MAX_LENGTH} characters long",
        )
    for ch in name:
        if ch in _PUNCTUATION:
            continue
        category = unicodedata.category(ch)
        if category.startswith("L") or (category.startswith("M") and ch != name[0]):
            continue
        raise PseudonymError(
            "pseudonym_characters",
            "a pseudonym may use letters, spaces, hyphens and apostrophes only",
        )
    if not unicodedata.category(name[0]).startswith("L"):
        raise PseudonymError("pseudonym_characters", "a pseudonym must start with a letter")


def real_name_parts(real_name: str) -> list[str]:
    """Skeletons of the parts (first, last, middle names) of a real name."""
    parts = re.split(r"[\s\-'\u2019.,]+", unicodedata.normalize("NFKC", real_name))
    return [s for s in (skeleton(p) for p in parts) if s]


def contains_real_name(pseudonym: str, real_names: Iterable[str]) -> bool:
    """True when the pseudonym equals or contains any part of any of the real names."""
    pseudo = skeleton(pseudonym)
    for real in real_names:
        for part in real_name_parts(real):
            # containment only for parts of 3+ letters: "Al" would rule out half the lexicon,
            # while an exact match of a short name is still caught
            if pseudo == part or (len(part) >= 3 and part in pseudo):
                return True
    return False


def validate_pseudonym(
    name: str,
    *,
    taken_skeletons: Iterable[str] = (),
    real_names: Iterable[str] = (),
) -> str:
    """Check a proposed pseudonym; return its display form or raise PseudonymError."""
    if not isinstance(name, str):
        raise PseudonymError("pseudonym_characters", "a pseudonym must be text")
    shown = display_form(name)
    _check_shape(shown)
    if not skeleton(shown):
        raise PseudonymError("pseudonym_characters", "a pseudonym must contain letters")
    if skeleton(shown) in set(taken_skeletons):
        raise PseudonymError(
            "pseudonym_taken",
            "this pseudonym is already used in the group, or looks too like one that is",
        )
    if contains_real_name(shown, real_names):
        # the message must not say whose name it is
        raise PseudonymError(
            "pseudonym_contains_real_name",
            "a pseudonym must not be or contain a group member's real first or last name",
        )
    return shown


def suggest(
    *,
    taken_skeletons: Iterable[str] = (),
    real_names: Iterable[str] = (),
    count: int = 5,
    rng: random.Random | None = None,
) -> list[str]:
    """Neutral pseudonyms not used in the group and not close to any member's real name."""
    taken = set(taken_skeletons)
    names = list(real_names)
    pool = [s for s in SUGGESTIONS if skeleton(s) not in taken and not contains_real_name(s, names)]
    (rng or random.SystemRandom()).shuffle(pool)
    return pool[: max(0, count)]
