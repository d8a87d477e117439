"""A throw-away PostgreSQL cluster for benches, as .ci/run starts one for the suite.

    with PgCluster() as pg:            # raises PgUnavailable if the binaries are missing
        url = pg.create_database("bench")   # postgresql+psycopg://postgres@127.0.0.1:PORT/bench

initdb in a temp dir, the server on 127.0.0.1 on a free port (its socket in the same dir), run
as the `postgres` user when we are root (initdb and postgres refuse root). Unlike .ci/run it
keeps PostgreSQL's durable defaults (fsync, synchronous_commit): a bench measures what a real
site would get. Stopped with `pg_ctl stop -m immediate` and removed on exit, always.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

START_TIMEOUT = 60


class PgUnavailable(RuntimeError):
    """PostgreSQL's server binaries are not installed here."""


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bound, then released): the benches never use a fixed one."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_bin() -> Path:
    """The newest /usr/lib/postgresql/N/bin (Debian's layout), or PgUnavailable."""
    root = Path("/usr/lib/postgresql")
    found = sorted((p for p in root.glob("*/bin") if (p / "initdb").exists()),
                   key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)] or [0])
    if not found:
        raise PgUnavailable("PostgreSQL's server binaries are not in /usr/lib/postgresql/*/bin "
                            "(Debian: apt-get install postgresql)")
    return found[-1]


class PgCluster:
    """See the module docstring."""

    def __init__(self) -> None:
        self.bin = find_bin()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._started = False

    def _run(self, *args: str, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def start(self) -> PgCluster:
        try:
            if os.geteuid() == 0:
                shutil.chown(self.dir, "postgres")
            data = self.dir / "data"
            done = self._run("initdb", "-D", str(data), "-U", "postgres", "-A", "trust",
                             "-E", "UTF8", "--locale=C.UTF-8")
            if done.returncode:
                raise RuntimeError(f"initdb failed: {done.stderr.strip()}")
            options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir}"
            done = self._run("pg_ctl", "-D", str(data), "-l", str(self.dir / "log"), "-o",
                             options, "-w", "-t", str(START_TIMEOUT), "start",
                             timeout=START_TIMEOUT + 10)
            self._started = True
            if done.returncode:
                raise RuntimeError(f"PostgreSQL did not start: {self.log()[-2000:]}")
            deadline = time.monotonic() + START_TIMEOUT
            while self._run("pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)
                            ).returncode:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL does not answer on 127.0.0.1:{self.port}")
                time.sleep(0.2)
        except BaseException:
            self.stop()
            raise
        return self

    def create_database(self, name: str) -> str:
        """A new, empty database NAME; its SQLAlchemy URL."""
        done = self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                         "-q", "-c", f'CREATE DATABASE "{name}"')
        if done.returncode:
            raise RuntimeError(f"CREATE DATABASE {name}: {done.stderr.strip()}")
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def log(self) -> str:
        path = self.dir / "log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self._started:
            self._started = False
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
