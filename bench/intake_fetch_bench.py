"""How long `newsletter intake fetch` takes for a few feeds of regeringen.se's size.

    .venv/bin/python bench/intake_fetch_bench.py [--feeds 6] [--items 100]

Makes a throw-away CA and server certificate with `openssl`, serves FEEDS RSS feeds of ITEMS
items each (real-sized titles and summaries; regeringen.se's feeds list their 100 latest) over
HTTPS on 127.0.0.1 with ETag validators, and times the real command in a fresh site: the first
fetch (everything new: parse, deduplicate, classify, store) and the second (every feed answers
304 Not Modified). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

from click.testing import CliRunner

from newsletter.cli import main

REPO = Path(__file__).resolve().parent.parent
TITLES = [line.split(",")[0].strip('"') for line in
          (REPO / "tests/data/intake_titles.csv").read_text(encoding="utf-8").splitlines()[1:]]


def certificates(folder: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) for 127.0.0.1, valid for a day."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    ca, ca_key = folder / "ca.pem", folder / "ca.key"
    openssl("req", "-x509", *key, "-keyout", str(ca_key), "-out", str(ca), "-days", "1",
            "-subj", "/CN=Bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign")
    cert, cert_key, csr = folder / "srv.pem", folder / "srv.key", folder / "srv.csr"
    ext = folder / "srv.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl("req", *key, "-keyout", str(cert_key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-days", "1", "-extfile", str(ext), "-out", str(cert))
    return ca, cert, cert_key


def feed(n: int, items: int) -> bytes:
    parts = ['<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
             f"<title>Flöde {n}</title><link>https://www.regeringen.se/</link>"
             "<description>bench</description>"]
    for i in range(items):
        title = escape(TITLES[(n * items + i) % len(TITLES)])
        parts.append(
            f'<item><guid isPermaLink="false">bench-{n}-{i}</guid>'
            f"<link>https://www.regeringen.se/rattsliga-dokument/bench/{n}/{i}/</link>"
            f"<title>{title}</title><description>&lt;p&gt;{title}. Utredningen föreslår "
            "åtgärder som berör kommunerna, regionerna och staten.&lt;/p&gt;</description>"
            "<pubDate>Thu, 27 Nov 2025 10:00:00 +0100</pubDate></item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


def serve(bodies: dict[str, bytes], cert: Path, key: Path) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            body = bodies[self.path]
            etag = f'"{hash(body)}"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=6)
    parser.add_argument("--items", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ca, cert, key = certificates(folder)
        bodies = {f"/feed{n}": feed(n, args.items) for n in range(args.feeds)}
        httpd = serve(bodies, cert, key)
        port = httpd.server_address[1]
        site = folder / "site"
        site.mkdir()
        text = (REPO / "newsletter.toml").read_text(encoding="utf-8")
        for n in range(args.feeds):
            text += (f'\n[[intake.feeds]]\nname = "feed{n}"\n'
                     f'url = "https://127.0.0.1:{port}/feed{n}"\nkind = "utredning"\n')
        (site / "newsletter.toml").write_text(text, encoding="utf-8")
        shutil.copytree(REPO / "issues", site / "issues")
        env = {**os.environ, "NEWSLETTER_SECRET_KEY": "bench-secret-key-not-real",
               "NEWSLETTER_INTAKE_CA_FILE": str(ca)}
        env.pop("NEWSLETTER_DB_URL", None)
        runner = CliRunner()

        def run(*cmd: str) -> float:
            started = time.perf_counter()
            result = runner.invoke(main, ["--root", str(site), *cmd], env=env)
            if result.exit_code != 0:
                raise SystemExit(result.output)
            return time.perf_counter() - started

        run("init")
        size = sum(len(b) for b in bodies.values())
        first = run("intake", "fetch")
        second = run("intake", "fetch")
        httpd.shutdown()
        total = args.feeds * args.items
        print(f"{args.feeds} feeds x {args.items} items ({size / 1024:.0f} KiB) over HTTPS "
              f"on 127.0.0.1")
        print(f"first fetch (all new):      {first:6.2f} s  "
              f"({1000 * first / total:.1f} ms per entry, {first / args.feeds:.2f} s per feed)")
        print(f"second fetch (all 304):     {second:6.2f} s  "
              f"({second / args.feeds * 1000:.0f} ms per feed)")


if __name__ == "__main__":
    main_()
