"""Calling windows in the recipient's local time: pure arithmetic, no I/O.

A window is a local start and end time on some days of the week. A recipient may have
several possible time zones (a number that spans zones); the window must hold in every
one of them at once. Arithmetic goes through zoneinfo, so DST changes move the UTC
instants of 09:00 as they should.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALL_DAYS = frozenset(range(7))
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
SEARCH_DAYS = 9  # a week, plus the days a zone offset and a DST change can add
YEAR_DAYS = 371  # every DST change of the year, wherever the search starts
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Window:
    start: time = time(0, 0)
    end: time | None = None  # None: until midnight (a 24-hour window)
    days: frozenset[int] = ALL_DAYS

    def __str__(self) -> str:
        end = self.end.strftime("%H:%M") if self.end else "24:00"
        return f"{self.start.strftime('%H:%M')}-{end} {format_days(self.days)}"


def stored_window(start: str, end: str | None, days: Iterable[int]) -> Window:
    """A campaign's window as the database holds it: 'HH:MM', 'HH:MM' or None, weekdays."""
    hours = parse_window(f"{start}-{end or '24:00'}")
    return Window(hours.start, hours.end, frozenset(days))


def _clock(text: str, field_name: str, allow_24: bool = False) -> time | None:
    match = _CLOCK.match(text.strip())
    if not match:
        raise ValueError(f"{field_name}: {text!r} is not a time like 09:00")
    hour, minute = int(match.group(1)), int(match.group(2))
    if allow_24 and (hour, minute) == (24, 0):
        return None
    if hour > 23 or minute > 59:
        raise ValueError(f"{field_name}: {text!r} is not a time of day (00:00 to 23:59)")
    return time(hour, minute)


def parse_window(text: str | None, days: str | None = None,
                 field_name: str = "window") -> Window:
    """'09:00-20:00' (None: all day). Overnight windows are refused: say 20:00-24:00 and
    00:00-08:00 as two campaigns, or move the hours."""
    parsed_days = parse_days(days) if days else ALL_DAYS
    if not text:
        return Window(days=parsed_days)
    start_text, sep, end_text = text.partition("-")
    if not sep:
        raise ValueError(f"{field_name}: {text!r} is not a window like 09:00-20:00")
    start = _clock(start_text, field_name)
    end = _clock(end_text, field_name, allow_24=True)
    assert start is not None
    if end is not None and end <= start:
        raise ValueError(f"{field_name}: {text!r} ends before it starts "
                         "(overnight windows are not supported)")
    return Window(start, end, parsed_days)


def parse_days(text: str, field_name: str = "days") -> frozenset[int]:
    """'mon-fri', 'sat,sun', 'mon-wed,fri', 'all'."""
    if text.strip().lower() in ("all", "*", "mon-sun"):
        return ALL_DAYS
    days: set[int] = set()
    for part in text.lower().split(","):
        first, _, last = part.strip().partition("-")
        try:
            a = DAY_NAMES.index(first.strip()[:3]) if len(first.strip()) >= 3 else -1
            b = DAY_NAMES.index(last.strip()[:3]) if last else a
        except ValueError:
            a = b = -1
        if a < 0 or b < 0:
            raise ValueError(f"{field_name}: {part.strip()!r} is not a day or a range "
                             "like mon-fri")
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(days)


def format_days(days: Iterable[int]) -> str:
    chosen = sorted(days)
    return "every day" if len(chosen) == 7 else ",".join(DAY_NAMES[d] for d in chosen)


def zone(name: str, field_name: str = "timezone") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{field_name}: {name!r} is not a known time zone") from None


def _open_in(window: Window, tz: ZoneInfo, at: datetime) -> bool:
    local = at.astimezone(tz)
    if local.weekday() not in window.days:
        return False
    now = local.time().replace(tzinfo=None)
    return window.start <= now and (window.end is None or now < window.end)


def is_open(window: Window, zones: Sequence[ZoneInfo], at: datetime) -> bool:
    return all(_open_in(window, tz, at) for tz in zones)


def next_opening(window: Window, zones: Sequence[ZoneInfo], after: datetime) -> datetime | None:
    """The first instant at or after `after` when the window is open in every zone, or None
    when it never is within a year (zones too far apart for the window). `after` is aware.

    The next nine days answer almost every case cheaply; zones that overlap only once a DST
    change has moved one of them (Paris and New York, 09:00-15:00, in January) need the
    year-long search.
    """
    if is_open(window, zones, after):
        return after
    return (_first_opening(window, zones, after, SEARCH_DAYS)
            or _first_opening(window, zones, after, YEAR_DAYS))


def _first_opening(window: Window, zones: Sequence[ZoneInfo], after: datetime,
                   days: int) -> datetime | None:
    candidates = []
    for tz in zones:
        local_day = after.astimezone(tz).date()
        for offset in range(days):
            day = local_day + timedelta(days=offset)
            if day.weekday() in window.days:
                opening = datetime.combine(day, window.start, tzinfo=tz).astimezone(UTC)
                # A start in a spring-forward gap (02:30 when 02:00 jumps to 03:00) maps to
                # the instant after the gap; the window opened when the clocks jumped.
                while ((local := (opening - _MINUTE).astimezone(tz)).date() == day
                       and local.time() >= window.start):
                    opening -= _MINUTE
                if opening > after:
                    candidates.append(opening)
    return next((c for c in sorted(candidates) if is_open(window, zones, c)), None)


def _local_end(window: Window, tz: ZoneInfo, at: datetime) -> datetime:
    """The end of the window's day that `at` falls on, in `tz`, as a UTC instant."""
    day = at.astimezone(tz).date()
    if window.end is None:
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return datetime.combine(day, window.end, tzinfo=tz).astimezone(UTC)


def next_closing(window: Window, zones: Sequence[ZoneInfo], at: datetime) -> datetime | None:
    """The first instant after `at` (the window open then in every zone) when it is closed
    in one of them, or None when it never closes (all day, every day)."""
    if window.start == time(0) and window.end is None and window.days == ALL_DAYS:
        return None
    end = at
    # Each step reaches the end of some zone's local day; a 24-hour window on consecutive
    # days stays open at midnight, so the walk goes on, at most a week in each zone.
    for _ in range(SEARCH_DAYS * len(zones)):
        end = min(_local_end(window, tz, end) for tz in zones)
        if not is_open(window, zones, end):
            return end
    return None


def next_open_for(window: Window, zone_names: Sequence[str] | None, default_zone: str,
                  after: datetime) -> datetime | None:
    """When a recipient in these zones (the default one if none is known) may be called."""
    return next_opening(window, [zone(z) for z in zone_names or [default_zone]], after)
