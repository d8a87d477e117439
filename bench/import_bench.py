"""Benchmark: import N contacts from a CSV file, then count three segments.

Generates N contacts (default 100,000) across Sweden's 290 municipalities, written the way Swedish
Excel writes CSV (semicolons, UTF-8 with BOM, Swedish headers), in a temp site; imports them with
the real import function, imports the file again (the idempotent path), optionally imports it
through the real CLI in a separate process, and counts three segments. Prints seconds per step,
peak memory and the goals (import < 30 s, a segment counted < 1 s on a 2-core machine).

    python bench/import_bench.py [--n 100000] [--no-cli] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from newsletter import db, segments
from newsletter.contacts_import import import_contacts
from newsletter.municipalities import load_municipalities, set_members, shipped
from newsletter.settings import Settings, default_config_text, load_settings

IMPORT_GOAL_S = 30.0
SEGMENT_GOAL_S = 1.0
SEGMENTS = ("medlemmar", "role:kommunchef and member",
            'area:digitalisering or county:"Jämtlands län"')
ENV = {"NEWSLETTER_SECRET_KEY": "bench-secret-key-not-for-production"}
FIRST = ("Anna", "Lars", "Karin", "Per", "Märta", "Göran", "Åsa", "Björn", "Eva", "Örjan")
LAST = ("Lindqvist", "Nyström", "Öberg", "Wikström", "Hägglund", "Sjöberg", "Åberg", "Berg")
ROLES = ("kommunchef", "kso", "politiker", "politiker", "tjansteperson", "tjansteperson",
         "tjansteperson", "ovrig")
AREAS = ("", "", "bostad|digitalisering", "infrastruktur", '"omvarld;arbetsmarknad;kapital"')


def generate(path: Path, n: int) -> int:
    """Write N contacts; every 50th also sits on the board (a second row, merged on import)."""
    munis = shipped()
    rows = ["E-post;Namn;Kommun;Roll;Län;Områden"]
    for i in range(n):
        m = munis[i % len(munis)]
        name = f"{FIRST[i % len(FIRST)]} {LAST[(i // 7) % len(LAST)]}"
        email = f"kontakt{i}.{m.kommunkod}@example.se"
        muni = m.name if i % 3 else f"{m.name} kommun" if i % 2 else m.kommunkod
        rows.append(f"{email};{name};{muni};{ROLES[i % len(ROLES)]};{m.county};"
                    f"{AREAS[i % len(AREAS)]}")
        if i % 50 == 0:
            rows.append(f"{email};{name};;styrelse;;")
    path.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join(rows) + "\r\n").encode("utf-8"))
    return len(rows) - 1


def new_site(root: Path) -> Settings:
    root.mkdir(parents=True)
    (root / "newsletter.toml").write_text(default_config_text(), encoding="utf-8")
    settings = load_settings(root, env=ENV)
    engine = db.make_engine(settings.db_url)
    db.migrate(engine)
    with db.transaction(db.session_factory(engine)) as session:
        load_municipalities(session)
        # About 70 member municipalities: the smallest by kommunkod spread, deterministic.
        set_members(session, [m.kommunkod for m in shipped()[::4]])
    engine.dispose()
    return settings


def maxrss_mib(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def cpu_seconds() -> float:
    """CPU time of this process and its finished children: unlike wall time, it hardly moves
    when other jobs share the machine."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(label: str, fn, results: list[tuple[str, float]]):
    start, cpu = time.perf_counter(), cpu_seconds()
    value = fn()
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    results.append((label, seconds))
    print(f"{label:<58} {seconds:7.2f} s wall {cpu:7.2f} s CPU   (peak RSS so far "
          f"{maxrss_mib():4.0f} MiB)", flush=True)
    return value


def run_import(settings: Settings, path: Path, profile: bool):
    engine = db.make_engine(settings.db_url)
    factory = db.session_factory(engine)
    profiler = cProfile.Profile() if profile else None

    def work():
        with db.transaction(factory) as session:
            return import_contacts(session, settings, path)

    try:
        if profiler:
            return profiler.runcall(work)
        return work()
    finally:
        engine.dispose()
        if profiler:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="contacts to generate")
    parser.add_argument("--no-cli", action="store_true", help="skip the CLI import")
    parser.add_argument("--profile", action="store_true", help="cProfile the first import")
    args = parser.parse_args()
    results: list[tuple[str, float]] = []
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} (other jobs inflate wall times); N = {args.n:,}")

    with tempfile.TemporaryDirectory(prefix="import-bench-") as tmp:
        tmp_path = Path(tmp)
        csv_path = tmp_path / "kontakter.csv"
        rows = timed(f"generate {args.n:,} contacts", lambda: generate(csv_path, args.n), results)
        print(f"  {rows:,} rows, {csv_path.stat().st_size / 2**20:.1f} MiB")
        settings = timed("create site, schema, 290 municipalities",
                         lambda: new_site(tmp_path / "site"), results)

        report = timed("import (core function, empty register)",
                       lambda: run_import(settings, csv_path, args.profile), results)
        print(f"  added {report.added:,}, updated {report.updated}, merged rows "
              f"{report.merged_rows:,}, rejected {len(report.rejected)}")
        import_s = results[-1][1]
        again = timed("import the same file again (nothing to change)",
                      lambda: run_import(settings, csv_path, False), results)
        print(f"  added {again.added}, updated {again.updated}, unchanged {again.unchanged:,}")

        engine = db.make_engine(settings.db_url)
        factory = db.session_factory(engine)
        segment_s = []
        for expr in SEGMENTS:
            with factory() as session:
                n = timed(f"count segment {expr}",
                          lambda e=expr, s=session: segments.count(s, settings, e), results)
            segment_s.append(results[-1][1])
            print(f"  {n:,} contacts")
        engine.dispose()
        peak = maxrss_mib()

        cli_s = None
        if not args.no_cli:
            cli_settings = new_site(tmp_path / "cli-site")
            cmd = [sys.executable, "-m", "newsletter", "--root", str(cli_settings.root),
                   "contacts", "import", str(csv_path)]
            out = timed("import through the CLI (new process, empty register)",
                        lambda: subprocess.run(cmd, env={**os.environ, **ENV}, check=True,
                                               capture_output=True, text=True), results)
            cli_s = results[-1][1]
            print(f"  {out.stdout.strip().splitlines()[-1]}")
            print(f"  CLI process peak RSS {maxrss_mib(resource.RUSAGE_CHILDREN):.0f} MiB")

    print()
    print(f"peak RSS of this process: {peak:.0f} MiB")
    print(f"import {args.n:,}: {import_s:.2f} s (goal < {IMPORT_GOAL_S:.0f} s: "
          f"{'OK' if import_s < IMPORT_GOAL_S else 'MISSED'}, "
          f"{import_s / IMPORT_GOAL_S:.0%} of the budget; {args.n / import_s:,.0f} contacts/s)")
    if cli_s is not None:
        print(f"import via CLI: {cli_s:.2f} s ({cli_s / import_s:.2f}x the core function)")
    worst = max(segment_s)
    print(f"slowest segment count: {worst:.3f} s (goal < {SEGMENT_GOAL_S:.0f} s: "
          f"{'OK' if worst < SEGMENT_GOAL_S else 'MISSED'}, {worst / SEGMENT_GOAL_S:.0%} of it)")


if __name__ == "__main__":
    main()
