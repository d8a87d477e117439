"""The sender domain's DNS as receiving mail servers read it: SPF, DKIM and DMARC (dnspython).

`Lookup` asks one resolver (the system's, or `--dns-server HOST[:PORT]`); `spf_check` evaluates
the SPF record for one IP address the way RFC 7208 does, for the mechanisms that matter here
(ip4, ip6, a, mx, include, redirect, all; ptr and exists are counted but never match, macros are
not expanded), with its limit of 10 DNS-querying terms; `dkim_key` and `dmarc_record` read
those records' tags. `newsletter doctor` turns the results into its checklist.

Failure modes: a resolver that does not answer raises `DnsError` (the check cannot say either
way, which is not the same as a missing record); a record that breaks the rules (two SPF
records, a loop of includes, more than 10 lookups) is SPF's permerror, which receivers treat
as a failure, and is reported as such. Every lookup has a deadline (`Lookup.timeout`), so a
check ends by itself.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

import dkim
import dns.exception
import dns.resolver
from dkim.crypto import UnparsableKeyError, parse_pem_private_key, parse_public_key

from .i18n import _

SPF_LOOKUP_LIMIT = 10  # RFC 7208 4.6.4: DNS-querying terms per evaluation
SPF_MX_LIMIT = 10  # RFC 7208 4.6.4: MX names looked up per mx mechanism

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class DnsError(Exception):
    """The resolver did not answer (timeout, refused, SERVFAIL): no verdict on the record."""


def parse_server(text: str) -> tuple[str, int]:
    """`HOST`, `HOST:PORT`, `[IPV6]:PORT` or a bare IPv6 address -> (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _sep, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif text.count(":") == 1:
        host, _sep, port = text.partition(":")
    else:
        host, port = text, "53"
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(_("not HOST[:PORT]: “{text}”").format(text=text))
    return host, int(port)


@dataclass
class Lookup:
    """DNS questions to one resolver; answers as text."""

    resolver: dns.resolver.Resolver
    description: str

    @classmethod
    def using(cls, server: str | None = None, *, timeout: float = 5.0) -> Lookup:
        """The resolver at SERVER (`HOST[:PORT]`, HOST a name or address), or the system's."""
        if server:
            host, port = parse_server(server)
            try:
                address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][4][0]
            except OSError as exc:
                raise DnsError(_("DNS server {host}: {reason}").format(
                    host=host, reason=exc)) from None
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = [address]
            resolver.port = port
            description = f"{host}:{port}"
        else:
            try:
                resolver = dns.resolver.Resolver()
            except dns.resolver.NoResolverConfiguration as exc:
                raise DnsError(_("no DNS resolver configured: {reason}").format(
                    reason=exc)) from None
            description = ", ".join(str(ns) for ns in resolver.nameservers)
        resolver.lifetime = timeout
        resolver.timeout = min(2.0, timeout)
        resolver.use_edns(0, 0, 1232)
        return cls(resolver, description)

    def _answer(self, name: str, rdtype: str) -> list:
        try:
            answer = self.resolver.resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.resolver.NoNameservers as exc:
            raise DnsError(_("{server} could not answer for {name} {type}: {reason}").format(
                server=self.description, name=name, type=rdtype, reason=exc)) from None
        except dns.exception.Timeout:
            raise DnsError(_("{server} did not answer for {name} {type} in time").format(
                server=self.description, name=name, type=rdtype)) from None
        except dns.exception.DNSException as exc:
            raise DnsError(f"{name} {rdtype}: {exc}") from None
        return list(answer)

    def txt(self, name: str) -> list[str]:
        """Each TXT record at NAME, its strings joined (as SPF, DKIM and DMARC read them)."""
        return [b"".join(r.strings).decode("utf-8", "replace") for r in self._answer(name, "TXT")]

    def addresses(self, name: str) -> list[IPAddress]:
        """The A and AAAA addresses of NAME (an IP literal is its own address)."""
        try:
            return [ipaddress.ip_address(name)]
        except ValueError:
            pass
        found = [ipaddress.ip_address(r.address) for r in self._answer(name, "A")]
        return found + [ipaddress.ip_address(r.address) for r in self._answer(name, "AAAA")]

    def mx(self, name: str) -> list[str]:
        records = sorted(self._answer(name, "MX"), key=lambda r: r.preference)
        return [r.exchange.to_text(omit_final_dot=True) for r in records]

    def dkim_txt(self, name: bytes | str, timeout: float = 5) -> bytes | None:
        """dkimpy's `dnsfunc`: the first TXT record at NAME as bytes, or None."""
        text = name.decode() if isinstance(name, bytes) else name
        found = self.txt(text.rstrip("."))
        return found[0].encode() if found else None


# --- SPF -------------------------------------------------------------------------------------

@dataclass
class SpfResult:
    """RFC 7208's result for one IP address, with the record and the term that decided it."""

    result: str  # pass | fail | softfail | neutral | none | permerror
    record: str | None = None
    term: str | None = None
    reason: str = ""
    lookups: int = 0
    notes: list[str] = field(default_factory=list)


_QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}


class _PermError(Exception):
    pass


def spf_records(lookup: Lookup, domain: str) -> list[str]:
    """The TXT records at DOMAIN that are SPF records (`v=spf1` ...)."""
    return [r for r in lookup.txt(domain)
            if r.lower() == "v=spf1" or r.lower().startswith("v=spf1 ")]


def spf_check(lookup: Lookup, domain: str, ip: IPAddress) -> SpfResult:
    """SPF's verdict for mail from DOMAIN sent by IP (RFC 7208's check_host, see the module
    docstring for what is left out); raises DnsError when the resolver does not answer."""
    state = _Spf(lookup, ip)
    try:
        result, record, term = state.check(domain, depth=0)
    except _PermError as exc:
        return SpfResult("permerror", state.top, reason=str(exc), lookups=state.lookups,
                         notes=state.notes)
    if result == "none":
        return SpfResult("none", reason=_("no SPF record (TXT v=spf1) at {domain}").format(
            domain=domain))
    return SpfResult(result, record, term, lookups=state.lookups, notes=state.notes)


class _Spf:
    def __init__(self, lookup: Lookup, ip: IPAddress) -> None:
        self.lookup, self.ip = lookup, ip
        self.lookups = 0
        self.top: str | None = None  # the record of the domain asked about
        self.notes: list[str] = []

    def _count(self, term: str) -> None:
        self.lookups += 1
        if self.lookups > SPF_LOOKUP_LIMIT:
            raise _PermError(_("more than {n} DNS lookups (at {term}); receivers treat the "
                               "record as broken").format(n=SPF_LOOKUP_LIMIT, term=term))

    def check(self, domain: str, depth: int) -> tuple[str, str | None, str | None]:
        """(result, record, deciding term) for DOMAIN; "none" when it has no record."""
        records = spf_records(self.lookup, domain)
        if len(records) > 1:
            raise _PermError(_("{domain} has {n} SPF records; it must have one").format(
                domain=domain, n=len(records)))
        if not records:
            return "none", None, None
        record = records[0]
        if depth == 0:
            self.top = record
        redirect = None
        for term in record.split()[1:]:
            name, eq, value = term.partition("=")
            if eq and ":" not in name and "/" not in name:
                if name.lower() == "redirect":
                    redirect = value
                continue  # exp= and unknown modifiers change no verdict
            qualifier = _QUALIFIERS.get(term[0])
            if self._matches(term[1:] if qualifier else term, domain, depth):
                return qualifier or "pass", record, term
        if redirect:
            return self._follow(f"redirect={redirect}", redirect, depth)
        return "neutral", record, None

    def _follow(self, term: str, target: str, depth: int) -> tuple[str, str | None, str | None]:
        """The verdict of TARGET, named by TERM (include: or redirect=) of a record."""
        self._count(term)
        if depth >= SPF_LOOKUP_LIMIT:
            raise _PermError(_("{term}: includes nested too deeply (a loop?)").format(term=term))
        if "%" in target:
            self.notes.append(_("{term}: macros are not evaluated here (counted as no match)")
                              .format(term=term))
            return "neutral", None, None
        result, record, deciding = self.check(target, depth + 1)
        if result == "none":
            raise _PermError(_("{term}: {target} has no SPF record").format(
                term=term, target=target))
        return result, record, deciding

    def _matches(self, mechanism: str, domain: str, depth: int) -> bool:
        kind, arg, cidr = _split(mechanism)
        if kind == "all":
            return True
        if kind in ("ip4", "ip6"):
            try:
                network = ipaddress.ip_network(arg, strict=False)
            except ValueError:
                raise _PermError(_("bad {kind}: {mechanism}").format(kind=kind, mechanism=mechanism)
                                 ) from None
            return self.ip in network
        if kind == "include":
            return self._follow(mechanism, arg, depth)[0] == "pass"
        if kind in ("a", "mx"):
            self._count(mechanism)
            target = arg or domain
            if "%" in target:
                self.notes.append(_("{term}: macros are not evaluated here (counted as no "
                                    "match)").format(term=mechanism))
                return False
            hosts = self.lookup.mx(target)[:SPF_MX_LIMIT] if kind == "mx" else [target]
            prefix = _prefix(cidr, self.ip)
            return any(self.ip in ipaddress.ip_network(f"{address}/{prefix}", strict=False)
                       for host in hosts for address in self.lookup.addresses(host)
                       if address.version == self.ip.version)
        if kind in ("ptr", "exists"):
            self._count(mechanism)
            self.notes.append(_("{term}: not evaluated here (counted as no match)").format(
                term=mechanism))
            return False
        raise _PermError(_("unknown mechanism “{term}”").format(term=mechanism))


def _split(mechanism: str) -> tuple[str, str, str]:
    """`a:host/24//64` -> ("a", "host", "/24//64"); `ip6:2001:db8::/32` -> ("ip6",
    "2001:db8::/32", ""); `mx//64` -> ("mx", "", "//64")."""
    head, colon, rest = mechanism.partition(":")
    kind, slash, cidr = head.partition("/")
    kind = kind.lower()
    if not colon:
        return kind, "", slash + cidr
    if kind in ("ip4", "ip6"):
        return kind, rest, ""
    arg, slash, cidr = rest.partition("/")
    return kind, arg, slash + cidr


def _prefix(cidr: str, ip: IPAddress) -> int:
    """The prefix length for IP from an a/mx CIDR: "", "/24", "//64" or "/24//64"."""
    if cidr.startswith("//"):
        v4, v6 = "", cidr[2:]
    else:
        v4, _sep, v6 = cidr[1:].partition("//")
    text = v4 if ip.version == 4 else v6
    if not text:
        return ip.max_prefixlen
    if not text.isdigit() or int(text) > ip.max_prefixlen:
        raise _PermError(_("bad CIDR length {cidr}").format(cidr=cidr))
    return int(text)


# --- DKIM and DMARC --------------------------------------------------------------------------

def tags(record: str) -> dict[str, str]:
    """`k=v; k2=v2` (DKIM, DMARC) -> {k: v}, whitespace removed around and inside values."""
    out = {}
    for part in record.split(";"):
        key, eq, value = part.partition("=")
        if eq:
            out[key.strip().lower()] = "".join(value.split())
    return out


@dataclass(frozen=True)
class RsaKey:
    modulus: int
    exponent: int

    @property
    def bits(self) -> int:
        return self.modulus.bit_length()


def private_key_public_part(pem: bytes) -> RsaKey:
    """The public half of a PEM RSA private key (PKCS#1 or PKCS#8), as DkimSigner uses it;
    ValueError if it is not one."""
    try:
        key = parse_pem_private_key(pem)
    except (UnparsableKeyError, binascii.Error, IndexError, ValueError) as exc:
        raise ValueError(_("not an RSA private key in PEM form ({reason})").format(
            reason=exc)) from None
    return RsaKey(key["modulus"], key["publicExponent"])


def record_public_key(record_tags: dict[str, str]) -> RsaKey:
    """The RSA public key in a DKIM record's p= tag; ValueError for none, revoked or not RSA."""
    if record_tags.get("k", "rsa").lower() != "rsa":
        raise ValueError(_("k={k}: not an RSA key").format(k=record_tags["k"]))
    data = record_tags.get("p")
    if data is None:
        raise ValueError(_("no p= tag"))
    if not data:
        raise ValueError(_("p= is empty: the key is revoked"))
    try:
        key = parse_public_key(base64.b64decode(data, validate=True))
    except (UnparsableKeyError, binascii.Error, IndexError, ValueError) as exc:
        raise ValueError(_("p= is not a base64 RSA public key ({reason})").format(
            reason=exc)) from None
    return RsaKey(key["modulus"], key["publicExponent"])


def dkim_name(selector: str, domain: str) -> str:
    return f"{selector}._domainkey.{domain}"


def organisational_domain(domain: str) -> str:
    """The registered domain, approximately: the last two labels (right for .se and .org;
    a public suffix such as co.uk would need the Public Suffix List)."""
    labels = domain.rstrip(".").split(".")
    return ".".join(labels[-2:])


def aligned(domain: str, sender_domain: str) -> bool:
    """DMARC's relaxed alignment: the same organisational domain."""
    return organisational_domain(domain.lower()) == organisational_domain(sender_domain.lower())


@dataclass(frozen=True)
class Dmarc:
    name: str  # where the record was found: _dmarc.DOMAIN or the organisational domain's
    record: str
    tags: dict[str, str]


def dmarc_record(lookup: Lookup, domain: str) -> Dmarc | None:
    """The DMARC policy that applies to DOMAIN: its own `_dmarc` record or else the
    organisational domain's (RFC 7489 6.6.3); None if neither has one. ValueError for
    more than one record at a name."""
    names = [f"_dmarc.{domain}"]
    org = organisational_domain(domain)
    if org != domain:
        names.append(f"_dmarc.{org}")
    for name in names:
        records = [r for r in lookup.txt(name) if r.replace(" ", "").startswith("v=DMARC1")]
        if len(records) > 1:
            raise ValueError(_("{name} has {n} DMARC records; it must have one").format(
                name=name, n=len(records)))
        if records:
            return Dmarc(name, records[0], tags(records[0]))
    return None


def dkim_verifier(lookup: Lookup) -> Callable[[bytes], bool]:
    """A function that verifies a DKIM-signed message against LOOKUP's resolver."""
    def verify(message: bytes) -> bool:
        return bool(dkim.verify(message, dnsfunc=lookup.dkim_txt))
    return verify
