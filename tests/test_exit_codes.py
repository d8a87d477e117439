"""Exit codes scripts can tell apart, from real commands: 0 success, 1 bad input or data,
2 usage, 78 configuration, 130 interrupted; and bad newsletter.toml values, each one line."""

from __future__ import annotations

import inspect
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter import errors, webinars
from newsletter.cli import main
from newsletter.models import Person
from newsletter.web import create_app

from .helpers import REPO, TEST_ENV

ADDRESS = "anna.andersson@example.se"


def one_line_error(result) -> str:
    """The error of a failed command: exactly one line on stderr, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


# --- 0, 1 and 2 ---------------------------------------------------------------------------

def test_success_is_0(site):
    assert site.cli("segments", "list").exit_code == 0
    assert site.cli("contacts", "add", ADDRESS, "--municipality", "Åsele",
                    "--role", "kommunchef").exit_code == 0


@pytest.mark.parametrize("args, words", [
    (("contacts", "add", "not-an-address"), "not-an-address"),  # InputError
    (("contacts", "show", "nobody@example.se"),
     "ingen kontakt med adressen nobody@example.se"),  # NotFound
    (("segments", "count", "role:kommunchef and ("), "kolumn"),  # SegmentSyntaxError
    (("issue", "build", "2026-13"), "inte en månad"),
    (("webinar", "show", "finns-inte"), "finns inte"),
])
def test_bad_input_is_1(site, args, words):
    result = site.cli(*args, ok=False)
    assert result.exit_code == 1
    assert words in one_line_error(result)


def test_a_suppressed_address_is_1(site):
    site.cli("contacts", "unsubscribe", ADDRESS)
    result = site.cli("contacts", "add", ADDRESS, ok=False)
    assert result.exit_code == 1 and "är avregistrerad" in one_line_error(result)


def test_a_mailing_that_cannot_go_on_is_1(site):
    site.cli("contacts", "add", ADDRESS, "--municipality", "Åsele", "--role", "kommunchef")
    site.cli("municipalities", "members", "Åsele")
    site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--yes")
    result = site.cli("send", "pause", "1", ok=False)  # already done: SendError
    assert result.exit_code == 1 and "redan klart" in one_line_error(result)


def test_an_issue_that_does_not_check_is_1(site):
    site.cli("issue", "new", "2027-01")
    result = site.cli("issue", "check", "2027-01", ok=False)
    assert result.exit_code == 1
    assert "FEL:" in result.stdout and "inga nyheter" in result.stdout


def test_an_import_with_rejected_rows_is_1_and_imports_the_rest(site, tmp_path):
    path = tmp_path / "kontakter.csv"
    path.write_text("email,name,municipality,role\n"
                    f"{ADDRESS},Anna Andersson,Åsele,kommunchef\n"
                    "inte-en-adress,Bo Ek,Åsele,kso\n", encoding="utf-8")
    result = site.cli("contacts", "import", str(path), ok=False)
    assert result.exit_code == 1 and f"{path}:3:" in result.stderr
    assert "1 nya" in result.stdout


@pytest.mark.parametrize("args", [
    ("contacts", "add"),  # a missing argument
    ("contacts", "list", "--no-such-option"),
    ("send", "issue", "2026-12"),  # --to is required
    ("no-such-command",),
    ("contacts", "list", "--status", "sleeping"),  # not one of the choices
])
def test_usage_errors_are_click_s_2(site, args):
    result = site.cli(*args, ok=False)
    assert result.exit_code == 2
    assert "Traceback" not in result.output


# --- 78: configuration --------------------------------------------------------------------

def _config(site) -> Path:
    return site.root / "newsletter.toml"


def _replace_in_config(site, old: str, new: str) -> None:
    text = _config(site).read_text(encoding="utf-8")
    assert old in text, old
    _config(site).write_text(text.replace(old, new, 1), encoding="utf-8")


BAD_VALUES = [
    ("rate = 0", 'rate = "fast"', 'transport.rate måste vara ett tal, inte "fast"'),
    ("connections = 2", "connections = 2.5", "transport.connections måste vara ett heltal"),
    ("connections = 2", "connections = true", "transport.connections måste vara ett heltal"),
    ("connections = 2", "connections = 0", "transport.connections måste vara minst 1"),
    ("rate = 0", "rate = inf", "transport.rate måste vara ett tal"),
    ("rate = 0", "rate = -1", "transport.rate måste vara minst 0"),
    ("per_domain_rate = 0", 'per_domain_rate = "2"', "transport.per_domain_rate måste vara"),
    ("max_consecutive_failures = 20", "max_consecutive_failures = 1.5",
     "transport.max_consecutive_failures måste vara ett heltal"),
    ("confirm_above = 50", "confirm_above = [50]", "transport.confirm_above måste vara ett heltal"),
    ('url = "maildir:Maildir"', "url = 25", "transport.url måste vara en sträng"),
    ("soft_limit = 3", 'soft_limit = "3"', "bounces.soft_limit måste vara ett heltal"),
    ("clicks = false", 'opens = "no"', "tracking.opens är ingen inställning"),
    ('kommunchef = "Kommunchef"', "kommunchef = 1", "[roles] kommunchef måste vara en sträng"),
    ('kommunchefer = "role:kommunchef and member"', "kommunchefer = true",
     "[segments] kommunchefer måste vara en sträng"),
    ('slug = "bostad"', "slug = 7", "areas[1].slug måste vara en sträng"),
    ('name = "Bostadsförsörjning"', 'name = ["Bostad"]', "areas[1].name måste vara en sträng"),
    ('sender = "nyhetsbrev@example.se"', "sender = 1", "organisation.sender måste vara en sträng"),
    ('base_url = "https://nyhetsbrev.example.se"', 'base_url = "nyhetsbrev.example.se"',
     "organisation.base_url måste vara en https://-adress"),
    ('url = "sqlite:///subscribers.db"', "url = {}", "database.url måste vara en sträng"),
    ("clicks = false", "clicks = 1", "tracking.clicks måste vara true eller false, inte 1"),
]


@pytest.mark.parametrize("old, new, words", BAD_VALUES, ids=[b[1] for b in BAD_VALUES])
def test_a_wrong_type_in_newsletter_toml_is_one_line_naming_key_and_file(site, old, new,
                                                                         words):
    _replace_in_config(site, old, new)
    result = site.cli("segments", "list", ok=False)
    assert result.exit_code == 78
    line = one_line_error(result)
    assert words in line and str(_config(site)) in line


@pytest.mark.parametrize("text, words", [
    ('areas = "bostad"\n', "areas måste vara en lista"),
    ('areas = ["bostad"]\n', "areas[0] måste vara en tabell"),
    ('transport = "smtp://127.0.0.1"\n', "[transport] måste vara en tabell"),
    ("[organisation\n", "newsletter.toml"),  # not TOML at all
])
def test_a_table_of_the_wrong_shape_is_one_line(site, text, words):
    # Top-level keys go before the first [table] of the file.
    _config(site).write_text(text + _config(site).read_text(encoding="utf-8")
                             .replace("[[areas]]", "[[old_areas]]")
                             .replace("[transport]", "[old_transport]"), encoding="utf-8")
    result = site.cli("segments", "list", ok=False)
    assert result.exit_code == 78 and words in one_line_error(result)


@pytest.mark.parametrize("var, value, words", [
    ("NEWSLETTER_RATE", "fast", "NEWSLETTER_RATE måste vara ett tal, inte \"fast\""),
    ("NEWSLETTER_CONNECTIONS", "2.5", "NEWSLETTER_CONNECTIONS måste vara ett heltal"),
    ("NEWSLETTER_TRANSPORT", "pigeon://loft", "transportens url ”pigeon://loft”"),
    ("NEWSLETTER_SECRET_KEY", "too-short", "NEWSLETTER_SECRET_KEY"),
    ("NEWSLETTER_SECRET_KEY", "another-secret-key-of-some-length", "inte den som"),
    ("NEWSLETTER_DB_URL", "nosuchdb://x", "databasadressen"),
])
def test_a_wrong_environment_variable_is_78(site, var, value, words):
    site.cli("contacts", "add", ADDRESS)
    result = site.cli("send", "issue", "2026-12", "--to", "medlemmar", "--yes", ok=False,
                      env={var: value})
    assert result.exit_code == 78 and words in one_line_error(result)


def test_a_database_not_initialised_is_78(tmp_path):
    (tmp_path / "newsletter.toml").write_text((REPO / "newsletter.toml").read_text("utf-8"),
                                              encoding="utf-8")
    result = CliRunner().invoke(main, ["--root", str(tmp_path), "contacts", "list"],
                                env={**TEST_ENV, "NEWSLETTER_DB_URL": ""})
    assert result.exit_code == 78 and "newsletter init" in one_line_error(result)


def test_every_error_class_exits_1_or_78():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass)
               if issubclass(c, errors.NewsletterError)]
    assert len(classes) >= 8
    for cls in classes:
        expected = 78 if issubclass(cls, errors.ConfigError) else 1
        assert cls.exit_code == expected, cls


# --- 130: interrupted ---------------------------------------------------------------------

def _newsletter(site, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "newsletter", "--root", str(site.root), *args],
        env={**os.environ, **site.env}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


def _interrupt(proc: subprocess.Popen, ready) -> tuple[str, str]:
    """Wait (bounded) until READY() says the command is waiting, then Ctrl-C it."""
    deadline = time.monotonic() + 60
    while not ready():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the command never got there"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    return proc.communicate(timeout=30)


def test_ctrl_c_in_the_middle_of_a_command_is_one_line_and_130(site, tmp_path):
    fifo = tmp_path / "kontakter.csv"
    os.mkfifo(fifo)
    proc = _newsletter(site, "contacts", "import", str(fifo))
    writer: list[int] = []

    def reading() -> bool:  # the import has opened the FIFO and waits for its content
        try:
            writer.append(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # ENXIO: nobody has it open for reading yet
            return False
        return True

    try:
        out, err = _interrupt(proc, reading)
    finally:
        for fd in writer:
            os.close(fd)
    assert proc.returncode == 130
    assert err.strip().splitlines() == ["Avbrutet."]


def test_ctrl_c_at_a_prompt_is_130_and_changes_nothing(site):
    site.cli("contacts", "add", ADDRESS)
    proc = _newsletter(site, "contacts", "forget", ADDRESS)
    # The prompt is written without a newline: wait until the process blocks reading stdin.
    out, err = _interrupt(proc, lambda: _waiting_on_stdin(proc.pid))
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "Avbrutet."
    assert site.cli("contacts", "show", ADDRESS).exit_code == 0  # not forgotten


def _waiting_on_stdin(pid: int) -> bool:
    """True once PID sleeps in a read of a pipe (Linux: /proc/PID/wchan and syscall)."""
    try:
        syscall = Path(f"/proc/{pid}/syscall").read_text().split()
    except OSError:
        return False
    return bool(syscall) and syscall[0] in ("0", "63") and syscall[1] == "0x0"  # read(0, ...)


# --- the web: a configuration error is a 500, logged once -----------------------------------

def test_a_configuration_error_on_the_registration_page_is_a_500_logged_once(site, caplog):
    with site.transaction() as session:
        session.add(Person(email=ADDRESS, name="Anna Andersson"))
        webinars.create_webinar(
            session, site.settings, title="Bredband", slug="bredband",
            starts_at=datetime.now(UTC) + timedelta(days=30), duration_minutes=60,
            join_url="https://example.se/mote/1")
    broken = replace(site.settings, transport=replace(site.settings.transport,
                                                      url="pigeon://loft"))
    app = create_app(broken)
    client = app.test_client()
    page = client.get("/webinar/bredband").get_data(as_text=True)
    token = page.split('name="csrf" value="')[1].split('"')[0]
    with caplog.at_level(logging.ERROR):
        got = client.post("/webinar/bredband", data={"csrf": token, "email": ADDRESS},
                          headers={"Sec-Fetch-Site": "same-origin"})
    assert got.status_code == 500
    logged = [r for r in caplog.records if "pigeon://loft" in r.getMessage()]
    assert len(logged) == 1
