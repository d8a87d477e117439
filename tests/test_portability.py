"""What SQLite lets pass and PostgreSQL does not: string lengths, NULL ordering, two writers.

Every test here runs on SQLite and, with NEWSLETTER_TEST_PG_URL, on PostgreSQL (see conftest):
a value too long for its VARCHAR(N) is refused with a message naming the field on both, never
stored on one and a database error on the other.
"""

from __future__ import annotations

import csv
import io
import sys
import threading
import time

from sqlalchemy import String, event, func, select

from newsletter import db
from newsletter.contacts import unsubscribe_address
from newsletter.models import (
    Base,
    Event,
    Person,
    PersonArea,
    Position,
    Suppression,
    TrackedLink,
    Webinar,
)
from newsletter.settings import MAX_FEED_NAME, MAX_SLUG


def test_a_long_name_rejects_its_row_and_a_long_file_name_is_kept(site):
    long_name = "Anna-" + "Lisa" * 50  # 205 characters
    file_name = "kontakter_" + "x" * 200 + ".csv"
    path = site.root / file_name
    path.write_text("email,name,municipality,role\n"
                    f"anna.lisa@asele.example.se,{long_name},Åsele,kso\n"
                    "karin.hogberg@harjedalen.example.se,Karin Högberg,Härjedalen,kso\n",
                    encoding="utf-8")
    result = site.cli("contacts", "import", str(path), ok=False)
    assert result.exit_code == 1
    assert f"{path}:2: Avvisad: namnet är 205 tecken långt, högst 200" in result.stderr
    assert "1 nya" in result.stdout
    with site.transaction() as session:
        (person,) = session.scalars(select(Person)).all()
        assert person.email == "karin.hogberg@harjedalen.example.se"
        assert person.basis_source == file_name


def test_add_refuses_a_name_longer_than_the_column(site):
    result = site.cli("contacts", "add", "anna@example.se", "--name", "A" * 201, ok=False)
    assert result.exit_code == 1
    assert "name: namnet är 201 tecken långt, högst 200" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    site.cli("contacts", "add", "anna@example.se", "--name", "A" * 200)


def test_a_webinar_title_longer_than_the_column_is_refused(site):
    args = ["webinar", "new", "--start", "2027-01-12 10:00", "--join-url", "https://example.se/j"]
    result = site.cli(*args, "--title", "Bredband " * 34, ok=False)  # 305 characters, trimmed
    assert result.exit_code == 1
    assert "--title: rubriken är 305 tecken lång, högst 300" in result.stderr
    site.cli(*args, "--title", "B" * 300)
    with site.transaction() as session:
        assert session.scalar(select(Webinar.title)) == "B" * 300


def test_a_role_slug_longer_than_the_column_is_a_config_error(site):
    config = site.root / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        '[roles]\n', f'[roles]\n{"r" * (MAX_SLUG + 1)} = "Lång roll"\n'), encoding="utf-8")
    result = site.cli("segments", "list", ok=False)
    assert result.exit_code == 78  # a configuration error
    assert f"är längre än {MAX_SLUG}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_staff_name_longer_than_the_column_is_refused(site):
    result = site.cli("staff", "add", "eva@example.se", "--name", "E" * 201, "--role", "admin",
                      ok=False)
    assert result.exit_code == 1 and "200" in result.stderr
    site.cli("staff", "add", "eva@example.se", "--name", "E" * 200, "--role", "admin")


def test_max_slug_is_the_length_of_the_slug_columns():
    for column in (Position.role, PersonArea.area, Webinar.area, TrackedLink.area):
        assert column.type.length == MAX_SLUG, column


def test_every_short_string_column_is_checked_here_or_written_by_the_program():
    # A new VARCHAR(N) column written from user input needs a length check (and a test above):
    # PostgreSQL refuses a longer value, SQLite stores it. Text columns have no limit.
    lengths = {f"{table.name}.{column.name}": column.type.length
               for table in Base.metadata.sorted_tables for column in table.columns
               if isinstance(column.type, String) and column.type.length}
    user_written = {"persons.name": 200, "webinars.title": 300, "positions.role": MAX_SLUG,
                    "person_areas.area": MAX_SLUG, "webinars.area": MAX_SLUG,
                    "staff.name": 200,
                    # [[intake.feeds]] names and [intake] remind_to: checked by settings.py
                    "intake_feeds.name": MAX_FEED_NAME, "intake_entries.feed": MAX_FEED_NAME,
                    "remiss_reminders.recipient": 320,
                    # area slugs (MAX_SLUG): the configured areas
                    "intake_entries.suggested_area": MAX_SLUG, "intake_entries.area": MAX_SLUG,
                    "tracked_links.area": MAX_SLUG,
                    # the sign-up forms: contact_fields.contact_name, a role from the settings
                    "signups.name": 200, "signups.role": MAX_SLUG, "role_claims.role": MAX_SLUG}
    assert {k: lengths[k] for k in user_written} == user_written
    program_written = {
        # sign-up: a validated address, generated ids, page paths, consent versions
        # (PURPOSE-SHA256[:12]), purposes and outcomes from fixed lists, a staff address
        "signups.email", "signups.public_id", "signups.page", "consent_texts.version",
        "consent_texts.purpose", "consents.purpose", "consents.page", "role_claims.page",
        "role_claims.decided_by", "role_claims.outcome",
        "municipalities.kommunkod", "municipalities.name", "municipalities.county_code",
        "municipalities.county",  # package data
        "persons.public_id", "persons.email", "persons.status", "persons.language",
        "persons.lawful_basis",  # email: validated (at most 254)
        "suppressions.email_hash", "suppressions.reason", "events.kind",
        "mailings.kind", "mailings.source", "mailings.status",  # source: month, hash, slug:...
        "mailing_variants.key", "outbox.variant_key",  # capped by render.variant_key
        "outbox.message_id", "outbox.status", "outbox.claimed_by",
        "archived_issues.month", "webinars.slug", "webinars.uid", "webinars.status",
        "registrations.status", "site_meta.key", "processed_reports.digest",
        "processed_reports.outcome",
        # the console: a validated address, a role from a fixed list, SHA-256 hex digests,
        # generated nonces and verifiers (32 and 64 characters), keys of at most 62 characters
        "staff.email", "staff.role", "console_sign_in_tokens.token_hash",
        "console_sessions.session_hash", "console_sessions.method",
        "console_oidc_flows.state_hash", "console_oidc_flows.browser_hash",
        "console_oidc_flows.nonce", "console_oidc_flows.code_verifier",
        "console_rate_counters.key",
        "intake_entries.kind",  # one of content.KINDS (intake.configured_feeds checks)
        "intake_entries.guid_key", "intake_entries.url_key", "intake_entries.status",
        "intake_entries.issue", "remisser.answer_by_source", "remisser.state",
        # reviews: keyed like mailings; staff addresses (validated); SHA-256 hex digests
        "reviews.kind", "reviews.key", "reviews.state", "reviews.submitted_by",
        "reviews.approved_by", "reviews.returned_by", "reviews.submitted_fingerprint",
        "reviews.approved_fingerprint"}
    assert set(lengths) == set(user_written) | program_written


def test_export_lists_the_associations_own_roles_first_on_every_database(site):
    site.cli("contacts", "add", "anna@example.se", "--municipality", "Åsele", "--role", "kso")
    site.cli("contacts", "add", "anna@example.se", "--role", "styrelse")
    site.cli("contacts", "add", "anna@example.se", "--municipality", "Arjeplog", "--role",
             "politiker")
    out = site.cli("contacts", "export", "-").stdout
    rows = list(csv.reader(io.StringIO(out)))[1:]
    assert [(r[2], r[3]) for r in rows] == [
        ("", "styrelse"), ("Arjeplog", "politiker"), ("Åsele", "kso")]


def _blocked_or_past_the_lock(thread: threading.Thread, read: threading.Event) -> bool:
    """THREAD waits inside the database call that takes the writers' lock (BEGIN IMMEDIATE on
    SQLite, SELECT ... FOR UPDATE elsewhere), or it already READ past it."""
    if read.is_set():
        return True
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        if frame.f_code.co_name in ("do_execute", "do_execute_no_params"):
            statement = str(frame.f_locals.get("statement", ""))
            return "BEGIN IMMEDIATE" in statement or "FOR UPDATE" in statement
        frame = frame.f_back
    return False


def test_two_unsubscribe_clicks_at_once_are_one_unsubscribe(site):
    # Writers run one at a time (db.writer). Without that, on PostgreSQL both clicks would find
    # no suppression, both insert one, and the second would fail on the unique key. The first
    # click keeps its transaction open until the second is waiting for the lock (or, were
    # writers not serialised, has read the suppression list): no sleep decides the overlap.
    site.cli("contacts", "add", "anna@example.se")
    settings = site.settings
    engine = db.make_engine(settings.db_url)
    writers = db.session_factory(db.writer(engine))
    second_read = threading.Event()

    @event.listens_for(engine, "after_cursor_execute")
    def _reads(conn, cursor, statement, *_args) -> None:
        if threading.current_thread().name == "second" and "suppressions" in statement:
            second_read.set()

    def click(first: bool) -> str:
        with db.transaction(writers) as session:
            outcome = unsubscribe_address(session, settings.secret_key, "anna@example.se",
                                          source="web")
            session.flush()
            if first:
                second.start()
                deadline = time.monotonic() + 30
                while not _blocked_or_past_the_lock(second, second_read):
                    assert time.monotonic() < deadline, "the second click never came"
                    time.sleep(0.001)
        return outcome

    outcomes: list[str] = []
    second = threading.Thread(target=lambda: outcomes.append(click(False)), name="second")
    outcomes.append(click(True))
    second.join(60)
    engine.dispose()
    assert sorted(outcomes) == ["already", "unsubscribed"]
    with site.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 1
        assert session.scalar(select(func.count()).where(Event.kind == "unsubscribed")) == 1
