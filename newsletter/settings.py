"""Settings: embedded defaults < newsletter.toml < NEWSLETTER_* environment < flags, loaded once."""

from __future__ import annotations

import math
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError
from .files import atomic_write
from .i18n import _

CONFIG_NAME = "newsletter.toml"
SECRET_FILE = ".secret_key"
# The longest area or role slug: the columns that hold them (positions.role, person_areas.area,
# webinars.area) are VARCHAR(40), a length PostgreSQL enforces.
MAX_SLUG = 40


@dataclass(frozen=True)
class Area:
    slug: str
    name: str


@dataclass(frozen=True)
class Organisation:
    name: str
    sender_name: str
    sender: str
    reply_to: str
    postal_address: str
    base_url: str
    list_id: str
    unsubscribe_mailto: str
    timezone: str = "Europe/Stockholm"


@dataclass(frozen=True)
class TransportSettings:
    url: str
    connections: int = 2
    rate: float = 0.0
    per_domain_rate: float = 0.0
    max_consecutive_failures: int = 20
    confirm_above: int = 50
    smtp_user: str | None = None
    smtp_password: str | None = None
    # A PEM bundle of the CAs to trust for the SMTP server's certificate instead of the system's.
    smtp_ca_file: str | None = None
    dkim_key_file: str | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None


@dataclass(frozen=True)
class Settings:
    root: Path
    organisation: Organisation
    db_url: str
    transport: TransportSettings
    areas: tuple[Area, ...]
    roles: dict[str, str]
    segments: dict[str, str]
    secret_key: bytes = field(repr=False)
    track_opens: bool = False
    track_clicks: bool = False
    # `[bounces] soft_limit`: soft bounces after which an address is suppressed.
    soft_bounce_limit: int = 3

    @property
    def area_slugs(self) -> list[str]:
        return [a.slug for a in self.areas]

    def area_name(self, slug: str) -> str:
        for area in self.areas:
            if area.slug == slug:
                return area.name
        raise KeyError(slug)

    @property
    def templates_dirs(self) -> list[Path]:
        """Where templates are looked up: the site's own first, then the package's copy."""
        dirs = [self.root / "templates"]
        packaged = Path(str(resources.files("newsletter.site_templates")))
        if packaged.resolve() != dirs[0].resolve():
            dirs.append(packaged)
        return [d for d in dirs if d.is_dir()]

    @property
    def issues_dir(self) -> Path:
        return self.root / "issues"

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def default_config_text() -> str:
    return resources.files("newsletter").joinpath("defaults.toml").read_text(encoding="utf-8")


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


# --- typed values: a wrong type names the key and the file, never a traceback -------------------



class _Source:
    """Where settings come from, to name in errors: the site's newsletter.toml (or, for values
    only the embedded defaults set, the defaults) and the environment."""

    def __init__(self, site_file: Path, env: Mapping[str, str]) -> None:
        self.file = str(site_file) if site_file.exists() else f"{CONFIG_NAME} (defaults)"
        self.env = env

    def wrong(self, key: str, kind: type, value: Any, *, var: str | None = None) -> ConfigError:
        where = var or f"{self.file}: {key}"
        return ConfigError(_("{where} must be {kind}, not {value}").format(
            where=where, kind=_kind_name(kind), value=_show(value)))

    def value(self, table: Mapping, key: str, kind: type, where: str, default: Any = None,
              *, var: str | None = None) -> Any:
        """TABLE[KEY] (or the environment variable VAR, when set) checked to be of KIND.

        An int is a float too (rate = 2); a bool is never a number (connections = true).
        Numbers must be finite (toml allows inf and nan).
        """
        name = f"{where}.{key}" if where else key
        raw = table.get(key, default)
        if raw is not None:  # checked even when VAR overrides it: the file is wrong all the same
            ok = isinstance(raw, kind) and not (kind in (int, float) and isinstance(raw, bool))
            if kind is float and isinstance(raw, int) and not isinstance(raw, bool):
                raw, ok = float(raw), True
            if ok and kind is float and not math.isfinite(raw):
                ok = False
            if not ok:
                raise self.wrong(name, kind, raw)
        if var and self.env.get(var):
            return self._from_env(var, kind)
        return raw

    def _from_env(self, var: str, kind: type) -> Any:
        text = self.env[var].strip()
        if kind is str:
            return self.env[var]
        try:
            value = kind(text)
        except ValueError:
            raise self.wrong(var, kind, text, var=var) from None
        if kind is float and not math.isfinite(value):
            raise self.wrong(var, kind, text, var=var)
        return value

    def require(self, table: Mapping, key: str, kind: type, where: str) -> Any:
        """TABLE[KEY], which must be there, checked to be of KIND."""
        if key not in table:
            raise ConfigError(f"{self.file}: missing setting {where}.{key}")
        return self.value(table, key, kind, where)

    def table(self, data: Mapping, key: str, where: str = "") -> dict:
        """The sub-table DATA[KEY] ({} if absent)."""
        raw = data.get(key, {})
        if not isinstance(raw, dict):
            raise self.wrong(f"{where}.{key}" if where else f"[{key}]", dict, raw)
        return raw

    def at_least(self, value: float, minimum: float, name: str) -> None:
        if value < minimum:
            raise ConfigError(_("{file}: {name} must be at least {minimum}, not {value}").format(
                file=self.file, name=name, minimum=minimum, value=value))

    def strings(self, data: Mapping, key: str) -> dict[str, str]:
        """A table of names to strings: [roles], [segments]."""
        table = self.table(data, key)
        for name, value in table.items():
            if not isinstance(value, str):
                raise self.wrong(f"[{key}] {name}", str, value)
        return dict(table)


def _kind_name(kind: type) -> str:
    names = {str: _("a string"), int: _("a whole number"), float: _("a number"),
             bool: _("true or false"), list: _("a list"), dict: _("a table")}
    return names[kind]


def _show(value: Any) -> str:
    """VALUE as TOML writes it, shortened."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return _kind_name(type(value))
    text = f'"{value}"' if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _secret_key(root: Path, env: Mapping[str, str]) -> bytes:
    """NEWSLETTER_SECRET_KEY, or else the key kept in ROOT/.secret_key (mode 600, not committed)."""
    value = env.get("NEWSLETTER_SECRET_KEY")
    if value:
        if len(value) < 16:
            raise ConfigError("NEWSLETTER_SECRET_KEY: must be at least 16 characters")
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


def _check_base_url(src: _Source, url: str) -> None:
    """organisation.base_url: the absolute http(s) address the public pages are reached at."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(_("{file}: organisation.base_url must be an https:// address such as "
                            "https://nyhetsbrev.example.se, not {url}").format(
                                file=src.file, url=_show(url)))


def load_settings(root: Path | str | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the embedded defaults, ROOT/newsletter.toml and the environment into Settings."""
    env = os.environ if env is None else env
    root = Path(root or env.get("NEWSLETTER_ROOT") or ".").resolve()
    data = tomllib.loads(default_config_text())
    site_file = root / CONFIG_NAME
    if site_file.exists():
        site = _read_toml(site_file)
        # Lists and the role/segment tables replace the defaults rather than merge with them.
        data = _merge(data, site)
        for key in ("roles", "segments"):
            if key in site:
                data[key] = site[key]

    src = _Source(site_file, env)
    org = src.table(data, "organisation")
    for key in Organisation.__dataclass_fields__:
        src.value(org, key, str, "organisation")
    try:
        organisation = Organisation(
            **{k: org[k] for k in Organisation.__dataclass_fields__ if k in org})
    except TypeError as exc:
        raise ConfigError(f"{src.file}: [organisation] is incomplete: {exc}") from None
    _check_base_url(src, organisation.base_url)

    tr = src.table(data, "transport")
    transport = TransportSettings(
        url=src.value(tr, "url", str, "transport", "maildir:Maildir", var="NEWSLETTER_TRANSPORT"),
        connections=src.value(tr, "connections", int, "transport", 2,
                              var="NEWSLETTER_CONNECTIONS"),
        rate=src.value(tr, "rate", float, "transport", 0.0, var="NEWSLETTER_RATE"),
        per_domain_rate=src.value(tr, "per_domain_rate", float, "transport", 0.0),
        max_consecutive_failures=src.value(tr, "max_consecutive_failures", int, "transport", 20),
        confirm_above=src.value(tr, "confirm_above", int, "transport", 50),
        smtp_user=env.get("NEWSLETTER_SMTP_USER"),
        smtp_password=env.get("NEWSLETTER_SMTP_PASSWORD"),
        smtp_ca_file=src.value(tr, "smtp_ca_file", str, "transport",
                               var="NEWSLETTER_SMTP_CA_FILE"),
        dkim_key_file=env.get("NEWSLETTER_DKIM_KEY_FILE"),
        dkim_selector=src.value(tr, "dkim_selector", str, "transport",
                                var="NEWSLETTER_DKIM_SELECTOR"),
        dkim_domain=src.value(tr, "dkim_domain", str, "transport", var="NEWSLETTER_DKIM_DOMAIN"),
    )
    src.at_least(transport.connections, 1, "transport.connections")
    src.at_least(transport.rate, 0, "transport.rate")
    src.at_least(transport.per_domain_rate, 0, "transport.per_domain_rate")
    src.at_least(transport.max_consecutive_failures, 1, "transport.max_consecutive_failures")
    src.at_least(transport.confirm_above, 0, "transport.confirm_above")

    areas = []
    raw_areas = data.get("areas", [])
    if not isinstance(raw_areas, list):
        raise src.wrong("areas", list, raw_areas)
    for i, area in enumerate(raw_areas):
        where = f"areas[{i}]"
        if not isinstance(area, dict):
            raise src.wrong(where, dict, area)
        slug = src.require(area, "slug", str, where)
        if len(slug) > MAX_SLUG:
            raise ConfigError(f"{src.file}: areas[{i}].slug is longer than {MAX_SLUG}")
        areas.append(Area(slug=slug, name=src.require(area, "name", str, where)))
    if not areas:
        raise ConfigError(f"{src.file}: no [[areas]] configured")
    if len({a.slug for a in areas}) != len(areas):
        raise ConfigError(f"{src.file}: [[areas]] has a slug twice")

    roles = src.strings(data, "roles")
    for role in roles:
        if len(role) > MAX_SLUG:
            raise ConfigError(f"{src.file}: [roles] {role!r} is longer than {MAX_SLUG}")
    segments = src.strings(data, "segments")
    tracking = src.table(data, "tracking")
    soft_limit = src.value(src.table(data, "bounces"), "soft_limit", int, "bounces", 3)
    src.at_least(soft_limit, 1, "bounces.soft_limit")
    db_url = src.value(src.table(data, "database"), "url", str, "database",
                       "sqlite:///subscribers.db", var="NEWSLETTER_DB_URL")
    return Settings(
        root=root,
        organisation=organisation,
        db_url=_db_url(db_url, root),
        transport=transport,
        areas=tuple(areas),
        roles=roles,
        segments=segments,
        secret_key=_secret_key(root, env),
        track_opens=src.value(tracking, "opens", bool, "tracking", False),
        track_clicks=src.value(tracking, "clicks", bool, "tracking", False),
        soft_bounce_limit=soft_limit,
    )
