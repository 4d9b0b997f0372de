"""Group rules: defaults, validation and storage round trip."""

from __future__ import annotations

import json
from typing import Any

import pytest

from confidentiality.profiles import Profile
from session_rules.errors import InvalidRules
from session_rules.rules import HARD_CAP_PARTICIPANTS, GroupRules


def test_defaults_are_the_safe_ones() -> None:
    rules = GroupRules()
    assert rules.lobby_required and rules.muted_on_entry and rules.recording_prohibited
    assert rules.minimum_profile is Profile.BLUR
    assert Profile.NONE not in rules.allowed_profiles
    assert rules.max_participants == 12 and rules.lobby_opens_before_min == 10


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"recording_prohibited": False}, "cannot be switched off"),
        ({"unmute_policy": "anyone"}, 'unmute_policy must be "self" or "host_only"'),
        ({"max_participants": HARD_CAP_PARTICIPANTS + 1}, "between 2 and 16"),
        ({"max_participants": 1}, "between 2 and 16"),
        ({"max_participants": True}, "whole number"),
        ({"max_participants": 12.0}, "whole number"),
        ({"lobby_opens_before_min": -1}, "between 0 and 120"),
        ({"late_join_cutoff_min": 999}, "between 0 and 240"),
        ({"chat_enabled": "yes"}, "true or false"),
        ({"allowed_profiles": frozenset({Profile.BLUR})}, "must include \"camera_off\""),
        ({"allowed_profiles": frozenset({Profile.NONE, Profile.CAMERA_OFF})},
         "below the minimum profile"),
        ({"minimum_profile": "blur"}, "minimum_profile must be a privacy profile"),
        ({"colour": "blue"}, "unknown group rule 'colour'"),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRules) as err:
        GroupRules().replace(**changes)
    assert message in err.value.message
    assert err.value.code == "invalid_rules"


def test_round_trip_through_json() -> None:
    rules = GroupRules(unmute_policy="host_only", chat_enabled=False, max_participants=8,
                       minimum_profile=Profile.FACE_MASK,
                       allowed_profiles=frozenset({Profile.FACE_MASK, Profile.CAMERA_OFF}))
    stored = json.loads(json.dumps(rules.to_dict()))
    assert stored["allowed_profiles"] == ["camera_off", "face_mask"]
    assert GroupRules.from_dict(stored) == rules


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"record_media": True}, "unknown group rule 'record_media'"),
        ({"allowed_profiles": "blur"}, "must be a list"),
        ({"allowed_profiles": ["blur", "sepia"]}, 'unknown profile "sepia"'),
        ({"allowed_profiles": [1]}, "must hold profile names"),
        ({"minimum_profile": "x-ray"}, 'unknown profile "x-ray"'),
        ({"max_participants": "12"}, "whole number"),
        ({"lobby_required": 1}, "true or false"),
        ({"recording_prohibited": False}, "cannot be switched off"),
    ],
)
def test_from_dict_rejects_unknown_keys_and_wrong_types(data: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRules) as err:
        GroupRules.from_dict(data)
    assert message in err.value.message


def test_from_dict_fills_missing_keys_with_defaults() -> None:
    assert GroupRules.from_dict({"chat_enabled": False}) == GroupRules(chat_enabled=False)


@pytest.mark.parametrize(
    ("profile", "permitted"),
    [(Profile.NONE, False), (Profile.BLUR, True), (Profile.FACE_MASK, True),
     (Profile.AVATAR, True), (Profile.CAMERA_OFF, True)],
)
def test_permits_profile_follows_minimum_and_allowed(profile: Profile, permitted: bool) -> None:
    assert GroupRules().permits_profile(profile) is permitted


def test_recording_cannot_be_switched_off() -> None:
    with pytest.raises(InvalidRules):
        GroupRules(recording_prohibited=False)
    with pytest.raises(InvalidRules):
        GroupRules.from_dict({"recording_prohibited": False})
    assert GroupRules().to_dict()["recording_prohibited"] is True
