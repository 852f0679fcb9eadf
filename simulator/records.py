"""What the simulator saw and did, for tests and benchmarks to read."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class CreateRecord:
    """One `POST .../Calls.json`, whatever the answer; arrived_at is time.time()."""

    arrived_at: float
    to: str | None
    from_: str | None
    params: dict[str, list[str]]
    status: int
    sid: str | None = None
    error_code: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CallbackRecord:
    """One callback sent (or dropped by a fault); response_status None = no answer.

    `kind` is `status` for a status callback, `recording` for a RecordingStatusCallback and
    `amd` for an AsyncAmdStatusCallback. For those two, `call_status` is the call's status
    when the callback was made and `sequence_number` counts that kind's callbacks of the call.
    """

    sent_at: float
    url: str
    method: str
    params: dict[str, str]
    call_sid: str
    call_status: str
    sequence_number: int
    idempotency_token: str
    response_status: int | None = None
    dropped: bool = False
    error: str | None = None
    kind: str = "status"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Faults:
    """Faults on demand. API faults apply to creates; `ambiguous_after_create` makes the
    injected error come after the call was placed (Twilio's ambiguous 500 or timeout)."""

    api_error_rate: float = 0.0
    api_error_statuses: tuple[int, ...] = (500, 503, 429)
    api_latency: float = 0.0
    ambiguous_after_create: bool = False
    callback_drop_rate: float = 0.0
    callback_duplicate_rate: float = 0.0
    callback_reorder_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("api_error_rate", "callback_drop_rate", "callback_duplicate_rate",
                     "callback_reorder_rate"):
            rate = getattr(self, name)
            if not 0 <= rate <= 1:
                raise ValueError(f"{name} must be between 0 and 1, not {rate!r}")
        if self.api_latency < 0:
            raise ValueError("api_latency must not be negative")
        self.api_error_statuses = tuple(int(s) for s in self.api_error_statuses)
        if not self.api_error_statuses or any(s not in (429, 500, 502, 503, 504)
                                               for s in self.api_error_statuses):
            raise ValueError("api_error_statuses must be among 429, 500, 502, 503, 504")
