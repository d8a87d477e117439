"""Benchmark: what the console's /statistik, the printable year page and /inkorg cost to render
for a year of a large site.

Builds a temp site whose database holds a year as the association would have it, at a scale
above today's: CONTACTS persons (positions in the member municipalities, a few unsubscribed
and bounced through the event log), twelve tracked issues each sent to all of them (one outbox
row per person, 16 tracked links with clicks), CONFIRMATIONS one-person webinar mailings, and
ENTRIES new intake entries. The rows are written in bulk with SQLAlchemy (a real send of the
year would take the benchmark minutes and measure the sender, not the pages). Then a staff
member signs in through a one-time link and each page is asked for REPEAT times through the
app (Flask's test client: no network). Prints the median and worst time per page and the
response size. Figures only, never pass/fail.

    python bench/console_bench.py [--contacts 5000] [--confirmations 500] [--entries 300]
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import insert, select

from newsletter import db, signin, staff
from newsletter.cli import main as cli
from newsletter.console import create_app
from newsletter.console.context import background_of
from newsletter.models import (
    Event,
    IntakeEntry,
    Mailing,
    Municipality,
    OutboxRow,
    Person,
    Position,
    TrackedLink,
)
from newsletter.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
ENV = {"NEWSLETTER_SECRET_KEY": "bench-secret-key-not-for-production"}
YEAR = 2026
EDITOR = "bench.redaktor@example.se"
AREAS = ["medlemmar", "bostad", "kapital", "omvarld", "digitalisering", "infrastruktur",
         "arbetsmarknad"]


def _site(folder: Path) -> Path:
    folder.mkdir()
    text = (ROOT / "newsletter.toml").read_text(encoding="utf-8")
    (folder / "newsletter.toml").write_text(re.sub(r"(?m)^clicks = .*$", "clicks = true", text),
                                            encoding="utf-8")
    shutil.copytree(ROOT / "templates", folder / "templates")
    result = CliRunner().invoke(cli, ["--root", str(folder), "init"], env=ENV)
    assert result.exit_code == 0, result.output
    return folder


def _fill(settings, contacts: int, confirmations: int, entries: int) -> None:
    engine = db.make_engine(settings.db_url)
    start = datetime(YEAR, 1, 5, 9, 0, tzinfo=UTC)
    with db.session_factory(engine)() as s, s.begin():
        places = list(s.scalars(select(Municipality.id).limit(70)))
        s.execute(insert(Person), [
            {"email": f"p{i:05d}@example.se", "name": f"Demo {i}",
             "public_id": secrets.token_hex(8), "status": "active",
             "created_at": start + timedelta(minutes=i)} for i in range(contacts)])
        ids = list(s.scalars(select(Person.id).order_by(Person.id)))
        s.execute(insert(Position), [
            {"person_id": pid, "municipality_id": places[n % len(places)],
             "role": ("kommunchef", "kso", "politiker", "tjansteperson")[n % 4],
             "started_on": start.date()} for n, pid in enumerate(ids)])
        s.execute(insert(Event), [
            {"kind": "unsubscribed" if n % 2 else "bounced", "person_id": pid,
             "at": start + timedelta(days=30 + n % 300), "detail": {}}
            for n, pid in enumerate(ids[::50])])
        for month in range(1, 13):
            sent = datetime(YEAR, month, 3, 8, 0, tzinfo=UTC)
            mailing = Mailing(kind="issue", source=f"{YEAR}-{month:02d}", segment="medlemmar",
                              subject=f"Nyhetsbrevet {month}/{YEAR} (demodata)", status="done",
                              created_at=sent, finished_at=sent, meta={})
            s.add(mailing)
            s.flush()
            s.execute(insert(OutboxRow), [
                {"mailing_id": mailing.id, "person_id": pid, "variant_key": "all",
                 "message_id": f"<{mailing.id}.{pid}@bench.example.se>",
                 "status": "sent" if n % 97 else "failed", "attempts": 1, "sent_at": sent,
                 "last_error": None if n % 97 else "hard bounce: 550 5.1.1 demo"}
                for n, pid in enumerate(ids)])
            s.execute(insert(TrackedLink), [
                {"mailing_id": mailing.id, "number": k, "url": f"https://example.se/{k}",
                 "item": f"{k:02d}-nyhet", "title": f"Nyhet {k} i nummer {month}",
                 "area": AREAS[k % len(AREAS)], "clicks": (k * 7 + month) % 60,
                 "unique_clicks": (k * 5 + month) % 40, "readers": (k * 3 + month) % 30,
                 "area_readers": (k * 2 + month) % 25, "scanner_hits": k % 4}
                for k in range(1, 17)])
        for n in range(confirmations):
            when = start + timedelta(hours=n * 7)
            mailing = Mailing(kind="webinar", source=f"bredband:confirm:{n}",
                              segment=f"person:{secrets.token_hex(8)}",
                              subject="Välkommen till webbinariet (demodata)", status="done",
                              created_at=when, finished_at=when, meta={"transactional": True})
            s.add(mailing)
            s.flush()
            s.add(OutboxRow(mailing_id=mailing.id, person_id=ids[n % len(ids)],
                            variant_key="one", message_id=f"<c{n}@bench.example.se>",
                            status="sent", attempts=1, sent_at=when))
        s.execute(insert(IntakeEntry), [
            {"feed": "sou", "kind": "utredning", "guid_key": secrets.token_hex(16),
             "url_key": secrets.token_hex(16), "url": f"https://www.regeringen.se/sou/{n}",
             "title": f"Utredning {n} om bostadsförsörjning och infrastruktur (demodata)",
             "summary": "En sammanfattning av utredningen. " * 8, "status": "new",
             "suggested_area": AREAS[n % len(AREAS)] if n % 5 else None,
             "score": 1.5, "reason": {"words": ["bostad"]},
             "published_at": start + timedelta(hours=n)} for n in range(entries)])
    engine.dispose()


def _client(settings):
    app = create_app(settings)
    engine = db.make_engine(settings.db_url)
    with db.session_factory(engine)() as s, s.begin():
        member = staff.add_staff(s, EDITOR, name="Bench", role="redaktor")
        token = signin.issue_link_token(s, settings, member)
    engine.dispose()
    client = app.test_client()
    page = client.get(f"/logga-in/lank/{token}")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    assert client.post(f"/logga-in/lank/{token}", data={"csrf": csrf}).status_code == 303
    return app, client


def _time(client, path: str, repeat: int) -> None:
    times, size = [], 0
    for _n in range(repeat):
        started = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, (path, response.status_code)
        size = len(response.data)
    ms = [t * 1000 for t in times]
    print(f"{path:<28} median {statistics.median(ms):8.1f} ms  worst {max(ms):8.1f} ms"
          f"  {size / 1024:7.1f} KiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=5000)
    parser.add_argument("--confirmations", type=int, default=500)
    parser.add_argument("--entries", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(ENV)
        root = _site(Path(tmp) / "site")
        settings = load_settings(root, env={**os.environ, **ENV})
        started = time.perf_counter()
        _fill(settings, args.contacts, args.confirmations, args.entries)
        rows = 12 * args.contacts + args.confirmations
        print(f"{args.contacts} contacts, 12 tracked issues and {args.confirmations} "
              f"confirmations ({rows} outbox rows), {args.entries} intake entries: "
              f"written in {time.perf_counter() - started:.1f} s")
        app, client = _client(settings)
        try:
            for path in (f"/statistik?ar={YEAR}", f"/statistik/ar/{YEAR}",
                         "/statistik/utskick/1", "/inkorg", "/nummer/2026-12/forhandsgranska"):
                _time(client, path, args.repeat)
        finally:
            background_of(app).stop()


if __name__ == "__main__":
    main()
