"""/statistik (issue 14 item 3): the year's charts beside their tables, each mailing's delivery,
the list's health, a mailing's own report and the printable year page, from a real send over
SMTP and real clicks through the public pages."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime
from html import unescape

import pytest
from sqlalchemy import select

from newsletter.models import Mailing

from .console_support import start_console, stop_console
from .helpers import enable_tracking, future_start, new_webinar, read_tracked_issue, seed

YEAR = 2026


@pytest.fixture
def sent(site, smtp_server):
    """Issue 2026-12 sent with tracking to twelve contacts (one refused by the server), read
    (helpers.read_tracked_issue: six readers of a bostad item)."""
    enable_tracking(site)
    seed(site, 12)
    smtp_server.reject(["p003@example.se"])
    site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--yes",
             env={"NEWSLETTER_TRANSPORT": smtp_server.url})
    site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--test-to", "red@example.se",
             env={"NEWSLETTER_TRANSPORT": smtp_server.url})  # a test copy: in no report
    read_tracked_issue(site, smtp_server.messages[0].data)
    console = start_console(site)
    yield console
    stop_console(console)


def _table(html: str, table_id: str) -> dict[str, list[str]]:
    """The rows of the table with TABLE_ID: first cell (text) -> the other cells."""
    body = html[html.index(f'id="{table_id}"'):]
    body = body[:body.index("</table>")]
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.DOTALL):
        cells = [unescape(re.sub(r"<[^>]+>", "", c)).strip()
                 for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.DOTALL)]
        rows[cells[0]] = cells[1:]
    return rows


def test_the_year_charts_with_their_tables_small_counts_hidden(sent):
    page = sent.signed_in("redaktor").get(f"/statistik?ar={YEAR}")
    assert page.status_code == 200
    html = page.text
    for section in ("areas", "items", "growth"):
        part = html[html.index(f'aria-labelledby="{section}-h"'):]
        part = part[:part.index("</section>")]
        assert '<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img"' in part
        assert f'id="{section}-tabell"' in part  # the table beside the chart
    areas = _table(html, "areas-tabell")
    assert areas["Bostadsförsörjning"] == ["6", "6"]
    others = [v for k, v in areas.items() if k not in ("Bostadsförsörjning", "Prioriterat område")]
    assert others and all(v == ["<5", "<5"] for v in others)
    issues = _table(html, "issues")
    assert issues["2026-12"][1:4] == ["12", "11", "1"]  # recipients, sent, bounced
    assert "<script" not in html.replace('<script src="/static/console.js" defer></script>', "")


def test_each_mailing_with_its_delivery_and_a_page_of_its_own(sent):
    client = sent.signed_in("redaktor")
    html = client.get(f"/statistik?ar={YEAR}").text
    with sent.site.transaction() as session:
        real = session.scalar(select(Mailing.id).where(~Mailing.source.startswith("test:")))
    delivery = _table(html, "delivery")
    assert list(delivery) == ["ID", str(real)]  # the test copy is left out
    row = delivery[str(real)]
    assert row[3:] == ["12", "11", "0", "1", "0", "0", "0", "0"]
    assert f'<a href="/statistik/utskick/{real}">{real}</a>' in html
    mailing = client.get(f"/statistik/utskick/{real}")
    assert mailing.status_code == 200
    assert "Bostadsförsörjning" in mailing.text and "&lt;5" in mailing.text
    assert client.get("/statistik/utskick/9999").status_code == 404
    assert client.get("/statistik?ar=1900").status_code == 400


def test_messages_to_one_person_each_are_one_row_together(sent):
    new_webinar(sent.site, future_start())
    for who in ("p001@example.se", "p002@example.se"):
        sent.site.cli("webinar", "register", "bredband", who)  # a confirmation each
    this_year = datetime.now(UTC).year  # such mailings count in the year they were made
    html = sent.signed_in("redaktor").get(f"/statistik?ar={this_year}").text
    delivery = _table(html, "delivery")
    together = [cells for first, cells in delivery.items() if first == "–"]
    assert len(together) == 1 and "2 meddelanden" in together[0][1]
    assert together[0][3:5] == ["2", "2"]  # recipients, sent
    assert "person:" not in html  # no row, no label, names anyone


def test_the_list_health_of_the_year(sent):
    html = sent.signed_in("redaktor").get(f"/statistik?ar={YEAR}").text
    total = _table(html, "health-1")
    assert total["Nya"] == ["12"]
    by_county = _table(html, "health-3")
    assert by_county["Västerbottens län"][1] == "12"
    assert all(cell == "<5" or int(cell) >= 5 for row in list(by_county.values())[1:]
               for cell in row)


def test_the_printable_year_page_with_its_style_allowed_by_hash_alone(sent):
    client = sent.signed_in("redaktor")
    html = client.get(f"/statistik?ar={YEAR}").text
    assert f'href="/statistik/ar/{YEAR}"' in html
    response = client.get(f"/statistik/ar/{YEAR}")
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    style = re.search(r"<style>(.*?)</style>", response.text, re.DOTALL).group(1)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}';" in csp
    assert "unsafe-inline" not in csp and "script" not in csp.replace("default-src 'none'", "")
    assert "@media print" in style and "<script" not in response.text
    assert "Bostadsförsörjning" in response.text
