"""Benchmark: what counting a click costs a request to /l/TOKEN.

Builds a temp site with `[tracking] clicks = true`, runs `newsletter demo` (the sample issue to
the demo contacts, 16 tracked links), serves the public pages with waitress on 127.0.0.1, and
sends N sequential GETs over one keep-alive connection, each from another User-Agent (so each is
a reader's first click, the path that writes the most). Prints the latency (mean, median, 95th
percentile) and requests per second of the tracked redirect, beside the same redirect with
counting switched off (the lookup alone) and the click filter's in-memory verdict alone.
Figures only, never pass/fail.

    python bench/click_bench.py [--n 2000]
"""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import re
import shutil
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import waitress
from click.testing import CliRunner
from sqlalchemy import select

from newsletter import db, tracking
from newsletter.cli import main as cli
from newsletter.click_filter import ClickFilter, ClickRequest
from newsletter.models import TrackedLink
from newsletter.settings import load_settings
from newsletter.web import create_app

ROOT = Path(__file__).resolve().parent.parent
ENV = {"NEWSLETTER_SECRET_KEY": "bench-secret-key-not-for-production"}
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.{}"


def _site(folder: Path, clicks: bool) -> Path:
    folder.mkdir()
    text = (ROOT / "newsletter.toml").read_text(encoding="utf-8")
    (folder / "newsletter.toml").write_text(
        re.sub(r"(?m)^clicks = .*$", f"clicks = {'true' if clicks else 'false'}", text),
        encoding="utf-8")
    return folder


def _serve(app) -> tuple[object, int]:
    """APP under waitress on a free loopback port, in a daemon thread (ends with the script)."""
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=2)
    threading.Thread(target=server.run, daemon=True).start()
    return server, server.effective_port


def _run(port: int, paths: list[str], n: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    times = []
    for i in range(n):
        start = time.perf_counter()
        conn.request("GET", paths[i % len(paths)], headers={"User-Agent": UA.format(i)})
        response = conn.getresponse()
        response.read()
        times.append(time.perf_counter() - start)
        assert response.status == 302, response.status
    conn.close()
    return times


def _describe(name: str, times: list[float]) -> float:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[int(len(ms) * 0.95)]
    rate = len(ms) / sum(times)
    print(f"{name:<34} mean {statistics.mean(ms):6.2f} ms  median {statistics.median(ms):6.2f} ms"
          f"  p95 {p95:6.2f} ms  {rate:7.0f} req/s")
    return statistics.mean(ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="requests per measurement")
    args = parser.parse_args()
    os.environ.update(ENV)
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        root = _site(Path(tmp) / "site", clicks=True)
        result = CliRunner().invoke(cli, ["--root", str(root), "demo"], env=ENV)
        assert result.exit_code == 0, result.output
        settings = load_settings(root, env=ENV)
        with db.transaction(db.session_factory(db.make_engine(settings.db_url))) as s:
            numbers = [(x.mailing_id, x.number) for x in s.scalars(select(TrackedLink))]
        paths = [f"/l/{tracking.click_token(settings.secret_key, m, n)}" for m, n in numbers]
        print(f"{len(paths)} tracked links, {args.n} requests each run, one connection")

        _server, port = _serve(create_app(settings))
        _run(port, paths, 50)  # warm up
        counted = _describe("redirect + count (one UPDATE)", _run(port, paths, args.n))

        off = root / "newsletter.toml"
        off.write_text(off.read_text(encoding="utf-8").replace("clicks = true", "clicks = false"),
                       encoding="utf-8")
        _server, port = _serve(create_app(load_settings(root, env=ENV)))
        _run(port, paths, 50)
        plain = _describe("redirect only (tracking off)", _run(port, paths, args.n))

        click_filter = ClickFilter(settings.tracking)
        link = tracking.LinkRef(1, 1, "https://example.se/", "bostad", len(paths))
        start = time.perf_counter()
        for i in range(args.n * 10):
            click_filter.judge(ClickRequest("GET", f"192.0.2.{i % 250}", UA.format(i)), link)
        per = (time.perf_counter() - start) / (args.n * 10) * 1e6
        print(f"{'click filter verdict alone':<34} {per:6.1f} us")
        print(f"counting adds {counted - plain:.2f} ms a request "
              f"({counted / plain:.2f}x the redirect alone); "
              f"measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
