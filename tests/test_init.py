"""`newsletter init` for a real site: flags or questions on a terminal, never a guess; the
demo's values only from `newsletter demo`; prompts that take a Swedish yes."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import func
from sqlalchemy import select as sql_select

from newsletter import db, siteconfig
from newsletter.cli import main
from newsletter.models import Municipality
from newsletter.settings import load_settings

from .helpers import INIT_FLAGS, TEST_ENV


def run(root: Path, *args: str, input: str | None = None):
    return CliRunner().invoke(main, ["--root", str(root), *args], input=input, env=TEST_ENV,
                              catch_exceptions=False)


def flags(**changes: str) -> list[str]:
    """INIT_FLAGS with some values changed (key: the flag without dashes, _ for -)."""
    out = list(INIT_FLAGS)
    for key, value in changes.items():
        out[out.index("--" + key.replace("_", "-")) + 1] = value
    return out


def test_flags_make_a_real_site_without_asking(tmp_path):
    result = run(tmp_path, "init", *INIT_FLAGS)
    assert result.exit_code == 0, result.output
    assert "Skapade" in result.stdout and "nyhetsbrev@smakommuner.example" in result.stdout
    text = (tmp_path / "newsletter.toml").read_text(encoding="utf-8")
    assert "# Order of precedence" in text and "[[areas]]" in text  # the comments are kept
    org = load_settings(tmp_path, env=TEST_ENV).organisation
    assert (org.name, org.sender, org.reply_to, org.postal_address, org.base_url) == (
        "Föreningen Småkommunerna", "nyhetsbrev@smakommuner.example",
        "kansliet@smakommuner.example", "Storgatan 1, 111 22 Stockholm",
        "https://nyhetsbrev.smakommuner.example")
    assert org.sender_name == org.name and org.list_id == "nyhetsbrev.smakommuner.example"
    assert org.unsubscribe_mailto == "kansliet@smakommuner.example"
    assert siteconfig.demo_fields(org) == []
    settings = load_settings(tmp_path, env=TEST_ENV)
    with db.session_factory(db.make_engine(settings.db_url))() as s:
        assert s.scalar(sql_select(func.count()).select_from(Municipality)) == 290
    # The database holds personal data: its owner alone may read it (and its -wal, -shm).
    for path in tmp_path.glob("subscribers.db*"):
        assert path.stat().st_mode & 0o077 == 0, path


def test_values_are_normalised(tmp_path):
    result = run(tmp_path, "init", *flags(sender="Nyhetsbrev@Smakommuner.Example",
                                          base_url="https://Nyhetsbrev.Smakommuner.example/nb/",
                                          org="  Föreningen   Småkommunerna "))
    assert result.exit_code == 0, result.output
    org = load_settings(tmp_path, env=TEST_ENV).organisation
    assert org.sender == "nyhetsbrev@smakommuner.example"
    assert org.base_url == "https://nyhetsbrev.smakommuner.example/nb"
    assert org.name == "Föreningen Småkommunerna"


def test_without_a_terminal_missing_values_are_refused_not_guessed(tmp_path):
    result = run(tmp_path, "init", "--org", "Föreningen Småkommunerna",
                 "--sender", "nyhetsbrev@smakommuner.example")
    assert result.exit_code == 78
    [line] = result.stderr.strip().splitlines()
    assert "--reply-to, --postal-address, --base-url" in line and "--org" not in line
    assert not (tmp_path / "newsletter.toml").exists()
    assert not (tmp_path / "subscribers.db").exists()


def test_bad_values_name_their_flag_and_write_nothing(tmp_path):
    cases = {
        "--sender": flags(sender="nyhetsbrev"),
        "--reply-to": flags(reply_to="kansliet@"),
        "--base-url": flags(base_url="http://nyhetsbrev.smakommuner.example"),
        "--postal-address": flags(postal_address="   "),
    }
    for flag, args in cases.items():
        result = run(tmp_path, "init", *args)
        assert result.exit_code != 0, flag
        [line] = result.stderr.strip().splitlines()
        assert flag in line, line
        assert not (tmp_path / "newsletter.toml").exists()
    for url in ("ftp://x.example", "https://", "https://x.example/?a=1", "https://u:p@x.example"):
        result = run(tmp_path, "init", *flags(base_url=url))
        assert result.exit_code != 0 and "--base-url" in result.stderr, url


def test_a_loopback_base_url_may_be_http_for_trying_out(tmp_path):
    assert run(tmp_path, "init", *flags(base_url="http://127.0.0.1:8000")).exit_code == 0
    assert load_settings(tmp_path, env=TEST_ENV).organisation.base_url == "http://127.0.0.1:8000"


def test_running_again_only_migrates_and_refuses_other_values(tmp_path):
    assert run(tmp_path, "init", *INIT_FLAGS).exit_code == 0
    config = tmp_path / "newsletter.toml"
    before = config.read_text(encoding="utf-8")
    again = run(tmp_path, "init")
    assert again.exit_code == 0 and "aktuell" in again.stdout
    assert run(tmp_path, "init", *INIT_FLAGS).exit_code == 0  # the same values: fine
    other = run(tmp_path, "init", *flags(sender="info@smakommuner.example"))
    assert other.exit_code == 1
    assert "organisation.sender" in other.stderr and "redigera newsletter.toml" in other.stderr
    assert config.read_text(encoding="utf-8") == before


def test_demo_values_come_only_from_demo(tmp_path, monkeypatch):
    for key, value in TEST_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)  # the demo's Maildir and build land here
    demo = tmp_path / "demo"
    result = run(demo, "demo")
    assert result.exit_code == 0, result.output
    assert "demo" in result.stdout.splitlines()[0]
    org = load_settings(demo, env=TEST_ENV).organisation
    assert set(siteconfig.demo_fields(org)) >= {"name", "sender", "base_url"}
    # A real site keeps its own settings when the demo runs in it.
    real = tmp_path / "real"
    assert run(real, "init", *INIT_FLAGS).exit_code == 0
    before = (real / "newsletter.toml").read_text(encoding="utf-8")
    assert run(real, "demo").exit_code == 0
    assert (real / "newsletter.toml").read_text(encoding="utf-8") == before


def test_swedish_yes_and_no_answer_a_prompt(site):
    site.cli("contacts", "add", "ake@example.se", "--name", "Åke Demo")
    kept = site.cli("contacts", "forget", "ake@example.se", input="kanske\nnej\n", ok=False)
    assert kept.exit_code == 1 and "svara j (y) eller n" in kept.output
    assert "ake@example.se" in site.cli("contacts", "list").stdout
    gone = site.cli("contacts", "forget", "ake@example.se", input="j\n")
    assert "Raderade" in gone.stdout
    assert "ake@example.se" not in site.cli("contacts", "list").stdout


# --- on a real terminal ------------------------------------------------------------------------

class Terminal:
    """`newsletter ARGS` on a pseudo-terminal: read until a text appears, then type a line."""

    def __init__(self, *args: str) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "newsletter", *args], stdin=slave, stdout=slave,
            stderr=slave, env={**os.environ, **TEST_ENV}, close_fds=True)
        os.close(slave)
        self.seen = ""

    def expect(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"waited for {text!r}, got:\n{self.seen}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the other end closed
                    chunk = b""
                assert chunk, f"ended before {text!r}:\n{self.seen}"
                self.seen += chunk.decode("utf-8", "replace")
        self.seen = self.seen[self.seen.index(text) + len(text):]

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    def wait(self) -> int:
        try:
            while True:  # drain, so the child never blocks on a full terminal
                ready, _, _ = select.select([self.master], [], [], 30)
                if not ready or not os.read(self.master, 4096):
                    break
        except OSError:
            pass
        os.close(self.master)
        return self.proc.wait(timeout=30)


def test_on_a_terminal_init_asks_for_what_is_missing(tmp_path):
    term = Terminal("--root", str(tmp_path), "init", "--org", "Föreningen Småkommunerna")
    term.expect("Avsändaradress")
    term.type("inte-en-adress")
    term.expect("--sender")  # the error names the field, and the question comes again
    term.expect("Avsändaradress")
    term.type("nyhetsbrev@smakommuner.example")
    term.expect("Svarsadress (Reply-To) [nyhetsbrev@smakommuner.example]")
    term.type("")  # the sender is offered as the reply-to
    term.expect("Postadress")
    term.type("Storgatan 1, 111 22 Stockholm")
    term.expect("Webbsidornas publika adress")
    term.type("https://nyhetsbrev.smakommuner.example")
    term.expect("[J/n]")
    term.type("j")
    assert term.wait() == 0
    org = tomllib.loads((tmp_path / "newsletter.toml").read_text(encoding="utf-8"))[
        "organisation"]
    assert org["reply_to"] == org["sender"] == "nyhetsbrev@smakommuner.example"
    assert org["postal_address"] == "Storgatan 1, 111 22 Stockholm"


def test_on_a_terminal_a_no_writes_nothing(tmp_path):
    term = Terminal("--root", str(tmp_path), "init", *flags()[:-2])  # all but --base-url
    term.expect("Webbsidornas publika adress")
    term.type("https://nyhetsbrev.smakommuner.example")
    term.expect("[J/n]")
    term.type("nej")
    assert term.wait() == 1
    assert not (tmp_path / "newsletter.toml").exists()
