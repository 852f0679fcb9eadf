"""Run every benchmark in order: `python -m bench` (or `make bench`).

    python -m bench [--only pacing latency] [--quick]

Each benchmark runs as its own `python -m bench.NAME` process, so a crash or Ctrl-C in
one leaves no process of another behind. Each prints its table and writes
bench/results/NAME.json. `--quick` passes the smoke-run options below (tiny sizes, one
run, no wait for a quiet machine), to check the benchmarks work, not to produce figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from bench.common import RESULTS, ROOT, exit_cleanly_on_sigterm

# The order they run in.
BENCHMARKS: list[str] = [
    "simulator_throughput",
    "campaign_import",
    "enqueue",
    "statements",  # SQL statements per call: a count, machine-independent
    "pacing",
    "latency",
    "webhook_load",  # benchmark 3: webhook callbacks/s and latency under gunicorn
    "api_load",  # benchmark 6: the HTTP producer API and result notifications
    "ceiling",  # benchmark 2: end-to-end ceiling, CPU ms per call, memory per process
]

QUICK: dict[str, list[str]] = {
    "simulator_throughput": ["--calls", "300"],
    "campaign_import": ["--rows", "2000", "--runs", "1", "--quiet-timeout", "0"],
    "enqueue": ["--jobs", "200", "--runs", "1", "--quiet-timeout", "0"],
    "statements": ["--calls", "3"],
    "pacing": ["--cps", "5", "--calls", "15", "--runs", "1", "--quiet-timeout", "0"],
    "latency": ["--calls", "5", "--retries", "2", "--runs", "1", "--quiet-timeout", "0"],
    "webhook_load": ["--configs", "2x4", "--rates", "100,500", "--clients", "16",
                     "--duration", "3", "--runs", "1", "--calls", "200", "--quiet-timeout", "0"],
    "api_load": ["--db", "sqlite", "--batches", "2", "--batch-size", "200", "--clients", "4",
                 "--duration", "2", "--rate", "20", "--events", "100", "--quiet-timeout", "0"],
    "ceiling": ["--backends", "sqlite", "--rates", "10", "--warmup", "5", "--duration", "10",
                "--drain", "10", "--quiet-timeout", "0"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these")
    parser.add_argument("--quick", action="store_true",
                        help="smoke-run sizes (checks the benchmarks, gives no figures)")
    args = parser.parse_args(argv)
    exit_cleanly_on_sigterm()
    chosen = [b for b in BENCHMARKS if not args.only or b in args.only]
    unknown = set(args.only or []) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}; "
                     f"known: {', '.join(BENCHMARKS)}")
    outcomes: list[tuple[str, str]] = []
    for name in chosen:
        extra = QUICK[name] if args.quick else []
        print(f"\n##### {name}: python -m bench.{name} {' '.join(extra)}".rstrip(), flush=True)
        started = time.monotonic()
        child = subprocess.Popen([sys.executable, "-m", f"bench.{name}", *extra], cwd=ROOT)
        try:
            code = child.wait()
        except (KeyboardInterrupt, SystemExit):
            print(f"\n##### {name}: interrupted; the benchmarks after it did not run")
            return 130
        finally:
            if child.poll() is None:  # it stops its own servers and workers on SIGTERM
                child.terminate()
                child.wait(timeout=120)
        took = time.monotonic() - started
        outcomes.append((name, f"exit {code}, {took:.0f} s{goals(name)}"))
    print("\n##### summary")
    for name, outcome in outcomes:
        print(f"  {name:22} {outcome}")
    return 0 if all(o.startswith("exit 0") for _, o in outcomes) else 1


def goals(name: str) -> str:
    """`goals met` / `goals missed` from the JSON, where the benchmark records it."""
    try:
        data = json.loads((RESULTS / f"{name}.json").read_text())
    except (OSError, ValueError):
        return ""
    met = data.get("goals_met", data.get("met_target"))
    return "" if met is None else (", goals met" if met else ", goals missed")


if __name__ == "__main__":
    sys.exit(main())
