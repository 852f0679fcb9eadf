"""The Python producer API, bound to the context built from the environment.

`from worker import enqueue_call` gives these. A service that builds its own `Context`
(other settings, a stand-in broker) calls the `worker.producer` functions with it instead.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from worker.engine.context import Context
from worker.producer import (
    api_keys,
    campaigns,
    dnc,
    erasure,
    jobs,
    notifications,
    pace,
    recordings,
    redirect,
    reports,
)
from worker.wiring import default_context

P = ParamSpec("P")
R = TypeVar("R")


def _bound(func: Callable[Concatenate[Context, P], R]) -> Callable[P, R]:
    """`func` with the default context as its first argument; its signature without it."""

    @functools.wraps(func)
    def bound(*args: P.args, **kwargs: P.kwargs) -> R:
        return func(default_context(), *args, **kwargs)

    signature = inspect.signature(func)
    bound.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=list(signature.parameters.values())[1:])
    return bound


enqueue_call = _bound(jobs.enqueue_call)
enqueue_calls = _bound(jobs.enqueue_calls)
enqueue = _bound(jobs.enqueue)
get_job = _bound(jobs.get_job)
cancel_job = _bound(jobs.cancel_job)
redirect_call = _bound(redirect.redirect_call)
job_detail = _bound(reports.job_detail)
list_jobs = _bound(reports.list_jobs)
find_jobs = _bound(reports.find_jobs)
create_campaign = _bound(campaigns.create_campaign)
pause_campaign = _bound(campaigns.pause_campaign)
resume_campaign = _bound(campaigns.resume_campaign)
cancel_campaign = _bound(campaigns.cancel_campaign)
campaign_status = _bound(campaigns.campaign_status)
list_campaigns = _bound(campaigns.list_campaigns)
export_rows = _bound(campaigns.export_rows)
write_export = _bound(campaigns.write_export)
add_do_not_call = _bound(dnc.add_do_not_call)
remove_do_not_call = _bound(dnc.remove_do_not_call)
list_do_not_call = _bound(dnc.list_do_not_call)
is_on_do_not_call = _bound(dnc.is_on_do_not_call)
erase_number = _bound(erasure.erase_number)
create_api_key = _bound(api_keys.create_api_key)
revoke_api_key = _bound(api_keys.revoke_api_key)
list_api_keys = _bound(api_keys.list_api_keys)
job_notifications = _bound(notifications.job_notifications)
retry_notifications = _bound(notifications.retry_notifications)
recording_media = _bound(recordings.recording_media)
show_pace = _bound(pace.show_pace)
set_pace = _bound(pace.set_pace)
