"""A campaign's waiting jobs ended in chunks (a cancel, an end_at passed): each chunk its
own transaction with its jobs' events, and a run stopped midway finished by the next one
without an event twice. SQLite file per test; PostgreSQL in tests/integration."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from tests.unit.standins import VOICE_URL, InMemoryBroker
from worker.domain.clock import utcnow
from worker.engine.campaign_end import CANCEL_LEFT_TO_CALLER_S, end_campaigns
from worker.engine.context import Context
from worker.engine.dispatch import dispatch_due
from worker.producer.campaigns import cancel_campaign, create_campaign
from worker.store.models import Campaign, Job, Notification

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
HOOK = "https://producer.example.com/hooks/dialer"
JOBS = 25
CHUNK = 10


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    return {"DIALER_NOTIFY_SECRET": SECRET}


@pytest.fixture
def commits(engine_ctx: Context) -> Iterator[list[str]]:
    """Every transaction committed on the context's engine, in order."""
    seen: list[str] = []

    def count(connection: object) -> None:
        seen.append("commit")

    event.listen(engine_ctx.database.engine, "commit", count)
    yield seen
    event.remove(engine_ctx.database.engine, "commit", count)


class Interrupted(Exception):
    """The process stopping midway, as a crash would."""


class Stopper:
    """stop_at(n): the n-th session commit from then on raises instead (and rolls back)."""

    def __init__(self) -> None:
        self.at: int | None = None
        self.seen = 0

    def stop_at(self, n: int | None) -> None:
        self.at, self.seen = n, 0

    def __call__(self, session: Session) -> None:
        self.seen += 1
        if self.seen == self.at:
            raise Interrupted


@pytest.fixture
def stopper() -> Iterator[Stopper]:
    stopper = Stopper()
    event.listen(Session, "before_commit", stopper)
    yield stopper
    event.remove(Session, "before_commit", stopper)


def campaign(ctx: Context, **options: object) -> str:
    result = create_campaign(ctx, "big", contacts=[{"to": f"+1415555{n:04d}"}
                                                   for n in range(JOBS)],
                             url=VOICE_URL, notify_url=HOOK, **options)  # type: ignore[arg-type]
    assert result.campaign_id is not None and result.imported == JOBS
    return result.campaign_id


def ended(ctx: Context, campaign_id: str) -> tuple[Counter[str], Counter[str]]:
    """(the campaign's jobs by status/outcome, its events per job)."""
    with ctx.database.session() as session:
        jobs = Counter(f"{status}/{outcome}" for status, outcome in session.execute(
            select(Job.status, Job.outcome).where(Job.campaign_id == campaign_id)))
        events = Counter(session.scalars(
            select(Notification.job_id).join(Job).where(Job.campaign_id == campaign_id)))
    return jobs, events


def test_a_cancel_commits_its_jobs_a_chunk_at_a_time(engine_ctx: Context,
                                                     broker: InMemoryBroker,
                                                     commits: list[str]) -> None:
    campaign_id = campaign(engine_ctx)
    commits.clear()
    assert cancel_campaign(engine_ctx, campaign_id, chunk=CHUNK) == {
        "canceled_pending": JOBS, "canceled_live": 0}
    # The status, three chunks of at most CHUNK jobs, the empty look that ends, the live calls.
    assert len(commits) == 1 + 3 + 1 + 1
    jobs, events = ended(engine_ctx, campaign_id)
    assert jobs == {"canceled/canceled": JOBS}
    assert len(events) == JOBS and set(events.values()) == {1}
    assert len(broker.notifications) == JOBS


def test_a_cancel_stopped_midway_is_finished_by_running_it_again(
        engine_ctx: Context, broker: InMemoryBroker, stopper: Stopper) -> None:
    campaign_id = campaign(engine_ctx)
    stopper.stop_at(3)  # the status and one chunk commit, the second chunk not
    with pytest.raises(Interrupted):
        cancel_campaign(engine_ctx, campaign_id, chunk=CHUNK)
    stopper.stop_at(None)
    jobs, events = ended(engine_ctx, campaign_id)
    assert jobs == {"canceled/canceled": CHUNK, "scheduled/None": JOBS - CHUNK}
    assert len(events) == CHUNK

    assert cancel_campaign(engine_ctx, campaign_id, chunk=CHUNK)["canceled_pending"] == (
        JOBS - CHUNK)
    jobs, events = ended(engine_ctx, campaign_id)
    assert jobs == {"canceled/canceled": JOBS}
    assert len(events) == JOBS and set(events.values()) == {1}
    with pytest.raises(ValueError, match="campaign_id: campaign is already canceled"):
        cancel_campaign(engine_ctx, campaign_id)


def test_the_dispatcher_leaves_a_cancel_its_jobs_for_a_minute_then_finishes_it(
        engine_ctx: Context, stopper: Stopper) -> None:
    campaign_id = campaign(engine_ctx)
    stopper.stop_at(2)  # the status commits, the first chunk not
    with pytest.raises(Interrupted):
        cancel_campaign(engine_ctx, campaign_id, chunk=CHUNK)
    stopper.stop_at(None)
    # A tick while the cancel may still be running: its jobs are the cancel's to end and
    # count, and none is dialed.
    dispatch_due(engine_ctx)
    assert ended(engine_ctx, campaign_id) == ({"scheduled/None": JOBS}, {})

    with engine_ctx.database.session() as session:
        session.execute(update(Campaign).where(Campaign.id == campaign_id).values(
            updated_at=utcnow() - timedelta(seconds=CANCEL_LEFT_TO_CALLER_S + 1)))
    dispatch_due(engine_ctx)
    jobs, events = ended(engine_ctx, campaign_id)
    assert jobs == {"canceled/canceled": JOBS}
    assert len(events) == JOBS and set(events.values()) == {1}


def test_an_expiry_stopped_midway_is_finished_by_the_next_run(
        engine_ctx: Context, commits: list[str], stopper: Stopper) -> None:
    campaign_id = campaign(engine_ctx, end_at=utcnow() + timedelta(hours=1))
    with engine_ctx.database.session() as session:
        session.execute(update(Campaign).where(Campaign.id == campaign_id)
                        .values(end_at=utcnow() - timedelta(seconds=1)))
    commits.clear()
    stopper.stop_at(3)  # the look for campaigns and one chunk commit
    with pytest.raises(Interrupted):
        end_campaigns(engine_ctx, utcnow(), chunk=CHUNK)
    stopper.stop_at(None)
    assert len(commits) == 2
    jobs, events = ended(engine_ctx, campaign_id)
    assert jobs == {"canceled/expired": CHUNK, "scheduled/None": JOBS - CHUNK}

    assert end_campaigns(engine_ctx, utcnow(), chunk=CHUNK) == JOBS - CHUNK
    jobs, events = ended(engine_ctx, campaign_id)
    assert jobs == {"canceled/expired": JOBS}
    assert len(events) == JOBS and set(events.values()) == {1}
    assert end_campaigns(engine_ctx, utcnow(), chunk=CHUNK) == 0
