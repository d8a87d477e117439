"""The site's branding as the console saves it: the logo, its alt text and the primary colour,
in ROOT/branding.toml, which settings.py reads over newsletter.toml's [branding].

Where it lives, and why a file: newsletter.toml stays the documented way to set the branding,
and the saved values are the same `[branding]` table in a file of their own next to it (a
newsletter.toml with its comments is never rewritten by a program), so `load_settings` checks
them exactly as it checks newsletter.toml (a bad value is a ConfigError naming branding.toml
and the key; `newsletter doctor` reports it) and whatever reads the settings uses them. The logo
they name is a file in media/ beside them: serve, the console and the worker already share that
folder (serve publishes what the console uploads), so the one place holds both, and a backup of
the site folder holds both. The database was the other choice; it would have split the branding
between a table and media/, and the email renderer would have needed a session for it.

Without a restart: a process loads its settings once, so the places that show the branding
(render.py's email frame, the public pages and /static/brand.css) ask `current(settings)`, which
reads branding.toml again (a stat and a few hundred bytes per call; bench/branding_read.py
measures it): serve, the console and the worker use a saved branding from their next page or
message. Mailings already created keep the branding they were frozen with.

Failure modes: `save` writes the file whole or not at all (files.atomic_write: a temporary file
renamed over it), so a reader sees the old branding or the new, never half; it checks the values
first (`problems`) and then reads the written file back through settings.py, restoring the old
one if that refuses it, so a saved branding.toml always loads. A file made invalid by hand is
not used by a running process: `current` logs a warning and keeps the branding the process
started with, and the next start (or `newsletter doctor`) names the file and key. A branding.toml
deleted by hand takes effect at the next start. Two admins saving at once: the page sends the
`stamp` of the file it showed, and `save` refuses (ChangedMeanwhile) when the file changed since.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from . import media
from .errors import ConfigError, InputError, NewsletterError
from .files import atomic_write, check_replaceable
from .i18n import _
from .settings import (
    BRANDING_FILE,
    MIN_CONTRAST,
    Branding,
    Settings,
    contrast_with_white,
    saved_branding,
)

_log = logging.getLogger(__name__)
# A logo is stored at most twice its largest size in an email (media.LOGO_BOX), for sharp
# display on high-density screens: a 4000 px logo would make every email heavy.
LOGO_STORED = (2 * media.LOGO_BOX[0], 2 * media.LOGO_BOX[1])
_HEX = frozenset("0123456789abcdef")


class ChangedMeanwhile(NewsletterError):
    """branding.toml changed since the page that sends the form was shown: nothing saved."""

    http_status = 409


class BrandingRefused(InputError):
    """The form's values do not make a branding: `problems` maps each field to its reason."""

    def __init__(self, problems: dict[str, str]) -> None:
        field, reason = next(iter(problems.items()))
        super().__init__(reason, field=field)
        self.problems = problems


@dataclass(frozen=True)
class Saved:
    """What `save` did: the branding now in force, and the logo file it stored (or None)."""

    branding: Branding
    stored_logo: str | None


def path(settings: Settings) -> Path:
    return settings.root / BRANDING_FILE


def stamp(settings: Settings) -> str:
    """A fingerprint of branding.toml as it is now ("" when there is none): the console's form
    carries it, so that a save over someone else's newer save is refused."""
    try:
        return hashlib.sha256(path(settings).read_bytes()).hexdigest()[:16]
    except FileNotFoundError:
        return ""


def current(settings: Settings) -> Branding:
    """The branding to show now: branding.toml as it is on disk (saved in the console, perhaps
    after this process started), else the settings' own (newsletter.toml's [branding])."""
    try:
        return saved_branding(settings.root) or settings.branding
    except ConfigError as exc:
        _log.warning("%s; the branding this process started with is used", exc)
        return settings.branding


def normalise_colour(text: str) -> str:
    """'#14324F ' -> '#14324f'; anything else unchanged (for `problems` to refuse)."""
    colour = (text or "").strip().lower()
    if len(colour) == 6 and set(colour) <= _HEX:
        colour = "#" + colour
    return colour


def is_colour(text: str) -> bool:
    """Whether TEXT is a colour as #rrggbb (lower case: see normalise_colour)."""
    return len(text) == 7 and text[0] == "#" and set(text[1:]) <= _HEX


def problems(colour: str, logo_alt: str, *, has_logo: bool) -> dict[str, str]:
    """Why COLOUR (#rrggbb) and LOGO_ALT cannot be saved, by form field ({} when they can):
    the same rules as settings.py's [branding], said to the person at the form."""
    found: dict[str, str] = {}
    if not is_colour(colour):
        found["colour"] = _("Write the colour as # and six hexadecimal digits, like #14324f, "
                            "not {value}").format(value=colour or '""')
    else:
        ratio = contrast_with_white(colour)
        if ratio < MIN_CONTRAST:
            found["colour"] = _("The colour {colour} has a contrast of {ratio:.1f}:1 with white; "
                                "text needs at least {minimum}:1 (WCAG AA). Choose a darker "
                                "colour.").format(colour=colour, ratio=ratio,
                                                  minimum=MIN_CONTRAST)
    if has_logo and not logo_alt:
        found["logo_alt"] = _("Say what the logo shows (e.g. the organisation's name) for "
                              "those who cannot see it.")
    return found


def _toml_string(value: str) -> str:
    """VALUE as a TOML basic string (quotes, backslashes and control characters escaped)."""
    out = []
    for char in value:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _text(branding: Branding, by: str) -> str:
    return ("# Saved in the staff console (Settings > Profile) by " + by + ".\n"
            "# It replaces [branding] in newsletter.toml; delete this file (and restart)\n"
            "# to use newsletter.toml's values again.\n"
            "[branding]\n"
            f"logo = {_toml_string(branding.logo)}\n"
            f"logo_alt = {_toml_string(branding.logo_alt)}\n"
            f"colour = {_toml_string(branding.colour)}\n")


def save(settings: Settings, *, colour: str, logo_alt: str, logo_data: bytes | None = None,
         remove_logo: bool = False, expected_stamp: str | None = None, by: str = "") -> Saved:
    """Save the branding: COLOUR, LOGO_ALT and the logo (LOGO_DATA, an upload that
    media.store_upload checks by its content and stores sized for email; or the current logo
    kept; or none with REMOVE_LOGO) into branding.toml, atomically.

    Raises BrandingRefused (each field's reason) before anything is stored, InputError
    (field "logo") for an upload that is not an image, ChangedMeanwhile when EXPECTED_STAMP is
    given and the file changed since. A logo replaced stays in media/: the archive's emails
    show it.
    """
    before = current(settings)
    colour = normalise_colour(colour)
    logo_alt = " ".join((logo_alt or "").split())
    keeps_logo = bool(before.logo) and not remove_logo
    found = problems(colour, logo_alt, has_logo=bool(logo_data) or keeps_logo)
    if found:
        raise BrandingRefused(found)
    target = path(settings)
    check_replaceable(target)
    if expected_stamp is not None and expected_stamp != stamp(settings):
        raise ChangedMeanwhile(_("Someone saved the branding after you opened this page: "
                                 "nothing was saved. Look at it now and save again."))
    stored = None
    if logo_data:
        try:
            stored = media.store_upload(settings, logo_data, box=LOGO_STORED).name
        except InputError as exc:
            raise InputError(exc.reason, field="logo") from None
    logo = stored or (before.logo if keeps_logo else "")
    branding = Branding(logo=logo, logo_alt=logo_alt if logo else "", colour=colour)
    old = target.read_bytes() if target.is_file() else None
    try:
        with atomic_write(target) as fh:
            fh.write(_text(branding, by or "?"))
        saved = saved_branding(settings.root)
    except (ConfigError, OSError):
        if old is None:
            target.unlink(missing_ok=True)
        else:  # the file as it was (it loaded), put back whole
            with atomic_write(target) as fh:
                fh.write(old.decode("utf-8"))
        if stored:
            (settings.media_dir / stored).unlink(missing_ok=True)
        raise
    return Saved(branding=saved or branding, stored_logo=stored)
