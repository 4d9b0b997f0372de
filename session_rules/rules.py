"""Group rules: what a clinician sets once for a group, checked on every change."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from confidentiality.profiles import STRICTNESS, Profile

from .errors import InvalidRules, MeasureError
from .measures import InstrumentId, ordered

UnmutePolicy = Literal["self", "host_only"]
# after-session feedback: not offered, offered with the member's name, or anonymous to the
# clinician
FeedbackMode = Literal["off", "named", "anonymous"]

# a therapy group is at most 15 people; 16 leaves room for a co-facilitator
HARD_CAP_PARTICIPANTS = 16
DEFAULT_MAX_PARTICIPANTS = 12
MAX_LOBBY_OPENS_BEFORE_MIN = 120
MAX_LATE_JOIN_CUTOFF_MIN = 240
# members who may be connected beyond a full room: those waiting in the lobby or pre-join
EXTRA_CONNECTED = 4

_DEFAULT_PROFILES = frozenset(
    {Profile.BLUR, Profile.FACE_MASK, Profile.AVATAR, Profile.CAMERA_OFF}
)


@dataclass(frozen=True)
class GroupRules:
    """Rules a group's clinician edits; invalid values raise `InvalidRules`."""

    lobby_required: bool = True
    muted_on_entry: bool = True
    unmute_policy: UnmutePolicy = "self"
    allowed_profiles: frozenset[Profile] = field(default_factory=lambda: _DEFAULT_PROFILES)
    minimum_profile: Profile = Profile.BLUR
    chat_enabled: bool = True
    text_only_allowed: bool = True
    max_participants: int = DEFAULT_MAX_PARTICIPANTS
    lobby_opens_before_min: int = 10
    # the lobby closes this long after the start; a later arrival is told kindly, the host too
    late_join_cutoff_min: int = 15
    # questionnaires members complete on their own device (before the session, or after it
    # for the session rating); none unless the clinician chooses them
    measures: tuple[InstrumentId, ...] = ()
    # before admission a member says where they are (for the clinician's eyes only)
    ask_location: bool = True
    feedback: FeedbackMode = "off"
    # "Focus": members receive only the hosts' video (everyone still hears everyone); hosts
    # receive every video. The rule sets how a session starts; a host can switch it after.
    focus: bool = False
    # members see each other as "Member 1", "Member 2"…; only the host sees pseudonyms
    names_hidden: bool = False
    # members start with others' video off (sound only), and may turn it on for themselves
    audio_only_default: bool = False
    # what the clinician sees of a member who consents, when lighter than what the group sees
    # (the group an avatar, the clinician the face with the background blurred); None: the
    # clinician sees what the group sees
    clinician_profile: Profile | None = None
    # there is no server path that records or exports media; this cannot be switched off
    recording_prohibited: bool = True

    def __post_init__(self) -> None:
        for name in ("lobby_required", "muted_on_entry", "chat_enabled", "text_only_allowed",
                     "recording_prohibited", "ask_location", "focus", "names_hidden",
                     "audio_only_default"):
            _expect_bool(name, getattr(self, name))
        if self.unmute_policy not in get_args(UnmutePolicy):
            raise InvalidRules(
                f'unmute_policy must be "self" or "host_only", not "{self.unmute_policy}"'
            )
        if not self.recording_prohibited:
            raise InvalidRules("recording_prohibited cannot be switched off: Confide never records")
        if not isinstance(self.minimum_profile, Profile):
            raise InvalidRules("minimum_profile must be a privacy profile")
        if self.clinician_profile is not None and (
                not isinstance(self.clinician_profile, Profile)
                or self.clinician_profile is Profile.CAMERA_OFF):
            raise InvalidRules("clinician_profile must be a privacy profile that shows video")
        if not isinstance(self.allowed_profiles, frozenset) or not all(
            isinstance(p, Profile) for p in self.allowed_profiles
        ):
            raise InvalidRules("allowed_profiles must be a set of privacy profiles")
        # a member must always be able to take their camera away, whatever the group allows
        if Profile.CAMERA_OFF not in self.allowed_profiles:
            raise InvalidRules('allowed_profiles must include "camera_off"')
        below = sorted(
            p.value for p in self.allowed_profiles
            if STRICTNESS[p] < STRICTNESS[self.minimum_profile]
        )
        if below:
            raise InvalidRules(
                f'allowed_profiles {below} are below the minimum profile '
                f'"{self.minimum_profile.value}"'
            )
        _expect_int("max_participants", self.max_participants, 2, HARD_CAP_PARTICIPANTS)
        _expect_int("lobby_opens_before_min", self.lobby_opens_before_min, 0,
                    MAX_LOBBY_OPENS_BEFORE_MIN)
        _expect_int("late_join_cutoff_min", self.late_join_cutoff_min, 0,
                    MAX_LATE_JOIN_CUTOFF_MIN)
        if self.feedback not in get_args(FeedbackMode):
            raise InvalidRules('feedback must be "off", "named" or "anonymous"')
        if not isinstance(self.measures, tuple):
            raise InvalidRules("measures must be a list of measure names")
        try:
            canonical = ordered(self.measures)
        except MeasureError as exc:
            raise InvalidRules(f"measures: {exc.message}") from None
        if canonical != self.measures:
            # one order everywhere (forms, exports), whatever order they were chosen in
            object.__setattr__(self, "measures", canonical)

    @property
    def max_connected(self) -> int:
        """How many members may be connected at once (in the room, the lobby or pre-join)."""
        return self.max_participants + EXTRA_CONNECTED

    def clinician_sees(self, group_profile: Profile, consent: bool) -> Profile | None:
        """The lighter profile a member's clinician receives, or None for the group's own.

        Only with the member's consent, and only when it is lighter than what the group sees
        of them (a member who shows the group more needs no second copy)."""
        lighter = self.clinician_profile
        if not consent or lighter is None or group_profile is Profile.CAMERA_OFF:
            return None
        return lighter if STRICTNESS[lighter] < STRICTNESS[group_profile] else None

    def permits_profile(self, profile: Profile) -> bool:
        """True when the group allows `profile` and it is at least the minimum."""
        return (
            profile in self.allowed_profiles
            and STRICTNESS[profile] >= STRICTNESS[self.minimum_profile]
        )

    def replace(self, **changes: Any) -> GroupRules:
        """A copy with `changes` applied and validated."""
        unknown = sorted(set(changes) - _FIELD_NAMES)
        if unknown:
            raise InvalidRules(f"unknown group rule {unknown[0]!r}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict for storage."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, frozenset):
                value = sorted(p.value for p in value)
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Profile):
                value = value.value
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroupRules:
        """Rules from stored JSON; missing keys take defaults, unknown keys are refused."""
        if not isinstance(data, Mapping):
            raise InvalidRules("group rules must be a JSON object")
        unknown = sorted(set(data) - _FIELD_NAMES)
        if unknown:
            raise InvalidRules(f"unknown group rule {unknown[0]!r}")
        kwargs: dict[str, Any] = dict(data)
        if "allowed_profiles" in kwargs:
            raw = kwargs["allowed_profiles"]
            if not isinstance(raw, list | tuple):
                raise InvalidRules("allowed_profiles must be a list of profile names")
            kwargs["allowed_profiles"] = frozenset(_profile("allowed_profiles", v) for v in raw)
        if "minimum_profile" in kwargs:
            kwargs["minimum_profile"] = _profile("minimum_profile", kwargs["minimum_profile"])
        if kwargs.get("clinician_profile") is not None:
            kwargs["clinician_profile"] = _profile("clinician_profile", kwargs["clinician_profile"])
        if "measures" in kwargs:
            raw = kwargs["measures"]
            if not isinstance(raw, list | tuple) or not all(isinstance(m, str) for m in raw):
                raise InvalidRules("measures must be a list of measure names")
            kwargs["measures"] = tuple(raw)
        return cls(**kwargs)


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(GroupRules))


def _profile(name: str, value: object) -> Profile:
    if not isinstance(value, str):
        raise InvalidRules(f"{name} must hold profile names, not {type(value).__name__}")
    try:
        return Profile(value)
    except ValueError:
        known = ", ".join(p.value for p in Profile)
        raise InvalidRules(f'unknown profile "{value}" in {name} (known: {known})') from None


def _expect_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise InvalidRules(f"{name} must be true or false, not {type(value).__name__}")


def _expect_int(name: str, value: object, low: int, high: int) -> None:
    # bool is an int subclass; true is not a participant count
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRules(f"{name} must be a whole number, not {type(value).__name__}")
    if not low <= value <= high:
        raise InvalidRules(f"{name} must be between {low} and {high}, not {value}")
