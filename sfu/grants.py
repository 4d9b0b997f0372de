"""Join grants: the only credential the media plane trusts.

A grant is a short-lived HS256 JWT minted by the control plane. It carries the
participant's *display name* (their pseudonym) and never their real name, so the
media plane cannot leak what it never receives.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass, field

import jwt

from confidentiality.profiles import Profile

from .errors import GrantError

ALGORITHM = "HS256"  # pinned: a token naming any other algorithm is refused
AUDIENCE = "confide-sfu"
ISSUER = "confide"
ROLES = ("host", "participant")
MAX_NAME_LENGTH = 64


@dataclass(frozen=True)
class Permissions:
    publish_audio: bool = True
    publish_video: bool = True
    subscribe: bool = True

    def to_claim(self) -> list[str]:
        out = []
        if self.publish_audio:
            out.append("publish_audio")
        if self.publish_video:
            out.append("publish_video")
        if self.subscribe:
            out.append("subscribe")
        return out

    @classmethod
    def from_claim(cls, value: object) -> Permissions:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise GrantError("grant field 'perms' must be a list of strings")
        unknown = set(value) - {"publish_audio", "publish_video", "subscribe"}
        if unknown:
            raise GrantError(f"grant names unknown permissions: {sorted(unknown)}")
        return cls(
            publish_audio="publish_audio" in value,
            publish_video="publish_video" in value,
            subscribe="subscribe" in value,
        )


@dataclass(frozen=True)
class Grant:
    """What a verified grant says about its holder."""

    room: str
    participant_id: str
    display_name: str
    role: str = "participant"
    permissions: Permissions = field(default_factory=Permissions)
    profile: Profile = Profile.NONE
    # the control plane's session id, when the room is a scheduled session
    session_id: str | None = None
    jti: str = ""
    expires_at: float = 0.0

    @property
    def is_host(self) -> bool:
        return self.role == "host"


def new_secret() -> str:
    """A fresh signing secret (256 bits)."""
    return secrets.token_urlsafe(32)


def new_participant_id() -> str:
    # random, so that ids say nothing about the person
    return "p_" + uuid.uuid4().hex[:16]


def mint_grant(
    secret: str,
    *,
    room: str,
    display_name: str,
    participant_id: str | None = None,
    role: str = "participant",
    permissions: Permissions | None = None,
    profile: Profile | str = Profile.NONE,
    session_id: str | None = None,
    ttl_s: float = 600.0,
    now: float | None = None,
) -> str:
    """Sign a grant; the control plane is the only caller outside tests."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    issued = time.time() if now is None else now
    claims: dict[str, object] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": participant_id or new_participant_id(),
        "room": room,
        "name": display_name,
        "role": role,
        "perms": (permissions or Permissions()).to_claim(),
        "profile": Profile(profile).value,
        "iat": int(issued),
        "nbf": int(issued) - 5,  # tolerate small clock skew between nodes
        "exp": int(issued + ttl_s),
        "jti": secrets.token_urlsafe(16),
    }
    if session_id is not None:
        claims["sid"] = session_id
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_grant(token: object, secret: str, *, room: str | None = None) -> Grant:
    """Check signature, algorithm, audience and time; return the grant or raise GrantError."""
    if not isinstance(token, str) or not token:
        raise GrantError("grant missing", code="grant_missing")
    if len(token) > 4096:
        raise GrantError("grant too long")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "nbf", "iat", "aud", "iss", "sub", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise GrantError("grant expired", code="grant_expired") from None
    except jwt.ImmatureSignatureError:
        raise GrantError("grant not yet valid", code="grant_not_yet_valid") from None
    except jwt.InvalidAudienceError:
        raise GrantError("grant is for another audience", code="grant_wrong_audience") from None
    except jwt.InvalidAlgorithmError:
        raise GrantError("grant algorithm not allowed", code="grant_bad_algorithm") from None
    except jwt.InvalidSignatureError:
        raise GrantError("grant signature invalid", code="grant_bad_signature") from None
    except jwt.PyJWTError as exc:
        # the library's message names only claims, never their values
        raise GrantError(f"grant invalid: {exc}") from None

    def text(name: str, max_len: int = 128) -> str:
        value = claims.get(name)
        if not isinstance(value, str) or not value or len(value) > max_len:
            raise GrantError(f"grant field {name!r} must be a non-empty string")
        return value

    grant_room = text("room")
    if room is not None and grant_room != room:
        raise GrantError("grant is for another room", code="grant_wrong_room")
    role = text("role")
    if role not in ROLES:
        raise GrantError("grant field 'role' is not a known role")
    try:
        profile = Profile(claims.get("profile", "none"))
    except ValueError:
        raise GrantError("grant field 'profile' is not a known profile") from None
    sid = claims.get("sid")
    if sid is not None and not isinstance(sid, str):
        raise GrantError("grant field 'sid' must be a string")
    return Grant(
        room=grant_room,
        participant_id=text("sub"),
        display_name=text("name", MAX_NAME_LENGTH),
        role=role,
        permissions=Permissions.from_claim(claims.get("perms", [])),
        profile=profile,
        session_id=sid,
        jti=text("jti"),
        expires_at=float(claims["exp"]),
    )
