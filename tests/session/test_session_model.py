"""A seeded random walk through whole sessions on a real server (tests/support/session_fuzz.py).

CI runs a bounded number of seeded walks; `bench/fuzz_session.py` runs thousands.
"""

from __future__ import annotations

from typing import Any

from tests.support.session_fuzz import walk_many

SEEDS = range(1, 25)
STEPS = 60


async def test_random_sessions_keep_every_invariant(server: Any) -> None:
    results = await walk_many(server, SEEDS, steps=STEPS)
    findings = [str(f) for r in results for f in r.findings]
    assert findings == [], "\n".join(findings[:20])
    # the walks went where they should: many states, every kind of step
    states = set().union(*(r.states for r in results))
    assert len(states) > 60, len(states)
    actions = sum((r.actions for r in results), start=results[0].actions.__class__())
    for kind in ("host joins", "member drops", "clock moves past the grace", "forged message",
                 "host command", "publish"):
        assert actions[kind] > 0, actions
    assert actions["end through the socket"] + actions["end through the API"] > 0, actions
