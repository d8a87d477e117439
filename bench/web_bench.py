"""Web bench: the public pages under a burst, as after a mailing lands in Gmail and Yahoo.

    .venv/bin/python bench/web_bench.py [--unsubscribes 500] [--gets 2000] [--clients 50]
                                        [--threads 4] [--repeat 3] [--keepalive]
                                        [--while-sending] [--no-pg]

Mailbox providers send RFC 8058 one-click unsubscribes (`POST List-Unsubscribe=One-Click` to
the List-Unsubscribe URL) soon after delivery, while readers open "view in browser". For SQLite
and for PostgreSQL (a throw-away cluster, bench/pgcluster.py; skipped with a message if its
binaries are missing) it builds a temp site, imports contacts, sends the 2026-12 issue into the
site's Maildir with the real CLI (which also publishes the archive), and takes each recipient's
List-Unsubscribe URL from the message they got. Then `newsletter serve` (waitress, --threads)
runs as a subprocess on 127.0.0.1 and 50 client threads (http.client, a new connection per
request unless --keepalive) send the shuffled mix: UNSUBSCRIBES one-click POSTs, each to a
different person, and GETS of the issue's web version /arkiv/2026-12.

Beside it, in the same run and interleaved, the same clients send the same mix to waitress
serving a static page of the same bytes with the same thread count: the ratio is the app's cost.
With --while-sending, a mailing to every contact (`newsletter mail`, into the Maildir) runs
during each burst on the app, as when the first recipients click while the rest are still being
sent: the app then shares the CPU and the database with the sender, so its figures are not
compared with the static page's; the sender's line says how many it skipped as unsubscribed.

Afterwards the database is checked: every person posted for is unsubscribed and suppressed, with
one "unsubscribed" event each, and nobody else changed ("lost" counts the misses).

Prints requests per second, p50 and p99 latency, 5xx and other failures, lost unsubscribes and
the ratios to the static page; each repeat uses other persons, the best run by req/s is shown.
It never passes or fails on timings. Only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import mailbox
import math
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path
from urllib.parse import urlsplit

from pgcluster import PgCluster, PgUnavailable, free_port

REPO = Path(__file__).resolve().parent.parent
MONTH = "2026-12"
ARCHIVE_PATH = f"/arkiv/{MONTH}"
SECRET = "bench-secret-key-not-for-production"
ONE_CLICK = b"List-Unsubscribe=One-Click"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
KOMMUNER = ["Åsele", "Dorotea", "Vilhelmina", "Sorsele", "Storuman", "Malå", "Lycksele", "Umeå"]
ROLES = ["kommunchef", "kso", "politiker", "tjansteperson", "tjansteperson"]
SPARE = 100  # contacts nobody unsubscribes: they must stay subscribed
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


# --- the site ------------------------------------------------------------------------------

@dataclass
class Site:
    root: Path
    env: dict[str, str]
    label: str
    # address -> the path of its one-click URL, as the mail they received names it
    unsubscribe_paths: dict[str, str] = field(default_factory=dict)

    def cli(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "newsletter", "--root", str(self.root),
                               *args], env=self.env, capture_output=True, text=True, timeout=900)
        if done.returncode:
            raise SystemExit(f"newsletter {' '.join(args)} failed ({done.returncode}):\n"
                             f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        return done.stdout


def make_site(base: Path, label: str, n: int, db_url: str | None) -> Site:
    """A site with N member contacts that have all received the issue in the site's Maildir."""
    root = base / f"site-{label}"
    root.mkdir()
    shutil.copy(REPO / "newsletter.toml", root / "newsletter.toml")
    for folder in ("templates", "issues"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("build"))
    env = {**os.environ, "NEWSLETTER_SECRET_KEY": SECRET}
    env.pop("NEWSLETTER_TRANSPORT", None)
    if db_url:
        env["NEWSLETTER_DB_URL"] = db_url
    else:
        env.pop("NEWSLETTER_DB_URL", None)
    site = Site(root, env, label)
    site.cli("init")
    site.cli("municipalities", "members", *KOMMUNER)
    rng = random.Random(8058)
    path = base / f"kontakter-{label}.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["email", "name", "municipality", "role"])
        for i in range(n):
            writer.writerow([f"demo{i:05d}@example.se", f"Demokontakt {i}", KOMMUNER[i % 8],
                             rng.choice(ROLES)])
    site.cli("contacts", "import", str(path))
    site.cli("send", "issue", MONTH, "--to", "medlemmar", "--yes")
    box = mailbox.Maildir(root / "Maildir", factory=None, create=False)
    for key in box.iterkeys():
        msg = message_from_bytes(box.get_bytes(key), policy=policy.default)
        https = next(part.strip(" <>") for part in str(msg["List-Unsubscribe"]).split(",")
                     if part.strip(" <>").startswith("https:"))
        site.unsubscribe_paths[msg["To"].addresses[0].addr_spec] = urlsplit(https).path
    if len(site.unsubscribe_paths) != n:
        raise SystemExit(f"{label}: {len(site.unsubscribe_paths)} of {n} messages in the Maildir")
    return site


# --- the servers ---------------------------------------------------------------------------

class Server:
    """A server subprocess on 127.0.0.1:PORT, answering GET PROBE with 200 once started."""

    def __init__(self, cmd: list[str], port: int, env: dict[str, str], probe: str) -> None:
        self.port = port
        self.log = tempfile.TemporaryFile()  # noqa: SIM115  (read until the server stops)
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if request(port, "GET", probe)[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise SystemExit(f"{' '.join(cmd)} did not start:\n{self.output()[-3000:]}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # waitress stops on KeyboardInterrupt
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)


def serve(site: Site, threads: int) -> Server:
    port = free_port()
    return Server([sys.executable, "-m", "newsletter", "--root", str(site.root), "serve",
                   "--host", "127.0.0.1", "--port", str(port), "--threads", str(threads)],
                  port, site.env, ARCHIVE_PATH)


def static(body_file: Path, threads: int) -> Server:
    port = free_port()
    return Server([sys.executable, __file__, "--static-child", str(port), str(threads),
                   str(body_file)], port, dict(os.environ), "/")


def static_child(port: int, threads: int, body_file: Path) -> None:
    """Child mode: waitress serving BODY_FILE's bytes for every request (reading any body)."""
    import waitress

    body = body_file.read_bytes()
    headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))]

    def app(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length:
            environ["wsgi.input"].read(length)
        start_response("200 OK", headers)
        return [body]

    waitress.serve(app, host="127.0.0.1", port=port, threads=threads, ident="static",
                   _quiet=True)


# --- the clients ---------------------------------------------------------------------------

def request(port: int, method: str, path: str, body: bytes | None = None,
            conn: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=FORM if body else {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        if own:
            conn.close()


@dataclass
class Load:
    wall: float
    results: list[tuple[str, int, float]]  # (kind, status or 0 for a connection error, seconds)

    def rate(self) -> float:
        return len(self.results) / self.wall

    def latencies(self, kind: str | None = None) -> list[float]:
        return sorted(s for k, _, s in self.results if kind in (None, k))

    def statuses(self) -> Counter:
        return Counter(status for _, status, _ in self.results)


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


def run_load(port: int, work: list[tuple[str, str, str, bytes | None]], clients: int,
             keepalive: bool) -> Load:
    """WORK (kind, method, path, body) spread over CLIENTS threads, all starting at once."""
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for item in work:
        todo.put(item)
    results: list[tuple[str, int, float]] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60) if keepalive else None
        mine = []
        start.wait()
        while True:
            try:
                kind, method, path, body = todo.get_nowait()
            except queue.Empty:
                break
            t = time.perf_counter()
            try:
                status = request(port, method, path, body, conn)[0]
            except (OSError, http.client.HTTPException):
                status = 0
                if conn is not None:
                    conn.close()
            mine.append((kind, status, time.perf_counter() - t))
        if conn is not None:
            conn.close()
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return Load(time.perf_counter() - t0, results)


def mix(paths: list[str], gets: int, seed: int) -> list[tuple[str, str, str, bytes | None]]:
    work = [("POST", "POST", path, ONE_CLICK) for path in paths]
    work += [("GET", "GET", ARCHIVE_PATH, None)] * gets
    random.Random(seed).shuffle(work)
    return work


def start_mailing(site: Site, base: Path, run: int) -> subprocess.Popen:
    """`newsletter mail --to medlemmar` into the Maildir, running while the burst comes in."""
    body = base / f"enkat-{site.label}-{run}.md"
    body.write_text("Hej!\n\nEn enkät om bredbandet (demodata).\n", encoding="utf-8")
    return subprocess.Popen([sys.executable, "-m", "newsletter", "--root", str(site.root), "mail",
                             "--to", "medlemmar", "--subject", f"Enkät {run + 1}", "--body",
                             str(body), "--yes"], env=site.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish_mailing(proc: subprocess.Popen) -> str:
    """The mailing's last line of output (sent, suppressed: those who unsubscribed meanwhile)."""
    out, err = proc.communicate(timeout=900)
    lines = [line for line in out.splitlines() if "skickade" in line]
    if proc.returncode:
        return f"the mailing failed ({proc.returncode}): {err.strip()[-500:]}"
    return lines[-1] if lines else out.strip()[-300:]


# --- the check -----------------------------------------------------------------------------

def lost_unsubscribes(site: Site, posted: set[str]) -> tuple[int, int]:
    """(persons posted for who are not unsubscribed, suppressed and logged exactly once,
    persons not posted for whose status changed)."""
    from sqlalchemy import func, select

    from newsletter import db
    from newsletter.contacts import is_suppressed
    from newsletter.models import Event, Person
    from newsletter.settings import load_settings

    settings = load_settings(site.root, env=site.env)
    engine = db.make_engine(settings.db_url)
    try:
        with db.transaction(db.session_factory(engine)) as s:
            persons = list(s.scalars(select(Person)))
            events = dict(s.execute(select(Event.person_id, func.count()).where(
                Event.kind == "unsubscribed").group_by(Event.person_id)).all())
            lost = sum(1 for p in persons if p.email in posted and not (
                p.status == "unsubscribed" and events.get(p.id) == 1
                and is_suppressed(s, settings.secret_key, p.email)))
            others = sum(1 for p in persons if p.email not in posted and p.status != "active")
    finally:
        engine.dispose()
    return lost, others


# --- the report ----------------------------------------------------------------------------

@dataclass
class Row:
    label: str
    load: Load
    lost: tuple[int, int] | None = None


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def print_rows(rows: list[Row]) -> None:
    print(f"  {'':<26}{'req/s':>7}{'p50 ms':>8}{'p99 ms':>8}{'POST p50/p99':>15}"
          f"{'GET p50/p99':>14}{'5xx':>5}{'fail':>5}{'lost':>6}")
    for row in rows:
        load, st = row.load, row.load.statuses()
        fivexx = sum(n for code, n in st.items() if code >= 500)
        fail = sum(n for code, n in st.items() if code < 200 or 400 <= code < 500)
        post, get = load.latencies("POST"), load.latencies("GET")
        lost = "-" if row.lost is None else str(row.lost[0])
        print(f"  {row.label:<26}{load.rate():>7.0f}{ms(percentile(load.latencies(), 50)):>8}"
              f"{ms(percentile(load.latencies(), 99)):>8}"
              f"{ms(percentile(post, 50)) + '/' + ms(percentile(post, 99)):>15}"
              f"{ms(percentile(get, 50)) + '/' + ms(percentile(get, 99)):>14}"
              f"{fivexx:>5}{fail:>5}{lost:>6}")


def bench_database(args: argparse.Namespace, base: Path, label: str,
                   db_url: str | None) -> tuple[Row, Row]:
    n = args.unsubscribes * args.repeat + SPARE
    t = time.perf_counter()
    site = make_site(base, label, n, db_url)
    print(f"{label}: {n} contacts imported and sent the issue in {time.perf_counter() - t:.1f} s")
    addresses = sorted(site.unsubscribe_paths)
    random.Random(1).shuffle(addresses)
    app = serve(site, args.threads)
    try:
        status, page = request(app.port, "GET", ARCHIVE_PATH)
        body_file = base / f"archive-{label}.html"
        body_file.write_bytes(page)
        plain = static(body_file, args.threads)
        try:
            statics, apps = [], []
            posted: set[str] = set()
            for r in range(args.repeat):
                batch = addresses[r * args.unsubscribes:(r + 1) * args.unsubscribes]
                posted.update(batch)
                static_work = mix([ARCHIVE_PATH] * len(batch), args.gets, seed=r)
                statics.append(run_load(plain.port, static_work, args.clients, args.keepalive))
                work = mix([site.unsubscribe_paths[a] for a in batch], args.gets, seed=r)
                mailing = start_mailing(site, base, r) if args.while_sending else None
                apps.append(run_load(app.port, work, args.clients, args.keepalive))
                if mailing is not None:
                    print(f"  while sending: {finish_mailing(mailing)}")
        finally:
            plain.stop()
    finally:
        app.stop()
    lost = lost_unsubscribes(site, posted)
    if any(lost) or any(s >= 500 or s == 0 for load in apps for s in load.statuses()):
        errors = [line for line in app.output().splitlines() if "Task queue depth" not in line]
        print("  serve's output:\n" + "\n".join(errors)[-3000:])
    best_static = max(statics, key=Load.rate)
    best_app = max(apps, key=Load.rate)
    print(f"  archive page {len(page) / 1024:.0f} KiB (GET {status}); all runs, req/s: static "
          + " ".join(f"{x.rate():.0f}" for x in statics) + "; serve "
          + " ".join(f"{x.rate():.0f}" for x in apps))
    if any(lost):
        print(f"  LOST: {lost[0]} of {len(posted)} persons posted for are not unsubscribed, "
              f"suppressed and logged once; {lost[1]} others changed status")
    app_row = Row(f"serve, {label}", best_app, lost)
    rows = [Row(f"static page, {label}", best_static), app_row]
    print_rows(rows)
    if args.while_sending:
        print("  (no ratio: the sender shared the CPU and the database with serve)")
    else:
        print_ratios(best_app, best_static)
    queued = app.output().count("Task queue depth")
    if queued:
        print(f"  serve logged {queued} waitress 'Task queue depth' warnings (requests waiting "
              f"for one of its {args.threads} threads)")
    return rows[0], app_row


def print_ratios(app: Load, plain: Load) -> None:
    print(f"  serve / static: req/s {app.rate() / plain.rate():.2f}, p50 "
          f"{percentile(app.latencies(), 50) / percentile(plain.latencies(), 50):.1f}x, p99 "
          f"{percentile(app.latencies(), 99) / percentile(plain.latencies(), 99):.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--unsubscribes", type=int, default=500, help="one-click POSTs per run")
    parser.add_argument("--gets", type=int, default=2000, help="archive GETs per run")
    parser.add_argument("--clients", type=int, default=50, help="concurrent client threads")
    parser.add_argument("--threads", type=int, default=4, help="waitress threads (both servers)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per server (best shown)")
    parser.add_argument("--keepalive", action="store_true",
                        help="reuse each client's connection (default: a new one per request)")
    parser.add_argument("--while-sending", action="store_true",
                        help="send a mailing to everyone into the Maildir during each serve run")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument("--static-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.static_child:
        port, threads, body = args.static_child
        static_child(int(port), int(threads), Path(body))
        return

    print(f"{args.unsubscribes} one-click POSTs + {args.gets} archive GETs, {args.clients} "
          f"concurrent clients, {'keep-alive' if args.keepalive else 'a new connection each'}; "
          f"waitress with {args.threads} threads; {os.cpu_count()} CPU(s); best of "
          f"{args.repeat} interleaved runs")
    base = Path(tempfile.mkdtemp(prefix="web-bench-"))
    try:
        bench_database(args, base, "SQLite", None)
        if args.no_pg:
            return
        try:
            cluster = PgCluster()
        except PgUnavailable as exc:
            print(f"PostgreSQL skipped: {exc}")
            return
        with cluster:
            bench_database(args, base, "PostgreSQL", cluster.create_database("web_bench"))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
