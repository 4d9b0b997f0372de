"""Evidence the service's evidence-run test cites: passes or fails on demand.

Not collected in a normal run (the name has no test_ prefix); `confide hazards evidence` runs
it by node id, and the test sets CONFIDE_EVIDENCE_PROBE in the server's environment.
"""

from __future__ import annotations

import os


def test_probe_passes() -> None:
    assert os.environ.get("CONFIDE_EVIDENCE_PROBE", "pass") in ("pass", "fail")


def test_probe_fails_on_demand() -> None:
    assert os.environ.get("CONFIDE_EVIDENCE_PROBE", "pass") != "fail"
