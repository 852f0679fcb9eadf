"""Our processes as subprocesses (worker, beat, webhook, Redis, the simulator), each with a
log file and stopped as a process group, so nothing is left behind. Used by the demo and by
the tests, which run the same commands an operator would."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from worker.domain.names import QUEUES

# Open connections each webhook process serves at once (gunicorn's default, said aloud).
WEBHOOK_CONNECTIONS = 1000


class Process:
    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], workdir: Path) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(argv, env=dict(env), cwd=workdir, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} did not log {text!r} in {timeout:g} s:\n"
                                   f"{self.log()[-3000:]}")
            time.sleep(0.05)

    def stop(self, timeout: float = 15) -> None:
        stop_all([self], timeout)

    def signal_group(self, signum: int) -> None:
        """Signal the whole process group (prefork children too), if it is still there."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signum)

    def close_log(self) -> None:
        self._log.close()


def stop_all(processes: Iterable[Process], timeout: float = 15) -> None:
    """SIGTERM every group (prefork children too) at once, then SIGKILL what outlives the
    timeout: shutting down side by side, a stack stops in the time of its slowest process."""
    processes = list(processes)
    running = [p for p in processes if p.proc.poll() is None]
    for process in running:
        process.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in running:
        try:
            process.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.signal_group(signal.SIGKILL)
            process.proc.wait(timeout=5)
    for process in processes:
        process.close_log()


def worker_argv(name: str, concurrency: int,
                queues: Iterable[str] = QUEUES) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "worker", "worker", "-Q", ",".join(queues),
            "-c", str(concurrency), "-n", f"{name}@%h", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "-l", "INFO"]


def beat_argv(schedule: Path) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "worker", "beat", "-l", "INFO",
            "-s", str(schedule), "--pidfile", ""]


def webhook_argv(port: int, workers: int = 2) -> list[str]:
    """The webhook as docs/WEBHOOK.md runs it: gevent workers, where a client that sends its
    body slowly, or never, holds one greenlet of a thousand instead of one of a few threads."""
    return [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers), "--worker-class", "gevent",
            "--worker-connections", str(WEBHOOK_CONNECTIONS), "webhook:create_app()"]


def api_argv(port: int, workers: int = 1) -> list[str]:
    """The producer API; threads so one process serves a client's requests side by side."""
    return [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers), "--threads", "4", "api:create_app()"]


def redis_argv(redis_server: str, port: int, workdir: Path) -> list[str]:
    """A throwaway Redis: no persistence, as the database is the source of truth."""
    return [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(workdir)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_port(process: Process, port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not port_open(port):
        if process.proc.poll() is not None:
            raise RuntimeError(f"{process.name} exited early:\n{process.log()[-3000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{process.name} is not listening on {port} after {timeout:g} s")
        time.sleep(0.05)
