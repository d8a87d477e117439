"""A local HTTPS server for feed tests: fixture feeds and pages on 127.0.0.1, and servers that
misbehave (hang, trickle, send 50 MB, answer 500). Every wait in it is bounded, and it stops by
itself when the test's `with` block ends."""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FEEDS = Path(__file__).resolve().parent / "data" / "feeds"
MAX_WAIT = 15.0  # seconds any misbehaving response keeps a connection at most


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "application/rss+xml; charset=utf-8"
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    behaviour: str | None = None  # None, "hang", "trickle", "huge"
    location: str | None = None  # a redirect's target (with status 301-308)
    hits: int = 0


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


@dataclass
class FeedServer:
    """`with FeedServer(cert) as server:`; `server.route(path, ...)`, `server.url(path)`.
    With cert None it speaks plain HTTP (allowed for loopback addresses only)."""

    cert: tuple[Path, Path] | None
    routes: dict[str, Route] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stop = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 (the http.server API)
                owner.seen.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = owner.routes.get(self.path)
                if route is None:
                    self._send(404, b"not found", "text/plain")
                    return
                route.hits += 1
                if (route.etag and self.headers.get("If-None-Match") == route.etag) or (
                        route.last_modified
                        and self.headers.get("If-Modified-Since") == route.last_modified):
                    self.send_response(304)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with contextlib.suppress(OSError):  # the client gave up, as it should
                    owner._respond(self, route)

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if self.cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.cert)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]

    def _respond(self, handler: BaseHTTPRequestHandler, route: Route) -> None:
        if route.behaviour == "hang":  # headers never come
            self.stop.wait(MAX_WAIT)
            return
        handler.send_response(route.status)
        if route.location:
            handler.send_header("Location", route.location)
        handler.send_header("Content-Type", route.content_type)
        if route.etag:
            handler.send_header("ETag", route.etag)
        if route.last_modified:
            handler.send_header("Last-Modified", route.last_modified)
        if route.behaviour == "trickle":  # a byte at a time, never done in time
            handler.send_header("Content-Length", "100000")
            handler.end_headers()
            deadline = time.monotonic() + MAX_WAIT
            while not self.stop.is_set() and time.monotonic() < deadline:
                handler.wfile.write(b" ")
                handler.wfile.flush()
                self.stop.wait(0.2)
            return
        if route.behaviour == "huge":  # 50 MB, no Content-Length: the client must count
            handler.send_header("Connection", "close")
            handler.end_headers()
            chunk = b"<item><title>x</title></item>" * 2000
            sent = 0
            handler.wfile.write(b'<?xml version="1.0"?><rss version="2.0"><channel>')
            while sent < 50_000_000 and not self.stop.is_set():
                handler.wfile.write(chunk)
                sent += len(chunk)
            handler.close_connection = True
            return
        body = route.body.replace(b"{BASE}", self.base.encode())
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    @property
    def base(self) -> str:
        return f"{'https' if self.cert else 'http'}://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def route(self, path: str, body: bytes | str = b"", **kwargs) -> Route:
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.routes[path] = Route(body=body, **kwargs)
        return self.routes[path]

    def fixture(self, path: str, name: str, **kwargs) -> Route:
        """Serve tests/data/feeds/NAME at PATH."""
        return self.route(path, (FEEDS / name).read_bytes(), **kwargs)

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    def __enter__(self) -> FeedServer:
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
