"""The Calls.create options `dialer call` and `dialer campaign create` share, as flags.

The flags only collect values; the producer checks them (worker.domain.validation), so the
CLI refuses exactly what enqueue_call and create_campaign refuse, in the same words.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

# flag -> (call_options name, click type, help). A flag's value is the option's value.
FLAGS: dict[str, tuple[str, Any, str]] = {
    "--timeout": ("timeout", int, "Seconds to let it ring (Twilio: 1-600, default 60)."),
    "--time-limit": ("time_limit", int, "Longest the call may last, in seconds."),
    "--record": ("record", bool, "Record the call; its recording is stored with the attempt."),
    "--machine-detection": ("machine_detection", str,
                            "Answering machine detection: Enable or DetectMessageEnd."),
    "--async-amd": ("async_amd", bool,
                    "Detect in the background: the call connects at once, the result follows."),
    "--send-digits": ("send_digits", str, "Keys to press once connected, e.g. ww1234#."),
    "--caller-id": ("caller_id", str, "Caller ID shown for a sip: or client: call."),
}


_FLAG_OF = {f"call_options.{name}:": f"{flag}:" for flag, (name, *_) in FLAGS.items()}


def _as_flag(message: str) -> str:
    """`call_options.timeout: ...` as the user typed it: `--timeout: ...`."""
    field, _, rest = message.partition(" ")
    return f"{_FLAG_OF[field]} {rest}" if field in _FLAG_OF else message


def call_option_flags(command: F) -> F:
    """Add the flags; the command receives them gathered as `call_options` (a dict of the
    ones given), and its errors about them name the flag. Place it under friendly_errors."""

    @functools.wraps(command)
    def gathered(*args: Any, **kwargs: Any) -> Any:
        options = {name: value for name, *_ in FLAGS.values()
                   if (value := kwargs.pop(name)) is not None}
        try:
            return command(*args, call_options=options, **kwargs)
        except ValueError as exc:
            raise ValueError(_as_flag(str(exc))) from None

    for flag, (name, kind, text) in reversed(FLAGS.items()):
        if kind is bool:
            option = click.option(flag, name, is_flag=True, default=None, help=text)
        else:
            option = click.option(flag, name, type=kind, help=text)
        gathered = option(gathered)
    return gathered  # type: ignore[return-value]
