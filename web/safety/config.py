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

# in a checkout, the repository root: the hazard log sits beside the code it is about
REPO_ROOT = Path(__file__).resolve().parent.parent.parent
# what an installed package carries: the hazard log (copied in at build time, see setup.py)
# and the evidence record CI made (scripts/test.sh writes it here before the wheel is built)
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
LOG_NAME = "hazard_log.md"
RECORD_NAME = "evidence-record.json"
LOG_ENV = "CONFIDE_HAZARD_LOG"
RECORD_ENV = "CONFIDE_EVIDENCE_RECORD"
QUESTIONS_ENV = "CONFIDE_WORKSHOP_QUESTIONS"


def checkout_root() -> Path | None:
    """The repository root when running from a checkout (its tests/ beside the code)."""
    return REPO_ROOT if (REPO_ROOT / "tests").is_dir() and (REPO_ROOT / LOG_NAME).is_file() else None


def default_log_path() -> Path:
    """The checkout's hazard log, else the one shipped in the package."""
    root = checkout_root()
    return root / LOG_NAME if root is not None else SHIPPED_DIR / LOG_NAME


@dataclass(frozen=True)
class SafetyConfig:
    """The hazard log's path, where its evidence is found, the workshop questions.

    The tests a control cites are found in `repo_root`'s tests/ when running from a
    checkout, else in the evidence record (an installed package has no tests).
    """

    log_path: Path = field(default_factory=default_log_path)
    repo_root: Path | None = field(default_factory=checkout_root)
    evidence_path: Path | None = SHIPPED_DIR / RECORD_NAME
    questions: tuple[WorkshopQuestion, ...] = field(default=DEFAULT_WORKSHOP_QUESTIONS)

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
    """The config from CONFIDE_HAZARD_LOG, CONFIDE_EVIDENCE_RECORD and
    CONFIDE_WORKSHOP_QUESTIONS, else the defaults."""
    env = os.environ if env is None else env
    config = SafetyConfig()
    log = env.get(LOG_ENV)
    record = env.get(RECORD_ENV)
    questions = env.get(QUESTIONS_ENV)
    return SafetyConfig(
        log_path=Path(log) if log else config.log_path,
        repo_root=config.repo_root,
        evidence_path=Path(record) if record else config.evidence_path,
        questions=load_questions(Path(questions)) if questions else config.questions,
    )
