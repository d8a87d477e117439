"""Which requests to /l/TOKEN are readers, and how many readers: decided in memory, per day.

Mail security gateways open the links of a message before (and after) a person does: Microsoft
Defender Safe Links, Proofpoint, Mimecast, Barracuda, Google's link checkers. Counting them
would say that every link of every mailing is read. The rule, applied per request:

1. Not reading (counted only as a scanner hit): a HEAD request; a request that says it is a
   prefetch or preview (`Sec-Purpose`, `Purpose` or `X-Purpose`); an empty User-Agent or one of
   a known scanner, bot, link previewer or HTTP library (`KNOWN_AGENTS`).
2. The burst rule: a client that opens `[tracking] scanner_links` (default 3) different links of
   one mailing within `scanner_seconds` (default 10) is a scanner. That request, and the
   client's earlier clicks on the mailing inside the window (already counted), become scanner
   hits; whatever the client opens in that mailing for the rest of the day does too. For a
   mailing with fewer links than `scanner_links`, opening all of them (at least two) is enough.
   A "client" here is the User-Agent together with the network of the address (IPv4 /24, IPv6
   /48), since scanners fetch from a pool of neighbouring addresses.
Everything else is a reader's click.

Reader estimates: a click is the client's first of the day on that link (`unique_clicks`), in
that mailing (`readers`), in that priority area of the mailing (`area_readers`). "Client" is
the address with the User-Agent, and it exists only as an HMAC-SHA256 under a random salt made
when the day (UTC) starts, in this process's memory: never written to the database, never
logged. At the end of the day, or earlier once MAX_CLIENTS entries are held, the salt and
everything derived from it are dropped. So a person who clicks on two days counts twice,
several `serve` processes count separately, and a restart starts afresh: the estimates lean
high, and cannot be turned back into anyone.

Failure modes: the state is per process and lost on restart; that only loosens the estimates
and lets a burst that straddles a restart pass as a few clicks. Two people behind one address
(a municipality's NAT) with the same browser build who open three links of one mailing within
ten seconds look like a scanner and are not counted: the rule errs towards fewer clicks.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from .settings import TrackingSettings
from .tracking import Delta, LinkRef

READER = "reader"
HEAD = "head"
PREFETCH = "prefetch"
AGENT = "agent"
BURST = "burst"
FLAGGED = "flagged"  # a client already unmasked as a scanner today, in this mailing

MAX_CLIENTS = 100_000
_PRUNE_EVERY = 256

# User-Agents that are not a person reading: security gateways and link checkers (Safe Links,
# Proofpoint, Mimecast, Barracuda, Google, ...), bots and previewers, HTTP libraries. Matched as
# lower-case substrings (fast), plus the few patterns below.
KNOWN_AGENTS = (
    "crawl", "spider", "slurp", "scan", "preview", "check", "monitor", "safelinks",
    "protection.outlook", "defender", "ms-office", "proofpoint", "mimecast", "barracuda",
    "symantec", "messagelabs", "sophos", "forcepoint", "zscaler", "fireeye", "trellix",
    "ironport", "cisco", "mailguard", "spamtitan", "hornet", "libraesva", "vadesecure",
    "google", "feedfetcher", "facebookexternalhit", "whatsapp", "skypeuri", "python", "curl/",
    "wget", "go-http-client", "okhttp", "java/", "httpclient", "libwww", "node-fetch", "axios",
    "headlesschrome", "phantomjs", "puppeteer",
)
_AGENT_PATTERNS = re.compile(
    r"\bbot\b|bot[/;)_-]|trend ?micro|office (existence|protocol) discovery", re.IGNORECASE)
_PREFETCH = re.compile(r"prefetch|preview|prerender", re.IGNORECASE)


@dataclass(frozen=True)
class ClickRequest:
    """What the filter sees of one request to /l/TOKEN (nothing of it is stored)."""

    method: str
    address: str
    user_agent: str
    purpose: str = ""  # Sec-Purpose, Purpose or X-Purpose, if any


@dataclass(frozen=True)
class Verdict:
    """Why a request counts as it does, and what it adds to which link (id -> Delta)."""

    reason: str
    deltas: dict[int, Delta]

    @property
    def counted(self) -> bool:
        return self.reason == READER


@dataclass(frozen=True)
class _Click:
    at: float
    link_id: int
    added: Delta


def is_known_agent(user_agent: str) -> bool:
    """Whether USER_AGENT is a known scanner, bot, previewer or HTTP library."""
    lower = user_agent.lower()
    return any(s in lower for s in KNOWN_AGENTS) or bool(_AGENT_PATTERNS.search(lower))


def _network(address: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) network of ADDRESS: a scanner's pool of addresses."""
    head, dot, last = address.rpartition(".")
    if dot and ":" not in address and last.isdigit() and head.count(".") == 2:
        return f"{head}.0/24"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


class ClickFilter:
    """The rule above, for one process. Thread-safe; NOW is the clock (injectable for tests)."""

    def __init__(self, settings: TrackingSettings, *,
                 now: Callable[[], datetime] | None = None,
                 max_clients: int = MAX_CLIENTS) -> None:
        self.settings = settings
        self.now = now or (lambda: datetime.now(UTC))
        self.max_clients = max_clients
        self._lock = threading.Lock()
        self._calls = 0
        self._new_day(date.min)

    def _new_day(self, day: date) -> None:
        self._day = day
        self._salt = secrets.token_bytes(32)
        self._seen: set[tuple] = set()
        self._recent: dict[tuple[bytes, int], list[_Click]] = {}
        self._flagged: set[tuple[bytes, int]] = set()

    def _client(self, *parts: str) -> bytes:
        return hmac.new(self._salt, "\0".join(parts).encode("utf-8", "replace"),
                        hashlib.sha256).digest()[:16]

    def _first(self, key: tuple) -> int:
        if key in self._seen:
            return 0
        self._seen.add(key)
        return 1

    def judge(self, request: ClickRequest, link: LinkRef) -> Verdict:
        """The verdict on REQUEST for LINK; remembers what it needs for the next ones."""
        scanner = {link.id: Delta(scanner_hits=1)}
        if request.method.upper() == "HEAD":
            return Verdict(HEAD, scanner)
        if _PREFETCH.search(request.purpose or ""):
            return Verdict(PREFETCH, scanner)
        agent = (request.user_agent or "").strip()
        if not agent or is_known_agent(agent):
            return Verdict(AGENT, scanner)
        with self._lock:
            moment = self.now()
            day = moment.astimezone(UTC).date()
            if day != self._day or len(self._seen) + len(self._recent) > self.max_clients:
                self._new_day(day)
            at = moment.timestamp()
            self._calls += 1
            if self._calls % _PRUNE_EVERY == 0:
                self._prune(at)
            return self._judge(request, agent, link, at)

    def _judge(self, request: ClickRequest, agent: str, link: LinkRef, at: float) -> Verdict:
        scanner = {link.id: Delta(scanner_hits=1)}
        net = (self._client(_network(request.address), agent), link.mailing_id)
        if net in self._flagged:
            return Verdict(FLAGGED, scanner)
        window = [c for c in self._recent.get(net, ())
                  if at - c.at <= self.settings.scanner_seconds]
        distinct = {c.link_id for c in window} | {link.id}
        threshold = min(self.settings.scanner_links, link.links_in_mailing)
        if link.links_in_mailing >= 2 and len(distinct) >= threshold:
            self._flagged.add(net)
            self._recent.pop(net, None)
            deltas = dict(scanner)
            for click in window:  # take back what its earlier requests added
                a = click.added
                undo = Delta(clicks=-a.clicks, unique_clicks=-a.unique_clicks,
                             readers=-a.readers, area_readers=-a.area_readers, scanner_hits=1)
                deltas[click.link_id] = deltas.get(click.link_id, Delta()) + undo
            return Verdict(BURST, deltas)
        person = self._client(request.address, agent)
        added = Delta(
            clicks=1,
            unique_clicks=self._first(("link", person, link.id)),
            readers=self._first(("mailing", person, link.mailing_id)),
            area_readers=self._first(("area", person, link.mailing_id, link.area))
            if link.area else 0)
        window.append(_Click(at, link.id, added))
        self._recent[net] = window
        return Verdict(READER, {link.id: added})

    def _prune(self, at: float) -> None:
        """Forget windows that have closed, so memory follows the clicks of the last seconds."""
        limit = self.settings.scanner_seconds
        for key in [k for k, clicks in self._recent.items() if at - clicks[-1].at > limit]:
            del self._recent[key]
