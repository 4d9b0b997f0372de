"""Incident kinds and the hazards they are linked to."""

from __future__ import annotations

from pathlib import Path

import pytest

from session_rules.errors import UnknownIncidentKind
from session_rules.hazard_log import parse_hazard_log
from session_rules.incidents import INCIDENT_HAZARDS, INCIDENT_KINDS, hazards_for

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_incident_kinds_map_to_hazards_in_the_log() -> None:
    log = parse_hazard_log((REPO_ROOT / "hazard_log.md").read_text(encoding="utf-8"))
    known = set(log.by_id())
    assert set(INCIDENT_HAZARDS) == set(INCIDENT_KINDS)
    for kind in INCIDENT_KINDS:
        linked = hazards_for(kind)
        assert linked and set(linked) <= known, kind
    # a fail-closed placeholder is evidence about raw video escaping
    assert "HAZ-004" in hazards_for("fail_closed_placeholder")
    assert log.by_id()["HAZ-004"].title.startswith("Blur or face mask fails")


def test_unknown_incident_kind_raises() -> None:
    with pytest.raises(UnknownIncidentKind) as err:
        hazards_for("spilled_tea")
    assert "spilled_tea" in err.value.message and err.value.code == "unknown_incident_kind"
