"""The host's alert about a paused privacy filter: real failures, once an episode, counted.

The decision table; tests/privacy_room/test_privacy_in_room.py drives the same through a real
room, worker process and socket.
"""

from __future__ import annotations

from sfu.privacy_alerts import LASTING_S, QUIET_S, FallbackAlert, FallbackAlerts


def test_a_failure_that_is_not_a_matter_of_time_alerts_at_once() -> None:
    alerts = FallbackAlerts()
    assert alerts.failed("p1", 0.0, late=False) == FallbackAlert("p1", 1)


def test_missed_deadlines_while_warming_up_never_alert() -> None:
    alerts = FallbackAlerts()
    now = 0.0
    # three short pauses in the first second, as a filter warming up gives
    for _ in range(3):
        assert alerts.failed("p1", now, late=True) is None
        now += 0.1
        alerts.recovered("p1", now)
        now += 0.2
    assert alerts.next_due(now) is None
    assert alerts.due(now + 60) == []


def test_a_pause_that_lasts_alerts_once_when_it_has_lasted() -> None:
    alerts = FallbackAlerts()
    assert alerts.failed("p1", 10.0, late=True) is None
    assert alerts.next_due(10.0) == 10.0 + LASTING_S
    assert alerts.due(10.0 + LASTING_S - 0.01) == []
    assert alerts.due(10.0 + LASTING_S) == [FallbackAlert("p1", 1)]
    assert alerts.due(10.0 + 2 * LASTING_S) == []
    assert alerts.next_due(20.0) is None


def test_short_pauses_add_up_and_the_alert_carries_their_count() -> None:
    alerts = FallbackAlerts()
    now, sent = 0.0, []
    for _ in range(10):
        alert = alerts.failed("p1", now, late=True)
        sent += [alert] if alert else []
        now += LASTING_S / 4
        sent += alerts.due(now)
        alerts.recovered("p1", now)
        now += 1.0
    # paused a quarter of LASTING_S each time: the fourth pause makes it last
    assert sent == [FallbackAlert("p1", 4)]


def test_one_alert_an_episode_and_a_new_episode_after_a_quiet_spell() -> None:
    alerts = FallbackAlerts()
    assert alerts.failed("p1", 0.0, late=False) == FallbackAlert("p1", 1)
    alerts.recovered("p1", 1.0)
    assert alerts.failed("p1", 2.0, late=False) is None  # the same episode
    alerts.recovered("p1", 3.0)
    assert alerts.due(3.0 + QUIET_S) == []  # the episode ended
    assert alerts.failed("p1", 4.0 + QUIET_S, late=False) == FallbackAlert("p1", 1)


def test_members_are_counted_apart_and_forgotten_when_they_leave() -> None:
    alerts = FallbackAlerts()
    assert alerts.failed("p1", 0.0, late=True) is None
    assert alerts.failed("p2", 0.0, late=False) == FallbackAlert("p2", 1)
    alerts.forget("p1")
    assert alerts.due(LASTING_S * 2) == []
