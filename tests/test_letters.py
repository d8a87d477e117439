"""The texts of the messages the system writes itself are templates a site changes (letters.py):
overridden by the site's own file, per language, values shown as written, mistakes named."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from newsletter import i18n, letters, webinars
from newsletter.errors import ConfigError
from newsletter.kinds import signup as signup_kind
from newsletter.kinds import webinar as kind
from newsletter.models import Mailing, Person, Signup

from .helpers import REPO, add_person, future_start, new_webinar

MESSAGES = REPO / "templates" / "email" / "messages"


def _webinar(site, title: str = "Bredband på landsbygden", **extra):
    with site.transaction() as session:
        webinars.create_webinar(
            session, site.settings, title=title, slug="bredband", duration_minutes=60,
            starts_at=datetime(2030, 3, 12, 13, 0, tzinfo=UTC), **extra,
            join_url="https://teams.example.se/l/meetup_join/abc",
            description="Hur **Åsele** byggde ut fibern.")
    with site.transaction() as session:
        found = kind.snapshot(webinars.get_webinar(session, "bredband"))
    found.recording_url = "https://play.example.se/bredband"
    return found


def _set_language(site, language: str) -> None:
    config = site.root / "newsletter.toml"
    text = re.sub(r'(?m)^language = ".*"$', f'language = "{language}"',
                  config.read_text(encoding="utf-8"))
    config.write_text(text, encoding="utf-8")
    i18n.activate(language)


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_every_message_has_a_template_in_each_language_and_renders(site, language):
    _set_language(site, language)
    names = {p.name for p in (MESSAGES / language).glob("*.md")}
    assert names == {p.name for p in (MESSAGES / "sv").glob("*.md")}
    assert {f"{name}.md" for name in kind.TEMPLATES.values()} | {
        "signin.md", f"{signup_kind.NEWSLETTER_MESSAGE}.md",
        f"{signup_kind.WEBINAR_MESSAGE}.md"} == names
    webinar = _webinar(site)
    settings = site.settings
    for what in kind.TEMPLATES:
        words = kind.letter(settings, webinar, what, position=2, days_until=1)
        assert words.subject and "Bredband på landsbygden" in words.subject + words.body
        assert "{{" not in words.subject + words.preheader + words.body
    starts = {"sv": "12 mars kl. 14.00", "en": "12 March, 14:00"}[language]
    assert starts in kind.letter(settings, webinar, "announce").subject


def _confirmation(site, webinar=None, name="Eva *Lind*"):
    signup = Signup(public_id="s1gnup", name=name, subscribe=True)
    return signup_kind.confirmation(site.settings, signup, Person(status="pending"), webinar)


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_the_sign_up_confirmations_are_message_templates_in_each_language(site, language):
    _set_language(site, language)
    hello = {"sv": "Hej", "en": "Hello"}[language]
    found = _webinar(site)
    for webinar in (None, found):
        words = _confirmation(site, webinar).letter
        assert words.body.startswith(f"{hello} Eva \\*Lind\\*!\n")  # the name as written
        assert re.search(r"\]\(https?://[^)\\]+/prenumerera/bekrafta/[^)\\]+\)", words.body)
        assert "{{" not in words.subject + words.body
        assert words.template.endswith(
            f"messages/{language}/{'webinar_' if webinar else ''}signup_confirmation.md")
    assert "Bredband på landsbygden" in _confirmation(site, found).subject


def test_a_site_changes_the_sign_up_confirmation_with_its_own_template(site):
    own = site.root / "templates/email/messages/sv/signup_confirmation.md"
    own.parent.mkdir(parents=True, exist_ok=True)
    own.write_text('---\nsubject: "Välkommen till {{ organisation }}"\naction: Bekräfta\n'
                   'action_url: "{{ url }}"\n---\nKlicka på knappen, {{ name }}.\n',
                   encoding="utf-8")
    confirmation = _confirmation(site, name="Eva")
    assert confirmation.subject == f"Välkommen till {site.settings.organisation.name}"
    assert confirmation.letter.body == "Klicka på knappen, Eva.\n"
    content = confirmation.render("key")
    assert "Bekräfta" in content.html and confirmation.letter.action_url in content.html


def test_values_are_shown_as_written_not_as_markdown(site):
    webinar = _webinar(site, title="Fiber *nu* och [sen]_2030_")
    source = kind.announcement(site.settings, webinar)
    content = source.render(source.variant)
    assert "Fiber *nu* och [sen]_2030_" in content.text
    assert "Fiber *nu* och [sen]_2030_" in content.html and "<em>" not in content.html
    assert "<strong>Åsele</strong>" in content.html  # the description is Markdown


def test_the_invitation_has_a_registration_button(site):
    webinar = _webinar(site)
    content = kind.announcement(site.settings, webinar).render("announce")
    button = re.search(r'<a href="https://nyhetsbrev\.example\.se/webinar/bredband"[^>]*'
                       r'style="display:inline-block;background:#[0-9a-f]{6}[^"]*"[^>]*>'
                       r'Anmäl dig</a>', content.html)
    assert button, "an mj-button: a link styled as a button inside a table cell"
    assert "Anmäl dig: https://nyhetsbrev.example.se/webinar/bredband" in content.text


def test_a_site_changes_a_text_with_its_own_template(site):
    own = site.root / "templates/email/messages/sv/webinar_followup.md"
    own.write_text('---\nsubject: "Inspelat: {{ webinar.title }}"\n---\n'
                   "Se den igen: {{ webinar.recording_url }}\n", encoding="utf-8")
    words = kind.letter(site.settings, _webinar(site), "followup")
    assert words.subject == "Inspelat: Bredband på landsbygden"
    assert words.body == "Se den igen: https://play.example.se/bredband\n"
    assert words.action == "" and words.template == str(own)


@pytest.mark.parametrize("template, words", [
    ("---\nsubject: Hej\n---\n{{ webinar.nope }}\n", "webinar_followup.md"),
    ("---\nsubject: Hej\n---\n\n\n{% if %}\n", "webinar_followup.md:6"),
    ("---\npreheader: Hej\n---\nText\n", "har ingen ämnesrad"),
    ("---\nsubject: Hej\nknapp: Klicka\n---\nText\n", "okänd nyckel ”knapp”"),
    ('---\nsubject: Hej\naction: Klicka\naction_url: "javascript:alert(1)"\n---\nText\n',
     "action_url måste vara en webbadress"),
])
def test_a_broken_template_is_a_configuration_error_naming_the_file(site, template, words):
    (site.root / "templates/email/messages/sv/webinar_followup.md").write_text(
        template, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(words)):
        kind.letter(site.settings, _webinar(site), "followup")


def test_a_broken_template_stops_the_command_before_anything_is_made(site):
    new_webinar(site, future_start())
    with site.transaction() as session:
        add_person(session, "anna", (None, "styrelse"))
    site.cli("webinar", "register", "bredband", "anna@example.se")
    (site.root / "templates/email/messages/sv/webinar_cancellation.md").write_text(
        "---\nsubject: Inställt\n---\n{{ nytt_datum }}\n", encoding="utf-8")
    result = site.cli("webinar", "cancel", "bredband", ok=False)
    assert result.exit_code == 78
    assert "webinar_cancellation.md" in result.stderr and "nytt_datum" in result.stderr
    with site.transaction() as session:
        assert webinars.get_webinar(session, "bredband").status == "scheduled"
        assert len(session.scalars(select(Mailing)).all()) == 1  # the confirmation only


def test_an_english_site_gets_the_english_texts(site):
    _set_language(site, "en")
    words = kind.letter(site.settings, _webinar(site), "remind", days_until=0)
    assert words.subject == "Reminder: Bredband på landsbygden, 12 March, 14:00"
    assert words.preheader == "Today: Bredband på landsbygden."
    assert "Tuesday 12 March 2030, 14:00–15:00" in words.body


def test_the_remiss_templates_use_the_same_rules(site):
    """letters.write is the one loader: `| md` still escapes, and says what the default does."""
    words = letters.write(site.settings, "intake/remiss_call.md", {
        "title": "SOU 2026:1 *Ny* kommunallag", "url": "https://www.regeringen.se/a_b",
        "summary": "", "answer_by": "", "organisation": "Föreningen", "reply_to": "k@example.se",
        "entry_id": 1})
    assert words.subject == "Tyck till om remissen: SOU 2026:1 *Ny* kommunallag"
    assert r"\*Ny\*" in words.body and r"\\*Ny" not in words.body


def test_days_until_counts_calendar_days_in_stockholm(site):
    webinar = _webinar(site)
    evening_before = datetime(2030, 3, 11, 22, 30, tzinfo=UTC)  # 23.30 in Stockholm
    assert kind.days_until(site.settings, webinar, evening_before) == 1
    assert kind.days_until(site.settings, webinar, evening_before + timedelta(hours=1)) == 0


def test_a_cancellation_promises_a_new_date_only_when_the_staff_give_one(site, smtp_server):
    env = {"NEWSLETTER_TRANSPORT": smtp_server.url}
    with site.transaction() as session:
        add_person(session, "anna", (None, "styrelse"))
    for slug in ("utan", "med"):
        new_webinar(site, future_start(), slug=slug)
        site.cli("webinar", "register", slug, "anna@example.se", env=env)
    site.cli("webinar", "cancel", "utan", env=env)
    site.cli("webinar", "cancel", "med", "--message", "Nytt datum: 4 februari, *samma* tid.",
             env=env)
    cancelled = [m for m in smtp_server.parsed() if m["Subject"].startswith("Inställt")]
    assert len(cancelled) == 2
    without, with_date = (m.get_body(("plain",)).get_content() for m in cancelled)
    assert "är tyvärr inställt" in without
    assert "datum" not in without and "hör av oss" not in without
    assert "Nytt datum: 4 februari, *samma* tid." in with_date
