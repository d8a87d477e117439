"""Send benchmark: the whole engine against Postfix's smtp-sink on 127.0.0.1.

    /work/venv/bin/python bench/send_bench.py [--n 10000] [--n-small 2000] [--naive-n 300]
                                              [--connections 2]

For each of two sizes (N_SMALL and N contacts) it builds a temp site, imports the contacts through
`newsletter contacts import`, and runs `newsletter send issue 2026-12 --to medlemmar --yes` over
`--connections` SMTP connections into smtp-sink, in a child process whose peak RSS is read with
wait4(). It then measures, into the same sink, a trivial smtplib client sending ready-made messages
of the engine's size over the same number of connections (as processes and as threads), and a
naive loop that runs the whole Jinja -> MJML -> premailer -> EmailMessage pipeline per recipient.

Each measurement runs --repeat times, interleaved, and the best run is reported (other work on
the machine only ever slows a run down). Rates are taken from smtp-sink's own message counter
(first to last message it received), so
the engine's figure is its sending phase; the command's wall time (start-up, rendering, outbox)
is printed beside it. Prints figures and ratios; it never passes or fails. Only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing import Process
from pathlib import Path

from pgcluster import free_port
from population import AREAS, FIRST, LAST, ROLES, generate
from sqlalchemy import func, select

from newsletter import db
from newsletter.messages import MessageTemplate
from newsletter.models import OutboxRow
from newsletter.outbox import creating
from newsletter.settings import load_settings
from newsletter.sources import Recipient

REPO = Path(__file__).resolve().parent.parent
SINK = "/usr/sbin/smtp-sink"
MONTH = "2026-12"
SECRET = "bench-secret-key-not-for-production"


# --- the sink --------------------------------------------------------------------------------

class Sink:
    """smtp-sink on 127.0.0.1, with the time each message arrived (from its -c counter);
    OPTIONS are more of its options (e.g. "-w", "1": answer DATA after a second)."""

    def __init__(self, *options: str) -> None:
        self.port = free_port()
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.proc = subprocess.Popen([SINK, *user, *options, "-c", f"127.0.0.1:{self.port}",
                                      "1000"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.count = 0
        self.stamps: list[tuple[float, int]] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("smtp-sink did not start")

    def _read(self) -> None:
        buf = b""
        while chunk := self.proc.stdout.read1(65536):
            now = time.perf_counter()
            *lines, buf = (buf + chunk).split(b"\r")
            for line in lines:
                if b"mesg=" in line:
                    with self._lock:
                        self.count = int(line.rsplit(b"mesg=", 1)[1])
                        self.stamps.append((now, self.count))

    def mark(self) -> int:
        with self._lock:
            self.stamps.clear()
            return self.count

    def rate(self, start_count: int, expected: int, timeout: float = 30) -> tuple[float, int]:
        """(messages/s from the first to the last message after START_COUNT, messages seen)."""
        stamps, got = self.span(start_count, expected, timeout)
        if len(stamps) < 2:
            return 0.0, got
        (t0, c0), (t1, c1) = stamps[0], stamps[-1]
        return (c1 - c0) / (t1 - t0), got

    def span(self, start_count: int, expected: int, timeout: float = 30
             ) -> tuple[list[tuple[float, int]], int]:
        """(arrival stamps (perf_counter, count) after START_COUNT, messages seen), once EXPECTED
        messages arrived or TIMEOUT passed."""
        deadline = time.monotonic() + timeout
        while self.count - start_count < expected and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        with self._lock:
            return [s for s in self.stamps if s[1] > start_count], self.count - start_count

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


# --- child processes -------------------------------------------------------------------------

@dataclass
class Child:
    returncode: int
    wall: float
    max_rss_mib: float
    stdout: str
    stderr: str


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> Child:
    """Run CMD to the end; its peak RSS comes from wait4 (ru_maxrss, KiB on Linux)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        return Child(proc.returncode, wall, usage.ru_maxrss / 1024,
                     out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"))


def newsletter(site: Path, *args: str, env: dict[str, str] | None = None) -> Child:
    child = run_child([sys.executable, "-m", "newsletter", "--root", str(site), *args],
                      env={**os.environ, "NEWSLETTER_SECRET_KEY": SECRET, **(env or {})})
    if child.returncode != 0:
        raise SystemExit(f"newsletter {' '.join(args)} failed ({child.returncode}):\n"
                         f"{child.stdout[-2000:]}\n{child.stderr[-2000:]}")
    return child


# --- a site with N contacts ------------------------------------------------------------------

def make_site(base: Path, n: int) -> Path:
    """A temp site with the repository's config, templates and issues, and N member contacts."""
    site = base / f"site-{n}"
    site.mkdir()
    shutil.copy(REPO / "newsletter.toml", site / "newsletter.toml")
    for folder in ("templates", "issues"):
        shutil.copytree(REPO / folder, site / folder, ignore=shutil.ignore_patterns("build"))
    newsletter(site, "init")
    rng = random.Random(4)
    with (REPO / "newsletter" / "data" / "municipalities.csv").open(encoding="utf-8") as fh:
        names = [row["name"] for row in csv.DictReader(fh)]
    members = rng.sample(names, 70)
    newsletter(site, "municipalities", "members", *members)
    path = base / f"kontakter-{n}.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["email", "name", "municipality", "role", "areas"])
        for i in range(n):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            areas = ";".join(rng.sample(AREAS, rng.randint(1, 3))) if rng.random() < 0.2 else ""
            writer.writerow([f"kontakt{i:06d}@example.se", f"{first} {last}",
                             members[i % len(members)], rng.choice(ROLES), areas])
    newsletter(site, "contacts", "import", str(path))
    return site



def generated_site(base: Path, n: int, name: str) -> tuple[Path, Path]:
    """A temp site BASE/NAME with N contacts from population.generate (quicker than an import
    for large N), and a pristine copy of its database (BASE/pristine-NAME.db) to restore."""
    site = base / name
    site.mkdir()
    shutil.copy(REPO / "newsletter.toml", site / "newsletter.toml")
    for folder in ("templates", "issues"):
        shutil.copytree(REPO / folder, site / folder, ignore=shutil.ignore_patterns("build"))
    newsletter(site, "init")
    generate(f"sqlite:///{site / 'subscribers.db'}", n)
    pristine = base / f"pristine-{name}.db"
    shutil.copy(site / "subscribers.db", pristine)
    return site, pristine


# --- the engine ------------------------------------------------------------------------------

@dataclass
class EngineRun:
    n: int
    rate: float
    received: int
    wall: float
    max_rss_mib: float



def run_engine(site: Path, n: int, sink: Sink, connections: int) -> EngineRun:
    before = sink.mark()
    child = newsletter(site, "send", "issue", MONTH, "--to", "medlemmar", "--yes",
                       env={"NEWSLETTER_TRANSPORT": f"smtp://127.0.0.1:{sink.port}",
                            "NEWSLETTER_CONNECTIONS": str(connections)})
    rate, received = sink.rate(before, n)
    return EngineRun(n, rate, received, child.wall, child.max_rss_mib)


def sample_message(site: Path) -> bytes:
    """One message as the engine builds it (full variant), for the trivial client's size."""
    from newsletter.content import load_issue
    from newsletter.messages import MessageTemplate
    from newsletter.render import IssueRenderer
    from newsletter.settings import load_settings
    from newsletter.sources import Recipient

    settings = load_settings(site, env={**os.environ, "NEWSLETTER_SECRET_KEY": SECRET})
    renderer = IssueRenderer(settings, load_issue(settings, MONTH))
    template = MessageTemplate(settings, renderer.render(renderer.all_key))
    return template.build(Recipient(
        email="kontakt000001@example.se", name="Åsa Öberg",
        message_id="<1.bench@nyhetsbrev.example.se>",
        unsubscribe_url=f"{settings.organisation.base_url}/u/x" + "A" * 40,
        preferences_url=f"{settings.organisation.base_url}/p/x" + "A" * 40))


# --- the trivial client ----------------------------------------------------------------------

def _trivial_connection(port: int, message: bytes, count: int) -> None:
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for i in range(count):
            smtp.sendmail("bounces@example.se", [f"kontakt{i:06d}@example.se"], message)


def run_trivial(sink: Sink, message: bytes, n: int, connections: int, *, threads: bool) -> float:
    """Messages/s of ready-made MESSAGE, N in all, over CONNECTIONS processes or threads."""
    share = [n // connections + (1 if i < n % connections else 0) for i in range(connections)]
    kind = threading.Thread if threads else Process
    workers = [kind(target=_trivial_connection, args=(sink.port, message, k)) for k in share]
    before = sink.mark()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sink.rate(before, n)[0]


# --- the whole command ----------------------------------------------------------------------

@dataclass
class WholeRun:
    """`send issue` from spawn to exit: start-up, creating the mailing, sending, finishing."""

    n: int
    received: int
    wall: float  # spawn to exit
    first: float  # spawn to the sink's first message (start-up, creating, the first claim)
    sending: float  # the sink's first message to its last
    max_rss_mib: float

    @property
    def rate(self) -> float:
        return self.received / self.wall


def run_whole(site: Path, n: int, sink: Sink, connections: int) -> WholeRun:
    before = sink.mark()
    start = time.perf_counter()
    child = newsletter(site, "send", "issue", MONTH, "--to", "medlemmar", "--yes",
                       env={"NEWSLETTER_TRANSPORT": f"smtp://127.0.0.1:{sink.port}",
                            "NEWSLETTER_CONNECTIONS": str(connections)})
    stamps, received = sink.span(before, n)
    first, last = (stamps[0][0], stamps[-1][0]) if stamps else (start, start)
    return WholeRun(n, received, child.wall, first - start, last - first, child.max_rss_mib)


def mean_message(site: Path) -> tuple[float, int]:
    """(mean size in bytes of the messages the site's mailing sent, its number of variants):
    one message built per frozen variant, weighted by its recipients."""
    settings = load_settings(site, env={**os.environ, "NEWSLETTER_SECRET_KEY": SECRET})
    engine = db.make_engine(settings.db_url)
    recipient = Recipient(email="kontakt0000001@example.se", name="Åsa Öberg",
                          message_id="<1.bench@nyhetsbrev.example.se>",
                          unsubscribe_url=f"{settings.organisation.base_url}/u/x" + "A" * 40,
                          preferences_url=f"{settings.organisation.base_url}/p/x" + "A" * 40)
    try:
        with db.session_factory(engine)() as s:
            counts = s.execute(select(OutboxRow.mailing_id, OutboxRow.variant_key, func.count())
                               .group_by(OutboxRow.mailing_id, OutboxRow.variant_key)).all()
            total = sum(count * len(MessageTemplate(settings, creating.frozen(s, m, key))
                                    .build(recipient)) for m, key, count in counts)
    finally:
        engine.dispose()
    return total / sum(count for _m, _k, count in counts), len(counts)


def sized_message(sample: bytes, size: int) -> bytes:
    """SAMPLE's headers and a plain body of 76-character lines, SIZE bytes in all: what the bare
    client sends (smtplib's cost goes with the bytes and lines, not with what they say)."""
    head = sample[:sample.index(b"\r\n\r\n") + 4]
    head = b"".join(line for line in head.splitlines(keepends=True)
                    if not line.lower().startswith((b"content-type", b"content-transfer",
                                                   b" boundary")))
    head = head.replace(b"MIME-Version: 1.0\r\n", b"MIME-Version: 1.0\r\nContent-Type: "
                        b"text/plain; charset=us-ascii\r\n")
    lines, rest = divmod(max(0, size - len(head)), 78)
    return head + (b"x" * 76 + b"\r\n") * lines + b"x" * max(0, rest - 2) + b"\r\n"[:rest]


# The bare client as a child of its own: only smtplib and multiprocessing to import, so that
# its start-up is what a bare client's is (this module imports the newsletter package).
BARE_CLIENT = """
import smtplib, sys
from multiprocessing import Process
port, n, connections, path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
message = open(path, "rb").read()
def send(count):
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for i in range(count):
            smtp.sendmail("bounces@example.se", [f"kontakt{i:07d}@example.se"], message)
if __name__ == "__main__":
    workers = [Process(target=send, args=(n // connections + (i < n % connections),))
               for i in range(connections)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
"""


def run_bare(sink: Sink, n: int, connections: int, message_file: Path) -> WholeRun:
    """The bare client as a child process, from spawn to exit (its start-up counts too)."""
    before = sink.mark()
    start = time.perf_counter()
    child = run_child([sys.executable, "-c", BARE_CLIENT, str(sink.port), str(n),
                       str(connections), str(message_file)])
    stamps, received = sink.span(before, n)
    first, last = (stamps[0][0], stamps[-1][0]) if stamps else (start, start)
    return WholeRun(n, received, child.wall, first - start, last - first, child.max_rss_mib)


# --- the naive loop --------------------------------------------------------------------------

def naive_loop(site: str, port: int, n: int) -> None:
    """Child mode: the whole pipeline per recipient, one connection; prints its own rate."""
    from email.message import EmailMessage
    from email.policy import SMTP
    from email.utils import format_datetime, make_msgid

    from sqlalchemy import select

    from newsletter import db, links
    from newsletter.content import load_issue
    from newsletter.models import Position
    from newsletter.render import IssueRenderer
    from newsletter.segments import recipients_query
    from newsletter.settings import load_settings
    from newsletter.sources import personalise, recipient_for

    settings = load_settings(site)
    policy = SMTP.clone(max_line_length=998)
    org = settings.organisation
    with db.transaction(db.session_factory(db.make_engine(settings.db_url))) as session:
        people = list(session.scalars(recipients_query(settings, "medlemmar").limit(n)))
        roles = {pid: set() for pid in (p.id for p in people)}
        for pid, role in session.execute(select(Position.person_id, Position.role)):
            roles.get(pid, set()).add(role)
        start = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            issue = load_issue(settings, MONTH)
            for person in people:
                renderer = IssueRenderer(settings, issue)  # nothing cached between recipients
                areas = frozenset(a.area for a in person.areas) or None
                rendered = personalise(
                    renderer.render(renderer.variant_key(areas, frozenset(roles[person.id]))),
                    recipient_for(settings, person))
                msg = EmailMessage()
                msg["From"] = f"{org.sender_name} <{org.sender}>"
                msg["To"] = f"{person.name} <{person.email}>"
                msg["Subject"] = rendered.subject
                msg["Date"] = format_datetime(datetime.now(UTC))
                msg["Message-ID"] = make_msgid(domain=org.list_id)
                msg["Reply-To"] = org.reply_to
                msg["List-Unsubscribe"] = (f"<{links.unsubscribe_url(settings, person)}>, "
                                           f"<mailto:{org.unsubscribe_mailto}>")
                msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
                msg.set_content(rendered.text, cte="quoted-printable")
                msg.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
                smtp.sendmail(org.sender, [person.email], msg.as_bytes(policy=policy))
        print(f"{len(people) / (time.perf_counter() - start):.1f}")


# --- the report ------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="contacts in the big run")
    parser.add_argument("--n-small", type=int, default=2_000, help="contacts in the small run")
    parser.add_argument("--naive-n", type=int, default=300, help="recipients of the naive loop")
    parser.add_argument("--connections", type=int, default=2, help="SMTP connections")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each measurement (interleaved; the best is reported)")
    parser.add_argument("--whole", type=int, default=50_000,
                        help="contacts of the whole-command comparison (0: skip it)")
    parser.add_argument("--whole-only", action="store_true",
                        help="only the whole-command comparison (quicker, to try a change)")
    parser.add_argument("--naive-child", nargs=3, metavar=("SITE", "PORT", "N"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive_child:
        site, port, n = args.naive_child
        naive_loop(site, int(port), int(n))
        return
    if not Path(SINK).exists():
        raise SystemExit(f"{SINK} not found: apt-get install postfix")

    sink = Sink()
    base = Path(tempfile.mkdtemp(prefix="send-bench-"))
    try:
        report(args, sink, base)
    finally:
        sink.stop()
        shutil.rmtree(base, ignore_errors=True)


def restore(site: Path, pristine: Path) -> None:
    """The site's database as it was after the import: no mailing yet."""
    for path in site.glob("subscribers.db*"):
        path.unlink()
    shutil.copy(pristine, site / "subscribers.db")


def report(args: argparse.Namespace, sink: Sink, base: Path) -> None:
    c, reps = args.connections, args.repeat
    if args.whole_only:
        site = make_site(base, 10)
        whole(args, sink, base, sample_message(site))
        return
    print(f"smtp-sink on 127.0.0.1:{sink.port}; {c} connection(s); {os.cpu_count()} CPU(s); "
          f"best of {reps} interleaved runs")
    sites: dict[int, tuple[Path, Path]] = {}
    for n in sorted({args.n_small, args.n}):
        t = time.perf_counter()
        site = make_site(base, n)
        pristine = base / f"pristine-{n}.db"
        shutil.copy(site / "subscribers.db", pristine)
        sites[n] = (site, pristine)
        print(f"site with {n} contacts ready in {time.perf_counter() - t:.1f} s")
    message = sample_message(sites[args.n][0])
    engine: dict[int, list[EngineRun]] = {n: [] for n in sites}
    trivial_p: list[float] = []
    trivial_t: list[float] = []
    for _ in range(reps):
        for n, (site, pristine) in sites.items():
            restore(site, pristine)
            engine[n].append(run_engine(site, n, sink, c))
        trivial_p.append(run_trivial(sink, message, args.n, c, threads=False))
        trivial_t.append(run_trivial(sink, message, args.n, c, threads=True))
    env = {**os.environ, "NEWSLETTER_SECRET_KEY": SECRET}
    naive = run_child([sys.executable, __file__, "--naive-child", str(sites[args.n_small][0]),
                       str(sink.port), str(args.naive_n)], env=env)
    if naive.returncode != 0:
        raise SystemExit(f"naive loop failed:\n{naive.stderr[-2000:]}")
    naive_rate = float(naive.stdout.strip().splitlines()[-1])

    best = {n: max(runs, key=lambda r: r.rate) for n, runs in engine.items()}
    rss = {n: max(r.max_rss_mib for r in runs) for n, runs in engine.items()}
    big, tp, tt = best[args.n], max(trivial_p), max(trivial_t)
    print(f"\nmessage size: {len(message) / 1024:.1f} KiB (full variant)")
    print(f"{'':<46}{'msgs/s':>8}{'peak RSS':>11}{'wall':>8}   all runs (msgs/s)")
    for n, run in best.items():
        print(f"{f'engine, N={n} (sink got {run.received})':<46}{run.rate:>8.0f}"
              f"{rss[n]:>7.0f} MiB{run.wall:>7.1f}s   "
              + " ".join(f"{r.rate:.0f}" for r in engine[n]))
    for label, rates in ((f"{c} processes", trivial_p), (f"{c} threads", trivial_t)):
        print(f"{f'trivial smtplib, {label}, N={args.n}':<46}{max(rates):>8.0f}{'':>19}   "
              + " ".join(f"{r:.0f}" for r in rates))
    print(f"{f'naive loop (pipeline per recipient), N={args.naive_n}':<46}{naive_rate:>8.1f}"
          f"{naive.max_rss_mib:>7.0f} MiB")
    print()
    print(f"engine / trivial client ({c} processes): {big.rate / tp:6.0%}   (goal >= 70%)")
    print(f"engine / trivial client ({c} threads):   {big.rate / tt:6.0%}")
    print(f"engine / naive loop:                    {big.rate / naive_rate:6.1f}x  (goal >= 12x)")
    if len(best) > 1:
        small = min(best)
        print(f"engine peak RSS, N={small} -> N={args.n}: {rss[small]:.0f} -> {rss[args.n]:.0f} "
              f"MiB ({rss[args.n] / rss[small]:.2f}x for {args.n / small:.0f}x the recipients)")
    if args.whole:
        whole(args, sink, base, message)


def whole(args: argparse.Namespace, sink: Sink, base: Path, sample: bytes) -> None:
    """The whole command against a bare client with messages of the same mean size."""
    c, reps, n = args.connections, args.repeat, args.whole
    t = time.perf_counter()
    site, pristine = generated_site(base, n, f"whole-{n}")
    print(f"\nsite with {n} generated contacts ready in {time.perf_counter() - t:.1f} s")
    engine_runs: list[WholeRun] = []
    bare_runs: list[WholeRun] = []
    message_file = base / "bare-message.eml"
    size = variants = 0.0
    for rep in range(reps):
        restore(site, pristine)
        engine_runs.append(run_whole(site, n, sink, c))
        if rep == 0:
            size, variants = mean_message(site)
            message_file.write_bytes(sized_message(sample, round(size)))
        bare_runs.append(run_bare(sink, n, c, message_file))
    eng, bare = max(engine_runs, key=lambda r: r.rate), max(bare_runs, key=lambda r: r.rate)
    print(f"the whole command, {n} recipients, {c} connection(s), messages of "
          f"{size / 1024:.1f} KiB on average ({variants:.0f} variants); best of {reps}:")
    print(f"{'':<52}{'msgs/s':>8}{'wall':>8}{'first msg':>11}{'sending':>9}{'peak RSS':>10}"
          "   all runs (msgs/s)")
    for label, best_run, runs in (
            ("newsletter send issue (start-up, create, send)", eng, engine_runs),
            (f"bare smtplib, {c} processes, same mean size", bare, bare_runs)):
        print(f"{label:<52}{best_run.rate:>8.0f}{best_run.wall:>7.1f}s{best_run.first:>10.1f}s"
              f"{best_run.sending:>8.1f}s{best_run.max_rss_mib:>6.0f} MiB   "
              + " ".join(f"{r.rate:.0f}" for r in runs))
    print(f"whole command / bare client:            {eng.rate / bare.rate:6.0%}   (goal >= 90%)")


if __name__ == "__main__":
    main()
