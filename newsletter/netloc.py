"""Where a host is: loopback (this machine) or elsewhere. Plaintext is allowed only to loopback
(an SMTP relay on this machine, a feed served on 127.0.0.1), where nothing crosses a network."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str | None) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (brackets allowed)."""
    host = (host or "").strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
