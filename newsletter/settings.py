"""Settings: embedded defaults < newsletter.toml < NEWSLETTER_* environment < flags, loaded once."""

from __future__ import annotations

import math
import os
import re
import secrets
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError
from .files import atomic_write
from .i18n import DEFAULT_LANGUAGE, LANGUAGES, _
from .netloc import is_loopback

CONFIG_NAME = "newsletter.toml"
SECRET_FILE = ".secret_key"
# The longest area or role slug: the columns that hold them (positions.role, person_areas.area,
# webinars.area) are VARCHAR(40), a length PostgreSQL enforces.
MAX_SLUG = 40
# The longest [[intake.feeds]] name: intake_feeds.name and intake_entries.feed are VARCHAR(100).
MAX_FEED_NAME = 100


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
    # The language of every user-facing text: a catalog in newsletter/locale (i18n.LANGUAGES).
    language: str = "sv"


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
    # `[transport] sending_host`: whose address the sender domain's SPF must cover (doctor).
    sending_host: str | None = None
    # Seconds to wait for each reply of the SMTP server before the message is deferred.
    timeout: float = 60.0
    # Seconds before a deferred message's first retry; doubled for each later one (sender.Backoff).
    retry_after: float = 60.0


@dataclass(frozen=True)
class ConsoleSettings:
    """`[console]`: the staff console (`newsletter console`), a separate app from `serve`."""

    # Where staff reach the console; sign-in links and the OIDC redirect point here, and its
    # scheme decides whether the session cookie is Secure. NEWSLETTER_CONSOLE_URL overrides.
    base_url: str = "http://127.0.0.1:8001"
    oidc_issuer: str = ""
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = field(default=None, repr=False)
    session_idle_minutes: int = 480
    link_minutes: int = 15
    # Sign-in link requests allowed per address and per client within rate_window_minutes.
    link_requests_per_address: int = 5
    link_requests_per_client: int = 20
    rate_window_minutes: int = 15
    max_upload_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 40_000_000


@dataclass(frozen=True)
class Feed:
    """One `[[intake.feeds]]`: a feed of documents to watch, and the item kind its entries get."""

    name: str
    url: str
    kind: str


@dataclass(frozen=True)
class IntakeSettings:
    """`[intake]`: omvärldsbevakning: the feeds, how politely we fetch them, remiss reminders."""

    feeds: tuple[Feed, ...] = ()
    interval_minutes: int = 60  # fetch_due fetches a feed again after this long
    timeout: float = 20.0  # seconds for connecting and between bytes; the whole fetch gets 3x
    max_bytes: int = 5_000_000  # a feed or remiss page larger than this is refused
    remind_days: int = 7  # remind remind_to this many days before a remiss's answer date
    remind_to: tuple[str, ...] = ()
    # A PEM bundle of the CAs to trust instead of the system's (a private CA, the tests' CA).
    ca_file: str | None = None
    # Area slug -> the words and stems that suggest it (see classify.py for the syntax).
    keywords: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class TrackingSettings:
    """`[tracking]`: click counting without people (see tracking.py). Off by default."""

    clicks: bool = False
    # Scanner rule: a client that opens this many different links of one mailing within
    # SCANNER_SECONDS is a link scanner, not a reader (see click_filter.py).
    scanner_links: int = 3
    scanner_seconds: float = 10.0
    # The reverse proxy in front of `newsletter serve` (its address): its X-Forwarded-For then
    # gives the client address. Empty: the connecting address is the client's.
    trusted_proxy: str = ""


@dataclass(frozen=True)
class RetentionSettings:
    """`[retention]`: after how many days personal traces are anonymised (0: kept for ever)."""

    # Events (the log of imports, changes, unsubscribes, bounces ...) lose their person.
    events_days: int = 730
    # Per-recipient outbox rows of finished mailings lose their person; the counts stay.
    outbox_days: int = 730


@dataclass(frozen=True)
class WorkflowSettings:
    """`[workflow]`: review and approval before a mail goes to a segment (review.py)."""

    # None (not set): required unless [organisation] still holds the demo's values
    # (review.approval_required); `newsletter init` writes true, `newsletter demo` false.
    require_approval: bool | None = None
    # The segment `issue submit` binds an approval to when no --to is given.
    issue_segment: str = "medlemmar"


@dataclass(frozen=True)
class Lead:
    """A webinar reminder's lead time: TEXT as written ("1d", "1h", "30m") and its length."""

    text: str
    seconds: int


@dataclass(frozen=True)
class WorkerSettings:
    """`[worker]`, `[webinars]` and `[bounces] mailbox`: what `newsletter worker` does."""

    interval: float = 5.0  # seconds between rounds
    # Webinar reminders to those registered, this long before the start, longest first.
    reminders: tuple[Lead, ...] = (Lead("1d", 86400), Lead("1h", 3600))
    # A Maildir or mbox of delivery reports, processed every round (None: none).
    bounce_mailbox: Path | None = None


@dataclass(frozen=True)
class SignupSettings:
    """`[register]`'s sign-up settings: public sign-up and open webinar registration
    (signups.py, role_claims.py)."""

    # Self-declared roles that wait for staff (`contacts verify`) before they count.
    verified_roles: tuple[str, ...] = ("kommunchef", "kso", "styrelse")
    confirm_days: int = 7  # how long a confirmation link works
    per_address: int = 3  # sign-ups per address (and page) in window_minutes
    per_client: int = 60  # sign-ups per client address in window_minutes
    window_minutes: int = 60


@dataclass(frozen=True)
class Branding:
    """`[branding]`: the logo (a file name in media/, "" for none, with its alt text) and the
    primary colour (#rrggbb, readable with white: contrast >= MIN_CONTRAST) of the emails and
    the public pages."""

    logo: str = ""
    logo_alt: str = ""
    colour: str = "#14324f"


# WCAG 2.1 AA for normal text: what white on the colour and the colour on white must reach.
MIN_CONTRAST = 4.5
_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
_MEDIA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,100}\.(?:jpg|jpeg|png|gif|webp)")


def contrast_with_white(colour: str) -> float:
    """The WCAG 2.1 contrast ratio of #rrggbb COLOUR against white (1 to 21)."""
    def channel(hex_pair: str) -> float:
        c = int(hex_pair, 16) / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(colour[i:i + 2]) for i in (1, 3, 5))
    return 1.05 / (0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05)


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
    # `[bounces] soft_limit`: soft bounces after which an address is suppressed.
    soft_bounce_limit: int = 3
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    intake: IntakeSettings = IntakeSettings()
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    # `[register] vacancy_roles`: the roles each member municipality should have one holder of.
    vacancy_roles: tuple[str, ...] = ("kommunchef", "kso")
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    workflow: WorkflowSettings = field(default_factory=WorkflowSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    signup: SignupSettings = field(default_factory=SignupSettings)
    branding: Branding = field(default_factory=Branding)

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

    @property
    def media_dir(self) -> Path:
        """Images for the issues, served by the public pages under /media/."""
        return self.root / "media"

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


def _string(table: Mapping, key: str, where: str) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise ConfigError(f"{CONFIG_NAME}: {where}.{key} must be a string")
    return value.strip()
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


_VERIFIED_ROLES = ["kommunchef", "kso", "styrelse"]


def _signup(src: _Source, table: Mapping, roles: Mapping[str, str]) -> SignupSettings:
    """`[register]`'s sign-up settings, each checked: a wrong one names the key and the file."""
    value = src.value(table, "verified_roles", list, "register", _VERIFIED_ROLES)
    if not all(isinstance(v, str) for v in value):
        raise src.wrong("register.verified_roles", list, value)
    if value == _VERIFIED_ROLES:  # the default: a site with its own [roles] may lack some
        verified = tuple(v for v in value if v in roles)
    else:
        unknown = [v for v in value if v not in roles]
        if unknown:
            raise ConfigError(_("{file}: register.verified_roles: unknown role “{role}” "
                                "(roles: {roles})").format(file=src.file, role=unknown[0],
                                                           roles=", ".join(roles)))
        verified = tuple(value)
    numbers = {}
    for key, default, minimum in (("confirm_days", 7, 1), ("signups_per_address", 3, 1),
                                  ("signups_per_client", 60, 1),
                                  ("signup_window_minutes", 60, 1)):
        numbers[key] = src.value(table, key, int, "register", default)
        src.at_least(numbers[key], minimum, f"register.{key}")
    return SignupSettings(verified_roles=verified, confirm_days=numbers["confirm_days"],
                          per_address=numbers["signups_per_address"],
                          per_client=numbers["signups_per_client"],
                          window_minutes=numbers["signup_window_minutes"])


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


def _console(table: Mapping[str, Any], env: Mapping[str, str]) -> ConsoleSettings:
    """`[console]`, each value checked for its type (a wrong one names the key)."""
    defaults = ConsoleSettings()
    values: dict[str, Any] = {}
    for key in ("base_url", "oidc_issuer"):
        value = table.get(key, getattr(defaults, key))
        if not isinstance(value, str):
            raise ConfigError(f"{CONFIG_NAME}: console.{key} must be text")
        values[key] = value.strip().rstrip("/")
    for key in ("session_idle_minutes", "link_minutes", "link_requests_per_address",
                "link_requests_per_client", "rate_window_minutes", "max_upload_bytes",
                "max_image_pixels"):
        value = table.get(key, getattr(defaults, key))
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{CONFIG_NAME}: console.{key} must be a whole number above 0")
        values[key] = value
    for key in table:
        if key not in values:
            raise ConfigError(f"{CONFIG_NAME}: console.{key} is not a setting "
                              f"(known: {', '.join(values)})")
    values["base_url"] = (env.get("NEWSLETTER_CONSOLE_URL") or values["base_url"]).rstrip("/")
    if not values["base_url"].startswith(("https://", "http://")):
        raise ConfigError(f"{CONFIG_NAME}: console.base_url must start with https:// or http://")
    return ConsoleSettings(**values, oidc_client_id=env.get("NEWSLETTER_OIDC_CLIENT_ID") or None,
                           oidc_client_secret=env.get("NEWSLETTER_OIDC_CLIENT_SECRET") or None)


_TYPE_NAMES = {str: "text", int: "a whole number", float: "a number", list: "a list",
               dict: "a table"}


def _typed(table: Mapping, key: str, where: str, kind: type | tuple[type, ...], default: Any,
           ) -> Any:
    """TABLE[KEY] if it has the type KIND, DEFAULT if missing; else a ConfigError naming it."""
    if key not in table:
        return default
    value = table[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        names = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
        raise ConfigError(f"{CONFIG_NAME}: {where}.{key} must be {names}, not {value!r}")
    return value


def _intake(data: Mapping, site: Mapping, env: Mapping[str, str], area_slugs: set[str],
            ) -> IntakeSettings:
    """The `[intake]` table, validated: every wrong type names its key. The default keywords
    of an area the site does not have are left out; the site's own must name its areas."""
    table = data.get("intake", {})
    if not isinstance(table, Mapping):
        raise ConfigError(f"{CONFIG_NAME}: [intake] must be a table")
    feeds: list[Feed] = []
    raw_feeds = _typed(table, "feeds", "intake", list, [])
    for i, raw in enumerate(raw_feeds):
        where = f"intake.feeds[{i}]"
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{CONFIG_NAME}: {where} must be a table ([[intake.feeds]])")
        for key in ("name", "url"):
            if not isinstance(raw.get(key), str) or not raw[key].strip():
                raise ConfigError(f"{CONFIG_NAME}: {where}.{key} must be text")
        url = urlsplit(raw["url"].strip())
        if url.scheme.lower() != "https" and not (url.scheme.lower() == "http"
                                                  and is_loopback(url.hostname)):
            raise ConfigError(f"{CONFIG_NAME}: {where}.url must be an https:// address "
                              f"(feeds are fetched over TLS only), not {raw['url']!r}")
        if len(raw["name"].strip()) > MAX_FEED_NAME:
            raise ConfigError(f"{CONFIG_NAME}: {where}.name is longer than {MAX_FEED_NAME}")
        kind = _typed(raw, "kind", where, str, "nyhet")
        feeds.append(Feed(name=raw["name"].strip(), url=raw["url"].strip(), kind=kind))
    names = [f.name for f in feeds]
    if len(set(names)) != len(names):
        raise ConfigError(f"{CONFIG_NAME}: [[intake.feeds]] has a name twice")
    keywords: dict[str, tuple[str, ...]] = {}
    raw_keywords = _typed(table, "keywords", "intake", dict, {})
    site_intake = site.get("intake", {})
    own = site_intake.get("keywords", {}) if isinstance(site_intake, Mapping) else {}
    for slug, words in raw_keywords.items():
        if slug not in area_slugs and slug not in own:
            continue
        if slug not in area_slugs:
            raise ConfigError(f"{CONFIG_NAME}: intake.keywords.{slug}: no such area "
                              f"(valid: {', '.join(sorted(area_slugs))})")
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise ConfigError(f"{CONFIG_NAME}: intake.keywords.{slug} must be a list of words")
        keywords[slug] = tuple(w.strip() for w in words if w.strip())
    interval = _typed(table, "interval", "intake", int, 60)
    timeout = _typed(table, "timeout", "intake", (int, float), 20.0)
    max_bytes = _typed(table, "max_bytes", "intake", int, 5_000_000)
    remind_days = _typed(table, "remind_days", "intake", int, 7)
    for key, value in (("interval", interval), ("timeout", timeout), ("max_bytes", max_bytes)):
        if value <= 0:
            raise ConfigError(f"{CONFIG_NAME}: intake.{key} must be more than 0")
    if remind_days < 0:
        raise ConfigError(f"{CONFIG_NAME}: intake.remind_days must be 0 or more")
    remind_to = _typed(table, "remind_to", "intake", list, [])
    if not all(isinstance(a, str) and "@" in a and len(a) <= 254 for a in remind_to):
        raise ConfigError(f"{CONFIG_NAME}: intake.remind_to must be a list of email addresses")
    ca_file = env.get("NEWSLETTER_INTAKE_CA_FILE") or _typed(table, "ca_file", "intake", str,
                                                             None)
    return IntakeSettings(feeds=tuple(feeds), interval_minutes=interval, timeout=float(timeout),
                          max_bytes=max_bytes, remind_days=remind_days,
                          remind_to=tuple(remind_to), ca_file=ca_file, keywords=keywords)


def _check_base_url(src: _Source, url: str) -> None:
    """organisation.base_url: the absolute http(s) address the public pages are reached at."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(_("{file}: organisation.base_url must be an https:// address such as "
                            "https://nyhetsbrev.example.se, not {url}").format(
                                file=src.file, url=_show(url)))


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

    src = _Source(site_file, env)
    org = src.table(data, "organisation")
    for key in Organisation.__dataclass_fields__:
        src.value(org, key, str, "organisation")
    try:
        organisation = Organisation(
            **{k: org[k] for k in Organisation.__dataclass_fields__ if k in org})
    except TypeError as exc:
        raise ConfigError(f"{src.file}: [organisation] is incomplete: {exc}") from None
    if organisation.language not in LANGUAGES:
        raise ConfigError(f"{src.file}: organisation.language must be one of "
                          f"{', '.join(LANGUAGES)}, not {organisation.language!r}")
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
        sending_host=_string(tr, "sending_host", "transport") or None,
        timeout=src.value(tr, "timeout", float, "transport", 60.0, var="NEWSLETTER_SMTP_TIMEOUT"),
        retry_after=src.value(tr, "retry_after", float, "transport", 60.0,
                              var="NEWSLETTER_RETRY_AFTER"),
    )
    src.at_least(transport.connections, 1, "transport.connections")
    src.at_least(transport.rate, 0, "transport.rate")
    src.at_least(transport.per_domain_rate, 0, "transport.per_domain_rate")
    src.at_least(transport.max_consecutive_failures, 1, "transport.max_consecutive_failures")
    src.at_least(transport.confirm_above, 0, "transport.confirm_above")
    src.at_least(transport.timeout, 0.1, "transport.timeout")
    src.at_least(transport.retry_after, 0.1, "transport.retry_after")

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
    tracking_settings = _tracking(src, src.table(data, "tracking"))
    soft_limit = src.value(src.table(data, "bounces"), "soft_limit", int, "bounces", 3)
    src.at_least(soft_limit, 1, "bounces.soft_limit")
    db_url = src.value(src.table(data, "database"), "url", str, "database",
                       "sqlite:///subscribers.db", var="NEWSLETTER_DB_URL")
    branding = _branding(src, src.table(data, "branding"), root)  # checked even when replaced
    return Settings(
        console=_console(data.get("console", {}), env),
        root=root,
        organisation=organisation,
        db_url=_db_url(db_url, root),
        transport=transport,
        areas=tuple(areas),
        roles=roles,
        segments=segments,
        secret_key=_secret_key(root, env),
        soft_bounce_limit=soft_limit,
        intake=_intake(data, site, env, {a.slug for a in areas}),
        tracking=tracking_settings,
        branding=saved_branding(root) or branding,
        vacancy_roles=_vacancy_roles(data.get("register", {}), data.get("roles", {})),
        workflow=_workflow(src, src.table(data, "workflow")),
        worker=_worker(src, data, root),
        signup=_signup(src, src.table(data, "register"), roles),
        retention=RetentionSettings(
            events_days=_whole_number(data.get("retention", {}), "events_days", "retention",
                                      730),
            outbox_days=_whole_number(data.get("retention", {}), "outbox_days", "retention",
                                      730)),
    )


def _tracking(src: _Source, table: Mapping) -> TrackingSettings:
    """`[tracking]`, each value checked: a wrong type, range or name names the key and file."""
    known = TrackingSettings.__dataclass_fields__
    for key in table:
        if key not in known:
            raise ConfigError(_("{file}: tracking.{key} is not a setting (known: {known})")
                              .format(file=src.file, key=key, known=", ".join(known)))
    clicks = src.value(table, "clicks", bool, "tracking", False)
    links = src.value(table, "scanner_links", int, "tracking", 3)
    src.at_least(links, 2, "tracking.scanner_links")
    seconds = src.value(table, "scanner_seconds", float, "tracking", 10.0)
    if not 0 < seconds <= 600:
        raise ConfigError(_("{file}: tracking.scanner_seconds must be a number of seconds "
                            "between 0 and 600").format(file=src.file))
    proxy = src.value(table, "trusted_proxy", str, "tracking", "")
    return TrackingSettings(clicks=clicks, scanner_links=links, scanner_seconds=seconds,
                            trusted_proxy=proxy.strip())


def _known(src: _Source, table: Mapping, where: str, known: Iterable[str]) -> None:
    """A key of TABLE that is not in KNOWN is a ConfigError naming it (a typo would be ignored)."""
    known = list(known)
    for key in table:
        if key not in known:
            raise ConfigError(_("{file}: {where}.{key} is not a setting (known: {known})")
                              .format(file=src.file, where=where, key=key,
                                      known=", ".join(known)))


def _workflow(src: _Source, table: Mapping) -> WorkflowSettings:
    """`[workflow]`, each value checked."""
    _known(src, table, "workflow", WorkflowSettings.__dataclass_fields__)
    require = src.value(table, "require_approval", bool, "workflow", None)
    segment = src.value(table, "issue_segment", str, "workflow", "medlemmar").strip()
    if not segment:
        raise ConfigError(_("{file}: workflow.issue_segment must not be empty").format(
            file=src.file))
    return WorkflowSettings(require_approval=require, issue_segment=segment)


_LEAD = re.compile(r"([1-9][0-9]{0,3})([dhm])")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60}


def parse_lead(text: str) -> Lead | None:
    """'1d', '2h', '30m' as a Lead; None if TEXT is not one."""
    match = _LEAD.fullmatch(text.strip())
    if not match:
        return None
    return Lead(match.group(0), int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def _worker(src: _Source, data: Mapping, root: Path) -> WorkerSettings:
    """`[worker]`, `[webinars]` and `[bounces] mailbox`, each value checked."""
    table = src.table(data, "worker")
    _known(src, table, "worker", ("interval",))
    interval = src.value(table, "interval", float, "worker", 5.0, var="NEWSLETTER_WORKER_INTERVAL")
    if not 0 < interval <= 3600:
        raise ConfigError(_("{file}: worker.interval must be a number of seconds above 0 and "
                            "at most 3600").format(file=src.file))
    webinars = src.table(data, "webinars")
    _known(src, webinars, "webinars", ("reminders",))
    raw = src.value(webinars, "reminders", list, "webinars", ["1d", "1h"])
    leads = []
    for value in raw:
        lead = parse_lead(value) if isinstance(value, str) else None
        if lead is None:
            raise ConfigError(_("{file}: webinars.reminders must be a list of lead times such "
                                "as \"1d\", \"1h\" or \"30m\", not {value}").format(
                                    file=src.file, value=_show(value)))
        leads.append(lead)
    if len({lead.seconds for lead in leads}) != len(leads):
        raise ConfigError(_("{file}: webinars.reminders has the same lead time twice").format(
            file=src.file))
    mailbox = src.value(src.table(data, "bounces"), "mailbox", str, "bounces", "",
                        var="NEWSLETTER_BOUNCE_MAILBOX").strip()
    return WorkerSettings(
        interval=interval, reminders=tuple(sorted(leads, key=lambda lead: -lead.seconds)),
        bounce_mailbox=(root / mailbox) if mailbox else None)


BRANDING_FILE = "branding.toml"  # the branding saved in the console (branding.py)


def saved_branding(root: Path) -> Branding | None:
    """ROOT/branding.toml's `[branding]`, checked as newsletter.toml's is; None without the
    file. The console writes it; when it is there, it replaces newsletter.toml's [branding]."""
    path = root / BRANDING_FILE
    if not path.is_file():
        return None
    src = _Source(path, {})
    return _branding(src, src.table(_read_toml(path), "branding"), root)


def _branding(src: _Source, table: Mapping, root: Path) -> Branding:
    """`[branding]`, checked: a colour that is no #rrggbb or too light for white text, a logo
    that is not a file in media/ or has no alt text, is a ConfigError naming the key."""
    known = Branding.__dataclass_fields__
    for key in table:
        if key not in known:
            raise ConfigError(_("{file}: branding.{key} is not a setting (known: {known})")
                              .format(file=src.file, key=key, known=", ".join(known)))
    colour = src.value(table, "colour", str, "branding", Branding.colour).strip()
    if not _HEX_COLOUR.fullmatch(colour):
        raise ConfigError(_("{file}: branding.colour must be a colour like \"#14324f\", not "
                            "{value}").format(file=src.file, value=_show(colour)))
    ratio = contrast_with_white(colour)
    if ratio < MIN_CONTRAST:
        raise ConfigError(_("{file}: branding.colour {colour} has a contrast of {ratio:.1f}:1 "
                            "with white; text needs at least {minimum}:1 (WCAG AA): choose a "
                            "darker colour").format(file=src.file, colour=colour, ratio=ratio,
                                                     minimum=MIN_CONTRAST))
    logo = src.value(table, "logo", str, "branding", "").strip()
    alt = " ".join(src.value(table, "logo_alt", str, "branding", "").split())
    if logo:
        if not _MEDIA_NAME.fullmatch(logo) or not (root / "media" / logo).is_file():
            raise ConfigError(_("{file}: branding.logo must name an image file in {folder} "
                                "(JPEG, PNG, GIF or WebP), not {value}").format(
                                    file=src.file, folder=root / "media", value=_show(logo)))
        if not alt:
            raise ConfigError(_("{file}: branding.logo_alt is empty: say what the logo shows "
                                "(e.g. the organisation's name) for those who cannot see it")
                              .format(file=src.file))
    return Branding(logo=logo, logo_alt=alt, colour=colour.lower())
