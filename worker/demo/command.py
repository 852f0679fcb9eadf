"""`dialer demo`: the whole dialer on this machine, against the simulator, in a minute.

Starts Redis, the simulator, the webhook, the HTTP API, a worker and beat on free ports in
a temporary directory, dials a dozen numbers with mixed outcomes as a campaign and one more
enqueued over HTTP (its signed result notification received by a local endpoint), shows live
progress and the final table, and stops everything on the way out (Ctrl-C included).
With TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and DIALER_PUBLIC_URL set it dials for real, only
the numbers in DIALER_DEMO_TO: it never dials the made-up numbers through a real account.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table

from worker.demo.over_http import NotificationReceiver, curl_command, enqueue_over_http
from worker.demo.processes import (
    Process,
    api_argv,
    beat_argv,
    free_port,
    redis_argv,
    stop_all,
    wait_port,
    webhook_argv,
    worker_argv,
)
from worker.domain.notifications import api_key_signing_key
from worker.domain.statuses import FINAL_JOB_STATUSES, RETRYABLE_CALL_STATUSES, JobStatus
from worker.engine.context import Context
from worker.producer import api_keys, campaigns, jobs
from worker.settings import Settings
from worker.wiring import build_context

DEMO_VOICE_URL = "https://demo.twilio.com/docs/voice.xml"
CAMPAIGN: dict[str, Any] = {"max_attempts": 3, "retry_delays": [5],
                            "retry_on": list(RETRYABLE_CALL_STATUSES),
                            "call_options": {"timeout": 8, "machine_detection": "Enable"}}
# Fictional numbers (555-01xx is reserved for fiction) with what the simulator makes of them.
SCENARIO: dict[str, list[str]] = {
    "+14155550101": ["answered"],
    "+14155550102": ["busy", "answered"],
    "+14155550103": ["no-answer"],
    "+14155550104": ["answered:20"],
    "+14155550105": ["failed", "answered"],
    "+14155550106": ["machine"],
    "+14155550107": ["error:21217"],
    "+14155550108": ["busy"],
    "+14155550109": ["no-answer", "busy", "answered"],
    "+14155550110": ["no-answer", "answered"],
    "+14155550111": ["answered:5"],
    "+1415555": ["answered"],  # not a valid number: reported by the import
}
# Enqueued over HTTP by itself (simulator mode), with a notification to the demo.
HTTP_CALL_TO, HTTP_CALL_PLAN = "+14155550112", ["answered:3"]
console = Console()


@dataclass
class Row:
    to: str
    plan: str
    job_id: str | None = None
    status: str = "-"
    attempts: str = ""
    outcome: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def real_twilio(env: Mapping[str, str]) -> bool:
    return all(env.get(k) for k in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN",
                                      "DIALER_PUBLIC_URL"))


class DemoStack:
    """Every process of the demo; `stop` ends them all, whatever happened."""

    def __init__(self, rundir: Path, simulate: bool, time_scale: float,
                 webhook_port: int) -> None:
        self.rundir, self.simulate, self.time_scale = rundir, simulate, time_scale
        self.processes: list[Process] = []
        self.webhook_port = webhook_port
        self.api_port = free_port()
        self.env: dict[str, str] = {**os.environ, "PYTHONUNBUFFERED": "1",
                                    "DIALER_DATABASE_URL": f"sqlite:///{rundir / 'dialer.db'}",
                                    "DIALER_DISPATCH_INTERVAL": "1"}

    def _spawn(self, name: str, argv: list[str]) -> Process:
        process = Process(name, argv, self.env, self.rundir)
        self.processes.append(process)
        return process

    def start(self, redis_server: str) -> None:
        redis_port = free_port()
        wait_port(self._spawn("redis", redis_argv(redis_server, redis_port, self.rundir)),
                  redis_port)
        self.env["DIALER_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        if self.simulate:
            self._start_simulator()
        wait_port(self._spawn("webhook", webhook_argv(self.webhook_port)), self.webhook_port)
        if self.simulate:
            wait_port(self._spawn("api", api_argv(self.api_port)), self.api_port)
        self._spawn("worker", worker_argv("demo", 2)).wait_for_log(" ready.")
        self._spawn("beat", beat_argv(self.rundir / "beat-schedule")).wait_for_log(
            "beat: Starting")

    def _start_simulator(self) -> None:
        port = free_port()
        account, token = "AC" + secrets.token_hex(16), secrets.token_hex(16)
        scenario = self.rundir / "scenario.json"
        scenario.write_text(json.dumps({"rules": {**SCENARIO, HTTP_CALL_TO: HTTP_CALL_PLAN}}))
        wait_port(self._spawn("simulator", [
            sys.executable, "-m", "simulator", "--port", str(port), "--account-sid", account,
            "--auth-token", token, "--cps", "1", "--time-scale", str(self.time_scale),
            "--scenario", str(scenario), "--seed", "1"]), port)
        self.env |= {"TWILIO_ACCOUNT_SID": account, "TWILIO_AUTH_TOKEN": token,
                     "TWILIO_API_BASE_URL": f"http://127.0.0.1:{port}",
                     "DIALER_PUBLIC_URL": f"http://127.0.0.1:{self.webhook_port}",
                     "DIALER_DEFAULT_FROM": "+14155550100", "DIALER_CALLS_PER_SECOND": "1",
                     "DIALER_NOTIFY_SECRET": "whsec_" + base64.b64encode(
                         secrets.token_bytes(32)).decode()}

    def stop(self) -> None:
        # The dialer's processes first, side by side; Redis and the simulator they talk to
        # last, so a worker's warm shutdown does not wait on a broker that is gone.
        servers = {"redis", "simulator"}
        stop_all([p for p in self.processes if p.name not in servers])
        stop_all([p for p in self.processes if p.name in servers])


def _start_campaign(ctx: Context, rows: list[Row], rundir: Path) -> str:
    """The dozen numbers as a campaign, imported from a CSV as a user would."""
    contacts = rundir / "contacts.csv"
    contacts.write_text("to,name\n" + "".join(f"{r.to},demo {i}\n" for i, r in enumerate(rows)))
    result = campaigns.create_campaign(ctx, "demo", contacts=contacts, url=DEMO_VOICE_URL,
                                       **CAMPAIGN)
    by_line = dict(result.invalid)
    campaign_id = result.campaign_id or ""
    ids = {row["to"]: row["job_id"] for row in campaigns.export_rows(ctx, campaign_id)}
    for line, row in enumerate(rows, start=2):
        row.job_id = ids.get(row.to)
        row.status, row.outcome = ((JobStatus.QUEUED, "") if row.job_id else
                                   ("refused", by_line.get(line, "not imported")))
    return campaign_id


def _refresh(ctx: Context, rows: list[Row]) -> bool:
    for row in rows:
        job = jobs.get_job(ctx, row.job_id) if row.job_id else None
        if job is not None:
            row.status = job.status
            row.attempts = " → ".join(a.status for a in job.attempt_rows)
            row.outcome = job.outcome or ""
    return all(r.job_id is None or r.status in FINAL_JOB_STATUSES for r in rows)


def _print_summary(ctx: Context, campaign_id: str) -> None:
    status = campaigns.campaign_status(ctx, campaign_id)
    rate = status["answer_rate"]
    console.print(f"campaign {status['status']}: {status['attempts']} calls placed, "
                  f"answer rate {'-' if rate is None else f'{rate:.0%}'}, average talk "
                  f"{status['average_talk_s'] or '-'} s; `dialer campaign export` gives the "
                  "table as CSV")


def _call_over_http(api_url: str, token: str, notify_url: str) -> Row:
    """One call as another service would place it: an API key, a POST, a notify_url."""
    body = {"to": HTTP_CALL_TO, "url": DEMO_VOICE_URL, "notify_url": notify_url,
            "metadata": {"enqueued": "over HTTP"}}
    console.print(f"and one call over HTTP, as a service would enqueue it:\n  "
                  f"{curl_command(api_url, body)}")
    job_id = enqueue_over_http(api_url, token, body)
    return Row(HTTP_CALL_TO, ", ".join(HTTP_CALL_PLAN) + " (over HTTP)", job_id=job_id,
               status=JobStatus.QUEUED)


def _print_notification(receiver: NotificationReceiver, job_id: str) -> None:
    event = receiver.finished(job_id)
    if event is None:
        console.print("[yellow]the call over HTTP: no notification received")
        return
    data = event["data"]
    console.print(f"notification {event['id']} for the call over HTTP: {data['status']}, "
                  f"outcome {data['outcome']}, signature verified "
                  f"({len(receiver.events)} event kept, {receiver.refused} refused)")


def _table(rows: list[Row], elapsed: float) -> Table:
    table = Table(title=f"dialer demo · {elapsed:4.0f} s", title_justify="left")
    for name in ("to", "simulated as", "job", "attempts", "outcome"):
        table.add_column(name)
    colour = {"completed": "green", "failed": "red", "refused": "red", "canceled": "yellow"}
    for row in rows:
        table.add_row(row.to, row.plan, f"[{colour.get(row.status, 'cyan')}]{row.status}",
                      row.attempts, row.outcome)
    return table


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM ends the demo like Ctrl-C does: through the clean-up."""
    raise KeyboardInterrupt


@click.command()
@click.option("--time-scale", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
              help="Simulated call durations (1 = as on a real phone line).")
@click.option("--timeout", type=click.FloatRange(min=10), default=300, show_default=True,
              help="Give up after this many seconds.")
@click.option("--webhook-port", type=click.IntRange(1, 65535),
              help="Where the webhook listens (real Twilio mode: where DIALER_PUBLIC_URL "
                   "leads; default 5000). Default in simulator mode: a free port.")
@click.option("--keep", is_flag=True, help="Keep the run directory (logs, database).")
def demo(time_scale: float, timeout: float, webhook_port: int | None, keep: bool) -> None:
    """Run the dialer end to end on this machine and show what happens to a dozen calls."""
    simulate = not real_twilio(os.environ)
    if simulate:
        numbers = list(SCENARIO)
        console.print("[bold]Mode: simulator[/] (set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and "
                      "DIALER_PUBLIC_URL to dial through Twilio)")
    else:
        numbers = [n.strip() for n in os.environ.get("DIALER_DEMO_TO", "").split(",") if n.strip()]
        if not numbers or not os.environ.get("DIALER_DEFAULT_FROM"):
            raise click.ClickException("real Twilio mode needs DIALER_DEMO_TO (numbers to call, "
                                       "comma-separated) and DIALER_DEFAULT_FROM")
        console.print("[bold red]Mode: REAL TWILIO[/] — dialing " + ", ".join(numbers))
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        raise click.ClickException("redis-server is missing: run "
                                   "'sudo apt-get install -y redis-server' (or 'make demo')")
    signal.signal(signal.SIGTERM, _interrupt)
    rundir = Path(tempfile.mkdtemp(prefix="dialer-demo-"))
    stack = DemoStack(rundir, simulate, time_scale,
                      webhook_port or (free_port() if simulate else 5000))
    ok = False
    receiver: NotificationReceiver | None = None
    try:
        with console.status("starting redis, simulator, webhook, API, worker and beat..."):
            stack.start(redis_server)
        ctx = build_context(Settings.from_env(stack.env))
        rows = [Row(n, ", ".join(SCENARIO[n]) if simulate else "real call") for n in numbers]
        campaign_id = _start_campaign(ctx, rows, rundir)
        console.print(f"campaign {campaign_id}: enqueued {sum(r.job_id is not None for r in rows)}"
                      " jobs; dialing at 1 call/s")
        over_http: Row | None = None
        if simulate:
            key, token = api_keys.create_api_key(ctx, "demo")
            # The events of what a key enqueues are signed with that key's own secret.
            receiver = NotificationReceiver(
                api_key_signing_key(ctx.settings.notify_secret or b"", key.id))
            over_http = _call_over_http(f"http://127.0.0.1:{stack.api_port}", token,
                                        receiver.url)
            rows.append(over_http)
        started = time.monotonic()
        with Live(_table(rows, 0), console=console, refresh_per_second=4) as live:
            done = False
            while not done and time.monotonic() - started < timeout:
                time.sleep(0.5)
                done = _refresh(ctx, rows) and (
                    receiver is None or over_http is None
                    or receiver.finished(over_http.job_id or "") is not None)
                live.update(_table(rows, time.monotonic() - started))
        ok = done
        console.print("every job is final" if done else
                      f"[yellow]gave up after {timeout:g} s; some jobs are not final")
        _print_summary(ctx, campaign_id)
        if receiver is not None and over_http is not None:
            _print_notification(receiver, over_http.job_id or "")
    except KeyboardInterrupt:
        console.print("[yellow]interrupted")
    except (RuntimeError, TimeoutError) as exc:
        console.print(f"[red]a process failed to start: {exc}")
    finally:
        # A second Ctrl-C must not cut the clean-up short and leave processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if receiver is not None:
            receiver.stop()
        with console.status("stopping every process..."):
            stack.stop()
        if keep or not ok:
            console.print(f"logs and database kept in {rundir}")
        else:
            shutil.rmtree(rundir, ignore_errors=True)
    if not ok:
        sys.exit(1)
