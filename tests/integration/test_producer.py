"""The producer API and the CLI refuse bad input by field name and store nothing."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from sqlalchemy import func, select

from harness.stack import VOICE_URL, dialer
from harness.waiting import free_port, wait_for
from worker.api import add_do_not_call, enqueue_call, enqueue_calls, get_job
from worker.domain.names import DIAL_QUEUE
from worker.producer import jobs
from worker.store.models import Job
from worker.wiring import default_context

TO = "+14155550123"


def job_count() -> int:
    with default_context().database.session() as session:
        return session.scalar(select(func.count()).select_from(Job))


BAD_INPUT = [
    ({"to": "12345", "url": VOICE_URL}, "to"),
    ({"to": "+1415555012", "url": VOICE_URL}, "to"),
    ({"to": "sip:nohost", "url": VOICE_URL}, "to"),
    ({"to": "client:", "url": VOICE_URL}, "to"),
    ({"to": TO, "from_": "not a number", "url": VOICE_URL}, "from_"),
    ({"to": TO}, "url/twiml/application_sid"),
    ({"to": TO, "url": VOICE_URL, "twiml": "<Response/>"}, "url/twiml/application_sid"),
    ({"to": TO, "application_sid": "AP" + "0" * 31}, "application_sid"),
    ({"to": TO, "url": "ftp://example.com/x"}, "url"),
    ({"to": TO, "url": "https://bad_host.example.com/x"}, "url"),
    ({"to": TO, "url": "/relative/path"}, "url"),
    ({"to": TO, "twiml": "x" * 5000}, "twiml"),
    ({"to": TO, "url": VOICE_URL, "max_attempts": 0}, "max_attempts"),
    ({"to": TO, "url": VOICE_URL, "retry_on": ["completed"]}, "retry_on"),
    ({"to": TO, "url": VOICE_URL, "retry_delays": [-1]}, "retry_delays"),
    ({"to": TO, "url": VOICE_URL, "call_options": {"colour": "red"}}, "call_options"),
    ({"to": TO, "url": VOICE_URL, "call_options": {"timeout": "60"}}, "call_options.timeout"),
    ({"to": TO, "url": VOICE_URL, "metadata": {"x": object()}}, "metadata"),
    ({"to": TO, "url": VOICE_URL, "idempotency_key": ""}, "idempotency_key"),
]


@pytest.mark.parametrize(("kwargs", "field"), BAD_INPUT, ids=[f for _, f in BAD_INPUT])
def test_bad_input_names_the_field_and_stores_nothing(producer_env, kwargs, field):
    with pytest.raises(ValueError) as excinfo:
        enqueue_call(**kwargs)
    assert str(excinfo.value).startswith(field + ":"), str(excinfo.value)
    assert job_count() == 0


def test_numbers_are_normalised_and_addresses_pass_through(producer_env):
    assert get_job(enqueue_call("+1 (415) 555-0123", url=VOICE_URL)).to == TO
    assert get_job(enqueue_call("sip:alice@example.com", url=VOICE_URL)).to == \
        "sip:alice@example.com"
    job = get_job(enqueue_call("client:agent_7", twiml="<Response><Say>hi</Say></Response>",
                               call_options={"timeout": 20, "record": True},
                               metadata={"order": 42}, max_attempts=5, retry_delays=[5, 10]))
    assert job.to == "client:agent_7"
    assert job.call_options == {"timeout": 20, "record": True}
    assert job.metadata_ == {"order": 42}
    assert (job.max_attempts, job.retry_delays, job.retry_on) == (
        5, [5, 10], ["busy", "no-answer", "failed"])
    assert job.status == "queued"


CLI_BAD = [
    (["call", "--to", "12345", "--url", VOICE_URL], "to:"),
    (["call", "--to", TO], "url/twiml/application_sid:"),
    (["call", "--to", TO, "--url", VOICE_URL, "--retry-delays", "5,x"], "--retry-delays"),
    (["call", "--to", TO, "--url", VOICE_URL, "--max-attempts", "0"], "max_attempts:"),
    (["call", "--to", TO, "--url", VOICE_URL, "--max-attempts", "100000000000000000000"],
     "max_attempts: must be a whole number from 1 to 100"),
    (["call", "--to", TO, "--url", VOICE_URL, "--retry-delays", "1000000000000"],
     "--retry-delays must be 1 to 100"),
    (["call", "--to", TO, "--url", VOICE_URL, "--retry-on", "completed"], "retry_on:"),
    (["job", "show", "nope"], "job_id:"),
    (["job", "cancel", "nope"], "job_id:"),
    (["jobs", "list", "--status", "bogus"], "--status"),
    (["call", "--to", TO, "--url", VOICE_URL, "--at", "2099-01-02T09:00"], "at:"),
    (["call", "--to", TO, "--url", VOICE_URL, "--at", "tomorrow"], "at:"),
    (["call", "--to", TO, "--url", VOICE_URL, "--timeout", "601"], "--timeout: must be from"),
    (["call", "--to", TO, "--url", VOICE_URL, "--timeout", "ten"], "--timeout"),
    (["call", "--to", TO, "--url", VOICE_URL, "--time-limit", "99999"], "--time-limit:"),
    (["call", "--to", TO, "--url", VOICE_URL, "--machine-detection", "Foo"],
     "--machine-detection:"),
    (["call", "--to", TO, "--url", VOICE_URL, "--async-amd"], "--async-amd: needs"),
    (["call", "--to", TO, "--url", VOICE_URL, "--send-digits", "abc"], "--send-digits:"),
    (["call", "--to", TO, "--url", VOICE_URL, "--caller-id", "12"], "--caller-id:"),
    (["call", "--to", TO, "--application-sid", "AP1"], "application_sid:"),
    (["job", "redirect", "nope", "--url", VOICE_URL], "job_id: no job"),
    (["job", "redirect", "nope", "--twiml", ""], "twiml:"),
]


@pytest.mark.parametrize(("args", "message"), CLI_BAD, ids=[" ".join(a[:2]) + "-" + m
                                                             for a, m in CLI_BAD])
def test_cli_bad_input_is_one_line_and_nonzero(producer_env, args, message):
    result = dialer(producer_env, *args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert message in result.stderr
    assert job_count() == 0


def test_cli_call_show_and_list(producer_env):
    created = dialer(producer_env, "call", "--to", TO, "--url", VOICE_URL,
                     "--idempotency-key", "k1", "--max-attempts", "2", "--retry-delays", "5,10",
                     "--json")
    assert created.returncode == 0, created.stderr
    job = json.loads(created.stdout)
    assert (job["to"], job["max_attempts"], job["retry_delays"]) == (TO, 2, [5, 10])

    again = dialer(producer_env, "call", "--to", TO, "--url", VOICE_URL,
                   "--idempotency-key", "k1", "--max-attempts", "2", "--retry-delays", "5,10")
    assert again.stdout.strip() == job["id"]
    other = dialer(producer_env, "call", "--to", TO, "--url", VOICE_URL,
                   "--idempotency-key", "k1")
    assert other.returncode == 1 and "Traceback" not in other.stderr
    assert f"idempotency_key: 'k1' is job {job['id']}" in other.stderr

    shown = json.loads(dialer(producer_env, "job", "show", job["id"], "--json").stdout)
    assert shown["id"] == job["id"] and shown["attempt_list"] == []
    human = dialer(producer_env, "job", "show", job["id"])
    assert human.returncode == 0 and "***0123" in human.stdout and TO not in human.stdout

    listed = json.loads(dialer(producer_env, "jobs", "list", "--status", "queued",
                               "--json").stdout)
    assert [j["id"] for j in listed] == [job["id"]]
    assert job_count() == 1


def test_cli_call_options_and_an_application_are_stored(producer_env):
    application_sid = "AP" + "0f" * 16
    created = dialer(producer_env, "call", "--to", TO, "--application-sid", application_sid,
                     "--timeout", "25", "--time-limit", "600", "--record",
                     "--machine-detection", "DetectMessageEnd", "--async-amd",
                     "--send-digits", "ww101#", "--caller-id", "client:desk", "--json")
    assert created.returncode == 0, created.stderr
    job = json.loads(created.stdout)
    assert (job["url"], job["application_sid"]) == (None, application_sid)
    assert job["call_options"] == {
        "timeout": 25, "time_limit": 600, "record": True,
        "machine_detection": "DetectMessageEnd", "async_amd": True,
        "send_digits": "ww101#", "caller_id": "client:desk"}
    waiting = dialer(producer_env, "job", "redirect", job["id"], "--url", VOICE_URL)
    assert waiting.returncode == 1 and "Traceback" not in waiting.stderr
    assert waiting.stderr.strip() == (f"Error: job_id: job {job['id']} is queued with no live "
                                      "call to redirect")


def test_cli_call_at_a_time_is_scheduled_and_not_published(producer_env):
    created = dialer(producer_env, "call", "--to", TO, "--url", VOICE_URL,
                     "--at", "2099-01-02T09:00:00+01:00", "--json")
    assert created.returncode == 0, created.stderr
    job = json.loads(created.stdout)
    assert (job["status"], job["next_attempt_at"]) == ("scheduled", "2099-01-02T08:00:00+00:00")
    assert redis.Redis.from_url(producer_env["DIALER_REDIS_URL"]).llen(DIAL_QUEUE) == 0


def test_enqueue_calls_refuses_a_bad_item_by_index_and_field_and_stores_nothing(producer_env):
    add_do_not_call(["+14155550199"])
    good = {"to": TO, "url": VOICE_URL}
    for bad, message in [
        ({"to": "12345", "url": VOICE_URL}, "calls[1].to:"),
        ({"to": TO, "url": VOICE_URL, "colour": "red"}, "calls[1].colour:"),
        ({"url": VOICE_URL}, "calls[1].to:"),
        ("+14155550124", "calls[1]:"),
        ({"to": "+14155550199", "url": VOICE_URL}, "calls[1].to: +14155550199 is on the do-not"),
    ]:
        with pytest.raises(ValueError) as excinfo:
            enqueue_calls([good, bad, good])
        assert str(excinfo.value).startswith(message), str(excinfo.value)
    assert job_count() == 0
    assert redis.Redis.from_url(producer_env["DIALER_REDIS_URL"]).llen(DIAL_QUEUE) == 0


def test_enqueue_calls_stores_and_publishes_each_new_job_once(producer_env):
    stored = enqueue_call(TO, url=VOICE_URL, idempotency_key="k-stored")
    ids = enqueue_calls([
        {"to": "+1 415 555 0124", "url": VOICE_URL, "metadata": {"row": 1}},
        {"to": TO, "url": VOICE_URL, "idempotency_key": "k-stored"},
        {"to": "+14155550125", "twiml": "<Response/>", "idempotency_key": "k-new"},
        {"to": "+14155550125", "twiml": "<Response/>", "idempotency_key": "k-new"},
    ])
    assert ids[1] == stored and ids[3] == ids[2] and len({ids[0], ids[2], stored}) == 3
    first = get_job(ids[0])
    assert (first.to, first.metadata_, first.status) == ("+14155550124", {"row": 1}, "queued")
    assert get_job(ids[2]).twiml == "<Response/>"
    assert job_count() == 3
    messages = redis.Redis.from_url(producer_env["DIALER_REDIS_URL"]).lrange(DIAL_QUEUE, 0, -1)
    published = [json.loads(m)["headers"]["argsrepr"] for m in messages]
    assert sorted(published) == sorted(repr((i,)) for i in (stored, ids[0], ids[2]))
    assert enqueue_calls([]) == []


def test_cli_call_with_the_broker_down_stores_the_job_for_the_dispatcher(producer_env):
    down = {**producer_env, "DIALER_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    result = dialer(down, "call", "--to", TO, "--url", VOICE_URL)
    assert result.returncode == 0, result.stderr
    assert "could not publish 1 job(s)" in result.stderr and "Traceback" not in result.stderr
    assert get_job(result.stdout.strip()).status == "scheduled"


def test_two_producers_sending_the_same_keys_in_opposite_orders_both_succeed(producer_env):
    keys = [f"order-{n}" for n in range(40)]
    calls = [{"to": f"+1415555{n:04d}", "url": VOICE_URL, "idempotency_key": key}
             for n, key in enumerate(keys)]
    results: dict[str, list[list[str]]] = {"forward": [], "backward": []}
    ctx = default_context()

    def produce(name: str, batch: list[dict[str, object]], rounds: int) -> None:
        for round_ in range(rounds):
            keyed = [{**c, "idempotency_key": f"{c['idempotency_key']}-{round_}"}
                     for c in batch]
            results[name].append(jobs.enqueue_calls(ctx, keyed))

    with ThreadPoolExecutor(2) as pool:
        done = [pool.submit(produce, "forward", calls, 8),
                pool.submit(produce, "backward", calls[::-1], 8)]
        for future in done:
            future.result()  # a deadlock would surface here as the batch's exception

    for forward, backward in zip(results["forward"], results["backward"], strict=True):
        assert forward == backward[::-1]  # each key is one job, whoever stored it
    assert job_count() == len(keys) * 8


def test_a_number_listed_while_a_producer_enqueues_it_is_refused_from_then_on(producer_env):
    listed, stop = threading.Event(), threading.Event()
    outcomes: list[tuple[bool, str]] = []  # (started after the listing returned, result)

    def produce() -> None:
        while not stop.is_set():
            after = listed.is_set()
            try:
                outcomes.append((after, enqueue_call(TO, url=VOICE_URL)))
            except ValueError as exc:
                outcomes.append((after, str(exc)))

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        wait_for(lambda: len(outcomes) >= 5, timeout=30)
        add_do_not_call([TO])
        listed.set()
        wait_for(lambda: sum(after for after, _ in outcomes) >= 5, timeout=30)
    finally:
        stop.set()
        producer.join()
    refusal = f"to: {TO} is on the do-not-call list"
    assert {result for after, result in outcomes if after} == {refusal}
    made = [result for _, result in outcomes if result != refusal]
    assert len(made) >= 5 and job_count() == len(made)


def test_two_producers_sending_the_same_keys_one_call_at_a_time_get_one_job_each(producer_env):
    keys = [f"single-{n}" for n in range(60)]
    results: dict[str, list[str]] = {}

    def produce(name: str) -> None:
        results[name] = [enqueue_call(TO, url=VOICE_URL, idempotency_key=key) for key in keys]

    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(produce, "one"), pool.submit(produce, "other")]:
            future.result()  # a unique-key violation would surface here
    assert results["one"] == results["other"] and job_count() == len(keys)
    published = redis.Redis.from_url(producer_env["DIALER_REDIS_URL"]).llen(DIAL_QUEUE)
    assert published == len(keys)
