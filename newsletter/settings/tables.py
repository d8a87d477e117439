"""Each table of newsletter.toml read and checked into its dataclass (settings/model.py), all with
the one `Reader` (settings/reader.py): a wrong type, range or name is a ConfigError naming the
key and the file. `load.load_settings` calls them in turn."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import MISSING
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..i18n import LANGUAGES, _
from ..netloc import is_loopback
from .model import (
    MAX_FEED_NAME,
    MAX_SLUG,
    MIN_CONTRAST,
    Area,
    Branding,
    ConsoleSettings,
    Feed,
    IntakeSettings,
    Lead,
    Organisation,
    RetentionSettings,
    SignupSettings,
    TrackingSettings,
    TransportSettings,
    WorkerSettings,
    WorkflowSettings,
    contrast_with_white,
)
from .reader import Reader, show

_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
_MEDIA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,100}\.(?:jpg|jpeg|png|gif|webp)")
_LEAD = re.compile(r"([1-9][0-9]{0,3})([dhm])")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60}


def parse_lead(text: str) -> Lead | None:
    """'1d', '2h', '30m' as a Lead; None if TEXT is not one."""
    match = _LEAD.fullmatch(text.strip())
    if not match:
        return None
    return Lead(match.group(0), int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def organisation(src: Reader, data: Mapping) -> Organisation:
    """`[organisation]`: every key a string, the required ones there, a known language and an
    absolute http(s) base_url."""
    org = src.table(data, "organisation")
    for key in Organisation.__dataclass_fields__:
        src.value(org, key, str, "organisation")
    missing = [key for key, f in Organisation.__dataclass_fields__.items()
               if key not in org and f.default is MISSING]
    if missing:
        raise ConfigError(_("{file}: missing setting {name}").format(
            file=src.file, name=f"organisation.{missing[0]}"))
    found = Organisation(**{k: org[k] for k in Organisation.__dataclass_fields__ if k in org})
    if found.language not in LANGUAGES:
        raise ConfigError(_("{file}: organisation.language must be one of {languages}, not "
                            "{value}").format(file=src.file, languages=", ".join(LANGUAGES),
                                              value=show(found.language)))
    parts = urlsplit(found.base_url)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(_("{file}: organisation.base_url must be an https:// address such as "
                            "https://nyhetsbrev.example.se, not {url}").format(
                                file=src.file, url=show(found.base_url)))
    return found


def transport(src: Reader, data: Mapping, env: Mapping[str, str]) -> TransportSettings:
    """`[transport]`, with the environment's overrides and secrets."""
    tr = src.table(data, "transport")
    found = TransportSettings(
        url=src.value(tr, "url", str, "transport", "maildir:Maildir", var="NEWSLETTER_TRANSPORT"),
        connections=src.whole(tr, "connections", "transport", 2, 1, var="NEWSLETTER_CONNECTIONS"),
        rate=src.value(tr, "rate", float, "transport", 0.0, var="NEWSLETTER_RATE"),
        per_domain_rate=src.value(tr, "per_domain_rate", float, "transport", 0.0),
        max_consecutive_failures=src.whole(tr, "max_consecutive_failures", "transport", 20, 1),
        confirm_above=src.whole(tr, "confirm_above", "transport", 50, 0),
        smtp_user=env.get("NEWSLETTER_SMTP_USER"),
        smtp_password=env.get("NEWSLETTER_SMTP_PASSWORD"),
        smtp_ca_file=src.value(tr, "smtp_ca_file", str, "transport",
                               var="NEWSLETTER_SMTP_CA_FILE"),
        dkim_key_file=env.get("NEWSLETTER_DKIM_KEY_FILE"),
        dkim_selector=src.value(tr, "dkim_selector", str, "transport",
                                var="NEWSLETTER_DKIM_SELECTOR"),
        dkim_domain=src.value(tr, "dkim_domain", str, "transport", var="NEWSLETTER_DKIM_DOMAIN"),
        sending_host=src.text(tr, "sending_host", "transport") or None,
        timeout=src.value(tr, "timeout", float, "transport", 60.0, var="NEWSLETTER_SMTP_TIMEOUT"),
        retry_after=src.value(tr, "retry_after", float, "transport", 60.0,
                              var="NEWSLETTER_RETRY_AFTER"),
    )
    src.at_least(found.rate, 0, "transport.rate")
    src.at_least(found.per_domain_rate, 0, "transport.per_domain_rate")
    src.at_least(found.timeout, 0.1, "transport.timeout")
    src.at_least(found.retry_after, 0.1, "transport.retry_after")
    return found


def areas(src: Reader, data: Mapping) -> tuple[Area, ...]:
    """`[[areas]]`: at least one, each slug unique and no longer than its column."""
    found = []
    raw_areas = src.value(data, "areas", list, "", [])
    for i, area in enumerate(raw_areas):
        where = f"areas[{i}]"
        if not isinstance(area, dict):
            raise src.wrong(where, dict, area)
        slug = src.require(area, "slug", str, where)
        src.longest(slug, MAX_SLUG, f"{where}.slug")
        found.append(Area(slug=slug, name=src.require(area, "name", str, where)))
    if not found:
        raise ConfigError(_("{file}: no [[areas]] configured").format(file=src.file))
    if len({a.slug for a in found}) != len(found):
        raise ConfigError(_("{file}: [[areas]] has a slug twice").format(file=src.file))
    return tuple(found)


def roles(src: Reader, data: Mapping) -> dict[str, str]:
    """`[roles]`: slug -> name, each slug no longer than its column."""
    found = src.strings(data, "roles")
    for role in found:
        src.longest(role, MAX_SLUG, f"[roles] {role}")
    return found


def console(src: Reader, data: Mapping, env: Mapping[str, str]) -> ConsoleSettings:
    """`[console]`, with NEWSLETTER_CONSOLE_URL and the OIDC client from the environment."""
    table = src.table(data, "console")
    defaults = ConsoleSettings()
    values: dict[str, Any] = {}
    for key in ("base_url", "oidc_issuer"):
        values[key] = src.text(table, key, "console", getattr(defaults, key)).rstrip("/")
    for key in ("session_idle_minutes", "link_minutes", "link_requests_per_address",
                "link_requests_per_client", "rate_window_minutes", "max_upload_bytes",
                "max_image_pixels"):
        values[key] = src.whole(table, key, "console", getattr(defaults, key), 1)
    src.known(table, "console", values)
    values["base_url"] = src.text(table, "base_url", "console", defaults.base_url,
                                  var="NEWSLETTER_CONSOLE_URL").rstrip("/")
    if not values["base_url"].startswith(("https://", "http://")):
        raise ConfigError(_("{file}: console.base_url must start with https:// or http://, not "
                            "{value}").format(file=src.file, value=show(values["base_url"])))
    return ConsoleSettings(**values, oidc_client_id=env.get("NEWSLETTER_OIDC_CLIENT_ID") or None,
                           oidc_client_secret=env.get("NEWSLETTER_OIDC_CLIENT_SECRET") or None)


def _feeds(src: Reader, table: Mapping) -> tuple[Feed, ...]:
    feeds: list[Feed] = []
    for i, raw in enumerate(src.value(table, "feeds", list, "intake", [])):
        where = f"intake.feeds[{i}]"
        if not isinstance(raw, dict):
            raise src.wrong(where, dict, raw)
        name, url = (src.text(raw, key, where) for key in ("name", "url"))
        for key, value in (("name", name), ("url", url)):
            if not value:
                raise ConfigError(_("{file}: missing setting {name}").format(
                    file=src.file, name=f"{where}.{key}"))
        parts = urlsplit(url)
        if parts.scheme.lower() != "https" and not (parts.scheme.lower() == "http"
                                                    and is_loopback(parts.hostname)):
            raise ConfigError(_("{file}: {name} must be an https:// address (feeds are fetched "
                                "over TLS only), not {value}").format(
                                    file=src.file, name=f"{where}.url", value=show(url)))
        src.longest(name, MAX_FEED_NAME, f"{where}.name")
        feeds.append(Feed(name=name, url=url, kind=src.value(raw, "kind", str, where, "nyhet")))
    if len({f.name for f in feeds}) != len(feeds):
        raise ConfigError(_("{file}: [[intake.feeds]] has a name twice").format(file=src.file))
    return tuple(feeds)


def intake(src: Reader, data: Mapping, site: Mapping, area_slugs: set[str]) -> IntakeSettings:
    """`[intake]`. The default keywords of an area the site does not have are left out; the
    site's own must name its areas."""
    table = src.table(data, "intake")
    keywords: dict[str, tuple[str, ...]] = {}
    site_intake = site.get("intake", {})
    own = site_intake.get("keywords", {}) if isinstance(site_intake, Mapping) else {}
    raw_keywords = src.value(table, "keywords", dict, "intake", {})
    for slug in raw_keywords:
        if slug not in area_slugs and slug not in own:
            continue
        if slug not in area_slugs:
            raise ConfigError(_("{file}: intake.keywords.{slug}: no such area (valid: "
                                "{valid})").format(file=src.file, slug=slug,
                                                   valid=", ".join(sorted(area_slugs))))
        words = src.texts(raw_keywords, slug, "intake.keywords", [])
        keywords[slug] = tuple(w.strip() for w in words if w.strip())
    timeout = src.value(table, "timeout", float, "intake", 20.0)
    src.at_least(timeout, 0.1, "intake.timeout")
    remind_to = src.texts(table, "remind_to", "intake", [])
    if not all("@" in a and len(a) <= 254 for a in remind_to):
        raise ConfigError(_("{file}: intake.remind_to must be a list of email addresses")
                          .format(file=src.file))
    return IntakeSettings(
        feeds=_feeds(src, table), interval_minutes=src.whole(table, "interval", "intake", 60, 1),
        timeout=timeout, max_bytes=src.whole(table, "max_bytes", "intake", 5_000_000, 1),
        remind_days=src.whole(table, "remind_days", "intake", 7, 0), remind_to=tuple(remind_to),
        ca_file=src.value(table, "ca_file", str, "intake", var="NEWSLETTER_INTAKE_CA_FILE"),
        keywords=keywords)


def tracking(src: Reader, data: Mapping) -> TrackingSettings:
    """`[tracking]`."""
    table = src.table(data, "tracking")
    src.known(table, "tracking", TrackingSettings.__dataclass_fields__)
    seconds = src.value(table, "scanner_seconds", float, "tracking", 10.0)
    if not 0 < seconds <= 600:
        raise ConfigError(_("{file}: tracking.scanner_seconds must be a number of seconds "
                            "between 0 and 600").format(file=src.file))
    return TrackingSettings(clicks=src.value(table, "clicks", bool, "tracking", False),
                            scanner_links=src.whole(table, "scanner_links", "tracking", 3, 2),
                            scanner_seconds=seconds,
                            trusted_proxy=src.text(table, "trusted_proxy", "tracking"))


def workflow(src: Reader, data: Mapping) -> WorkflowSettings:
    """`[workflow]`."""
    table = src.table(data, "workflow")
    src.known(table, "workflow", WorkflowSettings.__dataclass_fields__)
    segment = src.text(table, "issue_segment", "workflow", "medlemmar")
    if not segment:
        raise ConfigError(_("{file}: workflow.issue_segment must not be empty").format(
            file=src.file))
    return WorkflowSettings(
        require_approval=src.value(table, "require_approval", bool, "workflow", None),
        issue_segment=segment)


def worker(src: Reader, data: Mapping, root: Path) -> WorkerSettings:
    """`[worker]`, `[webinars]` and `[bounces] mailbox`."""
    table = src.table(data, "worker")
    src.known(table, "worker", ("interval",))
    interval = src.value(table, "interval", float, "worker", 5.0, var="NEWSLETTER_WORKER_INTERVAL")
    if not 0 < interval <= 3600:
        raise ConfigError(_("{file}: worker.interval must be a number of seconds above 0 and "
                            "at most 3600").format(file=src.file))
    webinars = src.table(data, "webinars")
    src.known(webinars, "webinars", ("reminders",))
    leads = []
    for value in src.value(webinars, "reminders", list, "webinars", ["1d", "1h"]):
        lead = parse_lead(value) if isinstance(value, str) else None
        if lead is None:
            raise ConfigError(_("{file}: webinars.reminders must be a list of lead times such "
                                "as \"1d\", \"1h\" or \"30m\", not {value}").format(
                                    file=src.file, value=show(value)))
        leads.append(lead)
    if len({lead.seconds for lead in leads}) != len(leads):
        raise ConfigError(_("{file}: webinars.reminders has the same lead time twice").format(
            file=src.file))
    mailbox = src.text(src.table(data, "bounces"), "mailbox", "bounces",
                       var="NEWSLETTER_BOUNCE_MAILBOX")
    return WorkerSettings(
        interval=interval, reminders=tuple(sorted(leads, key=lambda lead: -lead.seconds)),
        bounce_mailbox=(root / mailbox) if mailbox else None)


def signup(src: Reader, data: Mapping, roles: Mapping[str, str]) -> SignupSettings:
    """`[register]`'s sign-up settings (signups.py, role_claims.py)."""
    table = src.table(data, "register")
    return SignupSettings(
        verified_roles=src.roles(table, "verified_roles", "register",
                                 list(SignupSettings.verified_roles), roles),
        confirm_days=src.whole(table, "confirm_days", "register", 7, 1),
        per_address=src.whole(table, "signups_per_address", "register", 3, 1),
        per_client=src.whole(table, "signups_per_client", "register", 60, 1),
        window_minutes=src.whole(table, "signup_window_minutes", "register", 60, 1))


def vacancy_roles(src: Reader, data: Mapping, roles: Mapping[str, str]) -> tuple[str, ...]:
    """`[register] vacancy_roles`: the roles each member municipality should have a holder of."""
    return src.roles(src.table(data, "register"), "vacancy_roles", "register",
                     ["kommunchef", "kso"], roles)


def retention(src: Reader, data: Mapping) -> RetentionSettings:
    """`[retention]`: days, 0 for ever."""
    table = src.table(data, "retention")
    return RetentionSettings(events_days=src.whole(table, "events_days", "retention", 730, 0),
                             outbox_days=src.whole(table, "outbox_days", "retention", 730, 0))


def branding(src: Reader, data: Mapping, root: Path) -> Branding:
    """`[branding]`: a colour that is no #rrggbb or too light for white text, a logo that is not
    a file in media/ or has no alt text, is an error naming the key."""
    table = src.table(data, "branding")
    src.known(table, "branding", Branding.__dataclass_fields__)
    colour = src.text(table, "colour", "branding", Branding.colour)
    if not _HEX_COLOUR.fullmatch(colour):
        raise ConfigError(_("{file}: branding.colour must be a colour like \"#14324f\", not "
                            "{value}").format(file=src.file, value=show(colour)))
    ratio = contrast_with_white(colour)
    if ratio < MIN_CONTRAST:
        raise ConfigError(_("{file}: branding.colour {colour} has a contrast of {ratio:.1f}:1 "
                            "with white; text needs at least {minimum}:1 (WCAG AA): choose a "
                            "darker colour").format(file=src.file, colour=colour, ratio=ratio,
                                                     minimum=MIN_CONTRAST))
    logo = src.text(table, "logo", "branding")
    alt = " ".join(src.text(table, "logo_alt", "branding").split())
    if logo:
        if not _MEDIA_NAME.fullmatch(logo) or not (root / "media" / logo).is_file():
            raise ConfigError(_("{file}: branding.logo must name an image file in {folder} "
                                "(JPEG, PNG, GIF or WebP), not {value}").format(
                                    file=src.file, folder=root / "media", value=show(logo)))
        if not alt:
            raise ConfigError(_("{file}: branding.logo_alt is empty: say what the logo shows "
                                "(e.g. the organisation's name) for those who cannot see it")
                              .format(file=src.file))
    return Branding(logo=logo, logo_alt=alt, colour=colour.lower())
