"""Chat text cleaning and the per-participant flood limiter."""

from __future__ import annotations

import pytest

from session_rules.chat import MAX_CHAT_CHARS, ChatRateLimiter, clean_chat_text


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("hello", "hello"),
        ("  padded  ", "padded"),
        ("two\nlines", "two\nlines"),
        ("windows\r\nline", "windows\nline"),
        ("bell\x07 and esc\x1b[31m", "bell and esc[31m"),
        ("right\u202eto left", "rightto left"),
        ("zero\u200bwidth", "zerowidth"),
        ("<script>alert('x')</script>", "<script>alert('x')</script>"),
        ('<a href="javascript:alert(1)">hi</a>', '<a href="javascript:alert(1)">hi</a>'),
        ("https://example.org/track?me=1", "https://example.org/track?me=1"),
        ("ünïcödé and emoji 🙂", "ünïcödé and emoji 🙂"),
    ],
)
def test_text_is_cleaned_but_html_stays_inert_text(raw: str, cleaned: str) -> None:
    verdict = clean_chat_text(raw)
    assert verdict.ok and verdict.text == cleaned


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "chat_empty"),
        ("   \n\t", "chat_empty"),
        ("\x00\x01\x02", "chat_empty"),
        ("x" * (MAX_CHAT_CHARS + 1), "chat_too_long"),
        (None, "chat_not_text"),
        (["list"], "chat_not_text"),
    ],
)
def test_bad_chat_is_refused(raw: object, code: str) -> None:
    verdict = clean_chat_text(raw)
    assert not verdict.ok and verdict.reason_code == code and verdict.reason


def test_exactly_max_length_is_accepted() -> None:
    assert clean_chat_text("y" * MAX_CHAT_CHARS).ok


def test_flood_is_denied_then_refills() -> None:
    limiter = ChatRateLimiter(burst=3, refill_per_s=1.0)
    assert [limiter.allow("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b", 0.0)  # one participant's flood does not limit another
    assert not limiter.allow("a", 0.5)
    assert limiter.allow("a", 1.6)
    assert not limiter.peek("a", 1.6)


def test_clock_stepping_back_mints_no_tokens() -> None:
    limiter = ChatRateLimiter(burst=1, refill_per_s=1.0)
    assert limiter.allow("a", 100.0)
    assert not limiter.allow("a", 50.0)
    assert not limiter.allow("a", 100.5)
    assert limiter.allow("a", 101.0)
