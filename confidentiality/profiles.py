"""Privacy profiles: how the group sees a participant."""

from __future__ import annotations

import enum


class Profile(enum.StrEnum):
    """What of a participant's camera reaches the group."""

    NONE = "none"  # as they are
    BLUR = "blur"  # background strongly blurred, person sharp
    FACE_MASK = "face_mask"  # background blurred and the face hidden
    AVATAR = "avatar"  # no camera pixels at all
    CAMERA_OFF = "camera_off"  # a card with the display name

    @property
    def needs_pixels(self) -> bool:
        """True when the server must decode and transform this participant's video."""
        return self is not Profile.NONE


# strictness order, used by policies such as "at least blur"
STRICTNESS: dict[Profile, int] = {
    Profile.NONE: 0,
    Profile.BLUR: 1,
    Profile.FACE_MASK: 2,
    Profile.AVATAR: 3,
    Profile.CAMERA_OFF: 4,
}
