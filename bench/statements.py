"""SQL statements per call, step by step, on SQLite and PostgreSQL: a count, not a timing.

    python -m bench.statements [--calls 20] [--backends sqlite postgresql]

Runs what a worker runs for one call, in this process and without Celery: `claim`,
`preflight`, `record_created` (the create itself is not sent: a CallSid is made up) and a
`handle_status` for each status event the settings ask Twilio for (DIALER_STATUS_CALLBACK_
EVENTS; by default answered and completed: in-progress, completed), counting every
statement the engine sends and every commit. Statement counts do not depend on the
machine, so this is the figure to compare across changes to the hot path. Writes
bench/results/statements.json.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import event

from bench.common import Servers, machine, point_producer_at, print_table, servers, write_results
from bench.enqueue import producer_env
from worker.engine import dialing, status
from worker.producer.jobs import enqueue_call

BACKENDS = ("sqlite", "postgresql")
# The CallStatus of each status callback event's report.
EVENT_STATUS = {"initiated": "initiated", "ringing": "ringing", "answered": "in-progress",
                "completed": "completed"}


def count_one_backend(srv: Servers, backend: str, calls: int) -> dict[str, dict[str, float]]:
    env = producer_env(srv, backend)
    env.update(DIALER_PUBLIC_URL="https://example.com", TWILIO_ACCOUNT_SID="AC" + "1" * 32,
               TWILIO_AUTH_TOKEN="not-used")
    ctx = point_producer_at(env)
    step = ["enqueue"]
    counts: dict[str, dict[str, int]] = {}

    def tally(kind: str) -> None:
        counts.setdefault(step[0], {"statements": 0, "commits": 0})[kind] += 1

    engine = ctx.database.engine
    event.listen(engine, "before_cursor_execute", lambda *_: tally("statements"))
    event.listen(engine, "commit", lambda *_: tally("commits"))
    for n in range(calls):
        step[0] = "enqueue"
        job_id = enqueue_call(ctx, f"+1415555{n:04d}", url="https://example.com/voice.xml")
        step[0] = "claim"
        claimed = dialing.claim(ctx, job_id)
        if claimed is None:
            raise RuntimeError(f"job {job_id} could not be claimed")
        step[0] = "preflight"
        dialing.preflight(ctx, job_id)
        call_sid = "CA" + uuid.uuid4().hex
        step[0] = "record_created"
        dialing.record_created(ctx, claimed, SimpleNamespace(sid=call_sid, status="queued"))
        statuses = [EVENT_STATUS[name] for name in ctx.settings.status_callback_events]
        step[0] = f"handle_status x{len(statuses)}"
        for sequence, call_status in enumerate(statuses):
            status.handle_status(ctx, {"CallSid": call_sid, "CallStatus": call_status,
                                       "SequenceNumber": str(sequence), "CallDuration": "5"})
    del counts["enqueue"]
    per_call = {name: {kind: value / calls for kind, value in c.items()}
                for name, c in counts.items()}
    per_call["worker total"] = {kind: sum(c[kind] for c in per_call.values())
                                for kind in ("statements", "commits")}
    return per_call


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20, help="calls per backend (20)")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--output", type=Path, help="where the JSON goes")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    with servers(postgres="postgresql" in args.backends) as srv:
        for backend in args.backends:
            results[backend] = count_one_backend(srv, backend, args.calls)
    steps = list(results[args.backends[0]])
    rows = [[name, *(f"{results[b][name]['statements']:g} / {results[b][name]['commits']:g}"
                     for b in args.backends)] for name in steps]
    printed = print_table("SQL statements / commits per call, in the worker",
                          ["step", *args.backends], rows)
    write_results("statements", {"machine": machine(), "calls": args.calls,
                                 "per_call": results, "table": printed},
                  args.output, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
