"""Which outcome a call gets: pure rules, no I/O."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

KINDS = ("answered", "machine", "busy", "no-answer", "failed", "error")
DEFAULT_TALK_S = 10.0


@dataclass(frozen=True)
class Outcome:
    """`answered[:talk seconds]`, `machine[:talk seconds]`, `busy`, `no-answer`, `failed`,
    or `error:CODE` (the create itself is refused with that Twilio error code)."""

    kind: str
    talk_s: float = DEFAULT_TALK_S
    error_code: int | None = None

    @classmethod
    def parse(cls, text: str) -> Outcome:
        if not isinstance(text, str):
            raise ValueError(f"outcome {text!r}: expected text such as 'busy' or 'answered:30'")
        kind, _, arg = text.strip().partition(":")
        if kind not in KINDS:
            raise ValueError(f"outcome {text!r}: expected one of {', '.join(KINDS)}")
        if kind == "error":
            if not arg.isdigit():
                raise ValueError(f"outcome {text!r}: error needs a numeric code, e.g. error:21217")
            return cls(kind, error_code=int(arg))
        if arg and kind in ("answered", "machine"):
            try:
                talk = float(arg)
            except ValueError:
                raise ValueError(f"outcome {text!r}: talk time must be seconds") from None
            if talk < 0:
                raise ValueError(f"outcome {text!r}: talk time must not be negative")
            return cls(kind, talk_s=talk)
        if arg:
            raise ValueError(f"outcome {text!r}: {kind} takes no argument")
        return cls(kind)


class Scenario:
    """Outcomes per destination: exact number first, then glob patterns in the order given.

    Each rule is a list for attempt 1, 2, 3, ...; the last entry repeats.
    """

    def __init__(self, rules: Mapping[str, Sequence[str] | str] | None = None,
                 default: str = "answered") -> None:
        self.default = Outcome.parse(default)
        self.rules: dict[str, tuple[Outcome, ...]] = {}
        if not isinstance(rules or {}, Mapping):
            raise ValueError("scenario rules must map a number or pattern to outcomes")
        for pattern, outcomes in (rules or {}).items():
            if not isinstance(outcomes, str | Sequence):
                raise ValueError(f"scenario for {pattern!r}: expected an outcome or a list of "
                                 f"outcomes, not {outcomes!r}")
            items = [outcomes] if isinstance(outcomes, str) else list(outcomes)
            if not items:
                raise ValueError(f"scenario for {pattern!r}: empty list of outcomes")
            self.rules[pattern] = tuple(Outcome.parse(o) for o in items)

    def outcome(self, to: str, attempt: int) -> Outcome:
        """The outcome of the `attempt`-th call (1-based) to `to`."""
        outcomes = self.rules.get(to)
        if outcomes is None:
            outcomes = next((o for p, o in self.rules.items() if fnmatch.fnmatchcase(to, p)),
                            None)
        if outcomes is None:
            return self.default
        return outcomes[min(attempt, len(outcomes)) - 1]
