"""A million recipients: segment counts, creating the mailing, and sending it in flat memory.

    /work/venv/bin/python bench/million_bench.py [--n 1000000] [--small 10000]
                                                 [--create 100000] [--connections 2] [--repeat 3]

1. Sites with SMALL, CREATE and N generated contacts (bench/population.py: demo data written
   with multi-row INSERTs; a million through `contacts import` would take most of an hour).
2. Segment counts on the N-contact site: every named segment, best of REPEAT, with its time
   (goal: under 1 s each).
3. Creating a mailing of the issue to `medlemmar` (outbox.creating.create_mailing in one
transaction,
   committed) in a child process, on the CREATE and the N site: outbox rows a second, best of
   REPEAT (goal: >= 50,000 a second, so CREATE = 100,000 recipients in under 2 s).
4. The whole command, `newsletter send issue 2026-12 --to medlemmar --yes`, into smtp-sink on the
   SMALL site and on the N site, once each: wall time, messages a second at the sink, and the
   child's peak RSS, the kernel's (ru_maxrss from wait4). Goal: the N run's within 50 MB of the
   SMALL run's (recipients are read, written and sent in batches; nothing holds them all).
   Sending a million takes a quarter of an hour or so; --n 200000 gives a quicker look.

Prints figures and ratios; it never passes or fails. Only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from send_bench import (
    MONTH,
    SECRET,
    SINK,
    Sink,
    generated_site,
    restore,
    run_child,
    run_engine,
)

from newsletter import db, segments
from newsletter.kinds.issue import IssueSource
from newsletter.outbox import creating
from newsletter.settings import load_settings

ENV = {**os.environ, "NEWSLETTER_SECRET_KEY": SECRET}


def counts(site: Path, repeat: int) -> list[tuple[str, int, float]]:
    """(segment, persons, best seconds) for every named segment."""
    settings = load_settings(site, env=ENV)
    engine = db.make_engine(settings.db_url)
    found = []
    try:
        with db.session_factory(engine)() as s:
            for name in settings.segments:
                times = []
                for _ in range(repeat):
                    start = time.perf_counter()
                    n = segments.count(s, settings, name)
                    times.append(time.perf_counter() - start)
                found.append((name, n, min(times)))
    finally:
        engine.dispose()
    return found


def create_child(site: str) -> None:
    """Child mode: create the issue's mailing to medlemmar; print rows and seconds."""
    settings = load_settings(Path(site), env=ENV)
    engine = db.make_engine(settings.db_url)
    start = time.perf_counter()
    with db.transaction(db.session_factory(db.writer(engine))) as s:
        created = creating.create_mailing(s, settings, IssueSource(settings, MONTH), "medlemmar")
    print(created.recipients, time.perf_counter() - start)


def create(site: Path, pristine: Path) -> tuple[int, float, float]:
    """(rows, seconds, peak RSS MiB) of creating the mailing in a child process."""
    restore(site, pristine)
    child = run_child([sys.executable, __file__, "--create-child", str(site)], env=ENV)
    if child.returncode != 0:
        raise SystemExit(f"creating failed:\n{child.stderr[-2000:]}")
    rows, seconds = child.stdout.split()
    return int(rows), float(seconds), child.max_rss_mib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="contacts of the big site")
    parser.add_argument("--small", type=int, default=10_000, help="contacts of the small site")
    parser.add_argument("--create", type=int, default=100_000,
                        help="contacts of the site where creating is timed")
    parser.add_argument("--connections", type=int, default=2, help="SMTP connections")
    parser.add_argument("--repeat", type=int, default=3, help="runs of counts and creating")
    parser.add_argument("--no-send", action="store_true",
                        help="counts and creating only (sending a million takes a while)")
    parser.add_argument("--create-child", metavar="SITE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.create_child:
        create_child(args.create_child)
        return
    if not Path(SINK).exists():
        raise SystemExit(f"{SINK} not found: apt-get install postfix")
    base = Path(tempfile.mkdtemp(prefix="million-bench-"))
    try:
        report(args, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def report(args: argparse.Namespace, base: Path) -> None:
    print(f"{os.cpu_count()} CPU(s); SQLite; {args.connections} connection(s); best of "
          f"{args.repeat} where repeated")
    sites = {}
    for n in sorted({args.small, args.create, args.n}):
        start = time.perf_counter()
        sites[n] = generated_site(base, n, f"site-{n}")
        print(f"site with {n} generated contacts ready in {time.perf_counter() - start:.1f} s")

    print(f"\nsegment counts, {args.n} contacts:")
    for name, n, seconds in counts(sites[args.n][0], args.repeat):
        print(f"  {name:<16}{n:>9} persons {seconds:6.2f} s   (goal < 1 s)")

    print("\ncreating the mailing (issue to medlemmar: render, freeze, fix the recipients):")
    for n in sorted({args.create, args.n}):
        runs = [create(*sites[n]) for _ in range(args.repeat)]
        rows, seconds, rss = min(runs, key=lambda r: r[1])
        print(f"  {n:>9} contacts: {rows} rows in {seconds:5.2f} s = {rows / seconds:8.0f} rows/s"
              f"   peak RSS {rss:.0f} MiB   all runs: "
              + " ".join(f"{r[1]:.2f}s" for r in runs) + "   (goal >= 50,000 rows/s)")

    if args.no_send:
        return
    print("\nthe whole command into smtp-sink (send issue: start-up, create, send):")
    sink = Sink()
    try:
        rss = {}
        for n in (args.small, args.n):
            site, pristine = sites[n]
            restore(site, pristine)
            run = run_engine(site, n, sink, args.connections)
            rss[n] = run.max_rss_mib
            print(f"  {n:>9} recipients: sink got {run.received}, {run.rate:6.0f} msgs/s "
                  f"sending, wall {run.wall:7.1f} s = {run.received / run.wall:6.0f} msgs/s, "
                  f"peak RSS {run.max_rss_mib:.0f} MiB")
    finally:
        sink.stop()
    print(f"peak RSS, {args.small} -> {args.n} recipients: {rss[args.small]:.0f} -> "
          f"{rss[args.n]:.0f} MiB, {rss[args.n] - rss[args.small]:+.0f} MiB   (goal <= +50 MiB)")


if __name__ == "__main__":
    main()
