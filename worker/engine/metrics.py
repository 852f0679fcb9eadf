"""Prometheus metrics of the worker, served on DIALER_METRICS_PORT by the worker's main
process and summed over its prefork children (prometheus-client's multiprocess mode).

Counters that follow a database change are incremented only once the transaction
commits (`after_commit`), so a rolled-back and retried task is not counted twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client import Counter, Histogram, multiprocess, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from worker.store.database import Database
from worker.store.models import Job

log = logging.getLogger(__name__)

CALLS_CREATED = Counter("dialer_calls_created", "Calls Twilio accepted (calls.create answered)")
TWILIO_ERRORS = Counter("dialer_twilio_api_errors", "Failed calls.create requests, by Twilio "
                        "error code (or the exception for network failures)", ["code"])
PACING_WAIT = Histogram("dialer_pacing_wait_seconds", "Time a worker waited for its pacing slot",
                        buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30))
OUTCOMES = Counter("dialer_call_outcomes", "Attempts that ended, by Twilio's final status",
                   ["status"])
SKIPPED = Counter("dialer_reconcile_skipped", "Calls, attempts or jobs the reconciler or a "
                  "beat task skipped because handling them raised, by step", ["step"])
RETRIES = Counter("dialer_retries_scheduled", "Jobs sent back to `scheduled` for another "
                  "attempt, by the outcome that caused it", ["outcome"])


def after_commit(session: Session, action: Callable[[], None]) -> None:
    session.info.setdefault("dialer_after_commit", []).append(action)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    for action in session.info.pop("dialer_after_commit", []):
        action()


@event.listens_for(Session, "after_rollback")
def _drop_after_rollback(session: Session) -> None:
    session.info.pop("dialer_after_commit", None)


class JobsByState(Collector):
    """`dialer_jobs{state}` read from the database at scrape time: the source of truth."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("dialer_jobs", "Jobs by state", labels=["state"])
        try:
            with self._database.session() as session:
                rows = session.execute(select(Job.status, func.count()).group_by(Job.status))
                for state, count in rows:
                    family.add_metric([str(state)], count)
        except Exception:  # a scrape must answer even when the database does not
            log.warning("dialer_jobs: the database did not answer", exc_info=True)
        yield family


def start_server(port: int, database: Database) -> None:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(JobsByState(database))
    start_http_server(port, registry=registry)
    log.info("metrics on :%d/metrics", port)
