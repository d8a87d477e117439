"""Scale benchmark: several sender processes, each with several connections, on one mailing.

    /work/venv/bin/python bench/scale_bench.py [--delay 1] [--per-connection 12]
                                               [--cpu-messages 3000] [--sqlite]

The processes are `newsletter send resume ID` subprocesses started together on one mailing
(claims: outbox.sending.claim, FOR UPDATE SKIP LOCKED on PostgreSQL); the database is a throw-away
PostgreSQL cluster (bench/pgcluster.py, durable defaults), or the site's SQLite file with
--sqlite or when PostgreSQL is not installed.

Two tables, for 1, 2 and 4 processes x 1, 2 and 4 connections each:

1. Against a remote-like server: smtp-sink answering each DATA after DELAY seconds (its -w;
   whole seconds only). Each run sends PER_CONNECTION messages per connection, so every run
   lasts about as long; throughput is received / (last arrival - first arrival + DELAY), which
   counts the first message's own wait and so is unbiased. "of linear" is a run's throughput
   over (its total connections x the 1 x 1 run's): the goal is >= 0.8 until the CPU is the
   limit.
2. Against smtp-sink answering at once (the CPU is the limit): CPU_MESSAGES per run, the rate
   from first to last arrival, and its ratio to the 1 x 1 run.

Each run is a new targeted mailing to that many of the site's generated contacts (demo data,
bench/population.py). Prints figures and ratios; it never passes or fails. Only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pgcluster import PgCluster, PgUnavailable
from population import generate
from send_bench import REPO, SECRET, SINK, Sink
from sqlalchemy import select

from newsletter import db
from newsletter.kinds.targeted import TargetedSource
from newsletter.models import Person
from newsletter.outbox import creating
from newsletter.settings import load_settings

SHAPES = [(p, c) for p in (1, 2, 4) for c in (1, 2, 4)]
ENV = {**os.environ, "NEWSLETTER_SECRET_KEY": SECRET}


@dataclass
class Run:
    processes: int
    connections: int
    messages: int
    received: int
    rate: float
    failed: int  # sender processes that did not exit 0

    @property
    def total(self) -> int:
        return self.processes * self.connections


def make_site(base: Path, db_url: str | None, contacts: int) -> Path:
    """A temp site (the repository's config and templates) with CONTACTS generated contacts."""
    site = base / "site"
    site.mkdir()
    shutil.copy(REPO / "newsletter.toml", site / "newsletter.toml")
    shutil.copytree(REPO / "templates", site / "templates")
    env = {**ENV, **({"NEWSLETTER_DB_URL": db_url} if db_url else {})}
    subprocess.run([sys.executable, "-m", "newsletter", "--root", str(site), "init"], env=env,
                   cwd=site, check=True, stdout=subprocess.DEVNULL)
    generate(db_url or f"sqlite:///{site / 'subscribers.db'}", contacts)
    return site


def new_mailing(site: Path, db_url: str | None, n: int, tag: str) -> int:
    """A targeted mailing to the first N contacts (its subject names TAG), created, not sent."""
    env = {**ENV, **({"NEWSLETTER_DB_URL": db_url} if db_url else {})}
    settings = load_settings(site, env=env)
    engine = db.make_engine(settings.db_url)
    try:
        with db.transaction(db.session_factory(db.writer(engine))) as s:
            people = list(s.scalars(select(Person).order_by(Person.id).limit(n)))
            source = TargetedSource(settings, f"Skalningstest {tag} (demodata)",
                                    "Ett testutskick från bench/scale_bench.py.")
            return creating.create_mailing(s, settings, source, f"bench:{tag}",
                                           persons=people).mailing.id
    finally:
        engine.dispose()


def run(site: Path, db_url: str | None, sink: Sink, processes: int, connections: int,
        messages: int, tag: str, delay: float) -> Run:
    mailing_id = new_mailing(site, db_url, messages, tag)
    env = {**ENV, "NEWSLETTER_TRANSPORT": f"smtp://127.0.0.1:{sink.port}",
           "NEWSLETTER_CONNECTIONS": str(connections),
           **({"NEWSLETTER_DB_URL": db_url} if db_url else {})}
    before = sink.mark()
    procs = [subprocess.Popen([sys.executable, "-m", "newsletter", "--root", str(site), "send",
                               "resume", str(mailing_id)], env=env, cwd=site,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for _ in range(processes)]
    failed = 0
    for proc in procs:
        _out, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            failed += 1
            print(f"  sender exited {proc.returncode}: {err.decode()[-500:]}", file=sys.stderr)
    stamps, got = sink.span(before, messages, timeout=30)
    if len(stamps) < 2:
        return Run(processes, connections, messages, got, 0.0, failed)
    (t0, c0), (t1, c1) = stamps[0], stamps[-1]
    rate = got / (t1 - t0 + delay) if delay else (c1 - c0) / (t1 - t0)
    return Run(processes, connections, messages, got, rate, failed)


def table(title: str, runs: list[Run], linear: bool) -> None:
    base = runs[0].rate
    print(f"\n{title}")
    print(f"{'processes x connections':<26}{'total':>6}{'messages':>10}{'msgs/s':>9}"
          f"{'per conn.':>11}{'of linear' if linear else 'x 1x1':>11}")
    for r in runs:
        ratio = r.rate / (base * r.total) if linear else r.rate / base
        note = "" if r.received == r.messages and not r.failed else \
            f"   (sink got {r.received}, {r.failed} sender(s) failed)"
        print(f"{f'{r.processes} x {r.connections}':<26}{r.total:>6}{r.messages:>10}"
              f"{r.rate:>9.1f}{r.rate / r.total:>11.2f}{ratio:>11.2f}{note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay", type=int, default=1,
                        help="seconds the remote-like server waits before answering DATA")
    parser.add_argument("--per-connection", type=int, default=12,
                        help="messages per connection in the delayed runs")
    parser.add_argument("--cpu-messages", type=int, default=3000,
                        help="messages per run against the undelayed sink (0: skip that table)")
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    args = parser.parse_args()
    if not Path(SINK).exists():
        raise SystemExit(f"{SINK} not found: apt-get install postfix")
    contacts = max(16 * args.per_connection, args.cpu_messages)
    base = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    try:
        if args.sqlite:
            report(args, base, None, "SQLite", contacts)
            return
        try:
            with PgCluster() as pg:
                report(args, base, pg.create_database("bench"), "PostgreSQL", contacts)
        except PgUnavailable as exc:
            print(f"PostgreSQL not available ({exc}): SQLite instead")
            report(args, base, None, "SQLite", contacts)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def report(args: argparse.Namespace, base: Path, db_url: str | None, name: str,
           contacts: int) -> None:
    site = make_site(base, db_url, contacts)
    print(f"{name}; {contacts} contacts; {os.cpu_count()} CPU(s); senders: `newsletter send "
          f"resume ID` processes on one mailing")
    slow = Sink("-w", str(args.delay))
    try:
        runs = [run(site, db_url, slow, p, c, p * c * args.per_connection, f"d{p}x{c}",
                    args.delay) for p, c in SHAPES]
    finally:
        slow.stop()
    table(f"smtp-sink answering each message after {args.delay} s (like a remote server), "
          f"{args.per_connection} messages per connection", runs, linear=True)
    if args.cpu_messages:
        fast = Sink()
        try:
            runs = [run(site, db_url, fast, p, c, args.cpu_messages, f"c{p}x{c}", 0)
                    for p, c in SHAPES]
        finally:
            fast.stop()
        table(f"smtp-sink answering at once (the CPU is the limit), {args.cpu_messages} "
              "messages per run", runs, linear=False)


if __name__ == "__main__":
    main()
