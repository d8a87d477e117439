"""Fixing a mailing's recipients in bulk (outbox.creating.add_recipients): batches of plain
values, one multi-row INSERT each, judged exactly as one person at a time would be."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from newsletter import segments
from newsletter.events import SuppressionReason, is_suppressed, suppress
from newsletter.kinds.issue import IssueSource
from newsletter.messages import message_id
from newsletter.models import MailingVariant, OutboxRow, OutboxStatus, Person
from newsletter.outbox import bulk, creating
from newsletter.sources import profile_of

from .helpers import add_person

TOWNS = ["Åsele", "Dorotea", "Vilhelmina"]


def _people(site) -> None:
    """Forty-odd persons in member municipalities, with every kind of difference that matters:
    areas chosen, roles held or ended, paused, unsubscribed, suppressed."""
    site.cli("municipalities", "members", *TOWNS)
    areas = [(), ("bostad",), ("medlemmar", "arbetsmarknad"), ("kapital",), ()]
    with site.transaction() as s:
        for i in range(40):
            role = ["kommunchef", "politiker", "kso", "tjansteperson"][i % 4]
            person = add_person(s, f"p{i:02d}", (TOWNS[i % 3], role), areas=areas[i % 5])
            if i % 8 == 0:  # a kommunchef no longer: an ended position unlocks nothing
                person.positions[0].ended_on = date.today() - timedelta(days=1)
                person.positions.append(type(person.positions[0])(
                    municipality=person.positions[0].municipality, role="politiker",
                    started_on=date(2024, 1, 1)))
        add_person(s, "pausad", (TOWNS[0], "kso"), paused_until=date.today() + timedelta(days=9))
        add_person(s, "borta", (TOWNS[1], "kso"), status="unsubscribed")
        add_person(s, "sparrad", (TOWNS[2], "kommunchef"))
        s.flush()
        suppress(s, site.settings.secret_key, "sparrad@example.se", SuppressionReason.BOUNCED)


def test_bulk_recipients_are_judged_as_one_person_at_a_time(site, monkeypatch):
    monkeypatch.setattr(bulk, "BATCH", 7)  # many batches, and a last one that is not full
    _people(site)
    settings = site.settings
    source = IssueSource(settings, "2026-12")
    with site.transaction() as s:  # the kommunchefer get the issue first, in a mailing of its own
        first = creating.create_mailing(s, settings, source, "kommunchefer")
    with site.transaction() as s:
        created = creating.create_mailing(s, settings, source, "medlemmar")
        rows = {r.person_id: r for r in s.scalars(select(OutboxRow).where(
            OutboxRow.mailing_id == created.mailing.id))}
        frozen = set(s.scalars(select(MailingVariant.key).where(
            MailingVariant.mailing_id == created.mailing.id)))
        firsts = {r.person_id: r.variant_key for r in s.scalars(select(OutboxRow).where(
            OutboxRow.mailing_id == first.mailing.id))}
        had = set(firsts)
        expected = {}
        for person in s.scalars(segments.recipients_query(settings, "medlemmar")):
            if person.id in had or is_suppressed(s, settings.secret_key, person.email):
                continue
            expected[person.id] = (source.variant_of(profile_of(person)),
                                   message_id(settings, created.mailing.id, person.public_id))
        names = {p.id: p.email for p in s.scalars(select(Person))}
    assert first.recipients == 5 and created.already_had_it == 5
    assert created.recipients == len(rows) == len(expected) == 40 - 5
    assert {pid: (r.variant_key, r.message_id) for pid, r in rows.items()} == expected
    assert {r.status for r in rows.values()} == {OutboxStatus.PENDING}
    assert {r.attempts for r in rows.values()} == {0}
    assert frozen == {key for key, _mid in expected.values()} and len(frozen) > 3
    left_out = {"pausad@example.se", "borta@example.se", "sparrad@example.se"}
    assert not left_out & {names[pid] for pid in rows}
    # An ended kommunchef position unlocks nothing; a held one does.
    by_address = {names[pid]: r.variant_key for pid, r in rows.items()}
    assert "kommunchef" not in by_address["p08@example.se"]
    assert {names[pid] for pid in firsts} == {f"p{i:02d}@example.se" for i in (4, 12, 20, 28, 36)}
    chief = {names[pid]: key for pid, key in firsts.items()}
    assert chief["p04@example.se"].endswith(";roles=kommunchef")  # every area: chief items too
    assert chief["p28@example.se"] == "areas=kapital;roles="  # no chief item in kapital


def test_the_persons_given_are_the_recipients_in_bulk_too(site, monkeypatch):
    monkeypatch.setattr(bulk, "BATCH", 3)
    _people(site)
    settings = site.settings
    source = IssueSource(settings, "2026-12")
    with site.transaction() as s:
        persons = list(s.scalars(select(Person).where(Person.email.like("p1%"))))
        persons += list(s.scalars(select(Person).where(Person.email == "borta@example.se")))
        created = creating.create_mailing(s, settings, source, "person:list", persons=persons)
        rows = list(s.scalars(select(OutboxRow).where(
            OutboxRow.mailing_id == created.mailing.id).order_by(OutboxRow.id)))
        expected = [(p.id, source.variant_of(profile_of(p))) for p in
                    sorted(persons, key=lambda p: p.id) if p.status == "active"]
    assert [(r.person_id, r.variant_key) for r in rows] == expected and len(expected) == 10
