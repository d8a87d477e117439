"""Email addresses on the wire: what SMTP and the message headers need of an address.

`contacts.normalise_email` is the one check of an address as people type it (its domain kept in
Unicode, e.g. `åsele.example.se`). Sending needs two more things of it:

- the domain as an IDNA A-label (`xn--sele-poa.example.se`): that is how every server and
  header takes a domain, with or without SMTPUTF8 (`wire_form`);
- whether the local part is ASCII. `åsa.lindström@kommun.example.se` is a valid address that
  only a server offering SMTPUTF8 (RFC 6531) can take, with its To: header in UTF-8
  (`needs_smtputf8`). Where the server lacks SMTPUTF8, no spelling of such an address exists
  that it could deliver: the message fails for that recipient alone.
"""

from __future__ import annotations

import idna

from .i18n import _, shown


class AddressError(ValueError):
    """An address that cannot be written on the wire (its domain has no IDNA form)."""


def needs_smtputf8(address: str) -> bool:
    """True if ADDRESS can only be sent over SMTPUTF8: its local part is not ASCII."""
    return not address.rpartition("@")[0].isascii()


def wire_form(address: str) -> str:
    """ADDRESS with its domain as an IDNA A-label; the local part as it is."""
    local, _at, domain = address.rpartition("@")
    if domain.isascii():
        return address
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise AddressError(_("{address}: the domain has no IDNA (ASCII) form: {reason}").format(
            address=shown(address), reason=exc)) from None
    return f"{local}@{ascii_domain}"
