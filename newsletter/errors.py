"""The error hierarchy. Each surface (CLI, web) turns these into text in one place.

Exit codes (the product contract; scripts tell the cases apart by them): 0 success, 1 bad input
or data (a file, a row, an address, a name that does not exist, a mailing that cannot go on),
2 usage (click's own: an unknown option, a missing argument), 78 configuration (EX_CONFIG from
sysexits.h: newsletter.toml, the environment, the database not initialised), 130 interrupted
(Ctrl-C). Every subclass here is 1 or 78; the CLI adds 2 and 130.
"""

from __future__ import annotations


class NewsletterError(Exception):
    """Base of every error the user can act on. The message is one line, saying what and where."""

    exit_code = 1
    http_status = 400


class ConfigError(NewsletterError):
    """newsletter.toml or the environment is wrong or incomplete; the message names the key.

    On the web it is the operator's to fix, not the visitor's: a 500, logged.
    """

    exit_code = 78  # EX_CONFIG
    http_status = 500


class InputError(NewsletterError, ValueError):
    """A file, row or field given by the user is invalid; the message names file, line or field."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.source = source
        self.line = line
        self.field = field
        where = ""
        if source:
            where = source
            if line is not None:
                where += f":{line}"
        if field:
            where = f"{where} [{field}]" if where else field
        super().__init__(f"{where}: {message}" if where else message)
        self.reason = message


class InvalidAddress(InputError):
    """An email address that does not validate."""


class SuppressedAddress(NewsletterError):
    """The address was erased, unsubscribed or bounced and may not be (re)subscribed."""

    http_status = 409


class NotFound(NewsletterError, LookupError):
    """A named thing (contact, segment, issue, mailing, webinar) does not exist."""

    http_status = 404


class SegmentSyntaxError(InputError):
    """A segment expression does not parse; the message names the column and what was expected."""


class Refused(NewsletterError):
    """The workflow does not allow it now: a send of an unapproved or unfinished issue, an
    approval of what changed since it was submitted, a schedule in the past (review.py,
    preflight.py, schedule.py). The message names the reason and what to do."""

    http_status = 409


class NotPermitted(Refused):
    """The staff member named (--by, or signed in) may not do it: a redaktör approving or
    sending, the author of the last change approving it, an address that is no staff member."""

    http_status = 403


class SendError(NewsletterError):
    """Sending cannot go on (the mailing is paused, the transport refuses us)."""


class TransportConfigError(ConfigError):
    """The transport URL or its credentials are wrong."""
