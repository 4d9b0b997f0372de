"""Evidence the evidence-record test cites: passes or fails on demand.

Not collected in a normal run (the name has no test_ prefix); the test runs this file with a
JUnit report, CONFIDE_EVIDENCE_PROBE set, and makes an evidence record of it as CI does.
"""

from __future__ import annotations

import os


def test_probe_passes() -> None:
    assert os.environ.get("CONFIDE_EVIDENCE_PROBE", "pass") in ("pass", "fail")


def test_probe_fails_on_demand() -> None:
    assert os.environ.get("CONFIDE_EVIDENCE_PROBE", "pass") != "fail"
