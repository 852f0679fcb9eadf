"""`dialer demo` end to end: the README's first command must work and leave nothing behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.stack import clean_environ
from harness.waiting import wait_for

pytestmark = pytest.mark.integration


def _demo(*args: str) -> subprocess.Popen[str]:
    env = {**clean_environ(), "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "worker.cli", "demo", "--keep", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def _run_dir(output: str) -> Path:
    match = re.search(r"kept in (\S+)", output)
    assert match, output
    return Path(match.group(1))


def _alive_in(run_dir: Path) -> list[str]:
    """Command lines of processes still running with the demo's run directory."""
    alive = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(run_dir) in cmdline:
                alive.append(cmdline)
    return alive


def test_demo_dials_a_dozen_numbers_to_their_outcomes_and_stops_everything() -> None:
    demo = _demo("--time-scale", "0.05", "--timeout", "120")
    output, _ = demo.communicate(timeout=240)
    assert demo.returncode == 0, output
    assert "Mode: simulator" in output
    assert "every job is final" in output
    table = {line.split("│")[1].strip(): line for line in output.splitlines()
             if line.startswith("│ +")}
    assert "completed" in table["+14155550102"] and "busy → completed" in table["+14155550102"]
    assert "failed" in table["+14155550108"] and "busy → busy → busy" in table["+14155550108"]
    assert "21217" in table["+14155550107"]
    assert "completed" in table["+14155550112"]  # enqueued over HTTP
    assert re.search(r"notification msg_\w+ for the call over HTTP: completed.*signature "
                     r"verified \(1 event kept, 0 refused\)", " ".join(output.split())), output
    assert "refused" in table["+1415555"]
    run_dir = _run_dir(output)
    assert not _alive_in(run_dir)
    # The database it kept agrees with the table.
    assert (run_dir / "dialer.db").exists()


def test_interrupted_demo_leaves_no_process_behind() -> None:
    demo = _demo("--time-scale", "1")
    assert demo.stdout is not None
    seen: list[str] = []

    def table_shown() -> bool:
        line = demo.stdout.readline()
        seen.append(line)
        return "enqueued" in line or not line

    wait_for(table_shown, timeout=90, what="the demo to start dialing")
    os.killpg(demo.pid, signal.SIGINT)
    rest, _ = demo.communicate(timeout=60)
    output = "".join(seen) + rest
    assert demo.returncode == 1, output
    assert "interrupted" in output
    assert not _alive_in(_run_dir(output))


def test_a_second_interrupt_during_shutdown_still_stops_everything() -> None:
    demo = _demo("--time-scale", "1")
    assert demo.stdout is not None
    wait_for(lambda: "enqueued" in demo.stdout.readline(), timeout=90,
             what="the demo to start dialing")
    os.killpg(demo.pid, signal.SIGINT)
    os.killpg(demo.pid, signal.SIGINT)
    os.killpg(demo.pid, signal.SIGTERM)
    output, _ = demo.communicate(timeout=60)
    assert not _alive_in(_run_dir(output)), output
