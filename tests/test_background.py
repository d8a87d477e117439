"""The background sender (background.py): web requests record and answer, the relay's troubles
are the background's; what the relay deferred is retried without anyone running a command."""

from __future__ import annotations

import http.client
import logging
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import func, select

from newsletter import links, sender, webinars
from newsletter.background import BackgroundSender, Schedule
from newsletter.db import session_factory, writer
from newsletter.models import OutboxRow, OutboxStatus
from newsletter.web import create_app
from newsletter.web.pages import background_of

from .helpers import TEST_ENV, free_port, rsa_key, seed, token
from .smtp_server import RecordingSMTPServer, SilentRelay

SLUG = "bredband"


def _webinar(site) -> None:
    with site.transaction() as session:
        webinars.create_webinar(
            session, site.settings, title="Bredband på landsbygden", slug=SLUG,
            starts_at=datetime.now(UTC) + timedelta(days=30), duration_minutes=60,
            join_url="https://teams.example.se/l/meetup-join/abc")


@contextmanager
def _serve(site, env: dict[str, str]) -> Iterator[tuple[int, subprocess.Popen]]:
    """`newsletter serve` of SITE on a free port, stopped with SIGTERM (as systemd does)."""
    port = free_port()
    proc = subprocess.Popen(  # cwd: not the repository, whose source would shadow the package
        [sys.executable, "-m", "newsletter", "serve", "--port", str(port)],
        env={**os.environ, **TEST_ENV, "NEWSLETTER_ROOT": str(site.root), **env},
        cwd=site.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    raise AssertionError(f"serve did not start: {proc.communicate()}") from None
                time.sleep(0.1)
        yield port, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _request(port: int, method: str, path: str, form: dict[str, str] | None = None
             ) -> tuple[int, str, float]:
    """(status, body, seconds) of one HTTP request, redirects not followed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = urlencode(form) if form is not None else None
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "Sec-Fetch-Site": "same-origin", "Origin": "null"} if form is not None else {}
    started = time.perf_counter()
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    text = response.read().decode("utf-8", "replace")
    took = time.perf_counter() - started
    conn.close()
    return response.status, text, took


def test_with_the_relay_silent_pages_answer_at_once_and_confirmations_follow_when_it_is_back(
        site):
    addresses = seed(site, 40)
    registering, leaving = addresses[:20], addresses[20:]
    _webinar(site)
    relay = SilentRelay().start()
    env = {"NEWSLETTER_TRANSPORT": relay.url, "NEWSLETTER_SMTP_TIMEOUT": "1",
           "NEWSLETTER_RETRY_AFTER": "1"}
    try:
        with _serve(site, env) as (port, proc):
            status, page, _ = _request(port, "GET", f"/webinar/{SLUG}")
            assert status == 200
            csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
            times = {"registration": [], "one-click unsubscribe": []}
            for joining, going in zip(registering, leaving, strict=True):
                status, _, took = _request(port, "POST", f"/webinar/{SLUG}",
                                           {"csrf": csrf, "email": joining})
                assert status == 303
                times["registration"].append(took)
                status, _, took = _request(port, "POST",
                                           f"/u/{token(site, links.UNSUBSCRIBE, going)}",
                                           {"List-Unsubscribe": "One-Click"})
                assert status == 200
                times["one-click unsubscribe"].append(took)
            for what, seconds in times.items():
                print(f"{what}: median {statistics.median(seconds) * 1000:.1f} ms, "
                      f"max {max(seconds) * 1000:.1f} ms over {len(seconds)}, relay silent")
                assert max(seconds) < 1.0, (what, seconds)  # never waits on the relay
            assert relay.accepted >= 1  # the background did try the silent relay
            with site.transaction() as s:
                assert s.scalar(select(func.count()).select_from(OutboxRow).where(
                    OutboxRow.status == OutboxStatus.SENT)) == 0

            relay.stop()  # the relay comes back, on the same port
            with RecordingSMTPServer(port=relay.port) as server:
                assert server.wait_for(20, timeout=90), server.copies()
                time.sleep(1)  # anything more than once would arrive now
                assert server.copies() == {a: 1 for a in registering}
                subjects = {m["Subject"] for m in server.parsed()}
                assert all("Bredband på landsbygden" in s for s in subjects)
                proc.send_signal(signal.SIGTERM)
                out, err = proc.communicate(timeout=30)
                assert proc.returncode == 0, err
    finally:
        relay.stop()
    with site.transaction() as s:
        states = dict(s.execute(select(OutboxRow.status, func.count())
                                .group_by(OutboxRow.status)).all())
    assert states == {OutboxStatus.SENT: 20}


def test_confirmations_left_behind_or_deferred_are_sent_by_any_web_process(site, smtp_server):
    """Two confirmations: one the relay deferred (4xx), one whose process died before sending
    it; the next web process's background sweep sends both, nobody running a command."""
    seed(site, 3)
    _webinar(site)
    settings = replace(site.settings, transport=replace(
        site.settings.transport, url=smtp_server.url, retry_after=0.2))
    with site.transaction() as session:
        deferred = webinars.register(session, settings, SLUG, "p001@example.se").mailings
        webinars.register(session, settings, SLUG, "p002@example.se")  # never sent
    smtp_server.tempfail(2)  # both attempts of the one connection are refused
    report = sender.send_mailing(settings, site.sessions(), deferred[0],
                                 backoff=sender.Backoff(base=0.2, linger=0))
    assert report.deferred == 1 and report.sent == 0 and smtp_server.copies() == {}
    app = create_app(settings, schedule=Schedule(sweep_every=0.2))
    background = background_of(app)
    try:
        background.start()
        assert smtp_server.wait_for(2, timeout=20)
    finally:
        assert background.stop()
    assert smtp_server.copies() == {"p001@example.se": 1, "p002@example.se": 1}


def test_a_broken_transport_refuses_registrations_but_not_unsubscribes(site):
    addresses = seed(site, 2)
    _webinar(site)
    settings = replace(site.settings, transport=replace(site.settings.transport,
                                                        url="pigeon://loft"))
    app = create_app(settings)
    background = background_of(app)
    assert "pigeon://loft" in str(background.config_error)
    client = app.test_client()
    form = re.search(r'name="csrf" value="([^"]+)"',
                     client.get(f"/webinar/{SLUG}").get_data(as_text=True)).group(1)
    got = client.post(f"/webinar/{SLUG}", data={"csrf": form, "email": addresses[0]},
                      headers={"Sec-Fetch-Site": "same-origin"})
    assert got.status_code == 500  # the operator's to fix; nothing was recorded
    with site.transaction() as s:
        assert s.scalar(select(func.count()).select_from(OutboxRow)) == 0
    got = client.post(f"/u/{token(site, links.UNSUBSCRIBE, addresses[1])}",
                      data={"List-Unsubscribe": "One-Click"})
    assert got.status_code == 200  # an unsubscribe never depends on the mail configuration
    assert not background.running


def test_stop_finishes_the_message_in_flight_and_puts_the_rest_back(site, smtp_server):
    addresses = seed(site, 30)
    _webinar(site)
    with site.transaction() as session:
        mailing_id = webinars.announce(session, site.settings, SLUG, "medlemmar").mailings[0]
    smtp_server.delay = 0.1
    settings = replace(site.settings, transport=replace(site.settings.transport,
                                                        url=smtp_server.url))
    engine = site.sessions().kw["bind"]
    background = BackgroundSender(settings, session_factory(engine),
                                  session_factory(writer(engine)))
    background.submit([mailing_id])
    assert smtp_server.wait_for(5, timeout=20)
    assert background.stop(timeout=10)
    got = smtp_server.copies()
    assert 5 <= sum(got.values()) < len(addresses)
    with site.transaction() as s:
        states = dict(s.execute(select(OutboxRow.status, func.count())
                                .group_by(OutboxRow.status)).all())
    assert states.get(OutboxStatus.SENDING, 0) == 0  # nothing left claimed: a clean stop
    assert states[OutboxStatus.SENT] == sum(got.values())
    assert all(n == 1 for n in got.values())


def test_a_configuration_error_met_in_the_background_is_logged_once_and_refuses_mail(
        site, smtp_server, tmp_path, caplog):
    """The DKIM key goes missing after the app started: the background logs it once (with the
    mailing's id) however often it sweeps; registrations answer 500 until the key is back, and
    then the confirmation goes out by itself."""
    addresses = seed(site, 2)
    _webinar(site)
    key, _ = rsa_key(tmp_path, "dkim")
    settings = replace(site.settings, transport=replace(
        site.settings.transport, url=smtp_server.url, dkim_key_file=str(key),
        dkim_selector="nl", dkim_domain="example.se"))
    app = create_app(settings, schedule=Schedule(sweep_every=0.1, settle=0.01))
    background = background_of(app)
    assert background.config_error is None  # the key was there at start
    hidden = key.rename(tmp_path / "elsewhere.pem")
    client = app.test_client()
    form = re.search(r'name="csrf" value="([^"]+)"',
                     client.get(f"/webinar/{SLUG}").get_data(as_text=True)).group(1)

    def register(address: str) -> int:
        return client.post(f"/webinar/{SLUG}", data={"csrf": form, "email": address},
                           headers={"Sec-Fetch-Site": "same-origin"}).status_code

    try:
        with caplog.at_level(logging.ERROR):
            assert register(addresses[0]) == 303
            deadline = time.monotonic() + 20
            while not any(str(key) in r.getMessage() for r in caplog.records):
                assert time.monotonic() < deadline, "the background never met the missing key"
                time.sleep(0.05)
            time.sleep(1)  # ten sweeps or so, each meeting the same error
            logged = [r.getMessage() for r in caplog.records if str(key) in r.getMessage()]
            assert len(logged) == 1 and "mailing " in logged[0]
            assert register(addresses[1]) == 500  # the operator's to fix; nothing recorded
        assert smtp_server.copies() == {}
        hidden.rename(key)
        assert smtp_server.wait_for(1, timeout=20)  # the sweep sends it, nobody runs anything
        assert smtp_server.copies() == {addresses[0]: 1}
        assert background.idle(10)  # that send's round is over: the error is cleared
        assert register(addresses[1]) == 303
        assert smtp_server.wait_for(2, timeout=20)
    finally:
        assert background.stop()
    assert smtp_server.copies() == {addresses[0]: 1, addresses[1]: 1}
