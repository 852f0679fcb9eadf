"""Real redis-server and PostgreSQL processes, private to one test session.

The tests start their own servers in temporary directories so that the README's
test command works on any machine with the binaries, and never touches a server
someone else is using.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from harness.waiting import free_port, port_open, wait_for
from worker.demo.processes import redis_argv


class RedisServer:
    """A redis-server with no persistence, so a restart loses everything (as a crash would)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: apt-get install -y redis-server")
        self.proc = subprocess.Popen(redis_argv(binary, self.port, self.workdir),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: port_open(self.port), timeout=10, what="redis-server to listen")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


def _pg_bindir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return str(Path(found[-1]).parent)
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL is not installed: apt-get install -y postgresql")
    return str(Path(initdb).parent)


class PostgresServer:
    """A throwaway PostgreSQL cluster with trust auth on a free loopback port.

    initdb refuses to run as root, so under root the cluster belongs to the
    `postgres` system user, as Debian's own clusters do.
    """

    def __init__(self, workdir: Path) -> None:
        self.datadir = workdir / "pgdata"
        self.port = free_port()
        self.bindir = _pg_bindir()
        self._user: str | None = None

    def _run(self, *args: str) -> None:
        cmd = [os.path.join(self.bindir, args[0]), *args[1:]]
        if self._user is not None:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> PostgresServer:
        self.datadir.mkdir(parents=True)
        if os.geteuid() == 0:
            self._user = "postgres"
            pw = pwd.getpwnam(self._user)
            for path in (self.datadir.parent, self.datadir):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", str(self.datadir), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync")
        self.start_again()
        return self

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new database, empty or a copy of `template` (which nobody may be connected to)."""
        copy = ["--template", template] if template else []
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  *copy, name)
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "stop")

    def start_again(self) -> None:
        """Start the (already initialised) cluster, e.g. after `stop()` in a fault test."""
        self._run("pg_ctl", "-D", str(self.datadir), "-w", "-l", str(self.datadir / "log"),
                  "-o", f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 "
                  "-c fsync=off -c max_connections=200", "start")
