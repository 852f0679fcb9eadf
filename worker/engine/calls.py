"""Ending a live call: for a canceled job, or a call whose attempt was given up."""

from __future__ import annotations

import contextlib
import logging

from twilio.base.exceptions import TwilioRestException

from worker.domain.statuses import AttemptStatus
from worker.engine.context import Context

log = logging.getLogger(__name__)


def end_live_call(ctx: Context, call_sid: str, status: str) -> None:
    """`canceled` for a call not yet answered, `completed` (hang up) once it is.

    `status` is the attempt's, which lags Twilio's: with no `ringing` callback asked for, an
    attempt reads `queued` until its `answered` callback is handled. Twilio answers a cancel
    of an answered call with the call, untouched and in progress: then it is hung up.
    """
    hang_up, cancel = AttemptStatus.COMPLETED.value, AttemptStatus.CANCELED.value
    first = hang_up if status == AttemptStatus.IN_PROGRESS else cancel
    try:
        call = ctx.twilio.end_call(call_sid, first)
    except TwilioRestException as exc:
        if exc.status == 404:
            raise
        # It was answered (or ended) meanwhile: try the other way, once.
        with contextlib.suppress(TwilioRestException):
            ctx.twilio.end_call(call_sid, cancel if first == hang_up else hang_up)
    else:
        if first == cancel and str(call.status) == AttemptStatus.IN_PROGRESS:
            with contextlib.suppress(TwilioRestException):  # it ended meanwhile
                ctx.twilio.end_call(call_sid, hang_up)
    log.info("ended call %s of a canceled job", call_sid)
