"""`newsletter retention` and apply_retention: old personal traces anonymised, counts kept
(demo data, @example.se)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from newsletter.models import Event, Mailing, MailingVariant, OutboxRow, Person
from newsletter.retention import apply_retention

from .helpers import DATA

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=800)


def _history(site) -> dict[str, int]:
    """Contacts imported long ago, an old finished issue to 4 (with a personal variant and a
    failure), an old test copy to an address not in the register, a recent mailing to the
    same 4; the mailing ids by kind."""
    site.cli("municipalities", "members", "Åsele", "Härjedalen", "Dorotea", "Överkalix")
    site.cli("contacts", "import", str(DATA / "contacts_excel_utf8_bom.csv"))
    site.cli("send", "issue", "2026-12", "--to", "medlemmar")
    site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--test-to", "red@example.se")
    body = site.root / "kort.md"
    body.write_text("Kort meddelande.\n", encoding="utf-8")
    site.cli("mail", "--to", "medlemmar", "--subject", "Nytt", "--body", str(body))
    with site.transaction() as session:
        ids = {m.kind + (":test" if m.segment.startswith("test:") else ""): m.id
               for m in session.scalars(select(Mailing))}
        for mailing_id in (ids["issue"], ids["issue:test"]):
            session.get(Mailing, mailing_id).finished_at = OLD
        for event in session.scalars(select(Event).where(Event.kind == "imported")):
            event.at = OLD
        row = session.scalars(select(OutboxRow).where(OutboxRow.mailing_id == ids["issue"])
                              .order_by(OutboxRow.id)).first()
        row.status, row.last_error = "failed", "550 5.1.1 <x@example.se> unknown"
        person = session.get(Person, row.person_id)
        session.add(MailingVariant(mailing_id=ids["issue"], key=person.public_id, subject="s",
                                   html="<p>Inbjudan till ATTENDEE</p>", text="t"))
        row.variant_key = person.public_id
    return ids


def _rows(site) -> list[tuple]:
    with site.transaction() as session:
        return sorted(session.execute(select(OutboxRow.id, OutboxRow.person_id,
                                             OutboxRow.message_id, OutboxRow.last_error)).all())


def _counts(site, mailing_id: int) -> str:
    return site.cli("send", "status", str(mailing_id)).stdout


def test_old_traces_lose_their_person_and_the_counts_stay(site):
    ids = _history(site)
    before = _counts(site, ids["issue"])
    rows_before = _rows(site)
    recent_before = _counts(site, ids["targeted"])

    dry = site.cli("retention", "--dry-run").stdout
    assert "Händelser äldre än 730 dagar: 4 har anonymiserats" in dry
    assert "Utskick som blev klara för mer än 730 dagar sedan: 2 har anonymiserats (raderat: " \
           "mottagarrader 4, personliga varianter 1)" in dry
    assert "Torrkörning" in dry
    assert _rows(site) == rows_before

    site.cli("retention")
    # Neither the database file nor its -wal keeps the old pages (secure_delete, checkpoint).
    for path in site.root.glob("subscribers.db*"):
        stored = path.read_bytes()
        for trace in (b"red@example.se", b"Inbjudan till ATTENDEE", b"<x@example.se> unknown"):
            assert trace not in stored, (path.name, trace)
    with site.transaction() as session:
        old_rows = session.scalars(select(OutboxRow).where(
            OutboxRow.mailing_id.in_([ids["issue"], ids["issue:test"]]))).all()
        assert old_rows and all(r.person_id is None for r in old_rows)
        assert all(r.message_id.startswith("retained:") and r.last_error is None
                   for r in old_rows if r.mailing_id == ids["issue"])
        assert "personal" in {r.variant_key for r in old_rows}
        keys = set(session.scalars(select(MailingVariant.key)))
        assert not keys & set(session.scalars(select(Person.public_id)))
        recent = session.scalars(select(OutboxRow).where(
            OutboxRow.mailing_id == ids["targeted"])).all()
        assert all(r.person_id is not None for r in recent)
        test = session.get(Mailing, ids["issue:test"])
        assert "red@example.se" not in test.segment + repr(test.meta)
        imported = session.scalars(select(Event).where(Event.kind == "imported")).all()
        assert imported and all(e.person_id is None for e in imported)
        kept = session.scalars(select(Event).where(Event.kind == "position_started")).all()
        assert all(e.person_id is not None for e in kept)
        assert session.scalar(select(Event).where(Event.kind == "retention")).detail == {
            "events": 4, "mailings": 2, "rows": 4}
    # `send status` shows the same counts.
    after = _counts(site, ids["issue"])
    assert after.split("Fel:")[0] == before.split("Fel:")[0]
    assert _counts(site, ids["targeted"]) == recent_before
    # Export-person no longer lists the old issue, still the recent mailing.
    out = site.cli("contacts", "export-person", "ake.ostlund@asele.example.se").stdout
    assert "Nytt" in out and "Nyhetsbrev december" not in out

    again = site.cli("retention").stdout
    assert "0 har anonymiserats" in again and "2 har anonymiserats" not in again


def test_the_worker_round_is_the_same_core_function_and_zero_keeps_for_ever(site):
    ids = _history(site)
    config = site.root / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        "events_days = 730", "events_days = 0").replace("outbox_days = 730", "outbox_days = 0"),
        encoding="utf-8")
    with site.transaction() as session:
        report = apply_retention(session, site.settings)
    assert (report.events, report.mailings, report.rows) == (0, 0, 0)
    with site.transaction() as session:  # a later round, with the default setting
        report = apply_retention(session, site.settings.with_overrides(
            retention=type(site.settings.retention)(events_days=30, outbox_days=30)),
            now=NOW + timedelta(days=40))
    assert (report.mailings, report.rows) == (3, 8)
    with site.transaction() as session:
        assert session.get(Mailing, ids["targeted"]).meta["retained"] is True


def test_a_wrong_retention_setting_is_one_line_naming_the_key(site):
    config = site.root / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        "outbox_days = 730", 'outbox_days = "two years"'), encoding="utf-8")
    result = site.cli("retention", ok=False)
    assert result.exit_code == 78
    assert "newsletter.toml: retention.outbox_days måste vara ett heltal" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
