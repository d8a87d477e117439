"""The web pages and the send engine together: an unsubscribe stops the mailing being sent."""

from __future__ import annotations

import email
import email.policy
import re
from urllib.parse import urlsplit

from sqlalchemy import select

from newsletter import db, links
from newsletter.kinds.targeted import TargetedSource
from newsletter.models import OutboxRow, Person
from newsletter.outbox import creating
from newsletter.sender import send_mailing

from .helpers import ANNA, BERTIL, person, token


def _mailing(site) -> int:
    settings = site.settings
    with site.transaction() as session:
        source = TargetedSource(settings, "Inbjudan till höstmötet", "Välkommen till **Åsele**!")
        return creating.create_mailing(session, settings, source, "not role:styrelse").mailing.id


def _delivered(site) -> list:
    folder = site.root / "Maildir" / "new"
    files = sorted(folder.iterdir()) if folder.is_dir() else []
    return [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]


def test_a_one_click_unsubscribe_during_a_send_stops_the_next_message(web):
    client, site = web
    mailing_id = _mailing(site)
    with site.transaction() as session:
        assert len(list(session.scalars(select(OutboxRow)))) == 2
    got = client.post(f"/u/{token(site, links.UNSUBSCRIBE, ANNA)}",
                      data={"List-Unsubscribe": "One-Click"})
    assert got.status_code == 200
    send_mailing(site.settings, db.session_factory(db.make_engine(site.settings.db_url)),
                 mailing_id)
    sent = _delivered(site)
    assert [m["To"].addresses[0].addr_spec for m in sent] == [BERTIL]
    with site.transaction() as session:
        anna_id = session.scalar(select(Person.id).where(Person.email == ANNA))
        row = session.scalar(select(OutboxRow).where(OutboxRow.person_id == anna_id))
        assert row.status != "sent"

    # The List-Unsubscribe URL in the message Bertil got is one this app accepts.
    header = sent[0]["List-Unsubscribe"]
    url = re.search(r"<(https://[^>]+)>", header).group(1)
    assert sent[0]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert client.get(urlsplit(url).path).status_code == 200
    html = sent[0].get_body(("html",)).get_content()
    prefs = re.search(r'href="(https://nyhetsbrev\.example\.se/p/[^"]+)"', html).group(1)
    assert BERTIL in client.get(urlsplit(prefs).path).get_data(as_text=True)
    assert person(site, BERTIL).status == "active"
    got = client.post(urlsplit(url).path, data="List-Unsubscribe=One-Click",
                      content_type="application/x-www-form-urlencoded")
    assert got.status_code == 200
    assert person(site, BERTIL).status == "unsubscribed"
