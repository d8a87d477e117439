"""A tiny authoritative DNS server for tests: fixture zones answered on 127.0.0.1, UDP and TCP.

    with FixtureDNS({"smakommuner.example": {"TXT": ['"v=spf1 ip4:192.0.2.0/24 -all"']}}) as dns:
        ... NEWSLETTER_DNS_SERVER=dns.address ...

ZONE maps a name to {type: [rdata in zone-file text]}. A name in the zone answers its records
(none of the asked type: NOERROR with no answer); a name not in it answers NXDOMAIN. A UDP
answer larger than the query allows is sent truncated (TC), and the client retries over TCP on
the same port, as real resolvers do. Built on dnspython's message API; each server thread wakes
up every 0.2 s to see whether it should stop.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
from typing import Self

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

Zone = dict[str, dict[str, list[str]]]


def txt(value: str) -> str:
    """VALUE as TXT rdata text: quoted strings of at most 255 characters (a DKIM key is longer)."""
    chunks = [value[i:i + 255] for i in range(0, len(value), 255)] or [""]
    return " ".join('"' + chunk.replace("\\", "\\\\").replace('"', '\\"') + '"'
                    for chunk in chunks)


class FixtureDNS:
    def __init__(self, zone: Zone) -> None:
        self.zone = {name.lower().rstrip("."): records for name, records in zone.items()}
        self.queries: list[tuple[str, str, str]] = []  # (name, type, "udp" or "tcp")
        self._stop = threading.Event()
        self.udp, self.tcp = self._bind()
        self.port = self.udp.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._threads = [threading.Thread(target=self._serve_udp, daemon=True),
                         threading.Thread(target=self._serve_tcp, daemon=True)]

    @staticmethod
    def _bind() -> tuple[socket.socket, socket.socket]:
        for _ in range(20):  # a free UDP port whose TCP twin is free too
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                tcp.bind(("127.0.0.1", udp.getsockname()[1]))
            except OSError:
                udp.close()
                tcp.close()
                continue
            tcp.listen(8)
            return udp, tcp
        raise RuntimeError("no free port for UDP and TCP")

    def __enter__(self) -> Self:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self.udp.close()
        self.tcp.close()

    def answer(self, query: dns.message.Message, transport: str) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype, transport))
        records = self.zone.get(name)
        if records is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif records.get(rdtype):
            response.answer.append(dns.rrset.from_text_list(
                question.name, 300, dns.rdataclass.IN, question.rdtype, records[rdtype]))
        return response

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.udp], [], [], 0.2)
            if not ready:
                continue
            data, peer = self.udp.recvfrom(65535)
            try:
                query = dns.message.from_wire(data)
            except dns.exception.DNSException:
                continue
            response = self.answer(query, "udp")
            limit = max(512, query.payload) if query.edns >= 0 else 512
            try:
                wire = response.to_wire(max_size=limit)
            except dns.exception.TooBig:
                response.answer.clear()
                response.flags |= dns.flags.TC
                wire = response.to_wire()
            self.udp.sendto(wire, peer)

    def _serve_tcp(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.tcp], [], [], 0.2)
            if not ready:
                continue
            conn, _ = self.tcp.accept()
            with conn:
                conn.settimeout(5)
                try:
                    while True:
                        head = conn.recv(2)
                        if len(head) < 2:
                            break
                        (length,) = struct.unpack("!H", head)
                        data = b""
                        while len(data) < length:
                            chunk = conn.recv(length - len(data))
                            if not chunk:
                                raise ConnectionError("closed mid-message")
                            data += chunk
                        response = self.answer(dns.message.from_wire(data), "tcp")
                        wire = response.to_wire(max_size=65535)  # not the UDP payload
                        conn.sendall(struct.pack("!H", len(wire)) + wire)
                except (OSError, dns.exception.DNSException):
                    pass
