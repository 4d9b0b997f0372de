"""Session measures: the questionnaires, their published scoring and severity bands, and
NHS Talking Therapies' rules for change between sessions.

Pure: answers in, scores and labels out. The item wording follows the published forms;
sources, attribution and the few deliberate substitutions are in docs/measures.md.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from .errors import MeasureError

InstrumentId = Literal["phq9", "gad7", "wsas", "session_rating"]
INSTRUMENT_IDS: tuple[InstrumentId, ...] = get_args(InstrumentId)
# before: in the waiting room; after: on the page a member sees when the session ends
Timing = Literal["before", "after"]


@dataclass(frozen=True)
class Option:
    value: int
    label: str


@dataclass(frozen=True)
class Item:
    id: str
    text: str
    # a tick box the published form offers instead of a rating (WSAS work item); scores nothing
    not_applicable: str | None = None


@dataclass(frozen=True)
class Band:
    low: int
    high: int
    label: str


@dataclass(frozen=True)
class Instrument:
    """One questionnaire as published: items, answer options, bands, attribution."""

    id: InstrumentId
    name: str
    title: str
    stem: str
    items: tuple[Item, ...]
    options: tuple[Option, ...]
    bands: tuple[Band, ...]
    timing: Timing
    attribution: str
    # NHS Talking Therapies: "at caseness" from this total; a reliable change is at least this
    caseness_from: int | None = None
    reliable_change: int | None = None

    @property
    def max_total(self) -> int:
        return len(self.items) * max(o.value for o in self.options)

    def band(self, total: int) -> str | None:
        """The severity band of `total`, or None for a scale without bands."""
        for b in self.bands:
            if b.low <= total <= b.high:
                return b.label
        return None


_FREQUENCY = (
    Option(0, "Not at all"),
    Option(1, "Several days"),
    Option(2, "More than half the days"),
    Option(3, "Nearly every day"),
)
_TWO_WEEKS = "Over the last 2 weeks, how often have you been bothered by any of the following problems?"
_PFIZER = (
    "Developed by Drs. Robert L. Spitzer, Janet B.W. Williams, Kurt Kroenke and colleagues, "
    "with an educational grant from Pfizer Inc. No permission required to reproduce, "
    "translate, display or distribute."
)

PHQ9 = Instrument(
    id="phq9",
    name="PHQ-9",
    title="Patient Health Questionnaire (PHQ-9)",
    stem=_TWO_WEEKS,
    items=(
        Item("phq9_1", "Little interest or pleasure in doing things"),
        Item("phq9_2", "Feeling down, depressed, or hopeless"),
        Item("phq9_3", "Trouble falling or staying asleep, or sleeping too much"),
        Item("phq9_4", "Feeling tired or having little energy"),
        Item("phq9_5", "Poor appetite or overeating"),
        Item("phq9_6", "Feeling bad about yourself — or that you are a failure or have let "
                       "yourself or your family down"),
        Item("phq9_7", "Trouble concentrating on things, such as reading the newspaper or "
                       "watching television"),
        Item("phq9_8", "Moving or speaking so slowly that other people could have noticed? Or "
                       "the opposite — being so fidgety or restless that you have been moving "
                       "around a lot more than usual"),
        Item("phq9_9", "Thoughts that you would be better off dead or of hurting yourself in "
                       "some way"),
    ),
    options=_FREQUENCY,
    bands=(
        Band(0, 4, "Minimal"),
        Band(5, 9, "Mild"),
        Band(10, 14, "Moderate"),
        Band(15, 19, "Moderately severe"),
        Band(20, 27, "Severe"),
    ),
    timing="before",
    attribution=_PFIZER,
    caseness_from=10,
    reliable_change=6,
)

GAD7 = Instrument(
    id="gad7",
    name="GAD-7",
    title="Generalised Anxiety Disorder Assessment (GAD-7)",
    stem=_TWO_WEEKS,
    items=(
        Item("gad7_1", "Feeling nervous, anxious or on edge"),
        Item("gad7_2", "Not being able to stop or control worrying"),
        Item("gad7_3", "Worrying too much about different things"),
        Item("gad7_4", "Trouble relaxing"),
        Item("gad7_5", "Being so restless that it is hard to sit still"),
        Item("gad7_6", "Becoming easily annoyed or irritable"),
        Item("gad7_7", "Feeling afraid as if something awful might happen"),
    ),
    options=_FREQUENCY,
    bands=(
        Band(0, 4, "Minimal"),
        Band(5, 9, "Mild"),
        Band(10, 14, "Moderate"),
        Band(15, 21, "Severe"),
    ),
    timing="before",
    attribution=_PFIZER,
    caseness_from=8,
    reliable_change=4,
)

# "[problem]" on the published form is named by the clinician; a group names no one's
# problem aloud, so the form says "difficulties" (docs/measures.md)
_WSAS_LABELS = {0: "Not at all", 2: "Slightly", 4: "Definitely", 6: "Markedly",
                8: "Very severely"}
WSAS = Instrument(
    id="wsas",
    name="WSAS",
    title="Work and Social Adjustment Scale (WSAS)",
    stem=(
        "People's problems sometimes affect their ability to do certain day-to-day tasks in "
        "their lives. To rate your problems look at each section and determine on the scale "
        "provided how much your problem impairs your ability to carry out the activity."
    ),
    items=(
        Item("wsas_1", "Because of my difficulties my ability to work is impaired.",
             not_applicable="I'm retired or choose not to have a job for reasons unrelated "
                            "to my difficulties"),
        Item("wsas_2", "Because of my difficulties my home management (cleaning, tidying, "
                       "shopping, cooking, looking after home or children, paying bills) is "
                       "impaired."),
        Item("wsas_3", "Because of my difficulties my social leisure activities (with other "
                       "people e.g. parties, bars, clubs, outings, visits, dating, home "
                       "entertaining) are impaired."),
        Item("wsas_4", "Because of my difficulties, my private leisure activities (done alone, "
                       "such as reading, gardening, collecting, sewing, walking alone) are "
                       "impaired."),
        Item("wsas_5", "Because of my difficulties, my ability to form and maintain close "
                       "relationships with others, including those I live with, is impaired."),
    ),
    options=tuple(Option(v, _WSAS_LABELS.get(v, str(v))) for v in range(9)),
    bands=(
        Band(0, 9, "Subclinical"),
        Band(10, 20, "Significant impairment"),
        Band(21, 40, "Moderately severe or worse"),
    ),
    timing="before",
    attribution=(
        "Mundt JC, Marks IM, Shear MK, Greist JH. The Work and Social Adjustment Scale: a "
        "simple measure of impairment in functioning. Br J Psychiatry 2002;180:461-4."
    ),
)

# Confide's own four questions, not a published instrument: no bands, no thresholds
SESSION_RATING = Instrument(
    id="session_rating",
    name="Session rating",
    title="How was today's session?",
    stem="Thinking about today's group session, from 0 (not at all) to 10 (completely):",
    items=(
        Item("session_rating_1", "I felt heard and respected in the group today."),
        Item("session_rating_2", "We worked on what mattered to me."),
        Item("session_rating_3", "The way the session was run suited me."),
        Item("session_rating_4", "Overall, today's session was right for me."),
    ),
    options=tuple(
        Option(v, {0: "0 — Not at all", 10: "10 — Completely"}.get(v, str(v)))
        for v in range(11)
    ),
    bands=(),
    timing="after",
    attribution="Confide's own session rating: four questions, not a validated scale.",
)

INSTRUMENTS: dict[str, Instrument] = {
    i.id: i for i in (PHQ9, GAD7, WSAS, SESSION_RATING)
}
assert tuple(INSTRUMENTS) == INSTRUMENT_IDS, "instruments in their canonical order"

# the PHQ-9 item about thoughts of being better off dead or of self-harm
RISK_ITEM = "phq9_9"

SkipReason = Literal["rather_not", "upsetting", "no_time", "talk_first", "other"]
SKIP_REASONS: dict[str, str] = {
    "rather_not": "I would rather not answer today",
    "upsetting": "I find these questions upsetting today",
    "no_time": "I do not have time before the session",
    "talk_first": "I would like to talk about it with my clinician first",
    "other": "Another reason",
}


def instrument(instrument_id: str) -> Instrument:
    """The instrument named `instrument_id`, or MeasureError."""
    found = INSTRUMENTS.get(instrument_id) if isinstance(instrument_id, str) else None
    if found is None:
        raise MeasureError(f'unknown measure "{str(instrument_id)[:40]}"',
                           code="unknown_measure")
    return found


def ordered(ids: Sequence[str]) -> tuple[InstrumentId, ...]:
    """Known instrument ids in canonical order, without repeats; unknown ids raise."""
    chosen = {instrument(i).id for i in ids}
    return tuple(i for i in INSTRUMENT_IDS if i in chosen)


@dataclass(frozen=True)
class Score:
    """A completed questionnaire: the answers (None: not applicable), total, band, risk."""

    instrument: InstrumentId
    answers: tuple[int | None, ...]
    total: int
    band: str | None

    @property
    def risk_flag(self) -> bool:
        """True when PHQ-9 item 9 is above 0: the clinician assesses risk that day."""
        if self.instrument != "phq9":
            return False
        value = self.answers[_RISK_INDEX]
        return value is not None and value > 0


_RISK_INDEX = [i.id for i in PHQ9.items].index(RISK_ITEM)


def score(instrument_id: str, answers: Sequence[object]) -> Score:
    """Score a complete form; a missing, extra, mistyped or out-of-range answer raises."""
    form = instrument(instrument_id)
    if isinstance(answers, str | bytes) or not isinstance(answers, Sequence):
        raise MeasureError(f"{form.name}: answers must be a list", code="invalid_answers")
    if len(answers) < len(form.items):
        raise MeasureError(
            f"{form.name}: {len(form.items)} answers are needed, {len(answers)} were given; "
            "answer every question or skip the questionnaire",
            code="measure_incomplete",
        )
    if len(answers) > len(form.items):
        raise MeasureError(
            f"{form.name} has {len(form.items)} questions, {len(answers)} answers were given",
            code="too_many_answers",
        )
    allowed = {o.value for o in form.options}
    clean: list[int | None] = []
    for number, (item, value) in enumerate(zip(form.items, answers, strict=True), start=1):
        if value is None:
            if item.not_applicable is None:
                raise MeasureError(
                    f"{form.name} question {number} is unanswered; answer every question or "
                    "skip the questionnaire",
                    code="measure_incomplete",
                )
            clean.append(None)
            continue
        # bool is an int subclass; true is not an answer
        if isinstance(value, bool) or not isinstance(value, int):
            raise MeasureError(
                f"{form.name} question {number}: an answer is a whole number",
                code="invalid_answers",
            )
        if value not in allowed:
            low, high = min(allowed), max(allowed)
            raise MeasureError(
                f"{form.name} question {number}: answers run from {low} to {high}",
                code="answer_out_of_range",
            )
        clean.append(value)
    total = sum(v for v in clean if v is not None)
    return Score(form.id, tuple(clean), total, form.band(total))


def skip_reason(reason: str) -> SkipReason:
    """A known reason for skipping a questionnaire, or MeasureError."""
    if reason not in SKIP_REASONS:
        raise MeasureError("choose one of the reasons offered for skipping",
                           code="invalid_skip_reason")
    return reason  # type: ignore[return-value]


# ---- change between sessions (NHS Talking Therapies definitions)


class Change(enum.StrEnum):
    RELIABLE_IMPROVEMENT = "reliable_improvement"
    RELIABLE_DETERIORATION = "reliable_deterioration"
    NO_RELIABLE_CHANGE = "no_reliable_change"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


def reliable_change(instrument_id: str, before: int, after: int) -> Change:
    """One measure's change: a fall (or rise) of at least its reliable change index."""
    form = instrument(instrument_id)
    if form.reliable_change is None:
        raise MeasureError(f"{form.name} has no reliable change index",
                           code="no_reliable_change_index")
    if before - after >= form.reliable_change:
        return Change.RELIABLE_IMPROVEMENT
    if after - before >= form.reliable_change:
        return Change.RELIABLE_DETERIORATION
    return Change.NO_RELIABLE_CHANGE


def at_caseness(totals: Mapping[str, int]) -> bool | None:
    """Above the clinical cut-off on PHQ-9 (>= 10) or GAD-7 (>= 8); None when neither was
    completed. One measure above its cut-off is enough."""
    seen = [(PHQ9, totals.get("phq9")), (GAD7, totals.get("gad7"))]
    known = [(form, total) for form, total in seen if total is not None]
    if not known:
        return None
    return any(total >= (form.caseness_from or 0) for form, total in known)


@dataclass(frozen=True)
class MeasureChange:
    instrument: InstrumentId
    before: int
    after: int
    change: Change

    @property
    def difference(self) -> int:
        return self.after - self.before


@dataclass(frozen=True)
class Progress:
    """Change from one session's PHQ-9/GAD-7 to a later one's.

    `overall` follows Talking Therapies: reliable improvement when at least one measure
    improved reliably and neither deteriorated reliably; reliable deterioration the other
    way round; otherwise no reliable change. `recovery`: at caseness before and below it on
    both measures after (None when either measure is missing on either side).
    """

    measures: tuple[MeasureChange, ...]
    overall: Change | None
    caseness_before: bool | None
    caseness_after: bool | None
    recovery: bool | None

    @property
    def reliable_recovery(self) -> bool | None:
        if self.recovery is None or self.overall is None:
            return None
        return self.recovery and self.overall is Change.RELIABLE_IMPROVEMENT


_PAIRED: tuple[InstrumentId, ...] = ("phq9", "gad7")


def progress(before: Mapping[str, int], after: Mapping[str, int]) -> Progress:
    """Talking Therapies' change from totals `before` to totals `after` (by instrument id)."""
    changes = tuple(
        MeasureChange(i, before[i], after[i], reliable_change(i, before[i], after[i]))
        for i in _PAIRED
        if before.get(i) is not None and after.get(i) is not None
    )
    overall: Change | None = None
    if changes:
        kinds = {c.change for c in changes}
        improved = Change.RELIABLE_IMPROVEMENT in kinds
        worse = Change.RELIABLE_DETERIORATION in kinds
        if improved and not worse:
            overall = Change.RELIABLE_IMPROVEMENT
        elif worse and not improved:
            overall = Change.RELIABLE_DETERIORATION
        else:
            overall = Change.NO_RELIABLE_CHANGE
    complete = all(
        side.get(i) is not None for side in (before, after) for i in _PAIRED
    )
    caseness_before = at_caseness(before)
    caseness_after = at_caseness(after)
    recovery = (bool(caseness_before) and not caseness_after) if complete else None
    return Progress(changes, overall, caseness_before, caseness_after, recovery)
