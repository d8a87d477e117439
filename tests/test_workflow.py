"""Review and four-eyes approval, the refusals before a send, and the archive's withdrawal,
through the real CLI on a real site."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select

from newsletter import review, siteconfig
from newsletter.models import ArchivedIssue, Event, Mailing, OutboxRow, Review
from newsletter.web import create_app

from .helpers import (
    ADMIN,
    GRANSKARE,
    GRANSKARE2,
    INIT_FLAGS,
    REDAKTOR,
    add_staff,
    maildir,
    new_webinar,
    require_approval,
    seed,
)

MONTH = "2026-12"
SEND = ("send", "issue", MONTH, "--to", "medlemmar", "--yes")


@pytest.fixture
def approving(site):
    """A site that requires approval, with staff and 6 members."""
    require_approval(site)
    add_staff(site)
    seed(site, 6)
    return site


def _mailings(site) -> int:
    with site.transaction() as s:
        return s.scalar(select(func.count()).select_from(Mailing))


def _refused(site, *args: str) -> str:
    result = site.cli(*args, ok=False)
    assert result.exit_code == 1, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # one line
    return result.stderr


def _approve(site, month: str = MONTH) -> None:
    site.cli("issue", "submit", month, "--by", REDAKTOR)
    site.cli("issue", "approve", month, "--by", GRANSKARE)


# --- approval -----------------------------------------------------------------------------------

def test_an_issue_not_approved_is_refused_and_nothing_is_sent_or_published(approving):
    err = _refused(approving, *SEND)
    assert "inte godkänt" in err and "newsletter issue submit 2026-12" in err
    assert _mailings(approving) == 0
    assert not (approving.root / "Maildir").exists() or not list(maildir(approving).keys())
    with approving.transaction() as s:
        assert s.scalar(select(func.count()).select_from(ArchivedIssue)) == 0


def test_draft_in_review_approved_sent(approving):
    status = approving.cli("issue", "status", MONTH).stdout
    assert status.splitlines()[0] == "issue:2026-12: utkast"
    approving.cli("issue", "submit", MONTH, "--by", REDAKTOR)
    assert "på granskning" in approving.cli("issue", "status", MONTH).stdout
    _refused(approving, *SEND)  # in review is not approved
    out = approving.cli("issue", "approve", MONTH, "--by", GRANSKARE).stdout
    assert "godkänt av granskare@example.se" in out
    status = approving.cli("issue", "status", MONTH).stdout
    assert status.splitlines()[0] == "issue:2026-12: godkänt"
    assert "Skickat på granskning" in status and "av redaktor@example.se" in status
    sent = approving.cli(*SEND, "--by", GRANSKARE).stdout
    assert "6 skickade" in sent
    assert approving.cli("issue", "status", MONTH).stdout.splitlines()[0] == \
        "issue:2026-12: skickat"
    with approving.transaction() as s:
        kinds = [e.kind for e in s.scalars(select(Event).order_by(Event.id))]
        assert kinds.index("review-submitted") < kinds.index("review-approved")


def test_the_author_of_the_last_change_cannot_approve(approving):
    approving.cli("issue", "submit", MONTH, "--by", GRANSKARE)
    err = _refused(approving, "issue", "approve", MONTH, "--by", GRANSKARE)
    assert "granskare@example.se skickade issue:2026-12 på granskning" in err
    approving.cli("issue", "approve", MONTH, "--by", GRANSKARE2)
    # Whoever changes it and submits it again is the author: the approver before cannot
    # approve their own submission either.
    item = approving.root / "issues" / MONTH / "items" / "10-bredbandsstodet.md"
    item.write_text(item.read_text(encoding="utf-8") + "\nEn rättelse.\n", encoding="utf-8")
    approving.cli("issue", "submit", MONTH, "--by", GRANSKARE2)
    _refused(approving, "issue", "approve", MONTH, "--by", GRANSKARE2)
    approving.cli("issue", "approve", MONTH, "--by", ADMIN)


def test_a_redaktor_cannot_approve_or_send_and_a_stranger_cannot_submit(approving):
    approving.cli("issue", "submit", MONTH, "--by", REDAKTOR)
    assert "redaktör" in _refused(approving, "issue", "approve", MONTH, "--by", REDAKTOR)
    assert "ingen medarbetare" in _refused(approving, "issue", "approve", MONTH, "--by",
                                           "okand@example.se")
    assert "ingen medarbetare" in _refused(approving, "issue", "submit", MONTH, "--by",
                                           "okand@example.se")
    approving.cli("issue", "approve", MONTH, "--by", GRANSKARE)
    assert "redaktör" in _refused(approving, *SEND, "--by", REDAKTOR)
    assert "redaktör" in _refused(approving, "issue", "send-back", MONTH, "--by", REDAKTOR,
                                  "--comment", "nej")
    assert _mailings(approving) == 0
    approving.cli(*SEND, "--test-to", "test@example.se", "--by", REDAKTOR)  # tests: anyone


def _change_item(site) -> str:
    item = site.root / "issues" / MONTH / "items" / "10-bredbandsstodet.md"
    item.write_text(item.read_text(encoding="utf-8") + "\nBidraget höjs till 2 miljarder.\n",
                    encoding="utf-8")
    return "+Bidraget höjs till 2 miljarder."


def _change_editorial(site) -> str:
    path = site.root / "issues" / MONTH / "issue.md"
    path.write_text(path.read_text(encoding="utf-8") + "\nEn extra mening i ledaren.\n",
                    encoding="utf-8")
    return "+En extra mening i ledaren."


def _change_template(site) -> str:
    # Outside the blocks of a child template: what is sent today does not change, but the
    # templates did (a later variant might), and the diff says so.
    path = site.root / "templates" / "email" / "issue.txt.j2"
    path.write_text(path.read_text(encoding="utf-8") + "\n{# ändrad #}\n", encoding="utf-8")
    return "+templates: "


def _change_segment(site) -> str:
    path = site.root / "newsletter.toml"
    text = path.read_text(encoding="utf-8")
    assert 'medlemmar = "member"\n' in text
    path.write_text(text.replace('medlemmar = "member"\n',
                                 'medlemmar = "member and not role:styrelse"\n'),
                    encoding="utf-8")
    return "+segment: medlemmar = member and not role:styrelse"


def _change_branding(site) -> str:
    # As the console's branding page saves it: the HTML changes, the plain text does not, and
    # the diff still says what changed.
    (site.root / "branding.toml").write_text('[branding]\ncolour = "#7a1f3d"\n',
                                             encoding="utf-8")
    return "+branding: #7a1f3d"


@pytest.mark.parametrize("change", [_change_item, _change_editorial, _change_template,
                                    _change_segment, _change_branding])
def test_each_kind_of_change_voids_the_approval_visibly_with_the_diff(approving, change):
    _approve(approving)
    added = change(approving)
    status = approving.cli("issue", "status", MONTH).stdout
    assert status.splitlines()[0] == "issue:2026-12: ändrad efter godkännandet"
    assert "--- godkänt" in status
    assert any(line.startswith(added) for line in status.splitlines())
    err = _refused(approving, *SEND)
    assert "ändrad efter godkännandet" in err
    assert _mailings(approving) == 0
    # Submitted and approved again, it goes.
    _approve(approving)
    assert "6 skickade" in approving.cli(*SEND).stdout


def test_a_change_after_submission_cannot_be_approved_until_submitted_again(approving):
    approving.cli("issue", "submit", MONTH, "--by", REDAKTOR)
    _change_item(approving)
    assert "ändrad sedan" in approving.cli("issue", "status", MONTH).stdout
    assert "har ändrats sedan" in _refused(approving, "issue", "approve", MONTH, "--by",
                                           GRANSKARE)
    _approve(approving)


def test_send_back_with_a_comment(approving):
    approving.cli("issue", "submit", MONTH, "--by", REDAKTOR)
    approving.cli("issue", "send-back", MONTH, "--by", GRANSKARE, "--comment",
                  "Länken i bredbandsnyheten fungerar inte")
    status = approving.cli("issue", "status", MONTH).stdout
    assert status.splitlines()[0] == "issue:2026-12: utkast"
    assert "Länken i bredbandsnyheten fungerar inte" in status
    err = _refused(approving, *SEND)
    assert "Det skickades tillbaka: Länken i bredbandsnyheten" in err
    _refused(approving, "issue", "approve", MONTH, "--by", GRANSKARE)  # not in review


def test_approval_is_for_one_segment(approving):
    _approve(approving)
    err = _refused(approving, "send", "issue", MONTH, "--to", "kommunchefer", "--yes")
    assert "godkändes för segmentet medlemmar" in err


# --- require_approval ------------------------------------------------------------------------

def test_require_approval_true_on_a_real_site_false_in_the_demo(site):
    assert site.settings.workflow.require_approval is None  # not set in the test site
    assert not review.approval_required(site.settings)  # ... which has the demo's settings
    values = dict(zip(siteconfig.ASKED, INIT_FLAGS[1::2], strict=True))
    org = replace(site.settings.organisation, **siteconfig.organisation(values))
    assert siteconfig.demo_fields(org) == []
    assert review.approval_required(site.settings.with_overrides(organisation=org))
    assert "\nrequire_approval = true\n" in siteconfig.config_text(siteconfig.organisation(values))
    demo = siteconfig.config_text(siteconfig.demo_organisation(), require_approval=False)
    assert "\nrequire_approval = false\n" in demo
    require_approval(site, False)
    assert site.settings.workflow.require_approval is False
    (site.root / "newsletter.toml").write_text(
        (site.root / "newsletter.toml").read_text(encoding="utf-8").replace(
            "require_approval = false", "require_approval = 1"), encoding="utf-8")
    result = site.cli("issue", "status", MONTH, ok=False)
    assert result.exit_code == 78 and "workflow.require_approval" in result.stderr


# --- what else is refused -------------------------------------------------------------------------

def test_scaffold_text_and_a_failing_check_are_refused_without_approval(site):
    seed(site, 3)
    site.cli("issue", "new", "2027-01")
    err = _refused(site, "send", "issue", "2027-01", "--to", "medlemmar", "--yes")
    assert "klarar inte `newsletter issue check`" in err and "inga nyheter" in err
    site.cli("items", "new", "--issue", "2027-01", "--area", "bostad", "--title", "Nytt")
    err = _refused(site, "send", "issue", "2027-01", "--to", "medlemmar", "--yes")
    assert "issue.md: innehåller fortfarande mallens platshållartext" in err
    issue = site.root / "issues" / "2027-01" / "issue.md"
    issue.write_text(issue.read_text(encoding="utf-8").replace(
        "Skriv månadens ledare här.", "God jul!"), encoding="utf-8")
    err = _refused(site, "send", "issue", "2027-01", "--to", "medlemmar", "--yes")
    assert "items/nytt.md: innehåller fortfarande mallens platshållartext" in err
    dry = site.cli("send", "issue", "2027-01", "--to", "medlemmar", "--dry-run").stdout
    assert "Skarpt skulle det nekas" in dry
    assert _mailings(site) == 0
    with site.transaction() as s:
        assert s.scalar(select(func.count()).select_from(ArchivedIssue)) == 0
    # A test copy of the draft is fine: it goes to review, and publishes nothing.
    site.cli("send", "issue", "2027-01", "--to", "medlemmar", "--test-to", "g@example.se")
    with site.transaction() as s:
        assert s.scalar(select(func.count()).select_from(ArchivedIssue)) == 0


def test_demo_settings_never_mail_beyond_example_se(site):
    seed(site, 3)
    site.cli("contacts", "add", "anna@kommun.se", "--name", "Anna", "--municipality", "Åsele",
             "--role", "kommunchef")
    err = _refused(site, *SEND)
    assert "demons inställningar" in err and "anna@kommun.se" in err
    assert "organisation.sender" in err
    err = _refused(site, *SEND, "--test-to", "granskare@kommun.se")
    assert "granskare@kommun.se" in err
    assert _mailings(site) == 0
    # Inside example.se (and its subdomains) the demo works.
    site.cli(*SEND, "--test-to", "a@example.se", "--test-to", "b@asele.example.se")
    site.cli("contacts", "forget", "anna@kommun.se", "--yes")
    assert "3 skickade" in site.cli(*SEND).stdout


# --- targeted mailings and webinar announcements --------------------------------------------------

def test_a_targeted_mailing_is_submitted_approved_then_sent(approving):
    body = approving.root / "enkat.md"
    body.write_text("Svara gärna på **enkäten** om bredband.\n", encoding="utf-8")
    mail = ("mail", "--to", "kommunchefer", "--subject", "Enkät om bredband", "--body",
            str(body), "--yes")
    err = _refused(approving, *mail)
    assert "newsletter mail --to SEGMENT" in err and "--submit" in err
    out = approving.cli(*mail, "--submit", "--by", REDAKTOR).stdout
    ref = out.split(": ", 1)[1].split(" ")[0]
    assert ref.startswith("targeted:sha256:")
    assert "enkäten" in approving.cli("review", "show", ref, "--text").stdout
    _refused(approving, "review", "approve", ref, "--by", REDAKTOR)
    approving.cli("review", "approve", ref, "--by", GRANSKARE)
    assert "2 skickade" in approving.cli(*mail).stdout
    # Another text is another mailing, not approved.
    body.write_text("Svara på enkäten före fredag.\n", encoding="utf-8")
    _refused(approving, *mail)
    assert f"{ref[:40]}" in approving.cli("review", "list").stdout


def test_a_webinar_announcement_needs_approval_and_an_edit_voids_it(approving):
    new_webinar(approving, "2027-02-10 14:00")
    announce = ("webinar", "announce", "bredband", "--to", "kommunchefer", "--yes")
    assert "webinar announce bredband" in _refused(approving, *announce)
    approving.cli(*announce, "--submit", "--by", REDAKTOR)
    approving.cli("review", "approve", "webinar:bredband", "--by", GRANSKARE)
    approving.cli("webinar", "edit", "bredband", "--start", "2027-02-10 15:00")
    show = approving.cli("review", "show", "webinar:bredband").stdout
    assert "ändrad efter godkännandet" in show and "15.00" in show
    _refused(approving, *announce)
    approving.cli(*announce, "--submit", "--by", REDAKTOR)
    approving.cli("review", "approve", "webinar:bredband", "--by", GRANSKARE2)
    approving.cli(*announce)
    with approving.transaction() as s:
        assert s.scalar(select(func.count()).select_from(OutboxRow)) == 2


def test_review_refs_parse_and_name_what_they_are():
    assert str(review.parse_ref("2026-12")) == "issue:2026-12"
    assert str(review.parse_ref("webinar:bredband")) == "webinar:bredband:announce"
    with pytest.raises(Exception, match="inget att granska|not a mail"):
        review.parse_ref("något:annat")


# --- the archive --------------------------------------------------------------------------------

def test_an_issue_withdrawn_from_the_archive_leaves_the_pages_and_the_feed_only(site):
    seed(site, 4)
    site.cli(*SEND)
    client = create_app(site.settings).test_client()
    assert client.get(f"/arkiv/{MONTH}").status_code == 200
    assert MONTH.encode() in client.get("/arkiv/feed.atom").data
    out = site.cli("archive", "remove", MONTH).stdout
    assert "borttaget ur arkivet" in out
    assert client.get(f"/arkiv/{MONTH}").status_code == 404
    assert f"/arkiv/{MONTH}".encode() not in client.get("/arkiv/").data
    assert f"/arkiv/{MONTH}".encode() not in client.get("/arkiv/feed.atom").data
    assert "borttaget" in site.cli("archive", "list").stdout
    # What was sent is untouched, and another mailing of the month does not republish it.
    with site.transaction() as s:
        assert s.scalar(select(func.count()).where(OutboxRow.status == "sent")) == 4
    site.cli("send", "issue", MONTH, "--to", "role:politiker", "--yes")
    assert client.get(f"/arkiv/{MONTH}").status_code == 404
    site.cli("archive", "restore", MONTH)
    assert client.get(f"/arkiv/{MONTH}").status_code == 200
    assert _refused(site, "archive", "remove", "2025-01")


def test_reviews_are_one_per_mail(approving):
    approving.cli("issue", "submit", MONTH, "--by", REDAKTOR)
    approving.cli("issue", "submit", MONTH, "--by", REDAKTOR)
    with approving.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Review)) == 1
