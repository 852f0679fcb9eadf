"""Result notifications, end to end: real Redis, a real Celery worker and beat, the simulator,
the webhook, and a real HTTP receiver that fails the first two deliveries of every event.
Each final job's event arrives signed, and after deduplication by webhook-id exactly once."""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis
from sqlalchemy import insert, select, update
from standardwebhooks.webhooks import Webhook

from harness.stack import VOICE_URL
from harness.waiting import wait_for
from worker.api import cancel_campaign, cancel_job, create_campaign, enqueue_call, get_job
from worker.domain.clock import utcnow
from worker.domain.names import NOTIFY_QUEUE
from worker.domain.notifications import NOTIFICATIONS_PER_MESSAGE
from worker.domain.statuses import FINAL_JOB_STATUSES
from worker.engine import notifications
from worker.engine.context import Context
from worker.store.models import Notification
from worker.wiring import default_context, reset_default_context

pytestmark = pytest.mark.integration

SECRET = "whsec_" + base64.b64encode(b"integration-test-key-32-bytes!!!").decode()
FAILURES_PER_EVENT = 2
RETRY_DELAY_S = 1
RELAY_INTERVAL_S = 0.5


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int


class Receiver:
    """A producer's endpoint: answers 500 to the first deliveries of each event, then 204."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    seen = sum(r.headers["webhook-id"] == headers["webhook-id"]
                               for r in receiver.received)
                    answer = 500 if seen < FAILURES_PER_EVENT else 204
                    receiver.received.append(Received(headers, body, answer))
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/dialer"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self) -> dict[str, Any]:
        """Each event once (deduplicated by webhook-id), its signature verified."""
        with self._lock:
            received = list(self.received)
        verified = {}
        for r in received:
            verified[r.headers["webhook-id"]] = Webhook(SECRET).verify(r.body, r.headers)
        return verified


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture
def signing_producer(producer_env: dict[str, str],
                     monkeypatch: pytest.MonkeyPatch) -> tuple[Context, redis.Redis]:
    """This process as a producer whose notifications are signed, and the broker's Redis."""
    monkeypatch.setenv("DIALER_NOTIFY_SECRET", SECRET)
    reset_default_context()
    return default_context(), redis.Redis.from_url(producer_env["DIALER_REDIS_URL"])


def queued_events(queue: redis.Redis) -> list[str]:
    """The event ids the notify queue's messages carry, oldest first (a message carries
    several: kombu's Redis transport keeps it as JSON, its body base64 of [args, ...])."""
    messages = [json.loads(m) for m in reversed(queue.lrange(NOTIFY_QUEUE, 0, -1))]
    return [event_id for m in messages for event_id in json.loads(base64.b64decode(m["body"]))[0]]


def delivered(job_ids: list[str]) -> list[Notification] | None:
    with default_context().database.session() as session:
        rows = list(session.scalars(select(Notification)
                                    .where(Notification.job_id.in_(job_ids))))
    return rows if rows and all(n.status == "delivered" for n in rows) else None


def test_each_final_job_is_heard_once_after_retries(make_stack, receiver: Receiver) -> None:
    stack = make_stack(DIALER_CALLS_PER_SECOND="20", DIALER_NOTIFY_SECRET=SECRET,
                       DIALER_NOTIFY_RETRY_DELAYS=",".join([str(RETRY_DELAY_S)] * 4),
                       DIALER_NOTIFY_RELAY_INTERVAL=str(RELAY_INTERVAL_S))
    stack.sim.set_scenario({"+14155552001": ["answered:1"],
                            "+14155552002": ["busy", "answered:1"],
                            "+14155552003": ["error:21217"]})
    stack.start_all()
    jobs = {
        "answered": enqueue_call("+14155552001", url=VOICE_URL, notify_url=receiver.url),
        "retried": enqueue_call("+14155552002", url=VOICE_URL, notify_url=receiver.url,
                                notify_each_attempt=True, retry_delays=[RETRY_DELAY_S]),
        "rejected": enqueue_call("+14155552003", url=VOICE_URL, notify_url=receiver.url),
        "canceled": enqueue_call("+14155552004", url=VOICE_URL, notify_url=receiver.url,
                                 at="2099-01-01T00:00:00+00:00"),
    }
    assert cancel_job(jobs["canceled"]).canceled
    ids = list(jobs.values())
    wait_for(lambda: all(get_job(i).status in FINAL_JOB_STATUSES for i in ids), timeout=60,
             what="every job final")
    # Each event: a first try, then FAILURES_PER_EVENT retries at most RETRY_DELAY_S apart
    # plus a relay interval each.
    rows = wait_for(lambda: delivered(ids), timeout=30 + FAILURES_PER_EVENT * 2 * (
        RETRY_DELAY_S + RELAY_INTERVAL_S) * len(ids), what="every event delivered")

    events = receiver.events()
    assert set(events) == {n.id for n in rows}
    finished = Counter(e["data"]["job_id"] for e in events.values()
                       if e["type"] == "call.finished")
    assert finished == Counter(ids)
    by_job = {e["data"]["job_id"]: e["data"] for e in events.values()
              if e["type"] == "call.finished"}
    assert by_job[jobs["answered"]]["status"] == "completed"
    assert by_job[jobs["rejected"]]["error_code"] == 21217
    assert by_job[jobs["canceled"]]["status"] == "canceled"
    assert [a["status"] for a in by_job[jobs["retried"]]["attempts"]] == ["busy", "completed"]
    attempt_events = sorted((e["data"]["attempt"]["ordinal"], e["data"]["attempt"]["status"])
                            for e in events.values() if e["type"] == "call.attempt_ended")
    assert attempt_events == [(1, "busy"), (2, "completed")]
    # Every event was answered 500 twice, then 204 once, and never posted after that.
    answers = Counter((r.headers["webhook-id"], r.answered) for r in receiver.received)
    for event_id in events:
        assert answers[(event_id, 500)] == FAILURES_PER_EVENT
        assert answers[(event_id, 204)] == 1
    assert all(n.attempts == FAILURES_PER_EVENT + 1 for n in rows)
    assert json.loads(receiver.received[0].body)["id"] == receiver.received[0].headers[
        "webhook-id"]


def test_a_bulk_cancels_events_travel_several_per_message_and_each_arrives_once(
        make_stack, receiver: Receiver) -> None:
    stack = make_stack(DIALER_NOTIFY_SECRET=SECRET,
                       DIALER_NOTIFY_RETRY_DELAYS=",".join([str(RETRY_DELAY_S)] * 4),
                       DIALER_NOTIFY_RELAY_INTERVAL=str(RELAY_INTERVAL_S))
    count = 2 * NOTIFICATIONS_PER_MESSAGE + 5
    campaign = create_campaign(
        "bulk", contacts=[{"to": f"+1415555{3000 + n}"} for n in range(count)],
        url=VOICE_URL, notify_url=receiver.url)
    assert campaign.campaign_id is not None
    assert cancel_campaign(campaign.campaign_id)["canceled_pending"] == count
    queue = redis.Redis.from_url(stack.env["DIALER_REDIS_URL"])
    with default_context().database.session() as session:
        made, job_ids = (list(c) for c in zip(*session.execute(
            select(Notification.id, Notification.job_id)), strict=True))
    # Published before any worker runs: the messages wait, a few events each.
    assert queue.llen(NOTIFY_QUEUE) == 3
    assert sorted(queued_events(queue)) == sorted(made)

    stack.start_worker()
    stack.start_beat()
    wait_for(lambda: delivered(job_ids), timeout=60 + count, what="every event delivered")
    # Each event failed twice and was delivered once, whichever message carried it.
    answers = Counter((r.headers["webhook-id"], r.answered) for r in receiver.received)
    assert set(receiver.events()) == set(made)
    for event_id in made:
        assert (answers[(event_id, 500)], answers[(event_id, 204)]) == (FAILURES_PER_EVENT, 1)


def test_the_relay_publishes_a_lost_event_while_the_notify_queue_holds_others(
        signing_producer: tuple[Context, redis.Redis]) -> None:
    ctx, queue = signing_producer
    # A steady trickle: the notify queue is never empty.
    ctx.broker.publish_notifications([f"msg_unrelated_{n}" for n in range(20)])
    lost, leased = (enqueue_call("+14155552101", url=VOICE_URL, notify_url="https://x.test/h",
                                 at="2099-01-01T00:00:00+00:00") for _ in range(2))
    for job_id in (lost, leased):
        assert cancel_job(job_id).canceled  # each event published on the fast path
    with ctx.database.session() as session:
        # The first one's message is gone and its lease long passed.
        session.execute(update(Notification).where(Notification.job_id == lost)
                        .values(relayed_until=utcnow().replace(year=2000)))
        lost_event = session.scalar(select(Notification.id)
                                    .where(Notification.job_id == lost))
    waiting = queue.llen(NOTIFY_QUEUE)
    assert len(queued_events(queue)) == 22

    assert notifications.relay(ctx) == 1
    assert queue.llen(NOTIFY_QUEUE) == waiting + 1
    newest = json.loads(queue.lindex(NOTIFY_QUEUE, 0) or b"{}")
    assert json.loads(base64.b64decode(newest["body"]))[0] == [lost_event]
    assert notifications.relay(ctx) == 0  # relayed a moment ago: not again


def test_relays_running_at_once_publish_each_due_event_once(
        signing_producer: tuple[Context, redis.Redis]) -> None:
    ctx, queue = signing_producer
    job_id = enqueue_call("+14155552102", url=VOICE_URL, at="2099-01-01T00:00:00+00:00")
    now = utcnow()
    due = 300
    with ctx.database.session() as session:
        session.execute(insert(Notification), [
            {"id": notifications.new_event_id(), "job_id": job_id, "type": "call.finished",
             "url": "https://x.test/h", "payload": {}, "status": "pending", "attempts": 0,
             "next_attempt_at": now, "created_at": now} for _ in range(due)])
    relays = 4
    with ThreadPoolExecutor(relays) as pool:
        published = list(pool.map(lambda _: notifications.relay(ctx), range(relays)))
    assert sum(published) == due
    queued = queued_events(queue)
    assert len(queued) == len(set(queued)) == due
