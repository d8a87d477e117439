"""The error hierarchy. Each surface (CLI, web) turns these into text in one place."""

from __future__ import annotations


class NewsletterError(Exception):
    """Base of every error the user can act on. The message is one line, saying what and where."""

    exit_code = 1
    http_status = 400


class ConfigError(NewsletterError):
    """newsletter.toml or the environment is wrong or incomplete; the message names the key.

    Exit status 78 (EX_CONFIG from sysexits.h), as the product contract says: 2 is click's own
    status for a usage error, and a script must be able to tell the two apart."""

    exit_code = 78


class InputError(NewsletterError, ValueError):
    """A file, row or field given by the user is invalid; the message names file, line or field."""

    exit_code = 3

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

    exit_code = 4
    http_status = 409


class NotFound(NewsletterError, LookupError):
    """A named thing (contact, segment, issue, mailing, webinar) does not exist."""

    exit_code = 5
    http_status = 404


class SegmentSyntaxError(InputError):
    """A segment expression does not parse; the message names the column and what was expected."""


class SendError(NewsletterError):
    """Sending cannot go on (the mailing is paused, the transport refuses us)."""

    exit_code = 6


class TransportConfigError(ConfigError):
    """The transport URL or its credentials are wrong."""
