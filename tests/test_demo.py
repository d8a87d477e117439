"""`newsletter demo`: the main job end to end, on a fresh folder, twice."""

from __future__ import annotations

import mailbox
from email import policy
from email.parser import BytesParser

from click.testing import CliRunner

from newsletter.cli import main


def _demo(root):
    result = CliRunner().invoke(main, ["--root", str(root), "demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_demo_sends_the_sample_issue_to_medlemmar_once(tmp_path, monkeypatch):
    monkeypatch.delenv("NEWSLETTER_SECRET_KEY", raising=False)
    monkeypatch.delenv("NEWSLETTER_TRANSPORT", raising=False)
    monkeypatch.delenv("NEWSLETTER_DB_URL", raising=False)
    out = _demo(tmp_path)
    medlemmar = int(out.split("segment medlemmar: ")[1].split()[0])
    assert medlemmar > 50
    assert f"{medlemmar} skickade" in out
    box = mailbox.Maildir(tmp_path / "Maildir", create=False)
    assert len(box) == medlemmar

    recipients, with_members_section = set(), 0
    for key in box.iterkeys():
        msg = BytesParser(policy=policy.default).parsebytes(box.get_bytes(key))
        assert msg["To"].addresses[0].domain.endswith("example.se")
        assert msg["Subject"].startswith("Nyhetsbrev december 2026")
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        text = msg.get_body(("plain",)).get_content()
        assert "Nyhetsbrev december 2026" in text
        with_members_section += "VÅRA MEDLEMMAR" in text
        recipients.add(msg["To"].addresses[0].addr_spec)
    assert len(recipients) == medlemmar
    # Demo contacts who chose two areas get only those sections: the variants are real.
    assert medlemmar / 2 < with_members_section < medlemmar

    again = _demo(tmp_path)
    assert "0 skickade" in again
    assert len(mailbox.Maildir(tmp_path / "Maildir", create=False)) == medlemmar
    assert (tmp_path / "issues" / "2026-12" / "build" / "issue.html").exists()
