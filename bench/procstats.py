"""CPU time and peak memory of whole process trees, from /proc; where the CPU goes, from py-spy.

A Celery worker's prefork children, gunicorn's workers and PostgreSQL's backends all
count, and the 2 cores are shared with the load generator and the simulator, so the CPU
our processes used is read per process tree rather than guessed from wall time. Linux only
(no psutil needed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


# --- /proc ---------------------------------------------------------------------------------

@dataclass
class ProcInfo:
    pid: int
    ppid: int
    comm: str
    cpu_ticks: int  # utime + stime + cutime + cstime: its own and its reaped children's
    rss_kb: int
    hwm_kb: int  # peak resident set size (VmHWM)


def read_proc(pid: int) -> ProcInfo | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except (OSError, ProcessLookupError):
        return None
    # comm may hold spaces and parentheses: the fields start after the last ")".
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2:].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    hwm = rss = 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
        elif line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return ProcInfo(pid, int(fields[1]), comm, ticks, rss, hwm)


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def tree(root: int) -> list[ProcInfo]:
    """The root and every live descendant (prefork children, gunicorn workers, backends)."""
    children = _children_map()
    found: list[ProcInfo] = []
    pending = [root]
    while pending:
        pid = pending.pop()
        info = read_proc(pid)
        if info is not None:
            found.append(info)
        pending.extend(children.get(pid, []))
    return found


def run_delays_ns(pid: int) -> dict[int, int]:
    """Nanoseconds each thread of `pid` has spent runnable, waiting for a core, by thread id
    (/proc/<pid>/task/*/schedstat): time lost to CPU contention, which a thread waiting on
    I/O or a lock does not accrue."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return {}
    delays: dict[int, int] = {}
    for tid in tasks:
        try:
            delays[int(tid)] = int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text()
                                   .split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return delays


@dataclass
class Tracked:
    """CPU seconds and peak memory of one process tree between `start()` and `sample()`s.

    A child that exits hands its CPU time to its parent's cutime/cstime when reaped, so
    the sum over live members of own + reaped-children time never loses or doubles it.
    """

    name: str
    root: int
    base_ticks: int = 0
    base_run_delays_ns: dict[int, int] = field(default_factory=dict)
    peak_rss_kb: dict[str, int] = field(default_factory=dict)
    processes: int = 0

    def ticks(self) -> int:
        return sum(p.cpu_ticks for p in tree(self.root))

    def run_delays_ns(self) -> dict[int, int]:
        return {tid: ns for p in tree(self.root) for tid, ns in run_delays_ns(p.pid).items()}

    def start(self) -> None:
        self.base_ticks = self.ticks()
        self.base_run_delays_ns = self.run_delays_ns()

    def waited_for_cpu_s(self) -> float:
        """Thread-seconds spent waiting for a core since start(), by the threads alive now
        (gevent's pool threads come and go): a process that is slow while this stays low
        waits on something other than the CPU."""
        base = self.base_run_delays_ns
        return sum(ns - base.get(tid, 0) for tid, ns in self.run_delays_ns().items()) / 1e9

    def sample(self) -> float:
        """CPU seconds since start(); also records peak memory (main, largest child, tree)."""
        members = tree(self.root)
        self.processes = max(self.processes, len(members))
        peaks = self.peak_rss_kb
        for p in members:
            role = "main" if p.pid == self.root else "largest_child"
            peaks[role] = max(peaks.get(role, 0), p.hwm_kb)
        peaks["tree_now_max"] = max(peaks.get("tree_now_max", 0),
                                    sum(p.rss_kb for p in members))
        return (sum(p.cpu_ticks for p in members) - self.base_ticks) / CLOCK_TICKS


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot, from /proc/stat: whether the
    cores were saturated, whoever used them."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def self_cpu_s() -> float:
    """This process's CPU time (user + system, all threads)."""
    t = os.times()
    return t.user + t.system


# --- py-spy ----------------------------------------------------------------------------------

_SITE = "site-packages/"
OUR_PACKAGES = frozenset({"worker", "webhook", "simulator"})
_OURS = str(Path(__file__).resolve().parent.parent) + "/"


def _where(frame: str) -> tuple[str, str]:
    """`func (/full/path.py:line)` from py-spy -> (`func (pkg/.../module.py)`, package)."""
    func, _, rest = frame.partition(" (")
    path = rest.rsplit(":", 1)[0]
    if _SITE in path:
        inside = path.split(_SITE, 1)[1]
        package = inside.split("/", 1)[0].removesuffix(".py")
    elif path.startswith(_OURS):  # worker/, webhook/, simulator/
        inside = path.removeprefix(_OURS)
        package = inside.split("/", 1)[0].removesuffix(".py")
    elif "/python3." in path:  # the standard library, e.g. /usr/lib/python3.11/logging/...
        inside = path.split("/python3.", 1)[1].split("/", 1)[-1]
        package = "stdlib " + inside.split("/", 1)[0].removesuffix(".py")
    else:
        inside = package = path
    return f"{func} ({inside})", package


def hot_spots(raw: Path, top: int = 25) -> dict[str, Any]:
    """Shares of py-spy's samples (running Python only, see Profiler) four ways: inclusive
    per function, inclusive per function of ours (what our code costs, libraries included),
    own (self) time per function, own time per package."""
    inclusive: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    try:
        lines = raw.read_text().splitlines()
    except OSError:
        return {"samples": 0}
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = [_where(f) for f in stack.split(";")
                  if " (" in f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        n = int(count)
        total += n
        for name, package in dict(frames).items():
            inclusive[name] += n
            if package in OUR_PACKAGES:
                ours[name] += n
        own[frames[-1][0]] += n
        packages[frames[-1][1]] += n

    def share(c: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in c.most_common(top)] if total else []

    return {"samples": total, "inclusive_pct": share(inclusive),
            "ours_inclusive_pct": share(ours), "self_pct": share(own),
            "self_pct_by_package": share(packages)}


class Profiler:
    """py-spy on process trees for a while (only on request: sampling costs CPU)."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.procs: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def start(self, targets: dict[str, int], seconds: float) -> None:
        py_spy = Path(sys.executable).with_name("py-spy")
        if not py_spy.exists():
            print("  py-spy is not installed in the venv: no profile", flush=True)
            return
        for name, pid in targets.items():
            raw = self.output.with_name(f"{self.output.name}-{name}.txt")
            # --gil: only stacks holding the GIL, i.e. running Python; py-spy's idle
            # detection does not work here (it samples threads blocked in recv or epoll).
            proc = subprocess.Popen(
                [str(py_spy), "record", "--pid", str(pid), "--subprocesses", "--nonblocking",
                 "--gil", "--full-filenames", "--rate", "100",
                 "--duration", str(max(1, int(seconds))), "--format", "raw", "--output", str(raw)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.procs.append((name, proc, raw))

    def finish(self) -> dict[str, Any]:
        """Wait for every recording to end (they stop after their duration) and sum it up."""
        out: dict[str, Any] = {}
        for name, proc, raw in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            out[name] = {"raw": str(raw), **hot_spots(raw)}
        self.procs = []
        return out


def print_hot_spots(name: str, spots: dict[str, Any], top: int = 12) -> None:
    """The profile's headline: where the CPU went, by package and by function."""
    print(f"  profile {name}: {spots.get('samples', 0)} samples", flush=True)
    for title, key in (("own time by package", "self_pct_by_package"),
                       ("own time by function", "self_pct"),
                       ("our functions, inclusive", "ours_inclusive_pct")):
        cells = ", ".join(f"{k} {v}%" for k, v in spots.get(key, [])[:top])
        print(f"    {title}: {cells}", flush=True)
