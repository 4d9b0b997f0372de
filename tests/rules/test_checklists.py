"""The group agreement and the host's pre-session checklist."""

from __future__ import annotations

import pytest

from session_rules.checklists import (
    GROUP_AGREEMENT,
    HOST_PRE_SESSION,
    validate_answers,
    validate_host_answers,
)
from session_rules.errors import ChecklistError

AGREEMENT_IDS = [i.id for i in GROUP_AGREEMENT]


def test_group_agreement_items_are_stable() -> None:
    # ids are stored with attendance: renaming one would orphan old records
    assert AGREEMENT_IDS == ["private_space", "headphones", "no_recording", "pseudonyms_only",
                             "someone_came_in"]
    assert [i.id for i in HOST_PRE_SESSION] == ["private_space", "headphones", "crisis_plan",
                                                "group_agreement"]
    assert all(i.text.strip() for i in GROUP_AGREEMENT + HOST_PRE_SESSION)


@pytest.mark.parametrize("left_out", AGREEMENT_IDS)
def test_each_agreement_item_is_required(left_out: str) -> None:
    result = validate_answers(set(AGREEMENT_IDS) - {left_out})
    assert not result.complete and result.missing == (left_out,)


def test_all_confirmed_is_complete_and_storable() -> None:
    result = validate_answers(AGREEMENT_IDS)
    assert result.complete
    assert result.to_dict() == {"checklist": "group_agreement", "complete": True,
                                "confirmed": AGREEMENT_IDS, "missing": []}


@pytest.mark.parametrize("answers", [["private_space", "nope"], "private_space", [1]])
def test_bad_answers_raise(answers: object) -> None:
    with pytest.raises(ChecklistError):
        validate_answers(answers)  # type: ignore[arg-type]


def test_host_checklist() -> None:
    assert validate_host_answers([i.id for i in HOST_PRE_SESSION]).complete
    assert validate_host_answers(["private_space"]).missing == ("headphones", "crisis_plan",
                                                                 "group_agreement")
