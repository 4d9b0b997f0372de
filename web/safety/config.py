"""Where the hazard log lives and which workshop questions this service must answer."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from session_rules.errors import WorkshopError
from session_rules.workshop import DEFAULT_WORKSHOP_QUESTIONS, WorkshopQuestion, validate_questions

from .errors import SafetyConfigError

# the repository root: the hazard log sits beside the code it is about
REPO_ROOT = Path(__file__).resolve().parent.parent.parent
LOG_ENV = "CONFIDE_HAZARD_LOG"
QUESTIONS_ENV = "CONFIDE_WORKSHOP_QUESTIONS"


@dataclass(frozen=True)
class SafetyConfig:
    """The hazard log's path, the tree its evidence names, the workshop questions."""

    log_path: Path = REPO_ROOT / "hazard_log.md"
    repo_root: Path = REPO_ROOT
    questions: tuple[WorkshopQuestion, ...] = field(default=DEFAULT_WORKSHOP_QUESTIONS)
    # how long a `confide hazards evidence` run may take before it is stopped
    evidence_timeout_s: float = 900.0

    @property
    def question_ids(self) -> frozenset[str]:
        return frozenset(q.id for q in self.questions)


def load_questions(path: Path) -> tuple[WorkshopQuestion, ...]:
    """Workshop questions from a JSON file: a list of {"id", "text"}."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SafetyConfigError(
            f"cannot read workshop questions {path.name}: {exc.strerror}"
        ) from None
    except ValueError:
        raise SafetyConfigError(f"workshop questions {path.name} are not valid JSON") from None
    if not isinstance(raw, list) or not all(isinstance(q, dict) for q in raw):
        raise SafetyConfigError('workshop questions must be a JSON list of {"id", "text"}')
    try:
        return validate_questions(
            WorkshopQuestion(str(q.get("id", "")), str(q.get("text", ""))) for q in raw
        )
    except WorkshopError as exc:
        raise SafetyConfigError(exc.message) from None


def load_config(env: Mapping[str, str] | None = None) -> SafetyConfig:
    """The config from CONFIDE_HAZARD_LOG and CONFIDE_WORKSHOP_QUESTIONS, else the defaults."""
    env = os.environ if env is None else env
    config = SafetyConfig()
    log = env.get(LOG_ENV)
    questions = env.get(QUESTIONS_ENV)
    return SafetyConfig(
        log_path=Path(log) if log else config.log_path,
        questions=load_questions(Path(questions)) if questions else config.questions,
    )
