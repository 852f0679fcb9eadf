"""Changing what a live call does: Twilio's "modify a call in progress" with a new Url or
TwiML. The call goes on; only its instructions change."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import requests
from sqlalchemy import select
from twilio.base.exceptions import TwilioRestException

from worker.domain import validation
from worker.domain.statuses import LIVE_CALL_STATUSES, JobStatus
from worker.domain.twilio_errors import error_code, error_message
from worker.engine.context import Context
from worker.store.models import Attempt, Job

log = logging.getLogger(__name__)

METHODS = ("GET", "POST")


class NotLive(ValueError):
    """The job has no live call to redirect (not dialing, or its call has ended)."""


class RedirectFailed(Exception):
    """Twilio refused the redirect, or could not be reached; the message says which."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Redirected:
    job_id: str
    call_sid: str


def check_redirect(url: str | None, twiml: str | None, method: str | None) -> dict[str, str]:
    """The update's parameters: exactly one of url or twiml, method only with url."""
    if (url is None) == (twiml is None):
        raise ValueError("url/twiml: give exactly one of url or twiml")
    if twiml is not None:
        if method is not None:
            raise ValueError("method: applies to a url, not to twiml")
        return {"twiml": validation.check_twiml(twiml, "twiml")}
    params = {"url": validation.check_url(url, "url")}
    if method is not None:
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise ValueError(f"method: must be GET or POST, got {method!r}")
        params["method"] = method.upper()
    return params


def redirect_call(ctx: Context, job_id: str, *, url: str | None = None,
                  twiml: str | None = None, method: str | None = None) -> Redirected:
    """Give the job's live call new instructions (a TwiML URL, or TwiML itself).

    Raises ValueError naming the field for bad input or an unknown job, NotLive when the
    job has no live call, RedirectFailed with Twilio's code and message when Twilio refuses
    (21220: the call is no longer in progress) or cannot be reached.
    """
    params = check_redirect(url, twiml, method)
    with ctx.database.session() as session:
        status = session.scalar(select(Job.status).where(Job.id == job_id))
        if status is None:
            raise ValueError(f"job_id: no job {job_id!r}")
        call_sid = session.scalar(
            select(Attempt.call_sid).where(Attempt.job_id == job_id,
                                           Attempt.call_sid.is_not(None),
                                           Attempt.status.in_(LIVE_CALL_STATUSES))
            .order_by(Attempt.ordinal.desc()).limit(1))
    if status != JobStatus.DIALING or call_sid is None:
        raise NotLive(f"job_id: job {job_id} is {status} with no live call to redirect")
    try:
        ctx.twilio.redirect_call(call_sid, params)
    except TwilioRestException as exc:
        raise RedirectFailed(f"Twilio refused the redirect of call {call_sid}: "
                             f"{error_code(exc)} {error_message(exc)}", error_code(exc)) from None
    except requests.RequestException as exc:
        raise RedirectFailed(f"Twilio could not be reached to redirect call {call_sid}: "
                             f"{type(exc).__name__}") from None
    log.info("job %s: call %s redirected to new %s", job_id, call_sid,
             "TwiML" if twiml is not None else "url")
    return Redirected(job_id, call_sid)
