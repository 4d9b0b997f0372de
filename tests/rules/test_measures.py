"""Session measures: published wording, scoring and bands at every edge, NHS Talking
Therapies' definitions of caseness, reliable change and recovery, the risk flag, bad input."""

from __future__ import annotations

import pytest

from session_rules import measures as m
from session_rules.errors import InvalidRules, MeasureError
from session_rules.measures import Change, progress, reliable_change, score
from session_rules.rules import GroupRules


def answers_for(instrument: str, total: int, *, risk: int | None = None) -> list[int | None]:
    """Answers to `instrument` that add up to `total` (item 9 of PHQ-9 set to `risk`, if
    given)."""
    form = m.INSTRUMENTS[instrument]
    top = max(o.value for o in form.options)
    out: list[int | None] = [0] * len(form.items)
    left = total
    if risk is not None:
        out[8] = risk
        left -= risk
    for i in range(len(out)):
        if risk is not None and i == 8:
            continue
        take = min(top, left)
        out[i] = take
        left -= take
    assert left == 0, "total out of reach"
    return out


# ---- the published forms


def test_phq9_and_gad7_wording_is_the_published_forms() -> None:
    # Kroenke, Spitzer & Williams 2001; Spitzer, Kroenke, Williams & Löwe 2006 (docs/measures.md)
    assert m.PHQ9.stem == (
        "Over the last 2 weeks, how often have you been bothered by any of the following "
        "problems?")
    assert [i.text for i in m.PHQ9.items][8] == (
        "Thoughts that you would be better off dead or of hurting yourself in some way")
    assert [i.text for i in m.PHQ9.items][:2] == [
        "Little interest or pleasure in doing things", "Feeling down, depressed, or hopeless"]
    assert [i.text for i in m.GAD7.items] == [
        "Feeling nervous, anxious or on edge",
        "Not being able to stop or control worrying",
        "Worrying too much about different things",
        "Trouble relaxing",
        "Being so restless that it is hard to sit still",
        "Becoming easily annoyed or irritable",
        "Feeling afraid as if something awful might happen",
    ]
    for form in (m.PHQ9, m.GAD7):
        assert [(o.value, o.label) for o in form.options] == [
            (0, "Not at all"), (1, "Several days"), (2, "More than half the days"),
            (3, "Nearly every day")]
        assert form.attribution == (
            "Developed by Drs. Robert L. Spitzer, Janet B.W. Williams, Kurt Kroenke and "
            "colleagues, with an educational grant from Pfizer Inc. No permission required to "
            "reproduce, translate, display or distribute.")
    assert (m.PHQ9.max_total, m.GAD7.max_total, m.WSAS.max_total) == (27, 21, 40)
    assert m.INSTRUMENT_IDS == ("phq9", "gad7", "wsas", "session_rating")


# ---- scoring and bands at every edge

PHQ9_BANDS = [(0, 4, "Minimal"), (5, 9, "Mild"), (10, 14, "Moderate"),
              (15, 19, "Moderately severe"), (20, 27, "Severe")]
GAD7_BANDS = [(0, 4, "Minimal"), (5, 9, "Mild"), (10, 14, "Moderate"), (15, 21, "Severe")]
WSAS_BANDS = [(0, 9, "Subclinical"), (10, 20, "Significant impairment"),
              (21, 40, "Moderately severe or worse")]


def _band_of(table: list[tuple[int, int, str]], total: int) -> str:
    return next(label for low, high, label in table if low <= total <= high)


@pytest.mark.parametrize(("instrument", "table"), [
    ("phq9", PHQ9_BANDS), ("gad7", GAD7_BANDS), ("wsas", WSAS_BANDS)])
def test_every_total_gets_its_published_band(instrument: str,
                                             table: list[tuple[int, int, str]]) -> None:
    top = m.INSTRUMENTS[instrument].max_total
    for total in range(top + 1):
        got = score(instrument, answers_for(instrument, total))
        assert (got.total, got.band) == (total, _band_of(table, total)), total
    # every edge of every band, both sides
    edges = [(high, high + 1) for _, high, _ in table[:-1]]
    for below, above in edges:
        assert score(instrument, answers_for(instrument, below)).band != score(
            instrument, answers_for(instrument, above)).band


def test_worked_examples() -> None:
    # PHQ-9: 1+1+2+1+1+2+1+1+0 = 10, the first score of "Moderate" (and of caseness)
    got = score("phq9", [1, 1, 2, 1, 1, 2, 1, 1, 0])
    assert (got.total, got.band, got.risk_flag) == (10, "Moderate", False)
    # every item "nearly every day": 27, "Severe"
    assert score("phq9", [3] * 9).band == "Severe"
    # GAD-7: 2+1+1+1+0+1+1 = 7, "Mild", one below caseness (8)
    got = score("gad7", [2, 1, 1, 1, 0, 1, 1])
    assert (got.total, got.band) == (7, "Mild")
    assert m.at_caseness({"gad7": 7}) is False and m.at_caseness({"gad7": 8}) is True
    # WSAS with the work item "not applicable" (retired): the other four count
    got = score("wsas", [None, 4, 6, 2, 8])
    assert (got.total, got.band, got.answers[0]) == (20, "Significant impairment", None)
    # the session rating has no bands
    got = score("session_rating", [10, 9, 8, 7])
    assert (got.total, got.band) == (34, None)


@pytest.mark.parametrize("item9", [0, 1, 2, 3])
def test_phq9_item_9_above_zero_raises_the_risk_flag(item9: int) -> None:
    got = score("phq9", answers_for("phq9", 12, risk=item9))
    assert got.risk_flag is (item9 > 0)
    # nothing else raises it, however high
    assert not score("gad7", [3] * 7).risk_flag
    assert not score("phq9", [3] * 8 + [0]).risk_flag


@pytest.mark.parametrize(("instrument", "answers", "code"), [
    ("phq9", [0] * 8, "measure_incomplete"),
    ("phq9", [0] * 8 + [None], "measure_incomplete"),
    ("phq9", [0] * 10, "too_many_answers"),
    ("phq9", [0] * 8 + [4], "answer_out_of_range"),
    ("phq9", [-1] + [0] * 8, "answer_out_of_range"),
    ("gad7", [0] * 6 + [True], "invalid_answers"),
    ("gad7", [0] * 6 + ["3"], "invalid_answers"),
    ("gad7", [0] * 6 + [1.0], "invalid_answers"),
    ("wsas", [0, None, 0, 0, 0], "measure_incomplete"),
    ("wsas", [9, 0, 0, 0, 0], "answer_out_of_range"),
    ("session_rating", [11, 0, 0, 0], "answer_out_of_range"),
    ("phq9", "000000000", "invalid_answers"),
    ("bdi2", [0] * 21, "unknown_measure"),
])
def test_bad_answers_are_refused_with_a_code(instrument: str, answers: object,
                                             code: str) -> None:
    with pytest.raises(MeasureError) as err:
        score(instrument, answers)  # type: ignore[arg-type]
    assert err.value.code == code


def test_skip_reasons_are_a_fixed_list() -> None:
    assert m.skip_reason("upsetting") == "upsetting"
    with pytest.raises(MeasureError) as err:
        m.skip_reason("because =1+1")
    assert err.value.code == "invalid_skip_reason"


# ---- change between sessions: NHS Talking Therapies


@pytest.mark.parametrize(("instrument", "before", "after", "change"), [
    ("phq9", 15, 10, Change.NO_RELIABLE_CHANGE),   # a fall of 5: within measurement error
    ("phq9", 15, 9, Change.RELIABLE_IMPROVEMENT),  # a fall of 6
    ("phq9", 9, 15, Change.RELIABLE_DETERIORATION),
    ("phq9", 10, 15, Change.NO_RELIABLE_CHANGE),
    ("gad7", 12, 9, Change.NO_RELIABLE_CHANGE),    # a fall of 3
    ("gad7", 12, 8, Change.RELIABLE_IMPROVEMENT),  # a fall of 4
    ("gad7", 8, 12, Change.RELIABLE_DETERIORATION),
    ("gad7", 9, 12, Change.NO_RELIABLE_CHANGE),
])
def test_reliable_change_thresholds(instrument: str, before: int, after: int,
                                    change: Change) -> None:
    assert reliable_change(instrument, before, after) is change


def test_caseness_edges() -> None:
    assert m.at_caseness({"phq9": 9, "gad7": 7}) is False
    assert m.at_caseness({"phq9": 10, "gad7": 0}) is True
    assert m.at_caseness({"phq9": 0, "gad7": 8}) is True
    assert m.at_caseness({}) is None


def test_paired_change_and_recovery() -> None:
    # at caseness on both, then below both with reliable falls: reliable recovery
    got = progress({"phq9": 16, "gad7": 12}, {"phq9": 7, "gad7": 6})
    assert got.overall is Change.RELIABLE_IMPROVEMENT
    assert (got.caseness_before, got.caseness_after, got.recovery) == (True, False, True)
    assert got.reliable_recovery is True
    # recovered without reliable change: below both cut-offs, falls too small
    got = progress({"phq9": 10, "gad7": 8}, {"phq9": 9, "gad7": 7})
    assert (got.recovery, got.overall, got.reliable_recovery) == (
        True, Change.NO_RELIABLE_CHANGE, False)
    # one measure still at caseness: not recovered
    got = progress({"phq9": 14, "gad7": 10}, {"phq9": 6, "gad7": 8})
    assert got.recovery is False and got.overall is Change.RELIABLE_IMPROVEMENT
    # not at caseness before: cannot recover
    got = progress({"phq9": 9, "gad7": 7}, {"phq9": 2, "gad7": 1})
    assert got.recovery is False and got.overall is Change.RELIABLE_IMPROVEMENT
    # one improves reliably, the other deteriorates reliably: no reliable change overall
    got = progress({"phq9": 18, "gad7": 4}, {"phq9": 10, "gad7": 9})
    assert [c.change for c in got.measures] == [
        Change.RELIABLE_IMPROVEMENT, Change.RELIABLE_DETERIORATION]
    assert got.overall is Change.NO_RELIABLE_CHANGE
    # deterioration on one, no reliable change on the other: reliable deterioration
    got = progress({"phq9": 5, "gad7": 5}, {"phq9": 11, "gad7": 6})
    assert got.overall is Change.RELIABLE_DETERIORATION
    assert got.measures[0].difference == 6
    # only PHQ-9 on one side: per measure only; recovery cannot be said
    got = progress({"phq9": 15}, {"phq9": 8, "gad7": 3})
    assert [c.instrument for c in got.measures] == ["phq9"]
    assert got.overall is Change.RELIABLE_IMPROVEMENT and got.recovery is None


# ---- the group's choice


def test_groups_choose_measures_in_one_canonical_order() -> None:
    rules = GroupRules.from_dict({"measures": ["wsas", "gad7", "phq9"]})
    assert rules.measures == ("phq9", "gad7", "wsas")
    assert GroupRules.from_dict(rules.to_dict()) == rules
    assert GroupRules().measures == () and GroupRules().ask_location is True
    assert GroupRules().feedback == "off"
    for bad, words in [({"measures": ["bdi2"]}, "unknown measure"),
                       ({"measures": "phq9"}, "list of measure names"),
                       ({"measures": [1]}, "list of measure names"),
                       ({"feedback": "public"}, "feedback must be"),
                       ({"ask_location": "yes"}, "ask_location must be true or false")]:
        with pytest.raises(InvalidRules) as err:
            GroupRules.from_dict(bad)
        assert words in err.value.message
