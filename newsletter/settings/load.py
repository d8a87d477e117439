"""Loading the settings: embedded defaults < newsletter.toml < NEWSLETTER_* environment, once,
into `Settings` (settings/model.py), every table checked (settings/tables.py).

Failure mode: a file that is not TOML, a missing key or a wrong value is a ConfigError (exit 78)
with one line naming the file and the key, before anything else runs; nothing is half-loaded.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from ..errors import ConfigError
from ..files import atomic_write
from ..i18n import DEFAULT_LANGUAGE, LANGUAGES, _
from . import tables
from .model import BRANDING_FILE, CONFIG_NAME, SECRET_FILE, Branding, Settings, default_config_text
from .reader import Reader


def _merge(base: dict, over: Mapping) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _secret_key(root: Path, env: Mapping[str, str]) -> bytes:
    """NEWSLETTER_SECRET_KEY, or else the key kept in ROOT/.secret_key (mode 600, not committed)."""
    value = env.get("NEWSLETTER_SECRET_KEY")
    if value:
        if len(value) < 16:
            raise ConfigError(_("{var} must be at least {n} characters long").format(
                var="NEWSLETTER_SECRET_KEY", n=16))
        return value.encode("utf-8")
    path = root / SECRET_FILE
    if path.exists():
        return path.read_text(encoding="ascii").strip().encode("ascii")
    return b""


def ensure_secret_key(settings: Settings) -> Settings:
    """Create ROOT/.secret_key if no key is configured, so a fresh site works out of the box."""
    if settings.secret_key:
        return settings
    path = settings.root / SECRET_FILE
    if path.exists():  # made since SETTINGS was loaded: never replace a key
        return replace(settings, secret_key=_secret_key(settings.root, {}))
    key = secrets.token_urlsafe(32)
    with atomic_write(path, encoding="ascii", mode=0o600) as fh:
        fh.write(key + "\n")
    return replace(settings, secret_key=key.encode("ascii"))


def _db_url(raw: str, root: Path) -> str:
    prefix = "sqlite:///"
    if raw.startswith(prefix) and not raw.startswith("sqlite:////") and raw != "sqlite:///:memory:":
        return prefix + str((root / raw[len(prefix):]).resolve())
    return raw


def site_language(root: Path | str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The language ROOT/newsletter.toml asks for, read on its own: a surface activates it before
    load_settings so that an error in the rest of the file is told in the site's language. The
    default language when the file, its TOML or the key is unreadable (load_settings then says
    why)."""
    env = os.environ if env is None else env
    site_file = Path(root or env.get("NEWSLETTER_ROOT") or ".").resolve() / CONFIG_NAME
    try:
        with site_file.open("rb") as fh:
            language = tomllib.load(fh).get("organisation", {}).get("language")
    except (OSError, tomllib.TOMLDecodeError, AttributeError):
        return DEFAULT_LANGUAGE
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


def saved_branding(root: Path) -> Branding | None:
    """ROOT/branding.toml's `[branding]`, checked as newsletter.toml's is; None without the
    file. The console writes it (branding.py); when it is there, it replaces newsletter.toml's
    [branding]."""
    path = root / BRANDING_FILE
    if not path.is_file():
        return None
    return tables.branding(Reader(path, {}), _read_toml(path), root)


def load_settings(root: Path | str | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the embedded defaults, ROOT/newsletter.toml and the environment into Settings."""
    env = os.environ if env is None else env
    root = Path(root or env.get("NEWSLETTER_ROOT") or ".").resolve()
    data = tomllib.loads(default_config_text())
    site_file = root / CONFIG_NAME
    site: dict = {}
    if site_file.exists():
        site = _read_toml(site_file)
        # Lists and the role/segment tables replace the defaults rather than merge with them.
        data = _merge(data, site)
        for key in ("roles", "segments"):
            if key in site:
                data[key] = site[key]

    src = Reader(site_file, env)
    organisation = tables.organisation(src, data)
    transport = tables.transport(src, data, env)
    areas = tables.areas(src, data)
    roles = tables.roles(src, data)
    segments = src.strings(data, "segments")
    bounces = src.table(data, "bounces")
    db_url = src.value(src.table(data, "database"), "url", str, "database",
                       "sqlite:///subscribers.db", var="NEWSLETTER_DB_URL")
    branding = tables.branding(src, data, root)  # checked even when branding.toml replaces it
    return Settings(
        console=tables.console(src, data, env),
        root=root,
        organisation=organisation,
        db_url=_db_url(db_url, root),
        transport=transport,
        areas=areas,
        roles=roles,
        segments=segments,
        secret_key=_secret_key(root, env),
        soft_bounce_limit=src.whole(bounces, "soft_limit", "bounces", 3, 1),
        intake=tables.intake(src, data, site, {a.slug for a in areas}),
        tracking=tables.tracking(src, data),
        branding=saved_branding(root) or branding,
        vacancy_roles=tables.vacancy_roles(src, data, roles),
        workflow=tables.workflow(src, data),
        worker=tables.worker(src, data, root),
        signup=tables.signup(src, data, roles),
        retention=tables.retention(src, data),
    )
