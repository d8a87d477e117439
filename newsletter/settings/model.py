"""What the settings are: one frozen dataclass per table of newsletter.toml, and `Settings`, the
whole. Read and checked by settings/load.py; defaults in newsletter/defaults.toml."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

CONFIG_NAME = "newsletter.toml"
SECRET_FILE = ".secret_key"
BRANDING_FILE = "branding.toml"  # the branding saved in the console (branding.py)
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
    """The embedded defaults (newsletter/defaults.toml); a site's newsletter.toml overrides them."""
    return resources.files("newsletter").joinpath("defaults.toml").read_text(encoding="utf-8")

