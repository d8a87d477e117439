"""Fetching a document from another server for omvärldsbevakning: HTTPS only, bounded, polite.

Used for the feeds and for remiss pages. Every request goes over HTTPS with the server's
certificate and host name verified (against the system's CAs, or only those in
`[intake] ca_file` / NEWSLETTER_INTAKE_CA_FILE); a redirect is followed (at most five) only to
another https:// address. The one exception is plain http:// to a loopback address (a feed
served on this machine, 127.0.0.1 or ::1, as in tests): nothing crosses a network there, and
such a fetch never follows a redirect elsewhere. A request sends a User-Agent that names the
site and how to reach it, and asks with the validators of the last fetch (ETag,
Last-Modified) so that an unchanged feed costs the server a 304 and us nothing.

Failure modes, each a `FetchError` with a one-line reason and nothing half-read returned: a
plain http:// address; no connection or an untrusted certificate; no byte for `[intake]
timeout` seconds (a server that hangs); a whole fetch longer than three timeouts (a server that
trickles); an announced or actual body over `[intake] max_bytes` (counted after decompression,
so a gzip bomb stops there too); an HTTP error status.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from urllib.parse import urljoin, urlsplit

import requests

from .errors import NewsletterError
from .i18n import _
from .netloc import is_loopback
from .settings import Settings

MAX_REDIRECTS = 5
_CHUNK = 64 * 1024
_ACCEPT = ("application/rss+xml, application/atom+xml, application/xml;q=0.9, "
           "text/xml;q=0.9, text/html;q=0.5, */*;q=0.1")


class FetchError(NewsletterError):
    """The document could not be fetched; the message is the reason, in one line."""


@dataclass(frozen=True)
class Response:
    url: str  # where the document was found, after redirects
    status: int  # 200, or 304 when the validators say it has not changed
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def user_agent(settings: Settings) -> str:
    """'newsletter/0.1 (+https://nyhetsbrev.example.se; kansliet@example.se)': who is asking."""
    try:
        version = metadata.version("newsletter")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        version = "0"
    org = settings.organisation
    return f"newsletter/{version} (omvärldsbevakning; +{org.base_url}; {org.reply_to})"


def _verify(settings: Settings) -> str | bool:
    ca_file = settings.intake.ca_file
    if not ca_file:
        return True
    path = settings.root / ca_file
    if not path.is_file():
        raise FetchError(_("the CA file {path} (intake.ca_file) does not exist")
                         .format(path=path))
    return str(path)


def fetch(settings: Settings, url: str, *, etag: str | None = None,
          last_modified: str | None = None, clock: Callable[[], float] = time.monotonic,
          ) -> Response:
    """GET URL over HTTPS within the limits of `settings.intake`; see the module's docstring."""
    limits = settings.intake
    deadline = clock() + 3 * limits.timeout
    headers = {"User-Agent": user_agent(settings), "Accept": _ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    verify = _verify(settings)
    local = _plain_loopback(url)
    with requests.Session() as session:
        for _hop in range(MAX_REDIRECTS + 1):
            if local and not _plain_loopback(url):
                raise FetchError(_("a loopback address redirected elsewhere: {url}")
                                 .format(url=url))
            if not local:
                _require_https(url)
            try:
                resp = session.get(url, headers=headers, stream=True, allow_redirects=False,
                                   timeout=(limits.timeout, limits.timeout), verify=verify)
            except requests.exceptions.SSLError as exc:
                raise FetchError(_("TLS failed, the certificate is not trusted or not for "
                                   "this host: {reason}").format(reason=_short(exc))) from None
            except requests.exceptions.Timeout:
                raise FetchError(_("no answer within {s:g} s").format(s=limits.timeout)) \
                    from None
            except requests.exceptions.RequestException as exc:
                raise FetchError(_("could not connect: {reason}").format(reason=_short(exc))) \
                    from None
            with resp:
                if resp.is_redirect:
                    url = urljoin(url, resp.headers.get("Location", ""))
                    continue
                if resp.status_code == 304:
                    return Response(url=url, status=304, headers=_lower(resp.headers))
                if resp.status_code >= 400:
                    raise FetchError(_("HTTP {code} {reason}").format(
                        code=resp.status_code, reason=resp.reason or ""))
                body = _read(resp, limits.max_bytes, limits.timeout, deadline, clock)
                return Response(url=url, status=resp.status_code, body=body,
                                headers=_lower(resp.headers))
    raise FetchError(_("more than {n} redirects").format(n=MAX_REDIRECTS))


def _plain_loopback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme.lower() == "http" and is_loopback(parts.hostname)


def _require_https(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise FetchError(_("only https:// addresses are fetched, not {url}").format(url=url))


def _read(resp: requests.Response, max_bytes: int, timeout: float, deadline: float,
          clock: Callable[[], float]) -> bytes:
    announced = resp.headers.get("Content-Length", "")
    if announced.isdigit() and int(announced) > max_bytes:
        raise FetchError(_("too large: {n} bytes announced, the limit is {limit} "
                           "(intake.max_bytes)").format(n=announced, limit=max_bytes))
    chunks: list[bytes] = []
    size = 0
    # A read blocks until its chunk is full, and each byte that trickles in restarts the socket's
    # timeout: a watchdog shuts the connection down at the deadline, which ends any read.
    watchdog = threading.Timer(max(deadline - clock(), 0.0), _shut_down, (resp,))
    watchdog.daemon = True
    watchdog.start()
    try:
        for chunk in resp.iter_content(_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise FetchError(_("too large: more than {limit} bytes (intake.max_bytes)")
                                 .format(limit=max_bytes))
            chunks.append(chunk)
            if clock() > deadline:
                break
    except requests.exceptions.RequestException as exc:
        if clock() <= deadline:
            if "timed out" in str(exc).lower():
                raise FetchError(_("the server stopped sending for {s:g} s")
                                 .format(s=timeout)) from None
            raise FetchError(_("the connection broke: {reason}")
                             .format(reason=_short(exc))) from None
    finally:
        watchdog.cancel()
    if clock() > deadline:
        raise FetchError(_("too slow: not complete within {s:g} s").format(s=3 * timeout))
    return b"".join(chunks)


def _shut_down(resp: requests.Response) -> None:
    """End a read that is waiting on RESP's connection (from the watchdog thread)."""
    with contextlib.suppress(AttributeError, OSError):  # already closed, or no socket
        resp.raw.connection.sock.shutdown(socket.SHUT_RDWR)


def _lower(headers) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _short(exc: BaseException) -> str:
    """The innermost, most telling part of a requests/urllib3 error, on one line."""
    text = str(exc)
    for marker in ("certificate verify failed", "hostname", "Connection refused",
                   "Name or service not known", "timed out"):
        if marker.lower() in text.lower():
            start = text.lower().index(marker.lower())
            return text[start:].split(")")[0].split("'")[0].strip()
    return " ".join(text.split())[:200]
