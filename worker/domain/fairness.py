"""How the dispatcher shares one pace among campaigns: weighted fair queuing, pure.

Each campaign has a virtual time that advances by 1/weight per call given to it; the
next call goes to the backlogged campaign whose virtual time would be lowest. Over any
stretch where campaigns stay backlogged, they get calls in proportion to their weights.
A campaign coming back from idle (or a new one) starts at most one unit behind the
others, so it cannot claim the whole pace to "catch up".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Demand:
    weight: int
    due: int  # jobs ready to dial now
    vtime: float


def fair_share(room: int, demands: Mapping[str, Demand]) -> tuple[dict[str, int],
                                                                    dict[str, float]]:
    """Split `room` calls; returns (calls per campaign, new virtual times)."""
    backlogged = {c: d for c, d in demands.items() if d.due > 0 and d.weight > 0}
    if not backlogged or room <= 0:
        return {}, {}
    top = max(d.vtime for d in backlogged.values())
    vtime = {c: max(d.vtime, top - 1.0) for c, d in backlogged.items()}
    given = dict.fromkeys(backlogged, 0)
    for _ in range(room):
        ready = [c for c, d in backlogged.items() if given[c] < d.due]
        if not ready:
            break
        chosen = min(ready, key=lambda c: (vtime[c] + 1 / backlogged[c].weight, c))
        vtime[chosen] += 1 / backlogged[chosen].weight
        given[chosen] += 1
    return {c: n for c, n in given.items() if n}, vtime
