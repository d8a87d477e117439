"""SPF, DKIM and DMARC lookups against fixture zones on a local DNS server (never the internet)."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from newsletter import dnscheck

from .dns_server import FixtureDNS, txt
from .helpers import rsa_key

D = "smakommuner.example"


def spf(zone: dict, ip: str, domain: str = D) -> dnscheck.SpfResult:
    with FixtureDNS(zone) as server:
        return dnscheck.spf_check(dnscheck.Lookup.using(server.address, timeout=3), domain,
                                  ip_address(ip))


def test_spf_mechanisms_include_a_mx_ip4_ip6():
    zone = {
        D: {"TXT": [txt("v=spf1 ip4:198.51.100.0/24 include:_spf." + D + " mx/28 -all"),
                    txt("google-site-verification=abc")],
            "MX": ["10 mx." + D + "."]},
        "_spf." + D: {"TXT": [txt("v=spf1 a:relay." + D + " ip6:2001:db8:1::/48 ~all")]},
        "relay." + D: {"A": ["192.0.2.25"], "AAAA": ["2001:db8:2::25"]},
        "mx." + D: {"A": ["203.0.113.17"]},
    }
    assert spf(zone, "198.51.100.7").term == "ip4:198.51.100.0/24"
    found = spf(zone, "192.0.2.25")
    assert (found.result, found.term) == ("pass", "include:_spf." + D)
    assert found.record.startswith("v=spf1 ip4:198.51.100.0/24")  # the domain's own record
    assert spf(zone, "2001:db8:2::25").result == "pass"  # a: also matches AAAA
    assert spf(zone, "2001:db8:1::9").result == "pass"
    assert spf(zone, "203.0.113.30").term == "mx/28"  # the /28 around the MX's address
    found = spf(zone, "192.0.2.26")  # the include's ~all does not decide: its result is no match
    assert (found.result, found.term) == ("fail", "-all")


def test_spf_qualifiers_redirect_and_no_record():
    zone = {D: {"TXT": [txt("v=spf1 ?ip4:192.0.2.1 redirect=_spf." + D)]},
            "_spf." + D: {"TXT": [txt("v=spf1 ip4:192.0.2.2 ~all")]}}
    assert spf(zone, "192.0.2.1").result == "neutral"
    assert spf(zone, "192.0.2.2").result == "pass"
    assert spf(zone, "192.0.2.3").result == "softfail"
    assert spf({D: {"A": ["192.0.2.1"]}}, "192.0.2.1").result == "none"
    assert spf({}, "192.0.2.1").result == "none"  # NXDOMAIN


def test_spf_breaks_the_rules_permerror():
    two = {D: {"TXT": [txt("v=spf1 -all"), txt("v=spf1 ip4:192.0.2.1 -all")]}}
    assert spf(two, "192.0.2.1").result == "permerror"
    # include:s that chain on for more than 10 lookups (here: a loop).
    loop = {D: {"TXT": [txt("v=spf1 include:a." + D + " -all")]},
            "a." + D: {"TXT": [txt("v=spf1 include:b." + D + " -all")]},
            "b." + D: {"TXT": [txt("v=spf1 include:a." + D + " -all")]}}
    found = spf(loop, "192.0.2.1")
    assert found.result == "permerror" and "10 DNS-uppslag" in found.reason
    dangling = {D: {"TXT": [txt("v=spf1 include:nowhere." + D + " -all")]}}
    assert spf(dangling, "192.0.2.1").result == "permerror"
    bad = {D: {"TXT": [txt("v=spf1 ip4:300.1.1.1 -all")]}}
    assert spf(bad, "192.0.2.1").result == "permerror"


def test_spf_macros_and_exists_are_noted_not_guessed():
    zone = {D: {"TXT": [txt("v=spf1 exists:%{i}._spf." + D + " include:%{d}.x -all")]}}
    found = spf(zone, "192.0.2.1")
    assert found.result == "fail" and len(found.notes) == 2


def test_a_server_that_does_not_answer_is_not_a_missing_record():
    with FixtureDNS({}) as server:
        address = server.address
    lookup = dnscheck.Lookup.using(address, timeout=1)  # the server is gone: nothing answers
    with pytest.raises(dnscheck.DnsError):
        dnscheck.spf_check(lookup, D, ip_address("192.0.2.1"))


def test_a_long_record_comes_over_tcp_after_a_truncated_udp_answer():
    long = "v=spf1 " + " ".join(f"ip4:198.51.{i}.0/24" for i in range(120)) + " -all"
    with FixtureDNS({D: {"TXT": [txt(long)]}}) as server:
        assert dnscheck.Lookup.using(server.address).txt(D) == [long]
        assert [q[2] for q in server.queries] == ["udp", "tcp"]


def test_server_addresses_parse():
    assert dnscheck.parse_server("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert dnscheck.parse_server("192.0.2.53") == ("192.0.2.53", 53)
    assert dnscheck.parse_server("[::1]:5353") == ("::1", 5353)
    assert dnscheck.parse_server("::1") == ("::1", 53)
    for bad in ("", "host:port", "host:0", "host:70000"):
        with pytest.raises(ValueError):
            dnscheck.parse_server(bad)



def test_dkim_record_and_key_file_compare(tmp_path):
    key, public = rsa_key(tmp_path, "nb")
    other_key, other = rsa_key(tmp_path, "other")
    ours = dnscheck.private_key_public_part(key.read_bytes())
    assert ours.bits == 2048
    assert dnscheck.record_public_key(dnscheck.tags(f"v=DKIM1; k=rsa; p={public}")) == ours
    # Whitespace inside p= (a record pasted over several lines) does not matter.
    spaced = f"v=DKIM1;k=rsa; p={public[:100]} {public[100:]}"
    assert dnscheck.record_public_key(dnscheck.tags(spaced)) == ours
    assert dnscheck.record_public_key(dnscheck.tags(f"v=DKIM1; p={other}")) != ours
    for record, why in (("v=DKIM1; k=rsa; p=", "återkallad"), ("v=DKIM1; k=ed25519; p=abc", "RSA"),
                        ("v=DKIM1; k=rsa", "ingen p="), ("v=DKIM1; p=!!!", "base64")):
        with pytest.raises(ValueError, match=why):
            dnscheck.record_public_key(dnscheck.tags(record))
    with pytest.raises(ValueError, match="privat RSA-nyckel"):
        dnscheck.private_key_public_part(b"-----BEGIN NOTHING-----\nabc\n-----END NOTHING-----\n")


def test_dmarc_own_record_or_the_organisational_domains():
    zone = {"_dmarc." + D: {"TXT": [txt("v=DMARC1; p=quarantine; rua=mailto:d@" + D)]}}
    with FixtureDNS(zone) as server:
        lookup = dnscheck.Lookup.using(server.address)
        own = dnscheck.dmarc_record(lookup, D)
        assert own.name == "_dmarc." + D and own.tags["p"] == "quarantine"
        inherited = dnscheck.dmarc_record(lookup, "nyhetsbrev." + D)
        assert inherited.name == "_dmarc." + D
        assert dnscheck.dmarc_record(lookup, "annan.example") is None
    assert dnscheck.aligned("nyhetsbrev." + D, D) and not dnscheck.aligned("esp.example", D)
