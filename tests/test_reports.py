"""Reports from a scripted send: SMTP refusals, delivery reports, unsubscribes, readers, scanners.

One tracked issue goes over SMTP to the test server; one address is refused (5.1.1), delivery
reports bounce another later and delay a third, three unsubscribe (one of them ten days after
their message), one is erased, readers and a Safe Links-like scanner follow the links. Then
`newsletter report` for the mailing, the month and the year, with the CSV and the year page,
which is also looked at in headless Chromium at 375 px.
"""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from newsletter import db, links
from newsletter.models import Mailing, OutboxRow, Person
from newsletter.report_tables import build
from newsletter.reports import month_report
from newsletter.web import clicks, create_app

from .browser import chromium, screenshot_path
from .helpers import (
    CLICK,
    PATTERNS,
    Clock,
    check_message,
    enable_tracking,
    replay,
    seed,
    token,
)

HUMAN = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
SAFE_LINKS = PATTERNS["scenarios"][0]


def _dsn(path, recipient: str, message_id: str, action: str, status: str) -> None:
    """A delivery status notification (RFC 3464) about RECIPIENT's copy of MESSAGE_ID."""
    path.write_bytes(f"""From: MAILER-DAEMON@mx.example.se
To: nyhetsbrev@example.se
Subject: Delivery Status Notification (demo data)
Message-ID: <dsn-{status}-{recipient}>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

The mail system could not deliver the message to {recipient}.
--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.se

Final-Recipient: rfc822; {recipient}
Action: {action}
Status: {status}

--B
Content-Type: text/rfc822-headers

Message-ID: {message_id}
To: {recipient}

--B--
""".replace("\n", "\r\n").encode("ascii"))


@pytest.fixture
def scripted(site, smtp_server, tmp_path):
    """The site after the scripted send, reports, unsubscribes, erasure and clicks."""
    enable_tracking(site)
    seed(site, 12)  # p000..p011 in six municipalities of Västerbotten; every third kommunchef
    site.cli("contacts", "add", "ragnar@example.se", "--municipality", "Ragunda", "--role", "kso")
    site.cli("contacts", "add", "rut@example.se", "--municipality", "Ragunda", "--role", "kso")
    site.cli("municipalities", "members", "Ragunda")
    smtp_server.reject(["p003@example.se"])
    site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--yes",
             env={"NEWSLETTER_TRANSPORT": smtp_server.url})
    ids = {m.rcpt_tos[0]: re.search(rb"Message-ID: (<[^>]+>)", m.data).group(1).decode()
           for m in smtp_server.messages}
    _dsn(tmp_path / "hard.eml", "p004@example.se", ids["p004@example.se"], "failed", "5.1.1")
    _dsn(tmp_path / "delay.eml", "p005@example.se", ids["p005@example.se"], "delayed", "4.4.1")
    for name in ("hard.eml", "delay.eml"):
        site.cli("bounces", "process", str(tmp_path / name))

    app = create_app(site.settings)
    clock = Clock()
    clicks.install(app, now=clock)
    client = app.test_client()
    with db.transaction(site.sessions()) as s:  # p008 got it ten days before unsubscribing
        p008 = s.scalar(select(Person.id).where(Person.email == "p008@example.se"))
        s.execute(update(OutboxRow).where(OutboxRow.person_id == p008).values(
            sent_at=datetime.now(UTC) - timedelta(days=10)))
    for who in ("p006@example.se", "p007@example.se", "p008@example.se"):
        got = client.post(f"/u/{token(site, links.UNSUBSCRIBE, who)}",
                          data={"List-Unsubscribe": "One-Click"})
        assert got.status_code == 200
    site.cli("contacts", "forget", "p009@example.se", "--yes")

    html = check_message(smtp_server.messages[0].data).get_body(("html",)).get_content()
    paths = {int(t.split(".")[0].split("-")[1]): f"/l/{t}" for t in CLICK.findall(html)}
    for i in range(6):  # six readers open link 2 (bostad), two of them link 10 too
        reader = {"headers": {"User-Agent": HUMAN}, "environ_base": {"REMOTE_ADDR": f"192.0.2.{i}"}}
        assert client.get(paths[2], **reader).status_code == 302
        if i < 2:
            clock.now += timedelta(seconds=30)
            client.get(paths[10], **reader)
    replay(client, paths, SAFE_LINKS["requests"], clock)
    return site


def _lines(output: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in output.splitlines()]


def test_the_mailing_report(scripted):
    site = scripted
    with db.transaction(site.sessions()) as s:
        mailing_id = s.scalar(select(Mailing.id))
    out = site.cli("report", str(mailing_id)).stdout
    rows = {r[0]: r[1:] for r in _lines(out) if len(r) > 1}
    assert rows["Mottagare"] == ["14"]
    assert rows["Skickade"] == ["13"]  # p003 refused at once
    assert rows["Studsade"] == ["2"]  # p003 by SMTP, p004 by a report afterwards
    assert rows["Uppskjutna"] == ["1"]  # p005: a delay report
    assert rows["Misslyckade"] == ["0"]
    assert rows["Avregistrerade inom 7 dagar"] == ["2"]  # p008 left after ten days
    assert rows["Klick av läsare"] == ["8"]
    assert rows["Läsare som klickade (uppskattning)"] == ["6"]
    assert rows["Anrop från länkskannrar som inte räknas"] == [str(2 * PATTERNS["links"])]
    assert rows["Bostadsförsörjning"] == ["6", "6"]
    assert rows["Bredbandsutbyggnad, mobiltäckning och digitalis…"] == ["<5", "<5"]
    assert rows["Infrastruktur"] == ["<5", "<5"]  # no click at all: <5 too
    assert "Antal under 5 visas som <5." in out


def test_the_month_and_its_list(scripted):
    site = scripted
    now = datetime.now(UTC)
    month = now.astimezone(ZoneInfo(site.settings.organisation.timezone)).strftime("%Y-%m")
    with db.transaction(site.sessions()) as s:
        report = month_report(s, site.settings, month, now=now)
        built = build(s, site.settings, month, now=now)
    health = report.health
    assert health.total.new == 13  # fourteen came, p009 has been erased since
    assert health.erased == 1
    assert (health.total.unsubscribed, health.total.bounced) == (3, 2)
    assert health.total.size == 13 - 3 - 2
    assert health.by_role["politiker"].size == 5 and health.by_role["kommunchef"].size == 1
    assert health.by_county["Jämtlands län"].size == 2
    tables = {t.title: t for t in built.tables}
    by_role = {r[0]: r[1:] for r in tables[f"Listan per roll, {month}"].rows}
    assert by_role["Förtroendevald"] == ("5", "8", "<5", "<5")
    assert by_role["Kommunchef"] == ("<5", "<5", "<5", "<5")
    by_county = {r[0]: r[1:] for r in tables[f"Listan per län, {month}"].rows}
    assert by_county["Västerbottens län"] == ("6", "11", "<5", "<5")
    assert by_county["Jämtlands län"] == ("<5", "<5", "<5", "<5")
    # The CLI prints the same tables.
    out = site.cli("report", month).stdout
    assert "Listan per län" in out and "Västerbottens län" in out


def test_the_year_as_csv_and_as_a_page_on_a_phone(scripted, tmp_path):
    site = scripted
    out_csv, out_html = tmp_path / "year.csv", tmp_path / "year.html"
    result = site.cli("report", "--year", "2026", "--csv", str(out_csv), "--html", str(out_html))
    assert "Numren 2026" in result.stdout
    raw = out_csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert ["Bostadsförsörjning", "6", "6"] in rows
    issue = next(r for r in rows if r and r[0] == "2026-12")
    assert issue[2:9] == ["14", "13", "2", "2", "8", "6", str(2 * PATTERNS["links"])]
    html = out_html.read_text(encoding="utf-8")
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 375, "height": 740})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(out_html.as_uri())
        page.screenshot(path=str(screenshot_path("report-year-375.png")), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        charts = page.locator("svg.chart")
        assert charts.count() >= 3
        for i in range(charts.count()):
            svg = charts.nth(i)
            assert svg.get_attribute("role") == "img"
            labelled = svg.get_attribute("aria-labelledby").split()
            assert all(page.locator(f"[id='{x}']").count() == 1 for x in labelled)
            box = svg.bounding_box()
            assert box["width"] <= 375 and box["x"] >= 0
        # Every chart has its table beside it, with the same figures.
        for section in ("areas", "items", "growth"):
            assert page.locator(f"section[aria-labelledby='{section}-h'] table").count() == 1
        areas = page.locator("section[aria-labelledby='areas-h'] table")
        assert "6" in areas.locator("tr", has_text="Bostadsförsörjning").inner_text()
        assert "<5" in areas.inner_text()
        font = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
        assert font >= 16
        assert errors == []
