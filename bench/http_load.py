"""What the HTTP load benchmarks share: one timed POST and what a phase of them saw."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp


@dataclass
class Phase:
    """What one phase saw: latencies of the answered requests, counts per status."""
    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    late_starts: int = 0  # open loop: requests the generator sent > 1 ms after their time

    def done(self, status: str, latency: float | None) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if latency is not None:
            self.latencies.append(latency)


async def timed_post(session: aiohttp.ClientSession, url: str, body: bytes, due: float,
                     phase: Phase, headers: Mapping[str, str] | None = None) -> None:
    """One POST; latency counts from `due`, failures by exception name."""
    try:
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            phase.done(str(response.status), time.perf_counter() - due)
    except (aiohttp.ClientError, TimeoutError) as exc:
        phase.done(type(exc).__name__, None)
