"""Settings: embedded defaults < newsletter.toml < NEWSLETTER_* environment < flags, loaded once."""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .files import atomic_write

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
class RetentionSettings:
    """`[retention]`: after how many days personal traces are anonymised (0: kept for ever)."""

    # Events (the log of imports, changes, unsubscribes, bounces ...) lose their person.
    events_days: int = 730
    # Per-recipient outbox rows of finished mailings lose their person; the counts stay.
    outbox_days: int = 730


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
    # `[register] vacancy_roles`: the roles each member municipality should have one holder of.
    vacancy_roles: tuple[str, ...] = ("kommunchef", "kso")
    retention: RetentionSettings = field(default_factory=RetentionSettings)

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


def _require(table: Mapping, key: str, where: str) -> Any:
    if key not in table:
        raise ConfigError(f"{CONFIG_NAME}: missing setting {where}.{key}")
    return table[key]


def _whole_number(table: Mapping, key: str, where: str, default: int, minimum: int = 0) -> int:
    """TABLE[KEY] as an int of at least MINIMUM; a ConfigError naming the key and the file."""
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{CONFIG_NAME}: {where}.{key} must be a whole number of at least "
                          f"{minimum}, not {value!r}")
    return value


_VACANCY_ROLES = ["kommunchef", "kso"]


def _vacancy_roles(table: Mapping, roles: Mapping[str, str]) -> tuple[str, ...]:
    value = table.get("vacancy_roles", _VACANCY_ROLES)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{CONFIG_NAME}: register.vacancy_roles must be a list of role slugs")
    if value == _VACANCY_ROLES:  # the default: a site with its own [roles] may lack them
        return tuple(v for v in value if v in roles)
    unknown = [v for v in value if v not in roles]
    if unknown:
        raise ConfigError(f"{CONFIG_NAME}: register.vacancy_roles: unknown role {unknown[0]!r} "
                          f"(roles: {', '.join(roles)})")
    return tuple(value)


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

    org = _require(data, "organisation", "")
    try:
        organisation = Organisation(
            **{k: org[k] for k in Organisation.__dataclass_fields__ if k in org})
    except TypeError as exc:
        raise ConfigError(f"{CONFIG_NAME}: [organisation] is incomplete: {exc}") from None

    tr = data.get("transport", {})
    transport = TransportSettings(
        url=env.get("NEWSLETTER_TRANSPORT") or tr.get("url", "maildir:Maildir"),
        connections=int(env.get("NEWSLETTER_CONNECTIONS") or tr.get("connections", 2)),
        rate=float(env.get("NEWSLETTER_RATE") or tr.get("rate", 0)),
        per_domain_rate=float(tr.get("per_domain_rate", 0)),
        max_consecutive_failures=int(tr.get("max_consecutive_failures", 20)),
        confirm_above=int(tr.get("confirm_above", 50)),
        smtp_user=env.get("NEWSLETTER_SMTP_USER"),
        smtp_password=env.get("NEWSLETTER_SMTP_PASSWORD"),
        smtp_ca_file=env.get("NEWSLETTER_SMTP_CA_FILE") or tr.get("smtp_ca_file"),
        dkim_key_file=env.get("NEWSLETTER_DKIM_KEY_FILE"),
        dkim_selector=env.get("NEWSLETTER_DKIM_SELECTOR") or tr.get("dkim_selector"),
        dkim_domain=env.get("NEWSLETTER_DKIM_DOMAIN") or tr.get("dkim_domain"),
    )
    if transport.connections < 1:
        raise ConfigError(f"{CONFIG_NAME}: transport.connections must be at least 1")

    areas = []
    for i, area in enumerate(data.get("areas", [])):
        slug = _require(area, "slug", f"areas[{i}]")
        if len(slug) > MAX_SLUG:
            raise ConfigError(f"{CONFIG_NAME}: areas[{i}].slug is longer than {MAX_SLUG}")
        areas.append(Area(slug=slug, name=_require(area, "name", f"areas[{i}]")))
    if not areas:
        raise ConfigError(f"{CONFIG_NAME}: no [[areas]] configured")
    if len({a.slug for a in areas}) != len(areas):
        raise ConfigError(f"{CONFIG_NAME}: [[areas]] has a slug twice")

    for role in data.get("roles", {}):
        if len(role) > MAX_SLUG:
            raise ConfigError(f"{CONFIG_NAME}: [roles] {role!r} is longer than {MAX_SLUG}")
    tracking = data.get("tracking", {})
    soft_limit = int(data.get("bounces", {}).get("soft_limit", 3))
    if soft_limit < 1:
        raise ConfigError(f"{CONFIG_NAME}: bounces.soft_limit must be at least 1")
    return Settings(
        root=root,
        organisation=organisation,
        db_url=_db_url(env.get("NEWSLETTER_DB_URL") or data.get("database", {}).get(
            "url", "sqlite:///subscribers.db"), root),
        transport=transport,
        areas=tuple(areas),
        roles=dict(data.get("roles", {})),
        segments=dict(data.get("segments", {})),
        secret_key=_secret_key(root, env),
        track_opens=bool(tracking.get("opens", False)),
        track_clicks=bool(tracking.get("clicks", False)),
        soft_bounce_limit=soft_limit,
        vacancy_roles=_vacancy_roles(data.get("register", {}), data.get("roles", {})),
        retention=RetentionSettings(
            events_days=_whole_number(data.get("retention", {}), "events_days", "retention",
                                      730),
            outbox_days=_whole_number(data.get("retention", {}), "outbox_days", "retention",
                                      730)),
    )
