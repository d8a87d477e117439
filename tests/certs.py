"""Throw-away certificates for TLS tests (Debian's `openssl` command): a CA and server
certificates made at test time. conftest.py's session fixture `certs` makes one set."""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

# The SMTP login the TLS tests' servers require.
USER, PASSWORD = "kansliet@example.se", "Strandskydd-2026"


@dataclass(frozen=True)
class Certs:
    ca_file: Path  # the throw-away CA's certificate: what NEWSLETTER_SMTP_CA_FILE names
    server: tuple[Path, Path]  # (certificate, key) for localhost and 127.0.0.1, signed by the CA
    wrong_host: tuple[Path, Path]  # signed by the CA, but for post.example.se only
    self_signed: tuple[Path, Path]  # for localhost and 127.0.0.1, signed by itself


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
_LEAF = ("basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature",
         "extendedKeyUsage=serverAuth", "subjectKeyIdentifier=hash")


def issue(folder: Path, name: str, sans: str, ca: tuple[Path, Path] | None,
          days: int = 2) -> tuple[Path, Path]:
    """A server certificate for SANS (e.g. "DNS:localhost,IP:127.0.0.1"), signed by CA
    (certificate, key), or by itself when CA is None, valid for DAYS."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    if ca is None:
        _openssl("req", "-x509", *_KEY, "-keyout", str(key), "-out", str(cert), "-days", str(days),
                 "-subj", f"/CN={name}", "-addext", f"subjectAltName={sans}",
                 *(x for ext in _LEAF for x in ("-addext", ext)))
        return cert, key
    csr, ext = folder / f"{name}.csr", folder / f"{name}.ext"
    ext.write_text("\n".join([f"subjectAltName={sans}", *_LEAF,
                              "authorityKeyIdentifier=keyid"]) + "\n")
    _openssl("req", *_KEY, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
             "-CAserial", str(folder / "ca.srl"), "-CAcreateserial", "-days", str(days),
             "-extfile", str(ext), "-out", str(cert))
    return cert, key


def make_certs(folder: Path) -> Certs:
    """A CA and certificates made now in FOLDER, valid for two days."""
    ca = folder / "ca.pem", folder / "ca.key"
    _openssl("req", "-x509", *_KEY, "-keyout", str(ca[1]), "-out", str(ca[0]), "-days", "2",
             "-subj", "/O=Kommunförbundet test/CN=Test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-addext", "subjectKeyIdentifier=hash")
    local = "DNS:localhost,IP:127.0.0.1"
    return Certs(ca_file=ca[0], server=issue(folder, "localhost", local, ca),
                 wrong_host=issue(folder, "post.example.se", "DNS:post.example.se", ca),
                 self_signed=issue(folder, "self-signed", local, None))


def server_context(cert: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*cert)
    return context
