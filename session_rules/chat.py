"""Chat text: plain text only, length-limited, and a per-participant flood limiter."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

MAX_CHAT_CHARS = 1000
# a burst of 5 messages, then one every 2 s on average
DEFAULT_BURST = 5
DEFAULT_REFILL_PER_S = 0.5


@dataclass(frozen=True)
class ChatVerdict:
    """The cleaned text, or why the message was refused."""

    ok: bool
    text: str = ""
    reason_code: str = "ok"
    reason: str = ""


def clean_chat_text(raw: object, *, max_chars: int = MAX_CHAT_CHARS) -> ChatVerdict:
    """Strip control characters (newline kept), refuse empty or overlong text.

    The text stays text: clients render it with textContent and nothing in it is fetched,
    previewed or interpreted, so HTML or script arrives as the characters that were typed.
    """
    if not isinstance(raw, str):
        return ChatVerdict(False, reason_code="chat_not_text", reason="chat must be plain text")
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    # Cc and Cf hide text direction overrides, zero-width and terminal escapes
    text = "".join(
        ch for ch in text
        if ch == "\n" or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn")
    )
    text = text.strip()
    if not text:
        return ChatVerdict(False, reason_code="chat_empty", reason="chat message is empty")
    if len(text) > max_chars:
        return ChatVerdict(
            False,
            reason_code="chat_too_long",
            reason=f"chat message is {len(text)} characters; the limit is {max_chars}",
        )
    return ChatVerdict(True, text=text)


@dataclass
class _Bucket:
    tokens: float
    updated_at: float


@dataclass
class ChatRateLimiter:
    """A token bucket per participant; `now` is passed in (seconds, monotonic)."""

    burst: int = DEFAULT_BURST
    refill_per_s: float = DEFAULT_REFILL_PER_S
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def peek(self, participant_id: str, now: float) -> bool:
        """True when a message from `participant_id` would be allowed now (no token spent)."""
        return self._refilled(participant_id, now).tokens >= 1.0

    def allow(self, participant_id: str, now: float) -> bool:
        """Spend a token if one is left; False means the message is a flood."""
        bucket = self._refilled(participant_id, now)
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def forget(self, participant_id: str) -> None:
        """Drop a participant's bucket when they leave."""
        self._buckets.pop(participant_id, None)

    def _refilled(self, participant_id: str, now: float) -> _Bucket:
        bucket = self._buckets.get(participant_id)
        if bucket is None:
            bucket = _Bucket(tokens=float(self.burst), updated_at=now)
            self._buckets[participant_id] = bucket
        # a clock that steps backwards must not mint tokens
        elapsed = max(0.0, now - bucket.updated_at)
        bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.refill_per_s)
        bucket.updated_at = max(bucket.updated_at, now)
        return bucket
