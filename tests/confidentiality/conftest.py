"""Fixtures for the privacy pipeline tests: one real MediaPipe pipeline per profile per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from confidentiality.events import PrivacyEvent
from confidentiality.pipeline import PrivacyPipeline
from confidentiality.profiles import Profile

# generous deadline for quality checks: two shared cores must not turn a slow frame into a
# placeholder and so hide what a transform really produces (deadlines are tested on their own)
QUALITY_DEADLINE_MS = 3000.0


class EventLog(list[PrivacyEvent]):
    """Events collected from a pipeline."""

    def kinds(self) -> list[str]:
        return [e.kind for e in self]


@pytest.fixture
def events() -> EventLog:
    return EventLog()


def make_pipeline(
    profile: Profile, events: EventLog | None = None, **kwargs: object
) -> PrivacyPipeline:
    return PrivacyPipeline(
        profile=profile,
        display_name="Robin",
        deadline_ms=float(kwargs.pop("deadline_ms", QUALITY_DEADLINE_MS)),  # type: ignore[arg-type]
        on_event=events.append if events is not None else None,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def face_mask_pipeline() -> Iterator[PrivacyPipeline]:
    p = make_pipeline(Profile.FACE_MASK)
    yield p
    p.close()
