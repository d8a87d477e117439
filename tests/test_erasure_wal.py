"""Erasure leaves nothing behind (issue 17, item 6): after `contacts forget` the address is in no
file of the site while `serve` runs (the database, its -wal and -shm, build outputs), and in no
row that held it for a test copy or a one-off message (label, meta, error text).

Delivered mail is left out of the file scan: the Maildir transport stands in for the
recipients' mailboxes, which erasure cannot reach (README, "Erasure").
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter.kinds.targeted import TargetedSource
from newsletter.models import Base, Mailing, OutboxRow
from newsletter.outbox import creating

from .helpers import http_request, serve_site

# A name and address no issue text, template or municipality holds, so any hit is theirs.
ADDRESS, NAME = "ylva.quist@asele.example.se", "Ylva Zqwerström"
COLLEAGUE = "kollega.zqw@example.se"


def _site_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and "Maildir" not in p.parts]


def _holding(root: Path, *needles: str) -> list[str]:
    """The files under ROOT (delivered mail aside) whose bytes hold any of NEEDLES (any case)."""
    found = []
    for path in _site_files(root):
        raw = path.read_bytes().lower()
        if any(n.lower().encode() in raw for n in needles):
            found.append(str(path.relative_to(root)))
    return sorted(found)


def _text_values(site) -> list[str]:
    """Every value in every table of the database, as text."""
    values = []
    with site.transaction() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(table.select()):
                values += [str(v) for v in row if v is not None]
    return values


@pytest.mark.sqlite_only
def test_after_forget_no_file_of_a_serving_site_holds_the_address(site):
    site.cli("contacts", "add", ADDRESS, "--name", NAME, "--municipality", "Åsele",
             "--role", "kommunchef")
    site.cli("municipalities", "members", "Åsele")
    site.cli("issue", "build", "2026-12")
    site.cli("issue", "preview", "2026-12", "--as", ADDRESS)
    site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--test-to", ADDRESS)
    site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--yes")
    database = site.root / "subscribers.db"
    with serve_site(site, {}) as (port, _proc):
        assert http_request(port, "GET", "/arkiv/")[0] == 200  # serve has the database open
        before = _holding(site.root, ADDRESS, NAME)
        assert "subscribers.db-wal" in before and "issues/2026-12/build/preview.html" in before

        out = site.cli("contacts", "forget", ADDRESS, "--yes").stdout

        names = {p.name for p in _site_files(site.root)}
        assert {"subscribers.db", "subscribers.db-wal", "subscribers.db-shm"} <= names
        assert _holding(site.root, ADDRESS, NAME) == []
        assert http_request(port, "GET", "/arkiv/")[0] == 200
    assert "issues/2026-12/build/preview.html" in out  # it says which preview it removed
    assert not (site.root / "issues" / "2026-12" / "build" / "preview.html").exists()
    assert (site.root / "issues" / "2026-12" / "build" / "issue.html").exists()
    assert sqlite3.connect(database).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_preview_of_someone_else_stays(site):
    site.cli("contacts", "add", ADDRESS, "--name", NAME)
    site.cli("contacts", "add", COLLEAGUE, "--name", "Kollega")
    site.cli("issue", "build", "2026-12")
    site.cli("issue", "preview", "2026-12", "--as", COLLEAGUE)
    out = site.cli("contacts", "forget", ADDRESS, "--yes").stdout
    assert "preview.html" not in out
    assert COLLEAGUE in (site.root / "issues" / "2026-12" / "build" / "preview.html").read_text(
        encoding="utf-8")


def test_forget_scrubs_the_refusal_of_a_test_copy_to_a_non_contact(site, smtp_server):
    smtp_server.reject([COLLEAGUE], reply=f"550 5.1.1 <{COLLEAGUE}>: Recipient address rejected")
    site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--test-to", COLLEAGUE,
             env={"NEWSLETTER_TRANSPORT": smtp_server.url}, ok=False)
    with site.transaction() as session:
        errors = list(session.scalars(select(OutboxRow.last_error)))
    assert any(COLLEAGUE in (e or "") for e in errors)  # the relay's answer quotes it

    site.cli("contacts", "forget", COLLEAGUE, "--yes")

    assert not [v for v in _text_values(site) if COLLEAGUE in v.casefold()]
    with site.transaction() as session:
        row = session.scalar(select(OutboxRow))
    assert row.status == "failed" and row.last_error  # the state and a reason stay


def test_forget_takes_the_address_out_of_a_one_off_message(site):
    # A one-off message (the worker's reminders to staff use these) names its addressee in its
    # label and meta, as a test copy does, under another label.
    with site.transaction() as session:
        source = TargetedSource(site.settings, "Påminnelse", "Svara på remissen senast fredag.")
        creating.create_message_to(session, site.settings, source, COLLEAGUE, label="remiss")
        creating.create_message_to(session, site.settings, source, "annan@example.se",
                                 label="remiss")
    site.cli("contacts", "forget", COLLEAGUE, "--yes")
    assert not [v for v in _text_values(site) if COLLEAGUE in v.casefold()]
    with site.transaction() as session:
        kept = [m.meta.get("test_to") for m in session.scalars(select(Mailing))]
    assert "annan@example.se" in kept
