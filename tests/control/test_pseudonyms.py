"""Pseudonym rules: look-alikes collide, real names are refused, suggestions stay neutral."""

from __future__ import annotations

import random

import pytest

from confidentiality.pseudonyms import (
    MAX_LENGTH,
    PseudonymError,
    contains_real_name,
    skeleton,
    suggest,
    validate_pseudonym,
)


@pytest.mark.parametrize(
    "variant",
    [
        "robin",
        "ROBIN",
        "R o b i n",
        "Ro-bin",
        "Rob'in",
        "R\u043ebin",  # Cyrillic o
        "R\u03bfbin",  # Greek omicron
        "R0bin",  # digit zero
        "Rob1n",  # digit one for i
        "Robln",  # l for i
        "\uff32\uff4f\uff42\uff49\uff4e",  # fullwidth
        "Rób\u00efn",  # accents
    ],
)
def test_look_alikes_share_a_skeleton(variant: str) -> None:
    assert skeleton(variant) == skeleton("Robin")


def test_different_names_differ() -> None:
    assert skeleton("Robin") != skeleton("Rowan")
    assert skeleton("Heron") != skeleton("Hero")


@pytest.mark.parametrize("taken", ["Robin", "R\u043ebin", "r o b i n"])
def test_duplicate_or_look_alike_is_refused(taken: str) -> None:
    with pytest.raises(PseudonymError) as err:
        validate_pseudonym("Robin", taken_skeletons=[skeleton(taken)])
    assert err.value.code == "pseudonym_taken"


@pytest.mark.parametrize(
    ("pseudonym", "code"),
    [
        ("A", "pseudonym_length"),
        ("x" * (MAX_LENGTH + 1), "pseudonym_length"),
        ("Robin2", "pseudonym_characters"),
        ("<script>", "pseudonym_characters"),
        ("Ro'; DROP TABLE x;--", "pseudonym_characters"),
        ("-Robin", "pseudonym_characters"),
        ("Robin \U0001f600", "pseudonym_characters"),
        ("Ro\u200bbin", "pseudonym_characters"),  # zero-width space
    ],
)
def test_shape_rules(pseudonym: str, code: str) -> None:
    with pytest.raises(PseudonymError) as err:
        validate_pseudonym(pseudonym)
    assert err.value.code == code


def test_allowed_shapes_are_kept_in_display_form() -> None:
    assert validate_pseudonym("  Mary-Jo   O'Hara ") == "Mary-Jo O'Hara"
    assert validate_pseudonym("Zoë") == "Zoë"
    assert validate_pseudonym("Ли") == "Ли"


@pytest.mark.parametrize(
    "pseudonym",
    ["Quillfeather", "Araminta", "Little Araminta", "Quill-feather", "Aramlnta", "Arаminta"],
)
def test_real_first_or_last_name_is_refused_without_being_quoted(pseudonym: str) -> None:
    with pytest.raises(PseudonymError) as err:
        validate_pseudonym(pseudonym, real_names=["Araminta Quillfeather"])
    assert err.value.code == "pseudonym_contains_real_name"
    assert "Araminta" not in err.value.message and "Quillfeather" not in err.value.message


def test_short_real_name_parts_block_only_exact_matches() -> None:
    assert contains_real_name("Al", ["Al Byrne"])
    assert not contains_real_name("Alder", ["Al Jones"])
    assert contains_real_name("Jonesy", ["Al Jones"])


def test_suggestions_avoid_taken_names_and_real_names() -> None:
    taken = [skeleton("Robin"), skeleton("Wren")]
    out = suggest(taken_skeletons=taken, real_names=["Hazel Rowan"], count=50, rng=random.Random(1))
    assert out and len(out) == len(set(out))
    for name in out:
        assert skeleton(name) not in taken
        assert name not in ("Hazel", "Rowan")
        assert validate_pseudonym(name, taken_skeletons=taken, real_names=["Hazel Rowan"])
