"""The deployment files in deploy/ and docs/DEPLOY.md: checked by the tools that will read them
(systemd-analyze, caddy, postconf), the admin wrapper run for real, and the guide naming them.

Each tool's check is skipped, saying which package to install, where the tool is missing;
.ci/run installs them (Debian's systemd, caddy and postfix)."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from newsletter import db
from newsletter.cli import main
from newsletter.models import Municipality
from newsletter.settings import load_settings

from .helpers import INIT_FLAGS, REPO

DEPLOY = REPO / "deploy"
UNITS = sorted((DEPLOY / "systemd").iterdir())
PROGRAM = "/opt/newsletter/venv/bin/newsletter"
GUIDE = REPO / "docs" / "DEPLOY.md"


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian: apt-get install {package})")
    return path


def _units_with_our_program(folder: Path) -> list[Path]:
    """The units, with ExecStart pointing at this test run's `newsletter` (systemd-analyze
    verify checks that the program exists)."""
    ours = str(Path(sys.executable).parent / "newsletter")
    copies = []
    for unit in UNITS:
        copy = folder / unit.name
        copy.write_text(unit.read_text(encoding="utf-8").replace(PROGRAM, ours),
                        encoding="utf-8")
        copies.append(copy)
    return copies


def test_the_systemd_units_verify_cleanly(tmp_path):
    analyze = _tool("systemd-analyze", "systemd")
    names = {unit.name for unit in UNITS}
    assert {"newsletter-serve.service", "newsletter-console.service", "newsletter-worker.service",
            "newsletter-backup.service", "newsletter-backup.timer"} <= names
    copies = _units_with_our_program(tmp_path)
    done = subprocess.run([analyze, "verify", *map(str, copies)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    # Unknown keys and other mistakes are warnings on stderr, with exit status 0: none allowed.
    assert done.returncode == 0 and done.stderr == "" and done.stdout == "", done.stderr


def test_the_services_are_hardened(tmp_path):
    analyze = _tool("systemd-analyze", "systemd")
    for copy in _units_with_our_program(tmp_path):
        if copy.suffix != ".service":
            continue
        # Exposure on systemd's scale of 0 (locked down) to 10 (unprotected), times ten.
        done = subprocess.run([analyze, "security", "--offline=yes", "--threshold=20",
                               str(copy)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, copy.name + "\n" + done.stdout[-400:]
        text = copy.read_text(encoding="utf-8")
        for setting in ("User=newsletter", "NoNewPrivileges=yes", "ProtectSystem=strict",
                        "ReadWritePaths=/var/lib/newsletter", "UMask=0077",
                        "EnvironmentFile=/etc/newsletter/newsletter.env"):
            assert setting in text, f"{copy.name}: {setting}"


def test_the_units_run_commands_that_exist():
    for unit in UNITS:
        for command in re.findall(rf"{re.escape(PROGRAM)} (\w+)", unit.read_text("utf-8")):
            assert command in main.commands, f"{unit.name}: newsletter {command}"


def test_the_caddyfile_validates_and_is_formatted(tmp_path):
    caddy = _tool("caddy", "caddy")
    config = DEPLOY / "caddy" / "Caddyfile"
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = subprocess.run([caddy, "validate", "--config", str(config), "--adapter", "caddyfile"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0 and "Valid configuration" in done.stdout + done.stderr, (
        done.stderr[-600:])
    formatted = subprocess.run([caddy, "fmt", str(config)], capture_output=True, text=True,
                               timeout=60, env=env)
    assert formatted.stdout == config.read_text(encoding="utf-8")
    text = config.read_text(encoding="utf-8")
    assert "reverse_proxy 127.0.0.1:8000" in text and "reverse_proxy 127.0.0.1:8001" in text
    assert "not remote_ip private_ranges" in text  # the console: internal network only


@pytest.mark.parametrize("variant", ["direct", "smarthost"])
def test_the_postfix_relay_configuration_has_no_unknown_parameters(tmp_path, variant):
    postconf = _tool("postconf", "postfix")
    text = (DEPLOY / "postfix" / "main.cf").read_text(encoding="utf-8")
    if variant == "smarthost":  # what the comments say to do for an ESP's relay
        text = re.sub(r"^#(relayhost|smtp_sasl_\w+) =", r"\1 =", text, flags=re.M)
        text = text.replace("smtp_tls_security_level = may", "smtp_tls_security_level = encrypt")
        assert "relayhost = [smtp.esp.example]:587" in text
    (tmp_path / "main.cf").write_text(text, encoding="utf-8")
    (tmp_path / "master.cf").write_text("", encoding="utf-8")
    done = subprocess.run([postconf, "-c", str(tmp_path), "-n"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    settings = {name: value.strip() for name, _, value in (
        line.partition(" =") for line in done.stdout.splitlines())}
    assert settings["inet_interfaces"] == "loopback-only" and settings["mydestination"] == ""


@pytest.mark.skipif(os.geteuid() != 0, reason="setpriv --init-groups needs root")
def test_the_admin_wrapper_runs_commands_as_the_services_do(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    env_file = tmp_path / "newsletter.env"
    key = "a key with spaces, $dollars and \"quotes\""
    env_file.write_text("# as in deploy/newsletter.env.example\n"
                        f"NEWSLETTER_SECRET_KEY='{key}'\n", encoding="utf-8")
    env_file.chmod(0o600)
    env = {"PATH": os.environ["PATH"], "NEWSLETTER_ENV_FILE": str(env_file),
           "NEWSLETTER_USER": pwd.getpwuid(os.getuid()).pw_name,
           "NEWSLETTER_PROGRAM": str(Path(sys.executable).parent / "newsletter"),
           "NEWSLETTER_ROOT": str(site)}
    wrapper = str(DEPLOY / "bin" / "newsletter-admin")
    done = subprocess.run([wrapper, "init", *INIT_FLAGS], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    listed = subprocess.run([wrapper, "municipalities", "list", "--members"],
                            capture_output=True, text=True, timeout=120, env=env)
    assert listed.returncode == 0, listed.stderr
    settings = load_settings(site, env={"NEWSLETTER_SECRET_KEY": key})
    with db.session_factory(db.make_engine(settings.db_url))() as session:
        assert db.key_matches(session, key.encode()) is True  # the key, quotes and all
        assert session.scalar(select(func.count()).select_from(Municipality)) == 290
    assert not (site / ".secret_key").exists()  # the key came from the environment file
    assert (site / "subscribers.db").stat().st_mode & 0o077 == 0  # umask 077


def test_the_guide_names_every_deployment_file_and_is_linked():
    guide = GUIDE.read_text(encoding="utf-8")
    for path in sorted(p for p in DEPLOY.rglob("*") if p.is_file()):
        assert str(path.relative_to(REPO)) in guide, f"docs/DEPLOY.md does not name {path}"
    assert "docs/DEPLOY.md" in (REPO / "README.md").read_text(encoding="utf-8")
    for command in ("newsletter-admin init --org", "newsletter-admin doctor", "newsletter backup",
                    "systemd-analyze verify", "pip install -U"):
        assert command in guide, command
