"""Anonymous requests (redeeming and resuming invites) per client address, in memory.

A link holder redeems once and resumes on each reconnect; a flood from one address (or from
everywhere at once) is refused with 429 and Retry-After before it reaches the store, and
leaves at most one audit row per address a minute, saying how many were refused.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

# one address: a burst of 20, then 10 a minute (a clinic behind one NAT still fits)
PER_ADDRESS_BURST = 20.0
PER_ADDRESS_PER_S = 10.0 / 60.0
# everyone together: what the store is asked to take from anonymous callers
GLOBAL_BURST = 100.0
GLOBAL_PER_S = 20.0
MAX_ADDRESSES = 10_000
AUDIT_EVERY_S = 60.0


@dataclass
class _Bucket:
    tokens: float
    updated: float
    refused: int = 0
    audited_at: float = -math.inf


class AnonymousThrottle:
    """Token buckets per address and for everyone; the oldest addresses are forgotten first."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._everyone = _Bucket(GLOBAL_BURST, clock())
        self._global_audited_at = -math.inf

    def take(self, address: str) -> float:
        """0 when a request from `address` may go ahead, else the seconds to wait."""
        now = self.clock()
        bucket = self._buckets.pop(address, None) or _Bucket(PER_ADDRESS_BURST, now)
        self._buckets[address] = bucket
        while len(self._buckets) > MAX_ADDRESSES:
            self._buckets.popitem(last=False)
        _refill(bucket, now, PER_ADDRESS_BURST, PER_ADDRESS_PER_S)
        _refill(self._everyone, now, GLOBAL_BURST, GLOBAL_PER_S)
        if bucket.tokens < 1:
            bucket.refused += 1
            return (1 - bucket.tokens) / PER_ADDRESS_PER_S
        if self._everyone.tokens < 1:
            bucket.refused += 1
            return (1 - self._everyone.tokens) / GLOBAL_PER_S
        bucket.tokens -= 1
        self._everyone.tokens -= 1
        return 0.0

    def refusals_to_record(self, address: str) -> int:
        """How many refusals to write down now (0: not yet, at most once a minute each)."""
        now = self.clock()
        bucket = self._buckets.get(address)
        if bucket is None or not bucket.refused or now - bucket.audited_at < AUDIT_EVERY_S:
            return 0
        # across all addresses too: a spread-out flood cannot fill the audit log either
        if now - self._global_audited_at < 1.0:
            return 0
        self._global_audited_at = now
        count, bucket.refused, bucket.audited_at = bucket.refused, 0, now
        return count


def _refill(bucket: _Bucket, now: float, burst: float, rate_per_s: float) -> None:
    bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate_per_s)
    bucket.updated = now
