"""Bad input gets a one-line error (or a rejected row that names its line), never a traceback
or a silent mistake: the cases an attack on the product found. The web's are in
test_web_hostile.py. Run on PostgreSQL too (NEWSLETTER_TEST_PG_URL): NUL bytes matter there."""

from __future__ import annotations

import email
import email.policy
import mailbox
import os
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from newsletter import webinars
from newsletter.errors import InputError
from newsletter.messages import Content, MessageTemplate, Recipient
from newsletter.models import Person, Webinar

HEADER = "email,name,municipality,role\n"
ANNA = "anna.andersson@example.se,Anna Andersson,Åsele,kommunchef\n"
BO = "bo.berg@example.se,Bo Berg,Åsele,kso\n"
CLARA = "clara.ek@example.se,Clara Ek,Dorotea,kommunchef\n"


def one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def emails(site) -> set[str]:
    with site.transaction() as session:
        return set(session.scalars(select(Person.email)))


def rejected(result) -> dict[int, str]:
    """Line number -> reason of every rejected row an import reported (FILE:LINE: Avvisad: ...)."""
    out = {}
    for line in result.stderr.splitlines():
        if ": Avvisad: " in line:
            where, reason = line.split(": Avvisad: ", 1)
            out[int(where.rsplit(":", 1)[1])] = reason
    return out


# --- issue months -------------------------------------------------------------------------

@pytest.mark.parametrize("month", ["2026-10\n", "２０２６-10", "2026-1٠", "0000-01", " 2026-10"])
def test_a_month_that_only_looks_like_one_is_refused(site, month):
    before = sorted((site.root / "issues").iterdir())
    result = site.cli("issue", "new", month, ok=False)
    assert result.exit_code == 1 and "inte en månad" in one_line(result)
    assert sorted((site.root / "issues").iterdir()) == before
    assert site.cli("items", "new", "--issue", month, "--area", "bostad", "--title", "X",
                    ok=False).exit_code == 1


# --- webinars -----------------------------------------------------------------------------

def _new_webinar(site, *args: str, start: str = "2030-05-12 10:00",
                 url: str = "https://teams.microsoft.com/l/meetup-join/19%3ameeting_N2Q"
                            "%40thread.v2/0?context=%7b%22Tid%22%3a%22abc%22%7d"):
    return site.cli("webinar", "new", "--title", "Bredband", "--start", start, "--duration",
                    "60", "--join-url", url, *args, ok=False)


@pytest.mark.parametrize("start", ["9999-12-31 23:00", "0001-01-01 00:30", "1999-12-31 10:00"])
def test_a_webinar_in_year_9999_or_0001_is_one_line(site, start):
    result = _new_webinar(site, start=start)
    assert result.exit_code == 1
    assert "året måste vara mellan 2000 och 2100" in one_line(result)


@pytest.mark.parametrize("url", [
    'https://example.se/mote"><script>alert(1)</script>',
    "https://example.se/mote <b>",
    "https://example.se/{mote}",
    "javascript:alert(1)",
    "https:///utan-värd",
    "https://example.se:port/",
    "teams",
])
def test_the_join_url_is_validated_as_a_url(site, url):
    result = _new_webinar(site, url=url)
    assert result.exit_code == 1 and "--join-url" in one_line(result)
    with site.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Webinar)) == 0


def test_real_meeting_links_are_accepted(site):
    assert _new_webinar(site).exit_code == 0
    assert _new_webinar(site, "--slug", "zoom", url="https://us02web.zoom.us/j/8512?pwd=aB1"
                        ).exit_code == 0
    assert _new_webinar(site, "--slug", "kommunen", url="https://möte.kommun.se/rum/å"
                        ).exit_code == 0


def test_a_nul_in_a_webinar_url_is_refused_before_the_database(site):
    with site.transaction() as session, pytest.raises(InputError, match="--join-url"):
        webinars.create_webinar(session, site.settings, title="Bredband",
                                starts_at=datetime(2030, 5, 12, 8, tzinfo=UTC),
                                duration_minutes=60, join_url="https://example.se/\x00mote")


# --- CSV imports --------------------------------------------------------------------------

def _import(site, tmp_path, text: str, encoding: str = "utf-8"):
    path = tmp_path / "kontakter.csv"
    path.write_bytes(text.encode(encoding))
    return site.cli("contacts", "import", str(path), ok=False)


def test_a_field_over_128_kib_is_one_rejected_row(site, tmp_path):
    result = _import(site, tmp_path, HEADER + "anna@example.se," + "x" * 140_000
                     + ",Åsele,kommunchef\n" + BO)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert list(rejected(result)) == [2] and "128 KiB" in rejected(result)[2]
    assert emails(site) == {"bo.berg@example.se"}


def test_a_nul_in_a_csv_field_names_its_line_and_the_rest_is_imported(site, tmp_path):
    result = _import(site, tmp_path, HEADER + ANNA + "bo.berg@example.se,Bo\x00Berg,Åsele,kso\n"
                     + CLARA)
    assert result.exit_code == 1
    assert list(rejected(result)) == [3] and "NUL" in rejected(result)[3]
    assert emails(site) == {"anna.andersson@example.se", "clara.ek@example.se"}


def test_an_unclosed_quote_does_not_swallow_the_rows_after_it(site, tmp_path):
    result = _import(site, tmp_path, HEADER + ANNA
                     + 'bo.berg@example.se,"Bo Berg,Åsele,kso\n' + CLARA)
    assert result.exit_code == 1
    assert list(rejected(result)) == [3] and "avslutande citattecken" in rejected(result)[3]
    assert emails(site) == {"anna.andersson@example.se", "clara.ek@example.se"}


def test_a_quote_closed_rows_later_is_reported_with_its_line(site, tmp_path):
    # Bo's quote is closed by the stray one in David's name: csv reads Clara's row into his.
    result = _import(site, tmp_path, HEADER + ANNA
                     + 'bo.berg@example.se,"Bo Berg,Åsele,kso\n' + CLARA
                     + 'david.ek@example.se,David "Dacke" Ek,Dorotea,kso\n')
    assert result.exit_code == 1
    assert 3 in rejected(result) and "fortsätter till rad 5" in rejected(result)[3]
    assert {"anna.andersson@example.se", "clara.ek@example.se"} <= emails(site)
    assert "bo.berg@example.se" not in emails(site)


def test_a_note_over_two_lines_in_an_ignored_column_still_imports(site, tmp_path):
    result = _import(site, tmp_path, HEADER.strip() + ",anteckning\n"
                     + ANNA.strip() + ',"ringer\ngärna"\n' + BO.strip() + ",\n")
    assert result.exit_code == 0, result.stderr
    assert emails(site) == {"anna.andersson@example.se", "bo.berg@example.se"}


# --- contacts export ----------------------------------------------------------------------

def test_export_refuses_a_symlink_and_leaves_its_target_alone(site, tmp_path):
    target = tmp_path / "viktig.txt"
    target.write_text("orörd\n", encoding="utf-8")
    link = tmp_path / "kontakter.csv"
    link.symlink_to(target)
    result = site.cli("contacts", "export", str(link), ok=False)
    assert result.exit_code == 1 and "en symbolisk länk, inte en vanlig fil" in one_line(result)
    assert link.is_symlink() and target.read_text(encoding="utf-8") == "orörd\n"


def test_export_refuses_a_fifo(site, tmp_path):
    fifo = tmp_path / "kontakter.csv"
    os.mkfifo(fifo)
    result = site.cli("contacts", "export", str(fifo), ok=False)
    assert result.exit_code == 1 and "en FIFO, inte en vanlig fil" in one_line(result)
    assert fifo.exists() and not fifo.is_file()


def test_export_refuses_a_device(site, tmp_path):
    device = tmp_path / "null"
    try:  # a null device of our own: were the check ever to fail, only tmp_path would suffer
        os.mknod(device, 0o600 | 0o020000, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("no permission to make a device node here")
    result = site.cli("contacts", "export", str(device), ok=False)
    assert result.exit_code == 1 and "en enhet, inte en vanlig fil" in one_line(result)
    assert device.is_char_device()


def test_export_creates_no_missing_folder(site, tmp_path):
    result = site.cli("contacts", "export", str(tmp_path / "finns" / "inte" / "k.csv"),
                      ok=False)
    assert result.exit_code == 1 and "mappen finns inte" in one_line(result)
    assert not (tmp_path / "finns").exists()


def test_export_still_replaces_a_regular_file(site, tmp_path):
    site.cli("contacts", "add", "anna.andersson@example.se")
    path = tmp_path / "kontakter.csv"
    path.write_text("gammal\n", encoding="utf-8")
    site.cli("contacts", "export", str(path))
    assert "anna.andersson@example.se" in path.read_text(encoding="utf-8-sig")


# --- bounces ------------------------------------------------------------------------------

def test_bounces_process_on_a_binary_file_is_one_line(site, tmp_path):
    path = tmp_path / "studsar.bin"
    path.write_bytes(bytes(range(256)) * 40)
    result = site.cli("bounces", "process", str(path), ok=False)
    assert result.exit_code == 1
    assert "varken en Maildir-mapp, en mbox-fil eller ett mejl" in one_line(result)


def test_a_malformed_message_in_a_maildir_is_counted_not_fatal(site, tmp_path):
    box = mailbox.Maildir(tmp_path / "Studsar", create=True)
    box.add(b"Subject: x\n\n#\x8c\xc5\xfa\xf9)@\xa2\x02\xfel\xbc")  # trips flufl.bounce up
    box.add(bytes(range(256)) * 8)
    result = site.cli("bounces", "process", str(tmp_path / "Studsar"))
    assert result.stderr == "" and "2 meddelanden" in result.stdout
    assert "inte leveransrapporter:   2" in result.stdout


# --- segments -----------------------------------------------------------------------------

@pytest.mark.parametrize("expr", ["(" * 5000 + "member" + ")" * 5000, "not " * 5000 + "member",
                                  "(not " * 2500 + "member" + ")" * 2500])
def test_a_segment_nested_5000_deep_is_one_short_line(site, expr):
    result = site.cli("segments", "count", expr, ok=False)
    assert result.exit_code == 1
    line = one_line(result)
    assert "mer än 32" in line and len(line) < 300


def test_a_segment_nested_32_deep_still_counts(site):
    site.cli("contacts", "add", "anna.andersson@example.se", "--municipality", "Åsele")
    site.cli("municipalities", "members", "Åsele")
    expr = "(" * 16 + "not " * 16 + "member" + ")" * 16  # 16 "not": member again
    assert site.cli("segments", "count", expr).stdout.startswith("1 ")


# --- headers ------------------------------------------------------------------------------

@pytest.mark.parametrize("subject", [
    "x" * 2000,
    "https://example.se/" + "a" * 1500,
    "Å" + "ä" * 1200,
    "ord " * 400,
])
def test_a_long_subject_never_makes_a_header_line_over_998(site, subject):
    settings = site.settings
    long_name = "Forvaltningen-" + "n" * 600  # ASCII without a space: was one word
    template = MessageTemplate(settings, Content(subject=subject, html="<p>Hej</p>",
                                                 text="Hej"))
    data = template.build(Recipient(
        email="anna.andersson@example.se", name=long_name, message_id="<1.x@example.se>",
        unsubscribe_url="https://example.se/u/x", preferences_url="https://example.se/p/x"))
    head = data.partition(b"\r\n\r\n")[0]
    assert max(len(line) for line in head.split(b"\r\n")) <= 78
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["Subject"] == " ".join(subject.split())
    # Python's parser keeps a space between encoded words in a display name (see messages.py).
    assert msg["To"].addresses[0].display_name.replace(" ", "") == long_name


def test_a_long_name_on_an_smtputf8_address_keeps_every_header_line_short(site):
    # The To: line of such an address is UTF-8 (RFC 6532), not encoded words: still folded.
    template = MessageTemplate(site.settings, Content(subject="Ö" * 1500, html="<p>Hej</p>",
                                                      text="Hej"))
    data = template.build(Recipient(
        email="åsa.lindström@kommun.example.se", name="Åsa" + "ö" * 900 + "-Lindström",
        message_id="<1.x@example.se>", unsubscribe_url="https://example.se/u/x",
        preferences_url="https://example.se/p/x"))
    head = data.partition(b"\r\n\r\n")[0]
    assert max(len(line) for line in head.split(b"\r\n")) <= 998
    assert "<åsa.lindström@kommun.example.se>".encode() in head


# --- numbers beyond what the database holds -----------------------------------------------

@pytest.mark.parametrize("command", [("send", "status"), ("send", "pause"), ("send", "cancel"),
                                     ("send", "resume"), ("intake", "show"),
                                     ("intake", "reject"), ("remisser", "set")])
@pytest.mark.parametrize("number", ["99999999999999999999", "2147483648"])
def test_an_id_beyond_any_row_is_a_usage_error_not_a_traceback(site, command, number):
    # SQLite raised OverflowError (a traceback), PostgreSQL "integer out of range".
    result = site.cli(*command, number, *(["--state", "declined"] if "set" in command else []),
                      ok=False)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "1<=x<=2147483647" in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("capacity", ["99999999999", "2147483648", "1000001"])
def test_a_capacity_beyond_reason_is_one_line(site, capacity):
    result = _new_webinar(site, "--capacity", capacity)
    assert result.exit_code == 1 and "--capacity" in one_line(result)
    assert _new_webinar(site, "--capacity", "1000000").exit_code == 0


def test_a_join_url_longer_than_any_link_is_refused(site):
    result = _new_webinar(site, url="https://example.se/" + "m" * 200_000)
    assert result.exit_code == 1 and "--join-url" in one_line(result)
