"""Workflow benchmark: what review, scheduling and the start of a scheduled mailing cost.

    .venv/bin/python bench/workflow_bench.py [--n 5000] [--repeat 3]

Builds a temp site (the repository's settings, templates and sample issue 2026-12), imports N
contacts through `newsletter contacts import` (every fifth with one or two chosen areas, roles
mixed), and measures, best of --repeat (other work on the machine only slows a run down):

- `review.snapshot`: the fingerprint an approval is bound to (the complete variant and the web
  version rendered, the templates hashed), as `issue status`, `approve` and every send pay it;
- `outbox.creating.create_mailing` of the issue to `medlemmar` (sending now: variants on first use,
  one row per person), the baseline;
- `schedule.schedule` (freezing every variant the segment's persons have that day, plus the
  fallback, and the web version) and `schedule.start` at the time (recipients fixed, each
  person's variant picked from the frozen ones without the files): together against the
  baseline.

Each measurement runs in a transaction rolled back afterwards, so the next starts from the same
database. Prints figures and ratios; it never passes or fails.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from newsletter import db, review, schedule
from newsletter.cli import main
from newsletter.kinds.issue import IssueSource
from newsletter.outbox import creating
from newsletter.settings import load_settings

REPO = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-key-not-for-production"
KOMMUNER = ["Åsele", "Dorotea", "Vilhelmina", "Sorsele", "Storuman", "Malå"]
ROLES = ["kommunchef", "kso", "politiker", "tjansteperson", "tjansteperson", "styrelse"]
AREAS = ["medlemmar", "bostad", "kapital", "omvarld", "digitalisering", "infrastruktur",
         "arbetsmarknad"]


def _cli(root: Path, *args: str) -> None:
    result = CliRunner().invoke(main, ["--root", str(root), *args],
                                env={"NEWSLETTER_SECRET_KEY": SECRET}, catch_exceptions=False)
    if result.exit_code:
        raise SystemExit(f"newsletter {' '.join(args)}: {result.output}")


def _site(n: int) -> Path:
    root = Path(tempfile.mkdtemp(prefix="workflow-bench-"))
    shutil.copy(REPO / "newsletter.toml", root / "newsletter.toml")
    for folder in ("templates", "issues"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("build"))
    _cli(root, "init")
    rng = random.Random(7)
    lines = ["email,name,municipality,role,areas"]
    for i in range(n):
        areas = ";".join(rng.sample(AREAS, rng.choice((1, 2)))) if i % 5 == 0 else ""
        lines.append(f"p{i:06d}@example.se,Person {i},{KOMMUNER[i % 6]},{ROLES[i % 6]},{areas}")
    (root / "kontakter.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _cli(root, "contacts", "import", str(root / "kontakter.csv"))
    _cli(root, "municipalities", "members", *KOMMUNER)
    return root


def _best(repeat: int, run) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main_(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ["NEWSLETTER_SECRET_KEY"] = SECRET
    root = _site(args.n)
    try:
        settings = load_settings(root)
        engine = db.make_engine(settings.db_url)
        sessions = db.session_factory(db.writer(engine))
        at = datetime.now(UTC) + timedelta(days=1)

        def snapshot() -> None:
            review.snapshot(settings, IssueSource(settings, "2026-12"), "medlemmar")

        def send_now() -> None:
            with db.transaction(sessions, dry_run=True) as s:
                creating.create_mailing(s, settings, IssueSource(settings, "2026-12"), "medlemmar")

        variants = {}

        def scheduled() -> None:
            with db.transaction(sessions, dry_run=True) as s:
                mailing = schedule.schedule(s, settings, IssueSource(settings, "2026-12"),
                                            "medlemmar", at, now=at - timedelta(hours=1))
                variants["frozen"] = len(creating.frozen_keys(s, mailing.id))
                started = schedule.start(s, settings, mailing.id, now=at)
                variants["recipients"] = started.recipients

        t_snapshot = _best(args.repeat, snapshot)
        t_now = _best(args.repeat, send_now)
        t_scheduled = _best(args.repeat, scheduled)
        print(f"contacts: {args.n}; recipients: {variants['recipients']}; "
              f"variants frozen when scheduled: {variants['frozen']}")
        print(f"review.snapshot (fingerprint of what an approval covers): "
              f"{t_snapshot * 1000:.0f} ms")
        print(f"create_mailing now (baseline):          {t_now:.2f} s")
        print(f"schedule + start at the time:           {t_scheduled:.2f} s "
              f"({t_scheduled / t_now:.2f}x the baseline)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main_())
