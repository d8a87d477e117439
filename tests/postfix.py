"""A throw-away Postfix relay for tests: Debian's real Postfix, configured from scratch in a
temp dir, listening on 127.0.0.1 on a free port and relaying everything to one next hop.

    def test_something(site, postfix_relay):  # the fixture is in conftest.py
        # postfix_relay.url: smtp://127.0.0.1:PORT, relaying to postfix_relay.sink (a
        # RecordingSMTPServer) through Postfix's own queue, smtpd, cleanup, qmgr and smtp client.
        ...

or `with PostfixRelay(next_hop_port) as relay: ...` to relay elsewhere.

The topology is the one docs/DEPLOY.md recommends: the engine hands each message to a relay MTA
over SMTP on loopback; Postfix queues it and delivers it onward (here to `relayhost =
[127.0.0.1]:PORT`, standing in for the internet or the ESP's SMTP relay).

What it never touches: the system's Postfix. Everything lives in a fresh directory: its own
main.cf and master.cf (`master -c DIR`), queue directory and data directory; /etc/postfix is
only read for what the package ships there (dynamicmaps.cf). No local delivery (mydestination is
empty, local_transport is `error:`), no pickup (nothing to read a maildrop), no DNS, no TLS.
The master runs in the foreground as our child process (`master -s`, its own process group) and
logs through postlogd to its stdout, kept in DIR/maillog for a failing test to show.

Why it needs root: Postfix's master refuses to run as anyone else; it starts each daemon as root
and the daemon drops to `mail_owner` (the `postfix` user the package creates), so the queue
directory is chowned to that user. `skip_reason()` says why it cannot run here (not installed, not
root); under CI=true the fixture fails instead of skipping, so a CI log never hides the relay test.

Waits are bounded (start: 20 s for the port to answer; stop: SIGTERM, 10 s, then SIGKILL to the
whole process group) and teardown always runs, so a failing test leaves no Postfix behind.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

from .helpers import free_port
from .smtp_server import RecordingSMTPServer

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
POSTCONF = shutil.which("postconf") or "/usr/sbin/postconf"
MAIL_OWNER = "postfix"
SETGID_GROUP = "postdrop"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

# Queue subdirectories (from the package's postfix-files): name -> (mode, group or None).
_QUEUE_DIRS = {
    "active": (0o700, None), "bounce": (0o700, None), "corrupt": (0o700, None),
    "defer": (0o700, None), "deferred": (0o700, None), "flush": (0o700, None),
    "hold": (0o700, None), "incoming": (0o700, None), "private": (0o700, None),
    "maildrop": (0o730, SETGID_GROUP), "public": (0o710, SETGID_GROUP),
    "saved": (0o700, None), "trace": (0o700, None),
}

_MAIN_CF = """\
# A throw-away relay made by tests/postfix.py; nothing here is read by the system's Postfix.
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
mail_owner = {owner}
setgid_group = {group}
maillog_file = /dev/stdout
myhostname = relay.newsletter-test.example.se
mydomain = newsletter-test.example.se
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
# Relay only, for loopback clients, to one next hop; nothing is delivered here.
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 local delivery is disabled on this relay
alias_maps =
alias_database =
relay_domains =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [127.0.0.1]:{next_hop_port}
# No DNS anywhere: the next hop is an address; the client's name is not looked up.
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtpd_peername_lookup = no
smtp_tls_security_level = none
smtpd_tls_security_level = none
# Fail fast in tests instead of retrying for days; a deferred message shows up in the log.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
biff = no
notify_classes =
"""

_MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:{port} inet n -       n       -       -       smtpd
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def skip_reason() -> str | None:
    """Why a throw-away Postfix cannot run here, or None if it can."""
    if not Path(POSTFIX).is_file():
        return ("Postfix is not installed (Debian: apt-get install postfix, "
                "debconf postfix/main_mailer_type 'No configuration')")
    if os.geteuid() != 0:
        return "Postfix's master runs only as root (it drops to the postfix user itself)"
    try:
        pwd.getpwnam(MAIL_OWNER)
        grp.getgrnam(SETGID_GROUP)
    except KeyError:
        return f"the {MAIL_OWNER} user or the {SETGID_GROUP} group is missing"
    return None


def _daemon_directory(config_dir: Path) -> Path:
    """Where the package keeps master and the daemons, asked of our own configuration (a
    package installed with "No configuration" has no /etc/postfix/main.cf)."""
    out = subprocess.run([POSTCONF, "-c", str(config_dir), "-h", "daemon_directory"],
                         capture_output=True, text=True, check=True, timeout=30)
    return Path(out.stdout.strip())


class PostfixRelay:
    """See the module docstring. `url` is what NEWSLETTER_TRANSPORT names."""

    def __init__(self, next_hop_port: int) -> None:
        self.next_hop_port = next_hop_port
        self.port = free_port()
        self.url = f"smtp://127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="newsletter-postfix-"))
        self.log_path = self.dir / "maillog"
        self._proc: subprocess.Popen | None = None
        self.sink: RecordingSMTPServer | None = None  # set by the fixture

    # --- lifecycle
    def start(self) -> PostfixRelay:
        try:
            self._configure()
            with open(self.log_path, "wb") as log:
                # -s: stdout stays open, so that postlogd's maillog_file = /dev/stdout works.
                self._proc = subprocess.Popen(
                    [str(_daemon_directory(self.dir) / "master"), "-c", str(self.dir), "-s"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env={**os.environ, "MAIL_CONFIG": str(self.dir)})
            self._wait_until_listening()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the master and every daemon it started; remove the directory. Bounded."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # the master passes it on to its children
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=STOP_TIMEOUT)
        if proc is not None:
            # Whatever is left of its process group (the master is a session leader).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            if proc.poll() is None:
                proc.wait(timeout=STOP_TIMEOUT)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- what happened
    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def queue_count(self) -> int:
        """Messages still in the relay's queue (incoming, active, deferred, hold)."""
        return sum(1 for name in ("incoming", "active", "deferred", "hold")
                   for path in (self.dir / "queue" / name).rglob("*") if path.is_file())

    # --- internals
    def _configure(self) -> None:
        owner = pwd.getpwnam(MAIL_OWNER)
        setgid = grp.getgrnam(SETGID_GROUP)
        os.chmod(self.dir, 0o755)
        queue, data = self.dir / "queue", self.dir / "data"
        queue.mkdir(mode=0o755)
        (queue / "pid").mkdir(mode=0o755)
        for name, (mode, group) in _QUEUE_DIRS.items():
            path = queue / name
            path.mkdir()
            os.chown(path, owner.pw_uid, setgid.gr_gid if group else owner.pw_gid)
            os.chmod(path, mode)
        data.mkdir(mode=0o700)
        os.chown(data, owner.pw_uid, owner.pw_gid)
        (self.dir / "main.cf").write_text(_MAIN_CF.format(
            queue=queue, data=data, owner=MAIL_OWNER, group=SETGID_GROUP,
            next_hop_port=self.next_hop_port), encoding="ascii")
        (self.dir / "master.cf").write_text(_MASTER_CF.format(port=self.port), encoding="ascii")

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"Postfix's master exited with {self._proc.returncode}:\n"
                                   f"{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                    sock.settimeout(5)
                    if sock.recv(512).startswith(b"220"):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"Postfix did not answer on 127.0.0.1:{self.port} within "
                           f"{START_TIMEOUT:.0f} s:\n{self.log()}")
