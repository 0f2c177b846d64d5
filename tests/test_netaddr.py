"""Tests for peerkeeper.net.netaddr.

Most cases are ported one-to-one from Bitcoin Core's src/test/netbase_tests.cpp and the
CNetAddr cases of src/test/net_tests.cpp (cnetaddr_basic, cnetaddr_tostring_canonical_ipv6,
cnetaddr_serialize_v1/v2, cnetaddr_unserialize_v2).  Core's ``ResolveIP`` returns a
default (invalid) ``CNetAddr`` on failure; here parsing raises ``AddrError`` instead, and
``resolve()`` below mimics Core where a test relies on the fallback value.
"""

from __future__ import annotations

import hashlib
import ipaddress
import random

import pytest

from peerkeeper.net.netaddr import (
    INTERNAL_IN_IPV6_PREFIX,
    IPV4_IN_IPV6_PREFIX,
    MAX_ADDRV2_SIZE,
    TORV2_IN_IPV6_PREFIX,
    AddrError,
    NetAddr,
    Network,
    Reachability,
    Service,
    SubNet,
    is_bad_port,
    parse_network,
    split_host_port,
)

TOR_ADDR = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"
TOR_ADDR2 = "kpgvmscirrdqpekbqjsvw5teanhatztpp2gl6eee4zkowvwfxwenqaid.onion"
I2P_ADDR = "ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p"
UNSPECIFIED = NetAddr(Network.IPV6, bytes(16))  # Core's default-constructed CNetAddr


def ip(s: str) -> NetAddr:
    return NetAddr.parse(s)


def resolve(s: str) -> NetAddr:
    """Core test helper ResolveIP: LookupHost(ip, false).value_or(CNetAddr{})."""
    try:
        return NetAddr.parse(s)
    except AddrError:
        return UNSPECIFIED


def subnet(s: str) -> SubNet | None:
    """Core LookupSubNet; None stands for Core's invalid CSubNet."""
    try:
        return SubNet.parse(s)
    except AddrError:
        return None


# --- netbase_tests.cpp: netbase_networks ------------------------------------------------


def test_netbase_networks() -> None:
    assert ip("127.0.0.1").get_network() == Network.UNROUTABLE
    assert ip("::1").get_network() == Network.UNROUTABLE
    assert ip("8.8.8.8").get_network() == Network.IPV4
    assert ip("2001::8888").get_network() == Network.IPV6
    assert ip(TOR_ADDR).get_network() == Network.TORV3
    assert NetAddr.internal("foo.com").get_network() == Network.INTERNAL


# --- netbase_tests.cpp: netbase_properties -----------------------------------------------


def test_netbase_properties() -> None:
    assert ip("127.0.0.1").is_ipv4()
    assert ip("::FFFF:192.168.1.1").is_ipv4()
    assert ip("::1").is_ipv6()
    assert ip("10.0.0.1").is_rfc1918()
    assert ip("192.168.1.1").is_rfc1918()
    assert ip("172.31.255.255").is_rfc1918()
    assert ip("198.18.0.0").is_rfc2544()
    assert ip("198.19.255.255").is_rfc2544()
    assert ip("2001:0DB8::").is_rfc3849()
    assert ip("169.254.1.1").is_rfc3927()
    assert ip("2002::1").is_rfc3964()
    assert ip("FC00::").is_rfc4193()
    assert ip("2001::2").is_rfc4380()
    assert ip("2001:10::").is_rfc4843()
    assert ip("2001:20::").is_rfc7343()
    assert ip("FE80::").is_rfc4862()
    assert ip("64:FF9B::").is_rfc6052()
    assert ip(TOR_ADDR).is_tor()
    assert ip("127.0.0.1").is_local()
    assert ip("::1").is_local()
    assert ip("8.8.8.8").is_routable()
    assert ip("2001::1").is_routable()
    assert ip("127.0.0.1").is_valid()
    assert NetAddr.internal("FD6B:88C0:8724:edb1:8e4:3588:e546:35ca").is_internal()
    assert NetAddr.internal("bar.com").is_internal()


# Boundaries of every classification rule (src/netaddress.cpp), beyond Core's own tests.
@pytest.mark.parametrize(
    ("text", "method", "expected"),
    [
        ("172.15.255.255", "is_rfc1918", False),
        ("172.16.0.0", "is_rfc1918", True),
        ("172.32.0.0", "is_rfc1918", False),
        ("192.169.0.1", "is_rfc1918", False),
        ("11.0.0.1", "is_rfc1918", False),
        ("198.17.255.255", "is_rfc2544", False),
        ("198.20.0.0", "is_rfc2544", False),
        ("169.253.1.1", "is_rfc3927", False),
        ("100.63.255.255", "is_rfc6598", False),
        ("100.64.0.0", "is_rfc6598", True),
        ("100.127.255.255", "is_rfc6598", True),
        ("100.128.0.0", "is_rfc6598", False),
        ("192.0.2.1", "is_rfc5737", True),
        ("198.51.100.1", "is_rfc5737", True),
        ("203.0.113.1", "is_rfc5737", True),
        ("203.0.114.1", "is_rfc5737", False),
        ("2001:db9::", "is_rfc3849", False),
        ("2003::1", "is_rfc3964", False),
        ("64:ff9b::1:2", "is_rfc6052", True),
        ("64:ff9b:1::", "is_rfc6052", False),
        ("2001:1::", "is_rfc4380", False),
        ("fe80::1:0:0:0:1", "is_rfc4862", False),
        ("fe80:0:0:0:ffff::1", "is_rfc4862", True),
        ("fd00::1", "is_rfc4193", True),
        ("fe00::1", "is_rfc4193", False),
        ("::ffff:0:1.2.3.4", "is_rfc6145", True),
        ("2001:1f::", "is_rfc4843", True),
        ("2001:30::", "is_rfc4843", False),
        ("2001:2f::", "is_rfc7343", True),
        ("2001:470::", "is_he_net", True),
        ("2001:470:ffff::", "is_he_net", True),
        ("2001:471::", "is_he_net", False),
        ("0.1.2.3", "is_local", True),
        ("126.255.255.255", "is_local", False),
        ("::2", "is_local", False),
        # IPv4-only rules never apply to IPv6 and vice versa
        ("::a00:1", "is_rfc1918", False),
        ("10.0.0.1", "is_rfc4193", False),
    ],
)
def test_classification_boundaries(text: str, method: str, expected: bool) -> None:
    assert getattr(ip(text), method)() is expected


def test_routability_ranges() -> None:
    for text in [
        "10.1.1.1",
        "192.168.0.1",
        "172.20.0.1",
        "198.18.5.5",
        "169.254.3.3",
        "100.100.1.1",
        "192.0.2.7",
        "198.51.100.7",
        "203.0.113.7",
        "127.0.0.1",
        "0.1.2.3",
        "0.0.0.0",
        "255.255.255.255",
        "fe80::1",
        "fc00::1",
        "fd12::1",
        "2001:10::1",
        "2001:20::1",
        "2001:db8::1",
        "::1",
        "::",
    ]:
        assert not ip(text).is_routable(), text
        assert ip(text).get_network() == Network.UNROUTABLE, text
    for text in ["1.1.1.1", "192.0.3.1", "172.32.0.1", "2a00::1", "fe81::1", "2001:30::1"]:
        assert ip(text).is_routable(), text


# --- netbase_tests.cpp: netbase_splithost ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "host", "port", "valid"),
    [
        ("www.bitcoincore.org", "www.bitcoincore.org", 0, True),
        ("[www.bitcoincore.org]", "www.bitcoincore.org", 0, True),
        ("www.bitcoincore.org:80", "www.bitcoincore.org", 80, True),
        ("[www.bitcoincore.org]:80", "www.bitcoincore.org", 80, True),
        ("127.0.0.1", "127.0.0.1", 0, True),
        ("127.0.0.1:8333", "127.0.0.1", 8333, True),
        ("[127.0.0.1]", "127.0.0.1", 0, True),
        ("[127.0.0.1]:8333", "127.0.0.1", 8333, True),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1", 0, True),
        ("[::ffff:127.0.0.1]:8333", "::ffff:127.0.0.1", 8333, True),
        ("[::]:8333", "::", 8333, True),
        ("::8333", "::8333", 0, True),
        (":8333", "", 8333, True),
        ("[]:8333", "", 8333, True),
        ("", "", 0, True),
        (":65535", "", 65535, True),
        (":65536", ":65536", 0, False),
        (":-1", ":-1", 0, False),
        ("[]:70001", "[]:70001", 0, False),
        ("[]:-1", "[]:-1", 0, False),
        ("[]:-0", "[]:-0", 0, False),
        ("[]:0", "", 0, False),
        ("[]:1/2", "[]:1/2", 0, False),
        ("[]:1E2", "[]:1E2", 0, False),
        ("127.0.0.1:65536", "127.0.0.1:65536", 0, False),
        ("127.0.0.1:0", "127.0.0.1", 0, False),
        ("127.0.0.1:", "127.0.0.1:", 0, False),
        ("127.0.0.1:1/2", "127.0.0.1:1/2", 0, False),
        ("127.0.0.1:1E2", "127.0.0.1:1E2", 0, False),
        ("www.bitcoincore.org:65536", "www.bitcoincore.org:65536", 0, False),
        ("www.bitcoincore.org:0", "www.bitcoincore.org", 0, False),
        ("www.bitcoincore.org:", "www.bitcoincore.org:", 0, False),
    ],
)
def test_netbase_splithost(text: str, host: str, port: int, valid: bool) -> None:
    assert split_host_port(text, 0) == (host, port, valid)


def test_splithost_keeps_default_port() -> None:
    assert split_host_port("1.2.3.4", 8333) == ("1.2.3.4", 8333, True)
    assert split_host_port("1.2.3.4:x", 8333) == ("1.2.3.4:x", 8333, False)
    assert split_host_port("1.2.3.4:+5", 8333) == ("1.2.3.4:+5", 8333, False)
    assert split_host_port("1.2.3.4:0008", 1) == ("1.2.3.4", 8, True)


# --- netbase_tests.cpp: netbase_lookupnumeric ----------------------------------------------


@pytest.mark.parametrize(
    ("src", "canon"),
    [
        ("127.0.0.1", "127.0.0.1:65535"),
        ("127.0.0.1:8333", "127.0.0.1:8333"),
        ("::ffff:127.0.0.1", "127.0.0.1:65535"),
        ("::", "[::]:65535"),
        ("[::]:8333", "[::]:8333"),
        ("[127.0.0.1]", "127.0.0.1:65535"),
        # one-off next to Core's internal prefix resolves correctly
        ("[fd6c:88c0:8724:1:2:3:4:5]", "[fd6c:88c0:8724:1:2:3:4:5]:65535"),
    ],
)
def test_netbase_lookupnumeric(src: str, canon: str) -> None:
    assert str(Service.parse(src, 65535)) == canon


@pytest.mark.parametrize(
    "src",
    [
        ":::",  # Core: fails, "[::]:0"
        "[fd6b:88c0:8724:1:2:3:4:5]",  # internal addresses must fail to resolve
        "",
        "127.0.0.1:65536",
        "127.0.0.1:",
        "[::]:70001",
        "1.2:345",
        "www.bitcoincore.org:8333",  # no DNS
        "[[::1]]:8333",
    ],
)
def test_lookupnumeric_failures(src: str) -> None:
    with pytest.raises(AddrError):
        Service.parse(src, 65535)


def test_service_parse_and_str() -> None:
    svc = Service.parse("1.2.3.4:8333", 1)
    assert svc == Service(ip("1.2.3.4"), 8333)
    assert str(svc) == "1.2.3.4:8333"
    assert Service.parse("1.2.3.4", 18333).port == 18333
    v6 = Service.parse("[2001:db8::1]:8333", 1)
    assert v6.addr == ip("2001:db8::1") and v6.port == 8333
    assert str(v6) == "[2001:db8::1]:8333"
    assert Service.parse("2001:db8::1", 7).port == 7  # no brackets: no port split
    tor = Service.parse(TOR_ADDR + ":8333", 1)
    assert tor.addr.is_tor() and str(tor) == TOR_ADDR + ":8333"
    i2p = Service.parse(I2P_ADDR + ":0", 8333)
    assert i2p.addr.is_i2p() and i2p.port == 0 and str(i2p) == I2P_ADDR + ":0"
    internal = Service(NetAddr.internal("esffpp"), 0)
    assert str(internal) == "esffpvrt3wpeaygy.internal:0"
    cj = Service.parse("[fc00::1]:8333", 1, cjdns=True)
    assert cj.addr.is_cjdns() and str(cj) == "[fc00::1]:8333"
    assert Service.parse("[fc00::1]:8333", 1).addr.is_ipv6()
    with pytest.raises(AddrError):
        Service(ip("1.2.3.4"), 65536)
    with pytest.raises(AddrError):
        Service(ip("1.2.3.4"), -1)
    with pytest.raises(AddrError):
        Service.parse("1.2.3.4\0", 1)


def test_service_ordering_and_key() -> None:
    a = Service(ip("1.2.3.4"), 1)
    b = Service(ip("1.2.3.4"), 2)
    c = Service(ip("1.2.3.5"), 0)
    assert sorted([c, b, a]) == [a, b, c]
    # CService::GetKey = GetAddrBytes + big-endian port
    assert (
        Service(ip("1.2.3.4"), 0x20F1).get_key()
        == IPV4_IN_IPV6_PREFIX + b"\x01\x02\x03\x04\x20\xf1"
    )
    tor = ip(TOR_ADDR)
    assert Service(tor, 1).get_key() == tor.addr + b"\x00\x01"


# --- netbase_tests.cpp: embedded_test ------------------------------------------------------


def test_embedded() -> None:
    addr1 = ip("1.2.3.4")
    addr2 = ip("::FFFF:0102:0304")
    assert addr2.is_ipv4()
    assert str(addr1) == str(addr2)
    assert addr1 == addr2


# --- netbase_tests.cpp: subnet_test ---------------------------------------------------------


def test_subnet_lookup_and_match() -> None:
    assert subnet("1.2.3.0/24") == subnet("1.2.3.0/255.255.255.0")
    assert subnet("1.2.3.0/24") != subnet("1.2.4.0/255.255.255.0")

    def matches(sn: str, addr: str) -> bool:
        s = SubNet.parse(sn)
        return s.match(resolve(addr))

    assert matches("1.2.3.0/24", "1.2.3.4")
    assert not matches("1.2.2.0/24", "1.2.3.4")
    assert matches("1.2.3.4", "1.2.3.4")
    assert matches("1.2.3.4/32", "1.2.3.4")
    assert not matches("1.2.3.4", "5.6.7.8")
    assert not matches("1.2.3.4/32", "5.6.7.8")
    assert matches("::ffff:127.0.0.1", "127.0.0.1")
    assert matches("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8")
    assert not matches("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:9")
    assert matches("1:2:3:4:5:6:7:0/112", "1:2:3:4:5:6:7:1234")
    assert matches("192.168.0.1/24", "192.168.0.2")
    assert matches("192.168.0.20/29", "192.168.0.18")
    assert matches("1.2.2.1/24", "1.2.2.4")
    assert matches("1.2.2.110/31", "1.2.2.111")
    assert matches("1.2.2.20/26", "1.2.2.63")
    # All-Matching IPv6 Matches arbitrary IPv6
    assert matches("::/0", "1:2:3:4:5:6:7:1234")
    # But not `::` or `0.0.0.0` because they are considered invalid addresses
    assert not matches("::/0", "::")
    assert not matches("::/0", "0.0.0.0")
    # Addresses from one network (IPv4) don't belong to subnets of another network (IPv6)
    assert not matches("::/0", "1.2.3.4")
    # All-Matching IPv4 does not Match IPv6
    assert not matches("0.0.0.0/0", "1:2:3:4:5:6:7:1234")


def test_subnet_invalid_matches_nothing() -> None:
    # Core: !CSubNet().Match(...), !LookupSubNet("").Match(...), "bloop", "hab"
    assert subnet("") is None
    assert subnet("bloop") is None
    with pytest.raises(AddrError):
        ip("hab")
    # Values no Core constructor can produce are invalid and match nothing.
    unnormalised = SubNet(ip("1.2.3.4"), b"\xff\xff\xff\x00")
    assert not unnormalised.is_valid()
    assert not unnormalised.match(ip("1.2.3.4"))
    wrong_len = SubNet(ip("1.2.3.4"), b"\xff\xff\xff")
    assert not wrong_len.is_valid() and not wrong_len.match(ip("1.2.3.4"))
    gappy = SubNet(ip("1.0.3.0"), b"\xff\x00\xff\x00")
    assert not gappy.is_valid() and not gappy.match(ip("1.0.3.4"))
    internal = NetAddr.internal("x")
    bad_internal = SubNet(internal, bytes(10))
    assert not bad_internal.is_valid() and not bad_internal.match(internal)
    tor = ip(TOR_ADDR)
    assert not SubNet(tor, b"\xff" * 32).is_valid()


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("1.2.3.0/0", True),
        ("1.2.3.0/-1", False),
        ("1.2.3.0/+24", False),
        ("1.2.3.0/32", True),
        ("1.2.3.0/33", False),
        ("1.2.3.0/300", False),
        ("1:2:3:4:5:6:7:8/0", True),
        ("1:2:3:4:5:6:7:8/33", True),
        ("1:2:3:4:5:6:7:8/-1", False),
        ("1:2:3:4:5:6:7:8/128", True),
        ("1:2:3:4:5:6:7:8/129", False),
        ("fuzzy", False),
        # netbase_dont_resolve_strings_with_embedded_nul_characters
        ("1.2.3.0/24", True),
        ("1.2.3.0/24\0", False),
        ("1.2.3.0/24\0example.com", False),
        ("1.2.3.0/24\0example.com\0", False),
        (TOR_ADDR, True),
        (TOR_ADDR + "\0", False),
        (TOR_ADDR + "\0example.com", False),
        (TOR_ADDR + "\0example.com\0", False),
    ],
)
def test_subnet_valid_invalid(text: str, valid: bool) -> None:
    sn = subnet(text)
    assert (sn is not None and sn.is_valid()) is valid


def test_subnet_from_netaddr() -> None:
    lo = SubNet.single(ip("127.0.0.1"))
    assert lo.is_valid()
    assert lo.match(ip("127.0.0.1"))
    assert not lo.match(ip("127.0.0.2"))
    assert str(lo) == "127.0.0.1/32"

    assert str(SubNet.from_prefix(ip("1.2.3.4"), 32)) == "1.2.3.4/32"
    assert str(SubNet.from_prefix(ip("1.2.3.4"), 8)) == "1.0.0.0/8"
    assert str(SubNet.from_prefix(ip("1.2.3.4"), 0)) == "0.0.0.0/0"

    assert str(SubNet.from_netmask(ip("1.2.3.4"), ip("255.255.255.255"))) == "1.2.3.4/32"
    assert str(SubNet.from_netmask(ip("1.2.3.4"), ip("255.0.0.0"))) == "1.0.0.0/8"
    assert str(SubNet.from_netmask(ip("1.2.3.4"), ip("0.0.0.0"))) == "0.0.0.0/0"

    v6 = SubNet.single(ip("1:2:3:4:5:6:7:8"))
    assert v6.is_valid()
    assert v6.match(ip("1:2:3:4:5:6:7:8"))
    assert not v6.match(ip("1:2:3:4:5:6:7:9"))
    assert str(v6) == "1:2:3:4:5:6:7:8/128"
    # IPv4 address with IPv6 netmask or the other way around.
    with pytest.raises(AddrError):
        SubNet.from_netmask(ip("1.1.1.1"), ip("ffff::"))
    with pytest.raises(AddrError):
        SubNet.from_netmask(ip("::1"), ip("255.0.0.0"))


def test_subnet_non_ip() -> None:
    tor = ip(TOR_ADDR)
    sn = SubNet.single(tor)
    assert sn.is_valid()
    assert str(sn) == str(tor)
    assert sn.match(tor)
    assert not sn.match(ip(TOR_ADDR2))
    assert not sn.match(ip("1.2.3.4"))
    with pytest.raises(AddrError):
        SubNet.from_prefix(tor, 200)
    with pytest.raises(AddrError):
        SubNet.from_netmask(tor, ip("255.0.0.0"))
    # I2P and CJDNS single-host subnets (CSubNet(const CNetAddr&)).
    i2p = ip(I2P_ADDR)
    assert SubNet.parse(I2P_ADDR).match(i2p)
    cj = NetAddr.parse("fc00::5", cjdns=True)
    cj_sn = SubNet.parse("fc00::5", cjdns=True)
    assert cj_sn.is_valid() and cj_sn.match(cj) and str(cj_sn) == "fc00::5"
    assert not cj_sn.match(ip("fc00::5"))  # IPv6, not CJDNS
    with pytest.raises(AddrError):  # CIDR only for IPv4/IPv6
        SubNet.parse("fc00::/8", cjdns=True)
    assert SubNet.parse("fc00::/8").match(ip("fc00::5"))
    with pytest.raises(AddrError):
        SubNet.single(NetAddr.internal("x"))


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        ("255.255.255.255", "1.2.3.4/32"),
        ("255.255.255.254", "1.2.3.4/31"),
        ("255.255.255.252", "1.2.3.4/30"),
        ("255.255.255.248", "1.2.3.0/29"),
        ("255.255.255.240", "1.2.3.0/28"),
        ("255.255.255.224", "1.2.3.0/27"),
        ("255.255.255.192", "1.2.3.0/26"),
        ("255.255.255.128", "1.2.3.0/25"),
        ("255.255.255.0", "1.2.3.0/24"),
        ("255.255.254.0", "1.2.2.0/23"),
        ("255.255.252.0", "1.2.0.0/22"),
        ("255.255.248.0", "1.2.0.0/21"),
        ("255.255.240.0", "1.2.0.0/20"),
        ("255.255.224.0", "1.2.0.0/19"),
        ("255.255.192.0", "1.2.0.0/18"),
        ("255.255.128.0", "1.2.0.0/17"),
        ("255.255.0.0", "1.2.0.0/16"),
        ("255.254.0.0", "1.2.0.0/15"),
        ("255.252.0.0", "1.0.0.0/14"),
        ("255.248.0.0", "1.0.0.0/13"),
        ("255.240.0.0", "1.0.0.0/12"),
        ("255.224.0.0", "1.0.0.0/11"),
        ("255.192.0.0", "1.0.0.0/10"),
        ("255.128.0.0", "1.0.0.0/9"),
        ("255.0.0.0", "1.0.0.0/8"),
        ("254.0.0.0", "0.0.0.0/7"),
        ("252.0.0.0", "0.0.0.0/6"),
        ("248.0.0.0", "0.0.0.0/5"),
        ("240.0.0.0", "0.0.0.0/4"),
        ("224.0.0.0", "0.0.0.0/3"),
        ("192.0.0.0", "0.0.0.0/2"),
        ("128.0.0.0", "0.0.0.0/1"),
        ("0.0.0.0", "0.0.0.0/0"),
    ],
)
def test_subnet_full_netmask_ipv4(mask: str, expected: str) -> None:
    sn = SubNet.parse("1.2.3.4/" + mask)
    assert str(sn) == expected
    # the CIDR form must give the same subnet
    assert SubNet.parse("1.2.3.4/" + expected.split("/")[1]) == sn


def test_subnet_full_netmask_ipv6() -> None:
    full = "1:2:3:4:5:6:7:8/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    assert str(SubNet.parse(full)) == "1:2:3:4:5:6:7:8/128"
    assert str(SubNet.parse("1:2:3:4:5:6:7:8/ffff:0000:0000:0000:0000:0000:0000:0000")) == "1::/16"
    assert str(SubNet.parse("1:2:3:4:5:6:7:8/0000:0000:0000:0000:0000:0000:0000:0000")) == "::/0"


@pytest.mark.parametrize(
    "text",
    [
        # Invalid netmasks (with 1-bits after 0-bits)
        "1.2.3.4/255.255.232.0",
        "1.2.3.4/255.0.255.255",
        "1:2:3:4:5:6:7:8/ffff:ffff:ffff:fffe:ffff:ffff:ffff:ff0f",
    ],
)
def test_subnet_invalid_netmask(text: str) -> None:
    assert subnet(text) is None


def test_subnet_misc() -> None:
    assert str(SubNet.parse("[2001:db8::1]/32")) == "2001:db8::/32"
    assert SubNet.parse("1.2.3.0/024") == SubNet.parse("1.2.3.0/24")
    with pytest.raises(AddrError):
        SubNet.parse("1.2.3.0/24/24")
    with pytest.raises(AddrError):
        SubNet.parse("1.2.3.0/")
    with pytest.raises(AddrError):
        SubNet.parse("/24")
    with pytest.raises(AddrError):
        SubNet.parse("1.2.3.0/" + TOR_ADDR)
    with pytest.raises(AddrError):
        SubNet.parse(TOR_ADDR + "/8")
    with pytest.raises(AddrError):
        SubNet.from_prefix(ip("1.2.3.4"), -1)


# --- netbase_tests.cpp: netbase_getgroup ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "group"),
    [
        ("127.0.0.1", [0]),  # Local -> !Routable()
        ("10.0.0.1", [0]),  # RFC1918 -> !Routable()
        ("169.254.1.1", [0]),  # RFC3927 -> !Routable()
        ("1.2.3.4", [1, 1, 2]),  # IPv4
        ("::FFFF:0:102:304", [1, 1, 2]),  # RFC6145
        ("64:FF9B::102:304", [1, 1, 2]),  # RFC6052
        ("2002:102:304:9999:9999:9999:9999:9999", [1, 1, 2]),  # RFC3964
        ("2001:0:9999:9999:9999:9999:FEFD:FCFB", [1, 1, 2]),  # RFC4380
        ("2001:470:abcd:9999:9999:9999:9999:9999", [2, 32, 1, 4, 112, 175]),  # he.net
        ("2001:2001:9999:9999:9999:9999:9999:9999", [2, 32, 1, 32, 1]),  # IPv6
    ],
)
def test_netbase_getgroup(text: str, group: list[int]) -> None:
    assert ip(text).netgroup() == bytes(group)


def test_netbase_getgroup_invalid_and_internal() -> None:
    # "257.0.0.1" fails to parse; Core then groups the default address: !Valid -> [0]
    with pytest.raises(AddrError):
        ip("257.0.0.1")
    assert resolve("257.0.0.1").netgroup() == b"\x00"
    # baz.net sha256 hash: 12929400eb4607c4ac075f087167e75286b179c693eb059a01774b864e8fe505
    internal_group = bytes([6, 0x12, 0x92, 0x94, 0x00, 0xEB, 0x46, 0x07, 0xC4, 0xAC, 0x07])
    assert NetAddr.internal("baz.net").netgroup() == internal_group


def test_netgroup_privacy_networks() -> None:
    tor = ip(TOR_ADDR)
    assert tor.netgroup() == bytes([3, tor.addr[0] | 0x0F])
    i2p = ip(I2P_ADDR)
    assert i2p.netgroup() == bytes([4, i2p.addr[0] | 0x0F])
    cj = NetAddr.parse("fc12:3456::1", cjdns=True)
    assert cj.netgroup() == bytes([5, 0xFC, 0x1F])
    assert NetAddr(Network.CJDNS, b"\xaa" + bytes(15)).netgroup() == b"\x00"


def _core_get_group(a: NetAddr) -> bytes:
    """Literal port of NetGroupManager::GetGroup (src/netgroup.cpp) on the public API."""
    ret = [a.get_net_class().core_id]
    start = 0
    nbits = 0
    if a.is_local():
        pass
    elif a.is_internal():
        start = len(INTERNAL_IN_IPV6_PREFIX)
        nbits = 10 * 8
    elif not a.is_routable():
        pass
    elif a.has_linked_ipv4():
        v4 = a.get_linked_ipv4()
        return bytes(ret + [(v4 >> 24) & 0xFF, (v4 >> 16) & 0xFF])
    elif a.is_tor() or a.is_i2p():
        nbits = 4
    elif a.is_cjdns():
        nbits = 12
    elif a.is_he_net():
        nbits = 36
    else:
        nbits = 32
    ab = a.get_addr_bytes()
    nbytes = nbits // 8
    ret += list(ab[start : start + nbytes])
    nbits %= 8
    if nbits:
        ret.append(ab[nbytes + start] | ((1 << (8 - nbits)) - 1))
    return bytes(ret)


def _core_is_routable(a: NetAddr) -> bool:
    """Literal CNetAddr::IsRoutable (src/netaddress.cpp) on the public predicates."""
    return a.is_valid() and not (
        a.is_rfc1918()
        or a.is_rfc2544()
        or a.is_rfc3927()
        or a.is_rfc4862()
        or a.is_rfc6598()
        or a.is_rfc5737()
        or a.is_rfc4193()
        or a.is_rfc4843()
        or a.is_rfc7343()
        or a.is_local()
        or a.is_internal()
    )


_V4_PREFIXES = [
    b"",
    b"\x00",
    b"\x0a",
    b"\x7f",
    b"\xff\xff\xff\xff",
    b"\x00\x00\x00\x00",
    b"\xc0\xa8",
    b"\xac\x10",
    b"\xac\x1f",
    b"\xac\x20",
    b"\xc6\x12",
    b"\xc6\x13",
    b"\xa9\xfe",
    b"\x64\x40",
    b"\x64\x7f",
    b"\x64\x80",
    b"\xc0\x00\x02",
    b"\xc6\x33\x64",
    b"\xcb\x00\x71",
]
_V6_PREFIXES = [
    b"",
    bytes(16),
    bytes(15) + b"\x01",
    b"\x20\x01\x0d\xb8",
    b"\x20\x02",
    b"\x00\x64\xff\x9b" + bytes(8),
    b"\x20\x01\x00\x00",
    b"\xfe\x80" + bytes(6),
    b"\xfc",
    b"\xfd",
    bytes(8) + b"\xff\xff\x00\x00",
    b"\x20\x01\x00\x10",
    b"\x20\x01\x00\x1f",
    b"\x20\x01\x00\x20",
    b"\x20\x01\x00\x2f",
    b"\x20\x01\x04\x70",
    b"\x00\x00\x00\x00\x00\x00",
]


def _random_addrs(rng: random.Random, n: int) -> list[NetAddr]:
    out: list[NetAddr] = []
    for _ in range(n):
        kind = rng.randrange(6)
        if kind == 0:
            p = rng.choice(_V4_PREFIXES)
            out.append(NetAddr(Network.IPV4, p + rng.randbytes(4 - len(p))))
        elif kind == 1:
            p = rng.choice(_V6_PREFIXES)
            raw = p + rng.randbytes(16 - len(p))
            if raw[:12] == IPV4_IN_IPV6_PREFIX or raw[:6] in (
                TORV2_IN_IPV6_PREFIX,
                INTERNAL_IN_IPV6_PREFIX,
            ):
                continue
            out.append(NetAddr(Network.IPV6, raw))
        elif kind == 2:
            out.append(NetAddr(Network.TORV3, rng.randbytes(32)))
        elif kind == 3:
            out.append(NetAddr(Network.I2P, rng.randbytes(32)))
        elif kind == 4:
            first = rng.choice([b"\xfc", rng.randbytes(1)])
            out.append(NetAddr(Network.CJDNS, first + rng.randbytes(15)))
        else:
            out.append(NetAddr(Network.INTERNAL, rng.randbytes(10)))
    return out


def test_netgroup_and_routable_match_literal_core_port() -> None:
    rng = random.Random(155)
    for a in _random_addrs(rng, 6000):
        assert a.netgroup() == _core_get_group(a), a
        assert a.is_routable() == _core_is_routable(a), a


# --- netbase_tests.cpp: netbase_parsenetwork ------------------------------------------------


def test_netbase_parsenetwork() -> None:
    assert parse_network("ipv4") == Network.IPV4
    assert parse_network("ipv6") == Network.IPV6
    assert parse_network("onion") == Network.TORV3
    assert parse_network("cjdns") == Network.CJDNS
    assert parse_network("i2p") == Network.I2P

    assert parse_network("IPv4") == Network.IPV4
    assert parse_network("IPv6") == Network.IPV6
    assert parse_network("ONION") == Network.TORV3
    assert parse_network("CJDNS") == Network.CJDNS

    # "tor" as a network specification was deprecated and later removed.
    assert parse_network("tor") == Network.UNROUTABLE
    assert parse_network("TOR") == Network.UNROUTABLE

    assert parse_network(":)") == Network.UNROUTABLE
    assert parse_network("oniÖn") == Network.UNROUTABLE
    assert parse_network("\xfe\xff") == Network.UNROUTABLE
    assert parse_network("") == Network.UNROUTABLE


def test_network_names_and_core_ids() -> None:
    # GetNetworkName (src/netbase.cpp)
    assert Network.UNROUTABLE.rpc_name == "not_publicly_routable"
    assert Network.IPV4.rpc_name == "ipv4"
    assert Network.IPV6.rpc_name == "ipv6"
    assert Network.TORV3.rpc_name == "onion"
    assert Network.I2P.rpc_name == "i2p"
    assert Network.CJDNS.rpc_name == "cjdns"
    assert Network.INTERNAL.rpc_name == "internal"
    for net in Network:
        if net not in (Network.UNROUTABLE, Network.TORV2):
            assert parse_network(net.rpc_name) in (net, Network.UNROUTABLE)
    # Core enum Network values (src/netaddress.h)
    assert [n.core_id for n in Network] == [0, 1, 2, 3, 3, 4, 5, 6]
    assert [int(n) for n in Network] == [0, 1, 2, 3, 4, 5, 6, 255]


# --- netbase_tests.cpp: netbase_dont_resolve_strings_with_embedded_nul_characters ---------


def test_dont_resolve_strings_with_embedded_nul() -> None:
    assert ip("127.0.0.1") == NetAddr(Network.IPV4, b"\x7f\x00\x00\x01")
    for bad in ["127.0.0.1\0", "127.0.0.1\0example.com", "127.0.0.1\0example.com\0"]:
        with pytest.raises(AddrError):
            ip(bad)


# --- netbase_tests.cpp: caddress_serialize/unserialize (address part) -----------------------


def test_caddress_fixture_address() -> None:
    loopback = NetAddr.from_v1_bytes(bytes.fromhex("00000000000000000000000000000001"))
    assert loopback == ip("::1")
    assert loopback.to_v1_bytes() == bytes.fromhex("00000000000000000000000000000001")
    assert loopback.to_bip155() == (2, bytes.fromhex("00000000000000000000000000000001"))
    assert NetAddr.from_bip155(2, bytes.fromhex("00000000000000000000000000000001")) == loopback


# --- netbase_tests.cpp: isbadport -----------------------------------------------------------


def test_isbadport() -> None:
    assert is_bad_port(1)
    assert is_bad_port(22)
    assert is_bad_port(6000)

    assert not is_bad_port(80)
    assert not is_bad_port(443)
    assert not is_bad_port(8333)

    # Check all possible ports and ensure we only flag the expected amount as bad
    assert sum(1 for p in range(1, 65536) if is_bad_port(p)) == 85
    assert not is_bad_port(0)


# The exact `case` list of IsBadPort in src/netbase.cpp.
CORE_BAD_PORTS = [
    1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95,
    101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161,
    179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563,
    587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3306, 3389, 3659, 4045,
    5060, 5061, 5432, 5900, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6697, 10080, 27017,
]  # fmt: skip


def test_isbadport_exact_list() -> None:
    assert [p for p in range(65536) if is_bad_port(p)] == CORE_BAD_PORTS


# --- net_tests.cpp: cnetaddr_basic ----------------------------------------------------------


def test_cnetaddr_basic_ip() -> None:
    # IPv4, INADDR_ANY
    addr = ip("0.0.0.0")
    assert not addr.is_valid()
    assert addr.is_ipv4()
    assert addr.is_bind_any()
    assert addr.is_addr_v1_compatible()
    assert str(addr) == "0.0.0.0"

    # IPv4, INADDR_NONE
    addr = ip("255.255.255.255")
    assert not addr.is_valid()
    assert addr.is_ipv4()
    assert not addr.is_bind_any()
    assert addr.is_addr_v1_compatible()
    assert str(addr) == "255.255.255.255"

    # IPv4, casual
    addr = ip("12.34.56.78")
    assert addr.is_valid()
    assert addr.is_ipv4()
    assert not addr.is_bind_any()
    assert addr.is_addr_v1_compatible()
    assert str(addr) == "12.34.56.78"

    # IPv6, in6addr_any
    addr = ip("::")
    assert not addr.is_valid()
    assert addr.is_ipv6()
    assert addr.is_bind_any()
    assert addr.is_addr_v1_compatible()
    assert str(addr) == "::"

    # IPv6, casual
    addr = ip("1122:3344:5566:7788:9900:aabb:ccdd:eeff")
    assert addr.is_valid()
    assert addr.is_ipv6()
    assert not addr.is_bind_any()
    assert addr.is_addr_v1_compatible()
    assert str(addr) == "1122:3344:5566:7788:9900:aabb:ccdd:eeff"

    # IPv6, scoped/link-local. Decimal zone ids only.
    addr = ip("fe80::1%32")
    assert addr.is_valid()
    assert addr.is_ipv6()
    assert not addr.is_bind_any()
    assert str(addr) == "fe80::1%32"
    assert addr.scope_id == 32
    assert addr == ip("fe80::1")  # scope is ignored by ==, like Core
    assert str(Service(addr, 8333)) == "[fe80::1%32]:8333"
    for bad in ["fe80::1%eth0", "fe80::1%", "fe80::1%-1", "fe80::1%4294967296", "1.2.3.4%1"]:
        with pytest.raises(AddrError):
            ip(bad)


def test_cnetaddr_basic_tor() -> None:
    # TORv2, no longer supported
    with pytest.raises(AddrError):
        ip("6hzph5hv6337r6p2.onion")

    # TORv3
    addr = ip(TOR_ADDR)
    assert addr.is_valid()
    assert addr.is_tor()
    assert not addr.is_i2p()
    assert not addr.is_bind_any()
    assert not addr.is_addr_v1_compatible()
    assert str(addr) == TOR_ADDR

    for bad in [
        # TORv3, broken, with wrong checksum
        "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscsad.onion",
        # TORv3, broken, with wrong version
        "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscrye.onion",
        # TORv3, malicious
        "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd\0wtf.onion",
        # TOR, bogus length
        "mfrggzak.onion",
        # TOR, invalid base32
        "mf*g zak.onion",
        # suffix is case-sensitive in Core's SetTor
        TOR_ADDR[:-6] + ".ONION",
    ]:
        with pytest.raises(AddrError):
            ip(bad)
    # base32 body is case-insensitive
    assert ip(TOR_ADDR[:-6].upper() + ".onion") == addr


def test_cnetaddr_basic_i2p() -> None:
    i2p_addr = "UDHDrtrcetjm5sxzskjyr5ztpeszydbh4dpl3pl4utgqqw2v4jna.b32.I2P"
    addr = ip(i2p_addr)
    assert addr.is_valid()
    assert addr.is_i2p()
    assert not addr.is_tor()
    assert not addr.is_bind_any()
    assert not addr.is_addr_v1_compatible()
    assert str(addr) == i2p_addr.lower()

    for bad in [
        # I2P, correct length, but decodes to less than the expected number of bytes.
        "udhdrtrcetjm5sxzskjyr5ztpeszydbh4dpl3pl4utgqqw2v4jn=.b32.i2p",
        # I2P, extra unnecessary padding
        "udhdrtrcetjm5sxzskjyr5ztpeszydbh4dpl3pl4utgqqw2v4jna=.b32.i2p",
        # I2P, malicious
        "udhdrtrcetjm5sxzskjyr5ztpeszydbh4dpl3pl4utgqqw2v\0wtf.b32.i2p",
        # I2P, valid but unsupported (56 Base32 characters)
        "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscsad.b32.i2p",
        # I2P, invalid base32
        "tp*szydbh4dp.b32.i2p",
    ]:
        with pytest.raises(AddrError):
            ip(bad)


def test_cnetaddr_basic_internal_and_bogus() -> None:
    addr = NetAddr.internal("esffpp")
    assert not addr.is_valid()  # "internal" is considered invalid
    assert addr.is_internal()
    assert not addr.is_bind_any()
    assert addr.is_addr_v1_compatible()
    assert str(addr) == "esffpvrt3wpeaygy.internal"
    assert addr.addr == hashlib.sha256(b"esffpp").digest()[:10]
    with pytest.raises(AddrError):
        NetAddr.internal("")

    # Totally bogus
    with pytest.raises(AddrError):
        ip("totally bogus")


# --- net_tests.cpp: cnetaddr_tostring_canonical_ipv6 -----------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("0000:0000:0000:0000:0000:0000:0000:0000", "::"),
        ("000:0000:000:00:0:00:000:0000", "::"),
        ("000:000:000:000:000:000:000:000", "::"),
        ("00:00:00:00:00:00:00:00", "::"),
        ("0:0:0:0:0:0:0:0", "::"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),
        ("2001:0db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "2001:db8:85a3::8a2e:370:7334"),
        ("2001:0db8::0001", "2001:db8::1"),
        ("2001:0db8::0001:0000", "2001:db8::1:0"),
        ("2001:0db8::1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:db8:0000:0:1::1", "2001:db8::1:0:0:1"),
        ("2001:db8:0000:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("2001:db8:0:0:0:0:2:1", "2001:db8::2:1"),
        ("2001:db8:0:0:0::1", "2001:db8::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:db8:0:0:1::1", "2001:db8::1:0:0:1"),
        ("2001:DB8:0:0:1::1", "2001:db8::1:0:0:1"),
        ("2001:db8:0:0::1", "2001:db8::1"),
        ("2001:db8:0:0:aaaa::1", "2001:db8::aaaa:0:0:1"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("2001:db8:0::1", "2001:db8::1"),
        ("2001:db8:85a3:0:0:8a2e:370:7334", "2001:db8:85a3::8a2e:370:7334"),
        ("2001:db8::0:1", "2001:db8::1"),
        ("2001:db8::0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:db8::1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:db8::1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("2001:db8::aaaa:0:0:1", "2001:db8::aaaa:0:0:1"),
        ("2001:db8:aaaa:bbbb:cccc:dddd:0:1", "2001:db8:aaaa:bbbb:cccc:dddd:0:1"),
        ("2001:db8:aaaa:bbbb:cccc:dddd::1", "2001:db8:aaaa:bbbb:cccc:dddd:0:1"),
        ("2001:db8:aaaa:bbbb:cccc:dddd:eeee:0001", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:1"),
        ("2001:db8:aaaa:bbbb:cccc:dddd:eeee:001", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:1"),
        ("2001:db8:aaaa:bbbb:cccc:dddd:eeee:01", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:1"),
        ("2001:db8:aaaa:bbbb:cccc:dddd:eeee:1", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:1"),
        ("2001:db8:aaaa:bbbb:cccc:dddd:eeee:aaaa", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:aaaa"),
        ("2001:db8:aaaa:bbbb:cccc:dddd:eeee:AAAA", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:aaaa"),
        ("2001:db8:aaaa:bbbb:cccc:dddd:eeee:AaAa", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:aaaa"),
    ],
)
def test_cnetaddr_tostring_canonical_ipv6(text: str, canonical: str) -> None:
    addr = ip(text)
    assert addr.is_ipv6()
    assert str(addr) == canonical


def test_ipv6_tostring_matches_rfc5952_reference() -> None:
    rng = random.Random(5952)
    for _ in range(3000):
        groups = [rng.choice([0, 0, 0, rng.randrange(1, 0x10000)]) for _ in range(8)]
        raw = b"".join(g.to_bytes(2, "big") for g in groups)
        if raw[:12] == IPV4_IN_IPV6_PREFIX or raw[:12] == bytes(12):
            continue  # Python may print these with a dotted-quad tail
        assert str(NetAddr(Network.IPV6, raw)) == ipaddress.IPv6Address(raw).compressed


# --- net_tests.cpp: cnetaddr_serialize_v1 ---------------------------------------------------


def test_cnetaddr_serialize_v1() -> None:
    assert UNSPECIFIED.to_v1_bytes() == bytes.fromhex("00000000000000000000000000000000")
    assert ip("1.2.3.4").to_v1_bytes() == bytes.fromhex("00000000000000000000ffff01020304")
    assert ip("1a1b:2a2b:3a3b:4a4b:5a5b:6a6b:7a7b:8a8b").to_v1_bytes() == bytes.fromhex(
        "1a1b2a2b3a3b4a4b5a5b6a6b7a7b8a8b"
    )
    # TORv2, no longer supported
    with pytest.raises(AddrError):
        ip("6hzph5hv6337r6p2.onion")
    # Core writes 16 zero bytes for TORv3 but never sends it to v1 peers: we return None.
    assert ip(TOR_ADDR).to_v1_bytes() is None
    assert ip(I2P_ADDR).to_v1_bytes() is None
    assert NetAddr.parse("fc00::1", cjdns=True).to_v1_bytes() is None
    assert NetAddr.internal("a").to_v1_bytes() == bytes.fromhex("fd6b88c08724ca978112ca1bbdcafac2")


def test_get_addr_bytes() -> None:
    assert ip("1.2.3.4").get_addr_bytes() == IPV4_IN_IPV6_PREFIX + b"\x01\x02\x03\x04"
    tor = ip(TOR_ADDR)
    assert tor.get_addr_bytes() == tor.addr
    cj = NetAddr.parse("fc00::1", cjdns=True)
    assert cj.get_addr_bytes() == cj.addr


# --- net_tests.cpp: cnetaddr_serialize_v2 ---------------------------------------------------


def _v2_hex(addr: NetAddr) -> str:
    """CNetAddr V2 stream: network id, CompactSize length (all < 0xfd here), payload."""
    net_id, payload = addr.to_bip155()
    return bytes([net_id, len(payload)]).hex() + payload.hex()


def test_cnetaddr_serialize_v2() -> None:
    assert _v2_hex(UNSPECIFIED) == "021000000000000000000000000000000000"
    assert _v2_hex(ip("1.2.3.4")) == "010401020304"
    assert (
        _v2_hex(ip("1a1b:2a2b:3a3b:4a4b:5a5b:6a6b:7a7b:8a8b"))
        == "02101a1b2a2b3a3b4a4b5a5b6a6b7a7b8a8b"
    )
    with pytest.raises(AddrError):
        ip("6hzph5hv6337r6p2.onion")
    assert (
        _v2_hex(ip("kpgvmscirrdqpekbqjsvw5teanhatztpp2gl6eee4zkowvwfxwenqaid.onion"))
        == "042053cd5648488c4707914182655b7664034e09e66f7e8cbf1084e654eb56c5bd88"
    )
    assert _v2_hex(NetAddr.internal("a")) == "0210fd6b88c08724ca978112ca1bbdcafac2"
    assert ip(I2P_ADDR).to_bip155()[0] == 5
    assert NetAddr.parse("fc00::1", cjdns=True).to_bip155()[0] == 6


# --- net_tests.cpp: cnetaddr_unserialize_v2 -------------------------------------------------


def test_cnetaddr_unserialize_v2_valid() -> None:
    # Valid IPv4.
    addr = NetAddr.from_bip155(1, bytes.fromhex("01020304"))
    assert addr is not None
    assert addr.is_valid() and addr.is_ipv4() and addr.is_addr_v1_compatible()
    assert str(addr) == "1.2.3.4"

    # Valid IPv6.
    addr = NetAddr.from_bip155(2, bytes.fromhex("0102030405060708090a0b0c0d0e0f10"))
    assert addr is not None
    assert addr.is_valid() and addr.is_ipv6() and addr.is_addr_v1_compatible()
    assert str(addr) == "102:304:506:708:90a:b0c:d0e:f10"

    # Valid IPv6, contains embedded "internal".
    addr = NetAddr.from_bip155(2, bytes.fromhex("fd6b88c08724ca978112ca1bbdcafac2"))
    assert addr is not None
    assert addr.is_internal() and addr.is_addr_v1_compatible()
    assert str(addr) == "zklycewkdo64v6wc.internal"
    assert addr == NetAddr.internal("a")

    # Valid TORv3.
    addr = NetAddr.from_bip155(
        4, bytes.fromhex("79bcc625184b05194975c28b66b66b0469f7f6556fb1ac3189a79b40dda32f1f")
    )
    assert addr is not None
    assert addr.is_valid() and addr.is_tor() and not addr.is_addr_v1_compatible()
    assert str(addr) == TOR_ADDR

    # Valid I2P.
    addr = NetAddr.from_bip155(
        5, bytes.fromhex("a2894dabaec08c0051a481a6dac88b64f98232ae42d4b6fd2fa81952dfe36a87")
    )
    assert addr is not None
    assert addr.is_valid() and addr.is_i2p() and not addr.is_addr_v1_compatible()
    assert str(addr) == I2P_ADDR

    # Valid CJDNS.
    addr = NetAddr.from_bip155(6, bytes.fromhex("fc000001000200030004000500060007"))
    assert addr is not None
    assert addr.is_valid() and addr.is_cjdns() and not addr.is_addr_v1_compatible()
    assert str(addr) == "fc00:1:2:3:4:5:6:7"

    # Invalid CJDNS, wrong prefix: decoded, but !IsValid().
    addr = NetAddr.from_bip155(6, bytes.fromhex("aa000001000200030004000500060007"))
    assert addr is not None
    assert addr.is_cjdns() and not addr.is_valid()


@pytest.mark.parametrize(
    ("net_id", "data", "message"),
    [
        # Invalid IPv4, valid length but address itself is shorter (here: the payload
        # the caller read is short).
        (1, "0102", "BIP155 IPv4 address with length 2 (should be 4)"),
        # Invalid IPv4, with bogus length.
        (1, "0102030400", "BIP155 IPv4 address with length 5 (should be 4)"),
        # Invalid IPv6, with bogus length.
        (2, "00000000", "BIP155 IPv6 address with length 4 (should be 16)"),
        # Invalid TORv3, with bogus length.
        (4, "", "BIP155 TORv3 address with length 0 (should be 32)"),
        # Invalid I2P, with bogus length.
        (5, "000000", "BIP155 I2P address with length 3 (should be 32)"),
        # Invalid CJDNS, with bogus length.
        (6, "00", "BIP155 CJDNS address with length 1 (should be 16)"),
        # Invalid IPv4, with extreme length.
        (1, "00" * 513, "Address too long: 513 > 512"),
        # Unknown, with extreme length (checked before the network id, like Core).
        (0xAA, "00" * 513, "Address too long: 513 > 512"),
    ],
)
def test_cnetaddr_unserialize_v2_errors(net_id: int, data: str, message: str) -> None:
    with pytest.raises(AddrError) as exc:
        NetAddr.from_bip155(net_id, bytes.fromhex(data))
    assert str(exc.value) == message


@pytest.mark.parametrize(
    ("net_id", "data"),
    [
        # Invalid IPv6, contains embedded IPv4.
        (2, "00000000000000000000ffff01020304"),
        # Invalid IPv6, contains embedded TORv2.
        (2, "fd87d87eeb430102030405060708090a"),
        # TORv2, no longer supported.
        (3, "f1f2f3f4f5f6f7f8f9fa"),
        (3, "00" * 32),  # any length: Core has no case for id 3
        # Unknown, with reasonable length.
        (0xAA, "01020304"),
        # Unknown, with zero length.
        (0xAA, ""),
        (0, "01020304"),
        (7, "00" * 512),
    ],
)
def test_cnetaddr_unserialize_v2_ignored(net_id: int, data: str) -> None:
    assert NetAddr.from_bip155(net_id, bytes.fromhex(data)) is None


def test_max_addrv2_size_and_net_id_range() -> None:
    assert MAX_ADDRV2_SIZE == 512
    with pytest.raises(AddrError):
        NetAddr.from_bip155(256, b"")
    with pytest.raises(AddrError):
        NetAddr.from_bip155(-1, b"")
    # bytearray / memoryview payloads are accepted and stored as bytes
    addr = NetAddr.from_bip155(1, memoryview(b"\x01\x02\x03\x04"))
    assert addr is not None and type(addr.addr) is bytes and addr == ip("1.2.3.4")


# --- v1 decoding (SetLegacyIPv6) --------------------------------------------------------------


def test_from_v1_bytes() -> None:
    assert NetAddr.from_v1_bytes(IPV4_IN_IPV6_PREFIX + b"\x01\x02\x03\x04") == ip("1.2.3.4")
    internal = NetAddr.from_v1_bytes(bytes.fromhex("fd6b88c08724ca978112ca1bbdcafac2"))
    assert internal == NetAddr.internal("a")
    # TORv2-in-IPv6: Core unserialises as the invalid default address
    torv2 = NetAddr.from_v1_bytes(TORV2_IN_IPV6_PREFIX + bytes(10))
    assert torv2 == UNSPECIFIED and not torv2.is_valid()
    v6 = NetAddr.from_v1_bytes(bytes.fromhex("20010db8000000000000000000000001"))
    assert v6.is_ipv6() and str(v6) == "2001:db8::1"
    # fc00::/8 stays IPv6 in v1 (Core only flips to CJDNS on request)
    assert NetAddr.from_v1_bytes(b"\xfc" + bytes(15)).is_ipv6()
    for bad in [b"", bytes(15), bytes(17)]:
        with pytest.raises(AddrError):
            NetAddr.from_v1_bytes(bad)


def test_roundtrips() -> None:
    rng = random.Random(31337)
    for a in _random_addrs(rng, 3000):
        net_id, payload = a.to_bip155()
        assert NetAddr.from_bip155(net_id, payload) == a
        v1 = a.to_v1_bytes()
        if a.network in (Network.IPV4, Network.IPV6, Network.INTERNAL):
            assert v1 is not None and len(v1) == 16
            assert NetAddr.from_v1_bytes(v1) == a
        else:
            assert v1 is None
        if a.network is Network.INTERNAL:
            continue  # no text form to parse back
        text = str(a)
        if a.network is Network.CJDNS:
            back = NetAddr.parse(text, cjdns=True)
            if a.addr[0] != 0xFC:
                assert back.is_ipv6()
                continue
        else:
            back = NetAddr.parse(text)
        assert back == a, text
        port = rng.randrange(65536)
        cjdns = a.network is Network.CJDNS
        assert Service.parse(str(Service(a, port)), 1, cjdns=cjdns) == Service(a, port)


# --- parsing details ---------------------------------------------------------------------------


def test_parse_variants() -> None:
    assert ip("[2001:db8::1]") == ip("2001:db8::1")
    assert ip("[1.2.3.4]") == ip("1.2.3.4")
    assert ip("::1.2.3.4").is_ipv6()  # IPv4-compatible form is plain IPv6
    assert ip("::ffff:0:1.2.3.4").is_rfc6145()
    for bad in [
        "",
        "1.2.3",
        "1.2.3.4.5",
        "127.1",
        "01.2.3.4",
        " 1.2.3.4",
        "1.2.3.4 ",
        "1.2.3.256",
        "::g",
        "1::2::3",
        "１.2.3.4",
        "[1.2.3.4",
        "fd6b:88c0:8724::1",  # Core's internal range is never resolved
        "fd87:d87e:eb43::1",  # TORv2-in-IPv6 range
    ]:
        with pytest.raises(AddrError):
            ip(bad)


def test_parse_cjdns_flag() -> None:
    assert NetAddr.parse("fc00::1").is_ipv6()
    cj = NetAddr.parse("fc00::1", cjdns=True)
    assert cj.is_cjdns() and cj.is_valid() and cj.is_routable()
    assert cj.get_network() == Network.CJDNS
    assert NetAddr.parse("fd00::1", cjdns=True).is_ipv6()  # only fc00::/8 flips
    assert NetAddr.parse("1.2.3.4", cjdns=True).is_ipv4()
    assert str(cj) == "fc00::1"


def test_netaddr_construction_checks() -> None:
    with pytest.raises(AddrError):
        NetAddr(Network.IPV4, bytes(16))
    with pytest.raises(AddrError):
        NetAddr(Network.TORV2, bytes(10))
    with pytest.raises(AddrError):
        NetAddr(Network.UNROUTABLE, bytes(16))
    with pytest.raises(AddrError):
        NetAddr(77, bytes(4))  # type: ignore[arg-type]
    coerced = NetAddr(1, bytearray(b"\x01\x02\x03\x04"))  # type: ignore[arg-type]
    assert coerced.network is Network.IPV4 and type(coerced.addr) is bytes
    assert hash(coerced) == hash(ip("1.2.3.4"))
    # Core operator<: by network, then bytes
    assert sorted([ip(TOR_ADDR), ip("::1"), ip("9.9.9.9"), ip("1.1.1.1")]) == [
        ip("1.1.1.1"),
        ip("9.9.9.9"),
        ip("::1"),
        ip(TOR_ADDR),
    ]


def test_misc_predicates() -> None:
    assert ip("1.2.3.4").is_relayable()
    assert ip(TOR_ADDR).is_relayable() and ip(I2P_ADDR).is_relayable()
    assert not NetAddr.internal("x").is_relayable()
    assert ip(TOR_ADDR).is_privacy_net() and ip(I2P_ADDR).is_privacy_net()
    assert not ip("1.2.3.4").is_privacy_net()
    assert ip("fc00::1").has_cjdns_prefix() and not ip("fd00::1").has_cjdns_prefix()
    assert not ip(TOR_ADDR).is_bind_any()
    assert not NetAddr(Network.CJDNS, bytes(16)).is_bind_any()
    assert not NetAddr.internal("x").is_routable()


def test_linked_ipv4() -> None:
    assert ip("1.2.3.4").get_linked_ipv4() == 0x01020304
    assert ip("::ffff:0:1.2.3.4").get_linked_ipv4() == 0x01020304
    assert ip("64:ff9b::1.2.3.4").get_linked_ipv4() == 0x01020304
    assert ip("2002:102:304::1").get_linked_ipv4() == 0x01020304
    assert ip("2001:0:9999:9999:9999:9999:fefd:fcfb").get_linked_ipv4() == 0x01020304
    for text in ["1.2.3.4", "::ffff:0:1.2.3.4", "64:ff9b::1.2.3.4", "2002:102:304::1"]:
        assert ip(text).has_linked_ipv4()
        assert ip(text).get_net_class() == Network.IPV4
    assert not ip("10.0.0.1").has_linked_ipv4()  # not routable
    assert not ip("2a00::1").has_linked_ipv4()
    assert ip("2a00::1").get_net_class() == Network.IPV6
    assert NetAddr.internal("x").get_net_class() == Network.INTERNAL
    assert ip("127.0.0.1").get_net_class() == Network.UNROUTABLE
    with pytest.raises(AddrError):
        ip("2a00::1").get_linked_ipv4()


def test_reachability() -> None:
    # src/netaddress.cpp CNetAddr::GetReachabilityFrom
    v4 = ip("8.8.8.8")
    v6 = ip("2a00::1")
    teredo = ip("2001:0:9999:9999:9999:9999:fefd:fcfb")
    sixto4 = ip("2002:102:304::1")
    tor = ip(TOR_ADDR)
    i2p = ip(I2P_ADDR)
    cj = NetAddr.parse("fc00::1", cjdns=True)
    lan = ip("10.0.0.1")
    R = Reachability
    assert lan.get_reachability_from(v4) == R.UNREACHABLE
    assert v4.get_reachability_from(v4) == R.IPV4
    assert v6.get_reachability_from(v4) == R.DEFAULT
    assert v6.get_reachability_from(v6) == R.IPV6_STRONG
    assert sixto4.get_reachability_from(v6) == R.IPV6_WEAK
    assert teredo.get_reachability_from(v6) == R.TEREDO
    assert v4.get_reachability_from(v6) == R.IPV4
    assert tor.get_reachability_from(v6) == R.DEFAULT
    assert tor.get_reachability_from(tor) == R.PRIVATE
    assert v4.get_reachability_from(tor) == R.IPV4
    assert v6.get_reachability_from(tor) == R.DEFAULT
    assert i2p.get_reachability_from(i2p) == R.PRIVATE
    assert v4.get_reachability_from(i2p) == R.DEFAULT
    assert cj.get_reachability_from(cj) == R.PRIVATE
    assert v4.get_reachability_from(cj) == R.DEFAULT
    assert teredo.get_reachability_from(teredo) == R.TEREDO
    assert v6.get_reachability_from(teredo) == R.IPV6_WEAK
    assert v4.get_reachability_from(teredo) == R.IPV4
    assert tor.get_reachability_from(teredo) == R.DEFAULT
    assert tor.get_reachability_from(lan) == R.PRIVATE
    assert v6.get_reachability_from(lan) == R.IPV6_WEAK
    assert teredo.get_reachability_from(lan) == R.TEREDO
    assert i2p.get_reachability_from(lan) == R.DEFAULT
