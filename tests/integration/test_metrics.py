"""Prometheus metrics, scraped over HTTP from a real worker (prefork) and the webhook."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests

from harness.stack import VOICE_URL, job_in
from harness.waiting import free_port, wait_for
from worker.api import enqueue_call

pytestmark = pytest.mark.integration
TO = "+14155553001"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus' text format, 0 when absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)"
    found = re.search(r"^" + pattern + r"$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_metrics_count_calls_outcomes_retries_and_callbacks(make_stack, tmp_path: Path):
    worker_port = free_port()
    stack = make_stack(DIALER_CALLS_PER_SECOND="20", DIALER_METRICS_PORT=str(worker_port),
                       DIALER_LOG_FORMAT="json")
    stack.sim.set_scenario({TO: ["busy", "answered"]})
    # The webhook's gunicorn workers sum their figures in a directory of their own.
    (tmp_path / "webhook-metrics").mkdir()
    stack.env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "webhook-metrics")
    stack.start_webhook(workers=2)
    del stack.env["PROMETHEUS_MULTIPROC_DIR"]  # the worker makes its own
    stack.start_worker("w1", concurrency=2)
    stack.start_beat()

    job_id = enqueue_call(TO, url=VOICE_URL, retry_delays=[1])
    wait_for(lambda: job_in(job_id, {"completed"}), timeout=60, what="the job to complete")

    def scrape(port: int) -> str:
        return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text

    def scrape_until(port: int, name: str, value: float, **labels: str) -> str:
        def counted() -> str | None:
            text = scrape(port)
            return text if sample(text, name, **labels) == value else None
        return wait_for(counted, timeout=10, what=f"{name}{labels} == {value}")

    # Busy: its completed callback (CallStatus=busy); then answered: answered and completed.
    wait_for(lambda: len([c for c in stack.sim.callbacks() if c.response_status]) == 3,
             timeout=10, what="every callback answered")
    accepted = len([c for c in stack.sim.callbacks() if c.response_status == 204])
    webhook = scrape_until(stack.webhook_port, "dialer_callbacks_total", accepted,
                           callback="status", result="accepted")
    assert sample(webhook, "dialer_webhook_request_seconds_count") >= accepted

    requests.post(f"http://127.0.0.1:{stack.webhook_port}/twilio/status",
                  data={"CallSid": "CA" + "0" * 32, "CallStatus": "completed"}, timeout=5)
    assert sample(scrape(stack.webhook_port), "dialer_callbacks_total", callback="status",
                  result="bad_signature") == 1

    worker = scrape_until(worker_port, "dialer_call_outcomes_total", 1, status="completed")
    assert sample(worker, "dialer_calls_created_total") == 2
    assert sample(worker, "dialer_call_outcomes_total", status="busy") == 1
    assert sample(worker, "dialer_retries_scheduled_total", outcome="busy") == 1
    assert sample(worker, "dialer_pacing_wait_seconds_count") == 2
    assert sample(worker, "dialer_jobs", state="completed") == 1

    # The same run's logs: JSON lines from our loggers, and no phone number whole.
    worker_log = next(p for p in stack.processes if p.name == "w1").log()
    lines = [json.loads(line) for line in worker_log.splitlines() if line.startswith("{")]
    assert any(line["logger"] == "worker.engine.status" for line in lines)
    for process in stack.processes:
        assert TO not in process.log(), process.name
