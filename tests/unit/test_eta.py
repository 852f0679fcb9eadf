"""A campaign's ETA counts its calling window and its jobs' scheduled times, not only its pace."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from worker.domain.eta import eta_seconds
from worker.domain.windows import Window

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # a Tuesday
ALL_DAY = Window()


def test_nothing_pending_has_no_eta() -> None:
    assert eta_seconds(NOW, 0, {}, ALL_DAY, "UTC", 60) is None


def test_due_jobs_in_an_open_window_take_what_the_pace_needs() -> None:
    assert eta_seconds(NOW, 120, {("UTC",): NOW}, ALL_DAY, "UTC", 60) == 120


def test_jobs_due_later_are_dialed_at_the_pace_from_their_time() -> None:
    later = {("UTC",): NOW + timedelta(hours=11, minutes=30)}
    assert eta_seconds(NOW, 2, later, ALL_DAY, "UTC", 6) == 11.5 * 3600 + 20


def test_a_closed_window_waits_for_its_opening_in_the_recipients_zone() -> None:
    nine_to_five = Window(time(9), time(17))
    # 12:00 UTC is 04:00 in Los Angeles: the window opens at 09:00 there, 17:00 UTC.
    eta = eta_seconds(NOW, 1, {("America/Los_Angeles",): NOW}, nine_to_five, "UTC", 60)
    assert eta == 5 * 3600 + 1


def test_the_slowest_bound_wins_and_never_open_zones_are_left_out() -> None:
    eleven_to_one = Window(time(11), time(13))  # open now in UTC
    due = {("UTC",): NOW, ("Asia/Tokyo", "America/New_York"): NOW}  # never both 11-13
    assert eta_seconds(NOW, 10, due, eleven_to_one, "UTC", 0.5) == 1200
    due[("UTC",)] = NOW + timedelta(hours=2)  # 14:00: after today's window, tomorrow 11:00
    assert eta_seconds(NOW, 10, due, eleven_to_one, "UTC", 0.5) == 23 * 3600 + 1200


def test_an_unknown_pace_leaves_the_schedule_as_the_only_bound() -> None:
    assert eta_seconds(NOW, 3, {("UTC",): NOW + timedelta(minutes=5)}, ALL_DAY, "UTC", 0) == 300
