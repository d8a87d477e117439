"""Relay bench: `newsletter send issue` straight into smtp-sink, and through a local Postfix relay.

    .venv/bin/python bench/relay_bench.py [--n 3000] [--connections 2] [--repeat 2]

The topology of docs/DEPLOY.md on one host: the engine hands each message to Postfix on
loopback, Postfix queues it (a queue file, fsync'd, before it answers 250) and delivers it to
the next hop, here Postfix's smtp-sink on 127.0.0.1 standing in for the internet. Postfix is the
throw-away relay the tests use (tests/postfix.py: its own config and queue in a temp dir; needs
the `postfix` package and root). For N contacts it prints, for each way, how long the command
took (the engine's hand-over rate) and when the last message reached the sink (end to end), and
the ratio of the two ways, interleaved runs, the best of each. Figures only; 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from send_bench import MONTH, SINK, Sink, make_site, newsletter, restore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.postfix import PostfixRelay, skip_reason  # noqa: E402  (the repository's tests/)

ARRIVAL_TIMEOUT = 600.0


def run(site: Path, n: int, sink: Sink, connections: int, relay: bool) -> tuple[float, float]:
    """(seconds for the command, seconds until the sink has all N)."""
    before = sink.mark()
    postfix = PostfixRelay(sink.port).start() if relay else None
    try:
        url = postfix.url if postfix else f"smtp://127.0.0.1:{sink.port}"
        start = time.perf_counter()
        newsletter(site, "send", "issue", MONTH, "--to", "medlemmar", "--yes",
                   env={"NEWSLETTER_TRANSPORT": url, "NEWSLETTER_CONNECTIONS": str(connections)})
        command = time.perf_counter() - start
        deadline = time.monotonic() + ARRIVAL_TIMEOUT
        while sink.count - before < n and time.monotonic() < deadline:
            time.sleep(0.02)
        arrived = time.perf_counter() - start
        if sink.count - before < n:
            raise SystemExit(f"only {sink.count - before} of {n} reached the sink"
                             + (f":\n{postfix.log()[-3000:]}" if postfix else ""))
        return command, arrived
    finally:
        if postfix:
            postfix.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000, help="contacts")
    parser.add_argument("--connections", type=int, default=2, help="the engine's connections")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each way (best shown)")
    args = parser.parse_args()
    reason = skip_reason()
    if reason or not Path(SINK).exists():
        raise SystemExit(f"cannot run: {reason or SINK + ' is missing'}")
    base = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    sink = Sink()
    try:
        site = make_site(base, args.n)
        pristine = base / "pristine.db"
        shutil.copy(site / "subscribers.db", pristine)
        results: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for _ in range(args.repeat):
            for relay in (False, True):
                restore(site, pristine)
                results[relay].append(run(site, args.n, sink, args.connections, relay))
    finally:
        sink.stop()
        shutil.rmtree(base, ignore_errors=True)
    n = args.n
    print(f"send issue to {n} contacts, {args.connections} connection(s), best of {args.repeat}")
    print(f"{'':<34}{'command':>9}{'msgs/s':>8}{'at sink':>9}{'msgs/s':>8}")
    best = {}
    for relay, label in ((False, "engine -> smtp-sink"), (True, "engine -> Postfix -> smtp-sink")):
        command, arrived = min(results[relay], key=lambda r: r[1])
        best[relay] = arrived
        print(f"{label:<34}{command:>8.1f}s{n / command:>8.0f}{arrived:>8.1f}s{n / arrived:>8.0f}")
    print(f"through Postfix / direct, end to end: {best[False] / best[True]:.2f}")


if __name__ == "__main__":
    main()
