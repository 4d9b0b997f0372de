"""TURN credentials minted per join, the way coturn's `use-auth-secret` checks them.

The TURN REST scheme: the username is `<expiry unix time>:<participant id>` and the password
is base64(HMAC-SHA1(shared secret, username)). coturn recomputes the password from its
`static-auth-secret` and refuses a username whose time has passed, so each join gets
credentials that die with its grant, and a leaked pair is worth minutes, not forever. The
participant id is the opaque one in the grant: the TURN server never learns a name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from .grants import Grant


def turn_credentials(secret: str, participant_id: str, expires_at: float) -> tuple[str, str]:
    """(username, password) valid until `expires_at` (unix seconds)."""
    username = f"{int(expires_at)}:{participant_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


@dataclass(frozen=True)
class TurnServers:
    """The TURN URLs clients are given (turn: over UDP and TCP, turns: on 443), and the
    secret shared with coturn."""

    urls: Sequence[str]
    secret: str

    def for_grant(self, grant: Grant) -> list[dict[str, object]]:
        """The ICE server entry for one join: credentials that expire with its grant."""
        username, password = turn_credentials(self.secret, grant.participant_id,
                                              grant.expires_at)
        return [{"urls": list(self.urls), "username": username, "credential": password}]
