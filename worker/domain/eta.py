"""When a campaign can be done: its pending jobs' scheduled times, the calling window in
their time zones, and its pace. Pure arithmetic, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from worker.domain.windows import Window, next_closing, next_open_for, zone


def eta_seconds(now: datetime, pending: int, latest_due: Mapping[Sequence[str], datetime],
                window: Window, default_zone: str, calls_per_minute: float) -> int | None:
    """Seconds until the last pending job can have been dialed, or None if nothing is pending.

    `latest_due` holds, per recipient time-zone set, the latest time a pending job of it is
    due. The pace dials every pending job as one queue through the window of the zone set
    that opens first, from that opening, and only while that window is open: each closed
    stretch (a night, a weekend) is added. The answer is the later of that and the last
    zone set's opening for its latest job. Zone sets whose window never opens are left out
    (the dispatcher fails their jobs). With no pace known, the openings alone decide.
    """
    if pending <= 0:
        return None
    openings = {zones: opening for zones, due in latest_due.items()
                if (opening := next_open_for(window, zones, default_zone, max(now, due)))
                is not None}
    last_opening = max(openings.values(), default=now)
    if calls_per_minute <= 0:
        return round((last_opening - now).total_seconds())
    dialing = timedelta(minutes=pending / calls_per_minute)
    if not openings:
        return round(dialing.total_seconds())
    zones, start = min(openings.items(), key=lambda item: item[1])
    done = _dial_through_window(window, zones or [default_zone], start, dialing)
    return round((max(done, last_opening) - now).total_seconds())


def _dial_through_window(window: Window, zone_names: Sequence[str], start: datetime,
                         dialing: timedelta) -> datetime:
    """When `dialing` of calling time, counted only while the window is open in these
    zones, is used up from `start` (an instant the window is open)."""
    zones = [zone(name) for name in zone_names]
    at = start
    while True:
        closing = next_closing(window, zones, at)
        if closing is None or at + dialing <= closing:
            return at + dialing
        dialing -= closing - at
        reopening = next_open_for(window, zone_names, zone_names[0], closing)
        if reopening is None:
            return closing + dialing
        at = reopening
