"""Omvärldsbevakning: feeds fetched over real HTTPS from 127.0.0.1 (fixture feeds shaped like
regeringen.se's, and servers that break in every way), the inbox, and items read back by
`issue build`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from newsletter import content, intake
from newsletter.fetcher import user_agent
from newsletter.models import EntryStatus, IntakeEntry, IntakeFeed, Remiss

from .feed_server import FEEDS, FeedServer
from .helpers import ca_env, configure, maildir, seed

NOW = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
def server(certs) -> Iterator[FeedServer]:
    with FeedServer(certs.server) as s:
        yield s


def entries(site) -> dict[str, IntakeEntry]:
    with site.transaction() as s:
        return {e.title: e for e in s.scalars(select(IntakeEntry))}


# --- fetching ---------------------------------------------------------------------------------

def test_rss_and_atom_feeds_come_in_with_sanitised_text_and_a_suggested_area(site, server,
                                                                            certs):
    server.fixture("/sou", "sou.rss")
    server.fixture("/prop", "propositioner.atom", content_type="application/atom+xml")
    configure(site, server, {"sou": ("/sou", "utredning"), "propositioner": ("/prop", "nyhet")})
    result = site.cli("intake", "fetch", env=ca_env(certs))
    assert "sou: 3 nya" in result.stdout and "propositioner: 2 nya" in result.stdout
    got = entries(site)
    assert len(got) == 5
    road = got["Effektivare organisering och genomförande av statlig väg och järnväg"]
    assert road.kind == "utredning" and road.feed == "sou"
    assert road.url.startswith("https://www.regeringen.se/rattsliga-dokument/")
    assert road.suggested_area == "infrastruktur" and road.score >= 0.75
    assert "järnväg" in road.reason["words"]
    for hostile in ("<", "script", "alert", "stöld av kakor", "onclick", "display:none"):
        assert hostile not in road.summary, road.summary
    assert "byggandet av väg och järnväg" in road.summary
    broadband = got["Snabbare bredband i hela landet – åtgärder för effektivare utbyggnad av "
                    "gigabitinfrastruktur"]
    assert broadband.suggested_area == "digitalisering"
    assert broadband.published_at == datetime(2025, 11, 27, 9, 0, tzinfo=UTC)
    housing = got['Åtgärder för en bättre bostadsförsörjning: "hyresrätter" & bostadsrätter']
    assert housing.suggested_area == "bostad" and housing.kind == "nyhet"
    film = got["Publiken i fokus – reformer för ett starkare filmland"]
    assert film.suggested_area is None  # okategoriserad, not forced
    seen = server.requests_to("/sou")[0].headers
    assert seen["user-agent"] == user_agent(site.settings) and "example.se" in seen["user-agent"]
    listing = site.cli("intake", "list", "--area", "okategoriserad").stdout
    assert "Publiken i fokus" in listing and "2 poster." in listing  # and the health care bill


def test_an_entry_is_kept_once_across_feeds_and_fetches(site, server, certs):
    server.fixture("/sou", "sou.rss")
    server.fixture("/all", "duplicates.rss")
    configure(site, server, {"sou": ("/sou", "utredning"), "alla": ("/all", "nyhet")})
    first = site.cli("intake", "fetch", env=ca_env(certs)).stdout
    # The same GUID, the same page by another link (http, upper case, tracking, fragment),
    # and one item twice in the same feed: each stored once.
    assert "alla: 1 ny, 3 fanns redan i inkorgen" in first
    second = site.cli("intake", "fetch", env=ca_env(certs)).stdout
    assert "sou: 0 nya, 3 fanns redan" in second and "alla: 0 nya, 4 fanns redan" in second
    with site.transaction() as s:
        assert s.scalar(select(func.count()).select_from(IntakeEntry)) == 4


def test_conditional_get_asks_with_the_validators_and_a_304_changes_nothing(site, server,
                                                                            certs):
    server.fixture("/sou", "sou.rss", etag='"v1"', last_modified="Tue, 16 Dec 2025 09:30:00 GMT")
    configure(site, server, {"sou": ("/sou", "utredning")})
    site.cli("intake", "fetch", env=ca_env(certs))
    again = site.cli("intake", "fetch", env=ca_env(certs)).stdout
    assert "sou: oförändrat sedan förra hämtningen" in again
    first, second = server.requests_to("/sou")
    assert "if-none-match" not in first.headers
    assert second.headers["if-none-match"] == '"v1"'
    assert second.headers["if-modified-since"] == "Tue, 16 Dec 2025 09:30:00 GMT"
    assert len(entries(site)) == 3


def test_broken_feeds_fail_alone_in_one_line_each_and_lose_nothing(site, server,
                                                                   certs):
    server.fixture("/sou", "sou.rss")
    configure(site, server, {
        "sou": ("/sou", "utredning"), "trasig": ("/malformed", "nyhet"),
        "fel": ("/error", "nyhet"), "hanger": ("/hang", "nyhet"), "enorm": ("/huge", "nyhet"),
        "droppar": ("/trickle", "nyhet"), "saknas": ("/missing", "nyhet"),
    }, timeout=1)
    server.fixture("/malformed", "malformed.xml")
    server.route("/error", "Internal Server Error", status=500, content_type="text/plain")
    server.route("/hang", behaviour="hang")
    server.route("/huge", behaviour="huge")
    server.route("/trickle", behaviour="trickle")
    site.cli("intake", "fetch", "--feed", "sou", env=ca_env(certs))
    before = entries(site)
    server.route("/sou", "<html>Underhåll pågår</html>", content_type="text/html")
    started = time.monotonic()
    result = site.cli("intake", "fetch", ok=False, env=ca_env(certs))
    took = time.monotonic() - started
    assert result.exit_code == 1
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 7, result.stderr
    by_feed = {line.split(":")[0]: line for line in errors}
    assert "inte ett RSS- eller Atom-flöde" in by_feed["sou"]
    assert "felaktig XML" in by_feed["trasig"]
    assert "HTTP 500" in by_feed["fel"]
    assert "inget svar inom 1 s" in by_feed["hanger"]
    assert "för stort" in by_feed["enorm"]
    assert "för långsamt" in by_feed["droppar"] or "slutade skicka" in by_feed["droppar"]
    assert "HTTP 404" in by_feed["saknas"]
    assert "Traceback" not in result.output
    assert took < 20
    assert entries(site).keys() == before.keys()
    with site.transaction() as s:
        state = s.scalar(select(IntakeFeed).where(IntakeFeed.name == "fel"))
        assert state.last_error == "HTTP 500 Internal Server Error" and state.ok_at is None


def test_a_feed_in_the_wrong_charset_reads_right(site, server, certs):
    server.fixture("/latin", "wrong_charset_latin1.xml")  # cp1252 bytes, says utf-8
    server.fixture("/utf8", "wrong_charset_utf8.xml",  # utf-8 bytes, says iso-8859-1
                   content_type="application/rss+xml; charset=iso-8859-1")
    configure(site, server, {"latin": ("/latin", "nyhet"), "utf8": ("/utf8", "nyhet")})
    site.cli("intake", "fetch", env=ca_env(certs))
    got = entries(site)
    assert "Ökad va-beredskap för små kommuner" in got
    assert "Åtgärder för en jämnare fördelning av boende" in got
    assert got["Ökad va-beredskap för små kommuner"].summary == (
        "Vattentjänster i kris – åtgärder för hela landet.")


def test_only_https_with_a_trusted_certificate(site, server, certs):
    server.fixture("/sou", "sou.rss")
    server.route("/to-plain", status=302, location="http://www.example.se/feed")
    configure(site, server, {"sou": ("/sou", "utredning"), "nedgradering": ("/to-plain", "nyhet")})
    untrusted = site.cli("intake", "fetch", "--feed", "sou", ok=False)  # our CA is not trusted
    assert untrusted.exit_code == 1
    assert "certificate" in untrusted.stderr and len(untrusted.stderr.splitlines()) == 1
    assert entries(site) == {}
    downgrade = site.cli("intake", "fetch", "--feed", "nedgradering", ok=False,
                         env=ca_env(certs))
    assert "bara https://-adresser hämtas, inte http://www.example.se/feed" in (
        downgrade.stderr)
    path = site.root / "newsletter.toml"
    path.write_text(path.read_text().replace(server.base, "http://www.example.se"))
    plain = site.cli("intake", "fetch", ok=False, env=ca_env(certs))
    assert plain.exit_code == 78
    assert "intake.feeds[0].url måste vara en https://-adress" in plain.stderr


def test_plain_http_only_to_a_loopback_address(site):
    with FeedServer(None) as plain:
        plain.fixture("/sou", "sou.rss")
        plain.route("/away", status=301, location="https://www.example.se/feed")
        configure(site, plain, {"sou": ("/sou", "utredning"), "bort": ("/away", "nyhet")})
        result = site.cli("intake", "fetch", ok=False)
    assert "sou: 3 nya" in result.stdout
    assert "bort: misslyckades: en loopback-adress omdirigerade" in result.stderr


def test_a_remiss_page_is_fetched_only_from_the_feeds_own_host(site, server,
                                                               certs):
    # The links name localhost: the same server, but not the feed's host (127.0.0.1).
    feed = (FEEDS / "remisser.rss").read_bytes()
    server.route("/remisser", feed.replace(b"{BASE}", f"https://localhost:{server.port}".encode()))
    configure(site, server, {"remisser": ("/remisser", "remiss")})
    site.cli("intake", "fetch", env=ca_env(certs))
    assert [s.path for s in server.seen] == ["/remisser"]  # no page asked for
    with site.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Remiss).where(
            Remiss.answer_by.is_(None))) == 2


def test_fetch_due_fetches_a_feed_again_only_after_the_interval(site, server,
                                                                certs):
    server.fixture("/sou", "sou.rss")
    server.fixture("/prop", "propositioner.atom")
    configure(site, server, {"sou": ("/sou", "utredning"), "propositioner": ("/prop", "nyhet")})
    settings = site.settings.with_overrides(intake=site.settings.intake.__class__(
        **{**site.settings.intake.__dict__, "ca_file": str(certs.ca_file)}))
    with site.sessions()() as s:
        first = intake.fetch_due(s, settings, NOW)
        assert [r.new for r in first] == [3, 2]
        assert intake.fetch_due(s, settings, NOW.replace(minute=59)) == []
        later = intake.fetch_due(s, settings, NOW.replace(hour=10))
        assert [r.name for r in later] == ["sou", "propositioner"]
    assert len(server.requests_to("/sou")) == 2


# --- triage -----------------------------------------------------------------------------------

def test_accepted_entries_become_items_that_issue_build_reads(site, server, certs):
    server.fixture("/sou", "sou.rss")
    server.fixture("/prop", "propositioner.atom")
    configure(site, server, {"sou": ("/sou", "utredning"), "propositioner": ("/prop", "nyhet")})
    site.cli("intake", "fetch", env=ca_env(certs))
    got = entries(site)
    housing = got['Åtgärder för en bättre bostadsförsörjning: "hyresrätter" & bostadsrätter']
    road = got["Effektivare organisering och genomförande av statlig väg och järnväg"]
    film = got["Publiken i fokus – reformer för ett starkare filmland"]
    result = site.cli("intake", "accept", str(housing.id), str(road.id), str(film.id), "9999",
                      "--issue", "2027-01", ok=False)
    assert result.exit_code == 1
    assert f"{film.id}: posten {film.id} har inget föreslaget område" in result.stderr
    assert "9999: ingen post 9999 i inflödet" in result.stderr
    assert result.stdout.count("godtagen som") == 2
    site.cli("intake", "accept", str(film.id), "--issue", "2027-01", "--area", "omvarld")
    again = site.cli("intake", "accept", str(road.id), "--issue", "2027-01", ok=False)
    assert "redan status accepted" in again.stderr
    site.cli("issue", "build", "2027-01")
    issue = content.load_issue(site.settings, "2027-01")
    items = {i.title: i for i in issue.items}
    item = items['Åtgärder för en bättre bostadsförsörjning: "hyresrätter" & bostadsrätter']
    assert item.area == "bostad" and item.kind == "nyhet"
    assert item.url == housing.url and item.date.isoformat() == "2025-03-13"
    assert "enklare att bygga bostäder" in item.body.text
    assert items["Publiken i fokus – reformer för ett starkare filmland"].area == "omvarld"
    road_item = items["Effektivare organisering och genomförande av statlig väg och järnväg"]
    assert "alert" not in road_item.body.html and "<script" not in road_item.body.html
    with site.transaction() as s:
        e = s.get(IntakeEntry, housing.id)
        assert e.status == EntryStatus.ACCEPTED and e.issue == "2027-01"
        assert (site.root / e.item_path).is_file()


def test_an_item_is_never_overwritten_and_titles_survive_yaml(site):
    hostile = 'Remiss: "Strandskyddet" – \'små\' sjöar #1: ja/nej? {x: [y]} & åäö ÅÄÖ'
    first = content.new_item(site.settings, "2027-02", title=hostile, area="bostad",
                             kind="remiss", url="https://www.regeringen.se/remisser/x/",
                             body="", free_name=True)
    first.write_text(first.read_text() + "Redigerad av en människa.\n")
    second = content.new_item(site.settings, "2027-02", title=hostile, area="bostad",
                              body="", free_name=True)
    assert second != first and "Redigerad av en människa." in first.read_text()
    issue = content.load_issue(site.settings, "2027-02")
    assert [i.title for i in issue.items] == [hostile, hostile]


def test_reject_and_the_lists(site, server, certs):
    server.fixture("/sou", "sou.rss")
    configure(site, server, {"sou": ("/sou", "utredning")})
    site.cli("intake", "fetch", env=ca_env(certs))
    film = entries(site)["Publiken i fokus – reformer för ett starkare filmland"]
    site.cli("intake", "reject", str(film.id))
    assert "Publiken" not in site.cli("intake", "list").stdout
    rejected = site.cli("intake", "list", "--status", "rejected").stdout
    assert "Publiken i fokus" in rejected and "1 post." in rejected
    assert "redan status rejected" in site.cli("intake", "reject", str(film.id), ok=False).stderr
    shown = site.cli("intake", "show", str(film.id)).stdout
    assert "rejected" in shown and "Filmutredningen" in shown


# --- remisser ---------------------------------------------------------------------------------

def test_remisser_carry_their_answer_date_from_the_entry_the_page_or_by_hand(site, server,
                                                                            certs):
    server.fixture("/remisser", "remisser.rss")
    server.fixture("/remisser/2025/10/remiss-av-trafikverkets-forslag-till-nationell-plan-for-"
                   "transportinfrastrukturen-20262037/", "remiss_page.html",
                   content_type="text/html; charset=utf-8")
    configure(site, server, {"remisser": ("/remisser", "remiss")})
    site.cli("intake", "fetch", env=ca_env(certs))
    with site.transaction() as s:
        rows = {r.entry.title: (r.answer_by, r.answer_by_source)
                for r in s.scalars(select(Remiss))}
    assert rows["Remiss av promemorian Justerad beräkning av administration i "
                "kostnadsutjämningen för kommuner"] == (datetime(2026, 2, 4).date(), "entry")
    assert rows["Remiss av Trafikverkets förslag till nationell plan för transportinfrastrukturen "
                "2026–2037"] == (datetime(2026, 1, 15).date(), "page")
    labour = "Remiss av SOU 2025:74 Ny reglering för den arbetsmarknadspolitiska verksamheten"
    assert rows[labour] == (None, None)  # its page is not there: entered by hand
    listing = site.cli("remisser", "list").stdout.splitlines()
    assert "nationell plan" in listing[0] and "kostnadsutjämningen" in listing[1]
    assert "inget datum ännu" in listing[2]
    labour_id = entries(site)[labour].id
    site.cli("remisser", "set", str(labour_id), "--answer-by", "2026-01-12")
    assert "arbetsmarknadspolitiska" in site.cli("remisser", "list").stdout.splitlines()[0]
    site.cli("intake", "reject", str(labour_id))
    assert "arbetsmarknadspolitiska" not in site.cli("remisser", "list").stdout
    assert "declined" in site.cli("remisser", "list", "--all").stdout


def remiss_site(site, server, certs, **kwargs) -> dict[str, IntakeEntry]:
    server.fixture("/remisser", "remisser.rss")
    configure(site, server, {"remisser": ("/remisser", "remiss")}, **kwargs)
    site.cli("intake", "fetch", env=ca_env(certs))
    return entries(site)


EQUALISATION = ("Remiss av promemorian Justerad beräkning av administration i kostnadsutjämningen "
                "för kommuner")


def test_a_call_for_input_goes_through_the_targeted_mailing_path(site, server,
                                                                certs):
    addresses = seed(site, 9)
    remiss = remiss_site(site, server, certs)[EQUALISATION]
    template = site.root / "templates" / "intake" / "remiss_call.md"
    template.write_text(template.read_text(encoding="utf-8").replace(
        "Tack på förhand!", "Tack på förhand! /Kansliet (lokal mall)"), encoding="utf-8")
    dry = site.cli("remisser", "call", str(remiss.id), "--to", "kommunchefer", "--dry-run")
    assert "Ämnesrad: Tyck till om remissen: Remiss av promemorian Justerad" in dry.stdout
    assert "Mottagare: 3" in dry.stdout and "4 februari 2026" in dry.stdout
    assert "lokal mall" in dry.stdout
    assert not (site.root / "Maildir").exists()
    site.cli("remisser", "call", str(remiss.id), "--to", "kommunchefer")
    box = maildir(site)
    assert len(box) == 3
    message = next(iter(box.values()))
    assert message["To"].split("<")[-1].rstrip(">") in addresses[::3]
    assert "Tyck till om remissen" in str(message["Subject"]) or "=?utf-8?" in message["Subject"]
    again = site.cli("remisser", "call", str(remiss.id), "--to", "kommunchefer")
    assert "redan klart" in again.stdout  # the same mailing: nobody gets it twice
    assert len(maildir(site)) == 3


def test_the_answer_becomes_an_item_in_the_next_issue(site, server, certs):
    remiss = remiss_site(site, server, certs)[EQUALISATION]
    bad = site.cli("remisser", "answer", str(remiss.id), "--url", "javascript:alert(1)", ok=False)
    assert bad.exit_code == 1 and "inte en webbadress" in bad.stderr
    result = site.cli("remisser", "answer", str(remiss.id), "--url",
                      "https://www.example.se/remissvar/kostnadsutjamning", "--issue", "2027-03")
    assert "2027-03" in result.stdout
    issue = content.load_issue(site.settings, "2027-03")
    (item,) = issue.items
    assert item.kind == "remiss" and item.url.endswith("/remissvar/kostnadsutjamning")
    assert item.title == f"Vårt remissvar: {EQUALISATION}"
    assert item.area == remiss.suggested_area  # (the sample issue filed utjämning under omvarld)
    assert "answered" in site.cli("remisser", "list", "--all").stdout
    assert EQUALISATION not in site.cli("remisser", "list").stdout


def test_the_next_issue_is_the_first_not_sent(site):
    from newsletter.models import ArchivedIssue
    from newsletter.remisser import next_issue

    with site.transaction() as s:
        assert next_issue(s, site.settings, NOW.date()) == "2026-01"
        for month in ("2026-01", "2026-02"):
            s.add(ArchivedIssue(month=month, subject="x", html="", text=""))
        s.flush()
        assert next_issue(s, site.settings, NOW.date()) == "2026-03"


def test_reminders_go_once_per_remiss_date_and_address(site, server, certs):
    from newsletter.remisser import reminders_due, set_remiss

    remiss_site(site, server, certs,
                extra='remind_to = ["kansliet@example.se", "remisser@example.se"]\n')
    settings = site.settings
    assert settings.intake.remind_days == 7
    factory = site.sessions()
    with factory() as s:
        assert reminders_due(s, settings, datetime(2026, 1, 20, tzinfo=UTC)) == []  # 15 days
        due = reminders_due(s, settings, datetime(2026, 1, 29, tzinfo=UTC))
        s.rollback()  # sending failed: they come back
        due = reminders_due(s, settings, datetime(2026, 1, 29, tzinfo=UTC))
        s.commit()
    assert sorted(r.to for r in due) == ["kansliet@example.se", "remisser@example.se"]
    assert all("kostnadsutjämningen" in r.subject and "4 februari 2026" in r.subject
               for r in due)
    assert "6 dagar kvar" in due[0].body and f"remisser answer {due[0].entry_id}" in due[0].body
    with factory() as s:
        assert reminders_due(s, settings, datetime(2026, 2, 1, tzinfo=UTC)) == []  # once
        assert reminders_due(s, settings, datetime(2026, 2, 5, tzinfo=UTC)) == []  # passed
        set_remiss(s, due[0].entry_id, answer_by=datetime(2026, 2, 10).date())  # a new date
        again = reminders_due(s, settings, datetime(2026, 2, 5, tzinfo=UTC))
        s.commit()
    assert len(again) == 2 and again[0].answer_by.isoformat() == "2026-02-10"


def test_a_site_can_override_the_templates(site, server, certs):
    from newsletter.errors import ConfigError
    from newsletter.remisser import call_for_input

    remiss = remiss_site(site, server, certs)[EQUALISATION]
    own = site.root / "templates" / "intake" / "remiss_call.md"
    own.write_text("---\nsubject: \"Synpunkter? {{ title }}\"\n---\n{{ title | md }} *{{ url }}*\n",
                   encoding="utf-8")
    with site.transaction() as s:
        message = call_for_input(s, site.settings, remiss.id)
        assert message.subject == f"Synpunkter? {EQUALISATION}"
        own.write_text("---\nsubject: \"{{ nosuchvariable }}\"\n---\n", encoding="utf-8")
        with pytest.raises(ConfigError, match="remiss_call.md"):
            call_for_input(s, site.settings, remiss.id)
