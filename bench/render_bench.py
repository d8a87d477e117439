"""Benchmark: rendering the monthly issue, its content variants, and per-recipient personalising.

Uses the sample issue (issues/2026-12, 7 areas, 19 items) with the repository's templates. Prints:
- the time to load and build the sample issue once (Jinja2 -> MJML -> HTML -> premailer + text);
- the time to build V distinct content variants (areas chosen x roles): cut from the whole issue
  rendered once (render.py, assembly.py), against rendering each alone; and every variant there is;
- the cost per recipient of personalising a rendered variant (the placeholders replaced) against
  running the whole pipeline per recipient, and their ratio.
Figures only, never pass/fail; times drift run to run, the ratio holds.

    python bench/render_bench.py [--recipients 2000] [--full 50] [--variants 20]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from pathlib import Path

from newsletter.content import load_issue
from newsletter.render import IssueRenderer
from newsletter.settings import load_settings
from newsletter.sources import Recipient, personalise

ROOT = Path(__file__).resolve().parent.parent
ENV = {"NEWSLETTER_SECRET_KEY": "bench-secret-key-not-for-production"}


def _values(n: int) -> Recipient:
    return Recipient(name=f"Kontakt {n} Åström", email=f"kontakt{n}@example.se", message_id="",
                     unsubscribe_url=f"https://nyhetsbrev.example.se/u/token{n:08}.abcdefghijklmnop",
                     preferences_url=f"https://nyhetsbrev.example.se/p/token{n:08}.abcdefghijklmnop")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=2000,
                        help="recipients personalised from a rendered variant")
    parser.add_argument("--full", type=int, default=50,
                        help="recipients sent through the whole pipeline each")
    parser.add_argument("--variants", type=int, default=20, help="distinct variants to build")
    args = parser.parse_args()
    settings = load_settings(ROOT, env=ENV)
    slugs = [a.slug for a in settings.areas]

    start = time.perf_counter()
    issue = load_issue(settings, "2026-12")
    renderer = IssueRenderer(settings, issue)
    rendered = renderer.render(renderer.all_key)
    first = time.perf_counter() - start
    size = len(rendered.html.encode("utf-8"))
    print(f"sample issue: {len(issue.items)} items, {size / 1024:.1f} KB HTML, "
          f"{len(rendered.text.encode('utf-8')) / 1024:.1f} KB text")
    print(f"build the sample issue once (load + render, cold):     {first * 1000:8.1f} ms")

    # V distinct variants: combinations of chosen areas, half of them with the kommunchef role.
    combos = itertools.chain.from_iterable(itertools.combinations(slugs, k) for k in (1, 2, 3))
    fresh = IssueRenderer(settings, issue)
    keys: list[str] = []
    for areas, chief in zip(combos, itertools.cycle([False, True])):
        key = fresh.variant_key(frozenset(areas), frozenset({"kommunchef"} if chief else ()))
        if key not in keys:
            keys.append(key)
        if len(keys) == args.variants:
            break
    start = time.perf_counter()
    for key in keys:
        fresh.render(key)
    variants = time.perf_counter() - start
    print(f"build {len(keys)} variants, cut from the whole issue:      {variants * 1000:8.1f} ms "
          f"({variants / len(keys) * 1000:.2f} ms a variant, the whole issue's render included)")
    alone = IssueRenderer(settings, issue)
    start = time.perf_counter()
    for key in keys:
        alone.render_alone(key)
    each = time.perf_counter() - start
    print(f"build {len(keys)} variants, each rendered alone:           {each * 1000:8.1f} ms "
          f"({each / len(keys) * 1000:.1f} ms a variant; {each / variants:.1f}x the cut ones)")
    every = {fresh.variant_key(frozenset(c), frozenset(r))
             for k in range(len(slugs) + 1) for c in itertools.combinations(slugs, k)
             for r in ((), ("kommunchef",))}
    start = time.perf_counter()
    for key in every:
        fresh.render(key)
    print(f"every variant of the issue ({len(every)}), cut:                 "
          f"{(time.perf_counter() - start + variants) * 1000:8.1f} ms")

    start = time.perf_counter()
    for n in range(args.recipients):
        personalise(rendered, _values(n))
    personal = (time.perf_counter() - start) / args.recipients

    full_times = []
    for n in range(args.full):
        start = time.perf_counter()
        per_recipient = IssueRenderer(settings, load_issue(settings, "2026-12"))
        personalise(per_recipient.render(per_recipient.all_key), _values(n))
        full_times.append(time.perf_counter() - start)
    full = statistics.mean(full_times)

    print(f"per recipient, personalise a rendered variant:       {personal * 1e6:8.1f} µs "
          f"({args.recipients} recipients)")
    print(f"per recipient, whole pipeline (load, render, inline): {full * 1e6:8.1f} µs "
          f"({args.full} recipients)")
    print(f"ratio whole pipeline / personalise:                  {full / personal:8.0f}x")
    print(f"10,000 recipients: personalise {personal * 10_000:.2f} s vs. "
          f"whole pipeline {full * 10_000 / 60:.1f} min")


if __name__ == "__main__":
    main()
