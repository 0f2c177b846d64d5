"""AddrMan tests, ported from Bitcoin Core src/test/addrman_tests.cpp (and netbase_tests.cpp
for asmap).  Core's tests use a deterministic key (``uint256{1}`` = 01 00..00) or
``nKey1 = HashWriter{} << 1`` so exact bucket numbers can be asserted; randomness here
comes from a seeded ``random.Random`` instead of Core's ChaCha20 stream."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peerkeeper.bitcoin.addrman import (
    ADDRMAN_BUCKET_SIZE,
    ADDRMAN_MAX_FAILURES,
    ADDRMAN_MIN_FAIL,
    ADDRMAN_NEW_BUCKET_COUNT,
    ADDRMAN_NEW_BUCKETS_PER_ADDRESS,
    ADDRMAN_SET_TRIED_COLLISION_SIZE,
    FLORESTA_RETRY_TIME,
    AddrInfo,
    AddrMan,
    AddrManFormatError,
    AddrManVersionError,
    AddrState,
    AddrStateKind,
    get_bucket_position,
    get_new_bucket,
    get_tried_bucket,
)
from peerkeeper.io.addrdb import load_asmap
from peerkeeper.net.asmap import (
    AsmapError,
    NetGroupManager,
    asmap_version,
    check_standard_asmap,
    interpret,
    sanity_check_asmap,
)
from peerkeeper.net.netaddr import NetAddr, Network, Service
from peerkeeper.wire.messages import AddrEntry

#: Core's ``CAddress::TIME_INIT``: the nTime of a CAddress whose time is not set.
TIME_INIT = 100_000_000
#: "Now" for these tests.
NOW = 1_700_000_000

NODE_NONE = 0
NODE_NETWORK = 1
NODE_WITNESS = 1 << 3
NODE_NETWORK_LIMITED = 1 << 10
NODE_P2P_V2 = 1 << 11

#: src/test/data/asmap.raw: 250.0.0.0/8 AS1000, 101.N.0.0/16 ASN for N in 1..8.
TEST_ASMAP = bytes.fromhex(
    "fb03ec0fb03fc0fe00fb03ec0fb03fc0fe00fb03ec0fb0fffffeffedb0ffd486e628290000400000400040"
    "990100800180040000050006001cf039"
)

KEY1 = hashlib.sha256(hashlib.sha256((1).to_bytes(4, "little")).digest()).digest()
KEY2 = hashlib.sha256(hashlib.sha256((2).to_bytes(4, "little")).digest()).digest()

NO_ASMAP = NetGroupManager()
WITH_ASMAP = NetGroupManager(TEST_ASMAP)

I2P_1 = "udhdrtrcetjm5sxzskjyr5ztpeszydbh4dpl3pl4utgqqw2v4jna.b32.i2p"
I2P_2 = "c4gfnttsuwqomiygupdqqqyy5y5emnk5c73hrfvatri67prd7vyq.b32.i2p"


def ip(s: str) -> NetAddr:
    return NetAddr.parse(s)


def svc(s: str, port: int = 0) -> Service:
    return Service(NetAddr.parse(s), port)


def ca(s: str, port: int = 0, services: int = NODE_NONE, time: int = TIME_INIT) -> AddrEntry:
    """A CAddress like Core's tests build (nTime defaults to TIME_INIT)."""
    return AddrEntry(time, services, svc(s, port))


def det(seed: int = 0, asmap: bytes | None = None) -> AddrMan:
    """A deterministic addrman (Core ``AddrMan(netgroupman, DETERMINISTIC, ...)``)."""
    return AddrMan(random.Random(seed), deterministic=True, asmap=asmap)


def tried_bucket(s: str, port: int, key: bytes, ngm: NetGroupManager) -> int:
    a = svc(s, port)
    return get_tried_bucket(key, a, ngm.get_group(a.addr))


def new_bucket(s: str, src: str, key: bytes, ngm: NetGroupManager) -> int:
    return get_new_bucket(key, ngm.get_group(ip(s)), ngm.get_group(ip(src)))


# --- bucket hashing vectors --------------------------------------------------------------


def test_caddrinfo_get_tried_bucket_legacy() -> None:
    assert tried_bucket("250.1.1.1", 8333, KEY1, NO_ASMAP) == 40
    assert tried_bucket("250.1.1.1", 8333, KEY1, NO_ASMAP) != tried_bucket(
        "250.1.1.1", 8333, KEY2, NO_ASMAP
    )
    # same IP, different port: different keys, different buckets
    assert svc("250.1.1.1", 8333).get_key() != svc("250.1.1.1", 9999).get_key()
    assert tried_bucket("250.1.1.1", 8333, KEY1, NO_ASMAP) != tried_bucket(
        "250.1.1.1", 9999, KEY1, NO_ASMAP
    )
    same16 = {tried_bucket(f"250.1.1.{i}", 0, KEY1, NO_ASMAP) for i in range(255)}
    assert len(same16) == 8
    diff16 = {tried_bucket(f"250.{j}.1.1", 0, KEY1, NO_ASMAP) for j in range(255)}
    assert len(diff16) == 160


def test_caddrinfo_get_new_bucket_legacy() -> None:
    assert new_bucket("250.1.2.1", "250.1.2.1", KEY1, NO_ASMAP) == 786
    assert new_bucket("250.1.2.1", "250.1.2.1", KEY1, NO_ASMAP) != new_bucket(
        "250.1.2.1", "250.1.2.1", KEY2, NO_ASMAP
    )
    # same /16: one bucket
    assert (
        len({new_bucket(f"250.1.1.{i}", f"250.1.1.{i}", KEY1, NO_ASMAP) for i in range(255)}) == 1
    )
    # same source group: at most 64 buckets
    b = {
        new_bucket(f"{250 + j // 255}.{j % 256}.1.1", "251.4.1.1", KEY1, NO_ASMAP)
        for j in range(1020)
    }
    assert len(b) <= 64
    # different source groups: more than 64 buckets
    assert len({new_bucket("250.1.1.1", f"250.{p}.1.1", KEY1, NO_ASMAP) for p in range(255)}) > 64


def test_caddrinfo_get_tried_bucket_asmap() -> None:
    assert tried_bucket("250.1.1.1", 8333, KEY1, WITH_ASMAP) == 236
    assert tried_bucket("250.1.1.1", 8333, KEY1, WITH_ASMAP) != tried_bucket(
        "250.1.1.1", 8333, KEY2, WITH_ASMAP
    )
    assert tried_bucket("250.1.1.1", 8333, KEY1, WITH_ASMAP) != tried_bucket(
        "250.1.1.1", 9999, KEY1, WITH_ASMAP
    )
    assert len({tried_bucket(f"101.{j}.1.1", 0, KEY1, WITH_ASMAP) for j in range(255)}) > 8
    assert len({tried_bucket(f"250.{j}.1.1", 0, KEY1, WITH_ASMAP) for j in range(255)}) == 8


def test_caddrinfo_get_new_bucket_asmap() -> None:
    assert new_bucket("250.1.2.1", "250.1.2.1", KEY1, WITH_ASMAP) == 795
    assert new_bucket("250.1.2.1", "250.1.2.1", KEY1, WITH_ASMAP) != new_bucket(
        "250.1.2.1", "250.1.2.1", KEY2, WITH_ASMAP
    )
    assert (
        len({new_bucket(f"250.1.1.{i}", f"250.1.1.{i}", KEY1, WITH_ASMAP) for i in range(255)}) == 1
    )
    b = {
        new_bucket(f"{250 + j // 255}.{j % 256}.1.1", "251.4.1.1", KEY1, WITH_ASMAP)
        for j in range(1020)
    }
    assert len(b) <= 64
    assert len({new_bucket("250.1.1.1", f"101.{p}.1.1", KEY1, WITH_ASMAP) for p in range(255)}) > 1
    assert len({new_bucket("250.1.1.1", f"250.{p}.1.1", KEY1, WITH_ASMAP) for p in range(255)}) == 1


def test_addrinfo_get_keys_and_position() -> None:
    a = svc("250.1.1.1", 8333)
    assert a.get_key() == bytes(10) + b"\xff\xff" + bytes((250, 1, 1, 1)) + b"\x20\x8d"
    positions = {get_bucket_position(KEY1, True, 0, svc("250.1.1.1", p)) for p in range(200)}
    assert positions <= set(range(ADDRMAN_BUCKET_SIZE)) and len(positions) > 32
    assert get_bucket_position(KEY1, True, 7, a) != get_bucket_position(KEY1, False, 7, a) or (
        get_bucket_position(KEY1, True, 8, a) != get_bucket_position(KEY1, False, 8, a)
    )


# --- asmap -----------------------------------------------------------------------------


ASMAP_VECTOR = bytes.fromhex(
    "fd38d50f7d5d665357f64bba6bfc190d6078a7e68e5d3ac032edf47f8b5755f87881bfd3633d9aa7c1fa279b3"
    "6fe26c63bbc9de44e0f04e5a382d8e1cddbe1c26653bc939d4327f287e8b4d1f8aff33176787cb0ff7cb28e3f"
    "daef0f8f47357f801c9f7ff7a99f7f9c9f99de7f3156ae00f23eb27a303bc486aa3ccc31ec19394c2f8a53ddd"
    "ea3cc56257f3b7e9b1f488be9c1137db823759aa4e071eef2e984aaf97b52d5f88d0f373dd190fe45e06efef1"
    "df7278be680a73a74c76db4dd910f1d30752c57fe2bc9f079f1a1e1b036c2a69219f11c5e11980a3fa51f4f82"
    "d36373de73b1863a8c27e36ae0e4f705be3d76ecff038a75bc0f92ba7e7f6f4080f1c47c34d095367ecf4406c"
    "1e3bbc17ba4d6f79ea3f031b876799ac268b1e0ea9babf0f9a8e5f6c55e363c6363df46afc696d7afceaf49b6"
    "e62df9e9dc27e70664cafe5c53df66dd0b8237678ada90e73f05ec60e6f6e96c3cbb1ea2f9dece115d5bdba10"
    "33e53662a7d72a29477b5beb35710591d3e23e5f0379baea62ffdee535bcdf879cbf69b88d7ea37c8015381cf"
    "63dc33d28f757a4a5e15d6a08"
)


@pytest.mark.parametrize(
    ("addr", "asn"),
    [
        ("0:1559:183:3728:224c:65a5:62e6:e991", 961340),
        ("d0:d493:faa0:8609:e927:8b75:293c:f5a4", 961340),
        ("2a0:26f:8b2c:2ee7:c7d1:3b24:4705:3f7f", 693761),
        ("a77:7cd4:4be5:a449:89f2:3212:78c6:ee38", 0),
        ("1336:1ad6:2f26:4fe3:d809:7321:6e0d:4615", 672176),
        ("1d56:abd0:a52f:a8d5:d5a7:a610:581d:d792", 499880),
        ("378e:7290:54e5:bd36:4760:971c:e9b9:570d", 0),
        ("406c:820b:272a:c045:b74e:fc0a:9ef2:cecc", 248495),
        ("46c2:ae07:9d08:2d56:d473:2bc7:57e3:20ac", 248495),
        ("50d2:3db6:52fa:2e7:12ec:5bc4:1bd1:49f9", 124471),
        ("53e1:1812:ffa:dccf:f9f2:64be:75fa:795", 539993),
        ("544d:eeba:3990:35d1:ad66:f9a3:576d:8617", 374443),
        ("6a53:40dc:8f1d:3ffa:efeb:3aa3:df88:b94b", 435070),
        ("87aa:d1c9:9edb:91e7:aab1:9eb9:baa0:de18", 244121),
        ("9f00:48fa:88e3:4b67:a6f3:e6d2:5cc1:5be2", 862116),
        ("c49f:9cc6:86ad:ba08:4580:315e:dbd1:8a62", 969411),
        ("dff5:8021:61d:b17d:406d:7888:fdac:4a20", 969411),
        ("e888:6791:2960:d723:bcfd:47e1:2d8c:599f", 824019),
        ("ffff:d499:8c4b:4941:bc81:d5b9:b51e:85a8", 824019),
    ],
)
def test_asmap_test_vectors(addr: str, asn: int) -> None:
    """src/test/netbase_tests.cpp asmap_test_vectors."""
    ngm = NetGroupManager(ASMAP_VECTOR)
    assert ngm.using_asmap()
    assert ngm.get_mapped_as(ip(addr)) == asn


def test_asmap_raw_mapping_and_groups() -> None:
    assert WITH_ASMAP.get_mapped_as(ip("250.1.1.1")) == 1000
    assert WITH_ASMAP.get_mapped_as(ip("101.1.2.3")) == 1
    assert WITH_ASMAP.get_mapped_as(ip("101.8.0.1")) == 8
    assert WITH_ASMAP.get_mapped_as(ip("8.8.8.8")) == 0
    # mapped: [NET_IPV6] + asn LE; unmapped and non-IP: the plain netgroup
    assert WITH_ASMAP.get_group(ip("250.9.9.9")) == b"\x02" + (1000).to_bytes(4, "little")
    assert WITH_ASMAP.get_group(ip("8.8.8.8")) == ip("8.8.8.8").netgroup()
    assert WITH_ASMAP.get_group(NetAddr.parse(I2P_1)) == NetAddr.parse(I2P_1).netgroup()
    # 6to4 is looked up through its linked IPv4
    assert WITH_ASMAP.get_mapped_as(ip("2002:fa01:0101::1")) == 1000
    assert NO_ASMAP.get_mapped_as(ip("250.1.1.1")) == 0
    assert asmap_version(b"") == bytes(32)
    assert asmap_version(TEST_ASMAP) == hashlib.sha256(hashlib.sha256(TEST_ASMAP).digest()).digest()


def test_asmap_sanity_check() -> None:
    assert check_standard_asmap(TEST_ASMAP)
    assert check_standard_asmap(ASMAP_VECTOR)
    assert not check_standard_asmap(b"")
    assert not check_standard_asmap(TEST_ASMAP[:-1])
    assert not check_standard_asmap(TEST_ASMAP + b"\x00")  # excessive padding
    # a single RETURN of AS 1 is sane for any input length
    ret1 = bytes((0, 0, 0))  # [0] + ASN class 0 (15 bits of 0) => AS 1, zero padding
    assert sanity_check_asmap(ret1, 128)
    assert interpret(ret1, bytes(16)) == 1
    with pytest.raises(AsmapError):
        NetGroupManager(b"\xff")
    with pytest.raises(AsmapError):
        interpret(b"\xff", bytes(16))


def test_load_asmap(tmp_path) -> None:  # type: ignore[no-untyped-def]
    good = tmp_path / "ip_asn.map"
    good.write_bytes(TEST_ASMAP)
    assert load_asmap(good) == TEST_ASMAP
    bad = tmp_path / "bad.map"
    bad.write_bytes(b"\x01\x02")
    with pytest.raises(AsmapError, match="sanity check"):
        load_asmap(bad)
    with pytest.raises(AsmapError, match="failed to open"):
        load_asmap(tmp_path / "missing.map")


# --- AddrInfo: IsTerrible / GetChance --------------------------------------------------


def _info(**kw: int) -> AddrInfo:
    return AddrInfo(kw.pop("time", NOW), 0, svc("250.1.1.1", 8333), ip("252.2.2.2"), **kw)  # type: ignore[arg-type]


def test_is_terrible_cases() -> None:
    assert not _info().is_terrible(NOW)
    assert _info(time=NOW + 601).is_terrible(NOW)  # flying DeLorean
    assert not _info(time=NOW + 600).is_terrible(NOW)
    assert _info(time=NOW - 30 * 86400 - 1).is_terrible(NOW)  # beyond the horizon
    assert not _info(time=NOW - 30 * 86400).is_terrible(NOW)
    assert _info(attempts=3).is_terrible(NOW)  # never a success in 3 tries
    assert not _info(attempts=2).is_terrible(NOW)
    assert not _info(attempts=9, last_success=NOW - ADDRMAN_MIN_FAIL - 1).is_terrible(NOW)
    assert _info(attempts=10, last_success=NOW - ADDRMAN_MIN_FAIL - 1).is_terrible(NOW)
    assert not _info(attempts=10, last_success=NOW - ADDRMAN_MIN_FAIL).is_terrible(NOW)
    # tried in the last minute: never terrible
    assert not _info(time=TIME_INIT, attempts=50, last_try=NOW - 60).is_terrible(NOW)
    assert _info(time=TIME_INIT, last_try=NOW - 61).is_terrible(NOW)


def test_get_chance_cases() -> None:
    assert _info().get_chance(NOW) == 1.0
    assert _info(last_try=NOW - 599).get_chance(NOW) == pytest.approx(0.01)
    assert _info(last_try=NOW - 600).get_chance(NOW) == 1.0
    assert _info(attempts=1).get_chance(NOW) == pytest.approx(0.66)
    assert _info(attempts=8).get_chance(NOW) == pytest.approx(0.66**8)
    assert _info(attempts=20).get_chance(NOW) == pytest.approx(0.66**8)
    assert _info(attempts=20, last_try=NOW).get_chance(NOW) == pytest.approx(0.01 * 0.66**8)


# --- behaviour (src/test/addrman_tests.cpp) ---------------------------------------------


def test_addrman_simple() -> None:
    am = det()
    source = ip("252.2.2.2")
    assert am.size() == 0
    assert am.select(now=NOW) == (None, 0.0)
    assert am.add([ca("250.1.1.1", 8333)], source, now=NOW) == 1
    assert am.size() == 1 and len(am) == 1
    assert str(am.select(now=NOW)[0].service) == "250.1.1.1:8333"  # type: ignore[union-attr]
    # duplicates are not added
    assert am.add([ca("250.1.1.1", 8333)], source, now=NOW) == 0
    assert am.size() == 1
    assert am.add([ca("250.1.1.2", 8333)], source, now=NOW) == 1
    assert am.size() >= 1
    am = det()
    assert am.add([ca("250.1.1.3", 8333), ca("250.1.1.4", 8333)], source, now=NOW) >= 1
    assert am.size() >= 1


def test_addrman_unroutable_refused() -> None:
    am = det()
    assert (
        am.add([ca("10.0.0.1", 8333), ca("127.0.0.1", 8333), ca("192.168.1.1")], None, now=NOW) == 0
    )
    assert am.size() == 0


def test_addrman_terrible_many_failures() -> None:
    am = det()
    source = ip("250.1.2.1")
    addr = ca("250.250.2.1", 8333, time=NOW)
    assert am.add([addr], source, now=NOW)
    assert am.good(addr.service, now=NOW)
    later = NOW + ADDRMAN_MIN_FAIL + 86400
    helper = ca("251.252.2.3", 8333, time=later)
    assert am.add([helper], source, now=later)
    assert am.good(helper.service, now=later)
    for _ in range(ADDRMAN_MAX_FAILURES):
        am.attempt(addr.service, True, now=later - 61)
    filtered = am.get_addr(0, 0, now=later)
    assert [str(e.service) for e in filtered] == ["251.252.2.3:8333"]
    assert len(am.get_addr(0, 0, later, None, filtered=False)) == 2


def test_addrman_penalty_self_announcement() -> None:
    am = det()
    base = NOW - 10000
    caddr1 = ca("250.1.1.1", 8333, time=base)
    assert am.add([caddr1], ip("250.1.1.1"), time_penalty=3600, now=NOW)
    assert am.find_position(caddr1.service) is not None
    got = am.get_addr(0, 0, now=NOW)
    assert len(got) == 1 and got[0].time == base
    caddr2 = ca("250.1.1.2", 8333, time=base)
    assert am.add([caddr2], ip("250.1.1.3"), time_penalty=3600, now=NOW)
    times = {str(e.service): e.time for e in am.get_addr(0, 0, now=NOW)}
    assert times == {"250.1.1.1:8333": base, "250.1.1.2:8333": base - 3600}


def test_addrman_ports() -> None:
    am = det()
    source = ip("252.2.2.2")
    assert am.add([ca("250.1.1.1", 8333)], source, now=NOW)
    assert am.size() == 1
    assert am.add([ca("250.1.1.1", 8334)], source, now=NOW)
    assert am.size() == 2
    sel = am.select(now=NOW)[0]
    assert sel is not None and str(sel.service) in ("250.1.1.1:8333", "250.1.1.1:8334")
    am.good(svc("250.1.1.1", 8334), now=NOW)
    assert am.size() == 2
    sel = am.select(new_only=True, now=NOW)[0]
    assert sel is not None and str(sel.service) == "250.1.1.1:8333"


def test_addrman_select() -> None:
    am = det()
    assert am.select(False, now=NOW)[0] is None
    assert am.select(True, now=NOW)[0] is None
    source = ip("252.2.2.2")
    addr1 = svc("250.1.1.1", 8333)
    assert am.add([AddrEntry(TIME_INIT, 0, addr1)], source, now=NOW)
    assert am.size() == 1
    assert am.select(new_only=True, now=NOW)[0].service == addr1  # type: ignore[union-attr]
    assert am.select(new_only=False, now=NOW)[0].service == addr1  # type: ignore[union-attr]
    assert am.good(addr1, now=NOW)
    assert am.size() == 1
    assert am.select(new_only=True, now=NOW)[0] is None
    assert am.select(now=NOW)[0].service == addr1  # type: ignore[union-attr]

    addr2 = svc("250.3.1.1", 8333)
    assert am.add([AddrEntry(TIME_INIT, 0, addr2)], addr2, now=NOW)
    assert am.select(new_only=True, now=NOW)[0].service == addr2  # type: ignore[union-attr]
    addr3 = svc("250.3.2.2", 9999)
    addr4 = svc("250.3.3.3", 9999)
    assert am.add([AddrEntry(TIME_INIT, 0, addr3)], addr2, now=NOW)
    assert am.add([AddrEntry(TIME_INIT, 0, addr4)], svc("250.4.1.1", 8333), now=NOW)
    for s, src in (
        (svc("250.4.4.4", 8333), addr3),
        (svc("250.4.5.5", 7777), addr3),
        (svc("250.4.6.6", 8333), svc("250.1.1.3", 8333)),
    ):
        assert am.add([AddrEntry(TIME_INIT, 0, s)], src, now=NOW)
        assert am.good(s, now=NOW)
    assert am.size() == 7
    ports = {am.select(now=NOW)[0].service.port for _ in range(20)}  # type: ignore[union-attr]
    assert len(ports) == 3


def test_addrman_select_by_network() -> None:
    am = det()
    assert am.select(True, {Network.IPV4}, now=NOW)[0] is None
    assert am.select(False, {Network.IPV4}, now=NOW)[0] is None
    source = ip("252.2.2.2")
    addr1 = svc("250.1.1.1", 8333)
    assert am.add([AddrEntry(TIME_INIT, 0, addr1)], source, now=NOW)
    assert am.select(True, {Network.IPV4}, now=NOW)[0].service == addr1  # type: ignore[union-attr]
    assert am.select(False, {Network.IPV4}, now=NOW)[0].service == addr1  # type: ignore[union-attr]
    for net in (Network.IPV6, Network.TORV3, Network.I2P, Network.CJDNS):
        assert am.select(False, {net}, now=NOW)[0] is None
    assert am.select(True, {Network.CJDNS}, now=NOW)[0] is None
    assert am.select(False, now=NOW)[0].service == addr1  # type: ignore[union-attr]

    i2p = Service(NetAddr.parse(I2P_1), 0)
    assert am.add([AddrEntry(TIME_INIT, 0, i2p)], source, now=NOW)
    assert am.select(True, {Network.I2P}, now=NOW)[0].service == i2p  # type: ignore[union-attr]
    assert am.select(False, {Network.I2P}, now=NOW)[0].service == i2p  # type: ignore[union-attr]
    assert am.select(False, {Network.IPV4}, now=NOW)[0].service == addr1  # type: ignore[union-attr]
    assert am.select(False, {Network.IPV4, Network.I2P}, now=NOW)[0] is not None
    assert am.select(False, {Network.IPV6, Network.TORV3, Network.CJDNS}, now=NOW)[0] is None

    assert am.good(i2p, now=NOW)
    assert am.select(True, {Network.I2P}, now=NOW)[0] is None
    assert am.select(False, {Network.I2P}, now=NOW)[0].service == i2p  # type: ignore[union-attr]
    i2p2 = Service(NetAddr.parse(I2P_2), 0)
    assert am.add([AddrEntry(TIME_INIT, 0, i2p2)], source, now=NOW)
    assert am.select(True, {Network.I2P}, now=NOW)[0].service == i2p2  # type: ignore[union-attr]
    seen = set()
    for _ in range(255):
        e = am.select(False, {Network.I2P}, now=NOW)[0]
        assert e is not None and e.service in (i2p, i2p2)
        seen.add(e.service)
        if len(seen) == 2:
            break
    assert seen == {i2p, i2p2}


def test_addrman_select_special() -> None:
    am = AddrMan(random.Random(7))  # non-deterministic key
    source = ip("252.2.2.2")
    i2p = Service(NetAddr.parse(I2P_1), 0)
    assert am.add([AddrEntry(TIME_INIT, 0, i2p)], source, now=NOW)
    assert am.good(i2p, now=NOW)
    addr1 = svc("250.1.1.3", 8333)
    assert am.add([AddrEntry(TIME_INIT, 0, addr1)], source, now=NOW)
    for _ in range(20):
        assert am.select(False, {Network.IPV4}, now=NOW)[0].service == addr1  # type: ignore[union-attr]


def test_addrman_new_collisions() -> None:
    am = det()
    source = ip("252.2.2.2")
    n = 0
    while n < 22:  # 250.1.1.1 - 250.1.1.22 do not collide with deterministic key = 1
        n += 1
        assert am.add([ca(f"250.1.1.{n}")], source, now=NOW)
        assert am.size() == n
    # 250.1.1.23 collides with 250.1.1.22 (new bucket 983, position 3); the old entry
    # is terrible (TIME_INIT) and so is overwritten
    pos22 = am.find_position(svc("250.1.1.22"))
    n += 1
    assert am.add([ca(f"250.1.1.{n}")], source, now=NOW)
    assert am.size() == n - 1
    pos23 = am.find_position(svc("250.1.1.23"))
    assert pos22 is not None and pos23 is not None
    assert (pos22.bucket, pos22.position) == (pos23.bucket, pos23.position) == (983, 3)
    assert am.find(svc("250.1.1.22")) is None
    n += 1
    assert am.add([ca(f"250.1.1.{n}")], source, now=NOW)
    assert am.size() == n - 1


def test_new_collision_keeps_good_entry() -> None:
    """A non-terrible occupant is not overwritten (AddSingle)."""
    am = det()
    source = ip("252.2.2.2")
    assert am.add([ca("250.1.1.22", time=NOW)], source, now=NOW)
    assert not am.add([ca("250.1.1.23", time=NOW)], source, now=NOW)
    assert am.find(svc("250.1.1.22")) is not None
    assert am.find(svc("250.1.1.23")) is None
    assert am.size() == 1


def test_addrman_new_multiplicity() -> None:
    am = det(seed=3)
    addr = ca("253.3.3.3", 8333, time=NOW)
    for i in range(1, 20):
        am.add([addr], ip(f"{i % 256}.{i >> 8}.1.1"), now=NOW)
    pos = am.find_position(addr.service)
    assert pos is not None and pos.multiplicity == 1
    assert am.size() == 1
    for i in range(1, 1000):
        src = ip(f"{i % 256}.{(i >> 8) + 1}.1.1")
        am.add([addr._replace(time=NOW + i)], src, now=NOW)
    pos = am.find_position(addr.service)
    assert pos is not None and pos.multiplicity == ADDRMAN_NEW_BUCKETS_PER_ADDRESS
    assert am.size() == 1
    raw_new = am.raw_entries()["new"]
    assert len(raw_new) == ADDRMAN_NEW_BUCKETS_PER_ADDRESS
    assert am.check() == 0


def test_addrman_tried_collisions() -> None:
    am = det()
    source = ip("252.2.2.2")
    for i in range(1, 36):  # 250.1.1.1 - 250.1.1.35 do not collide in tried with key = 1
        a = svc(f"250.1.1.{i}")
        assert am.add([AddrEntry(TIME_INIT, 0, a)], source, now=NOW)
        assert am.good(a, now=NOW)
    a36 = svc("250.1.1.36")
    assert am.add([AddrEntry(TIME_INIT, 0, a36)], source, now=NOW)
    assert not am.good(a36, now=NOW)
    a37 = svc("250.1.1.37")
    assert am.add([AddrEntry(TIME_INIT, 0, a37)], source, now=NOW)
    assert am.good(a37, now=NOW)


def test_test_before_evict_and_collision_resolution_switched_off() -> None:
    """The simulation switches (Core has none): without test-before-evict a colliding
    good() evicts the tried occupant at once; without resolution collisions stay."""
    source = ip("252.2.2.2")
    for before_evict in (True, False):
        am = det()
        am.test_before_evict = before_evict
        for i in range(1, 36):
            a = svc(f"250.1.1.{i}")
            am.add([AddrEntry(TIME_INIT, 0, a)], source, now=NOW)
            am.good(a, now=NOW)
        a36 = svc("250.1.1.36")
        am.add([AddrEntry(TIME_INIT, 0, a36)], source, now=NOW)
        assert am.good(a36, now=NOW) is not before_evict
        assert am.has_tried_collisions is before_evict
        assert am.check() == 0
    am = det()
    am.resolve_tried_collisions = False
    for i in range(1, 37):
        a = svc(f"250.1.1.{i}")
        am.add([AddrEntry(TIME_INIT, 0, a)], source, now=NOW)
        am.good(a, now=NOW)
    am.resolve_collisions(NOW + 100_000)
    assert am.has_tried_collisions
    am.resolve_tried_collisions = True
    am.resolve_collisions(NOW + 100_000)
    assert not am.has_tried_collisions


def test_addrman_getaddr() -> None:
    am = det()
    assert am.get_addr(0, 0, NOW) == []
    source1, source2 = ip("250.1.2.1"), ip("250.2.3.3")
    addrs = [
        ca(s, p, time=NOW)
        for s, p in (
            ("250.250.2.1", 8333),
            ("250.251.2.2", 9999),
            ("251.252.2.3", 8333),
            ("252.253.3.4", 8333),
            ("252.254.4.5", 8333),
        )
    ]
    assert am.add([addrs[0], addrs[2], addrs[4]], source1, now=NOW)
    assert am.add([addrs[1], addrs[3]], source2, now=NOW)
    assert len(am.get_addr(0, 0, NOW)) == 5
    assert len(am.get_addr(2500, 23, NOW)) == 1  # 23% of 5, rounded down
    assert am.good(addrs[0].service, NOW)
    assert am.good(addrs[1].service, NOW)
    assert len(am.get_addr(0, 0, NOW)) == 5
    assert len(am.get_addr(2500, 23, NOW)) == 1
    for i in range(1, 8 * 256):
        s = f"{i % 256}.{i >> 8}.1.23"
        a = ca(s, time=NOW)
        am.add([a], ip(s), now=NOW)
        if i % 8 == 0:
            am.good(a.service, NOW)
    got = am.get_addr(2500, 23, NOW)
    assert len(got) == am.size() * 23 // 100 == 461
    assert am.size() == 2006  # collisions keep it below the number added
    assert len(set(got)) == len(got)
    assert am.check() == 0


def test_getaddr_unfiltered() -> None:
    am = det()
    source = ip("250.1.2.1")
    addr1 = ca("250.250.2.1", 8333, time=NOW)
    addr2 = ca("250.251.2.2", 9999)  # TIME_INIT: terrible
    assert am.add([addr1, addr2], source, now=NOW)
    addr3 = ca("250.251.2.3", 9998, time=NOW)
    am.good(addr3.service, NOW)  # not known yet: no effect
    assert am.add([addr3], source, now=NOW)
    for _ in range(3):
        am.attempt(addr3.service, True, NOW - 61)
    addr4 = ca("250.252.2.4", 9997, time=NOW + 11 * 60)  # flying DeLorean
    assert am.add([addr4], source, now=NOW)
    assert len(am.get_addr(0, 0, NOW)) == 1
    assert len(am.get_addr(0, 0, NOW, None, filtered=False)) == 4


def test_getaddr_by_network_and_limits() -> None:
    am = det()
    source = ip("252.2.2.2")
    v4 = [ca(f"250.{i}.1.1", time=NOW) for i in range(1, 30)]
    v6 = [AddrEntry(NOW, 0, svc(f"2a01:{i:x}::1", 8333)) for i in range(1, 10)]
    am.add(v4 + v6, source, now=NOW)
    n4, n6 = am.size(Network.IPV4), am.size(Network.IPV6)
    assert n4 > 20 and n6 > 5
    got6 = am.get_addr(0, 0, NOW, Network.IPV6)
    assert len(got6) == n6 and all(e.service.addr.network is Network.IPV6 for e in got6)
    assert len(am.get_addr(3, 0, NOW)) == 3
    assert len(am.get_addr(0, 50, NOW)) == (n4 + n6) // 2
    assert am.get_addr(1, 1, NOW) == []  # 1% of < 100 entries


def test_addrman_selecttriedcollision() -> None:
    am = det()
    assert am.size() == 0
    assert am.select_tried_collision() == (None, 0.0)
    source = ip("252.2.2.2")
    for i in range(1, 23):
        a = svc(f"250.1.1.{i}")
        assert am.add([AddrEntry(TIME_INIT, 0, a)], source, now=NOW)
        assert am.good(a, now=NOW)
        assert am.select_tried_collision() == (None, 0.0)
    for i in range(1, 23):
        a = svc(f"250.1.1.{i}")
        assert not am.good(a, now=NOW)  # duplicate: already tried, not a collision
        assert am.select_tried_collision() == (None, 0.0)


def test_addrman_noevict() -> None:
    am = det()
    source = ip("252.2.2.2")
    for i in range(1, 36):
        a = svc(f"250.1.1.{i}")
        assert am.add([AddrEntry(TIME_INIT, 0, a)], source, now=NOW)
        assert am.good(a, now=NOW)
    a36 = svc("250.1.1.36")
    assert am.add([AddrEntry(TIME_INIT, 0, a36)], source, now=NOW)
    assert not am.good(a36, now=NOW)
    sel = am.select_tried_collision()[0]
    assert sel is not None and str(sel.service) == "250.1.1.19:0"
    pos19 = am.find_position(svc("250.1.1.19"))
    assert pos19 is not None and pos19.tried and (pos19.bucket, pos19.position) == (121, 32)
    # 19 succeeded recently: 36 is discarded, 19 stays
    am.resolve_collisions(now=NOW)
    assert am.select_tried_collision() == (None, 0.0)
    for i in range(37, 59):
        a = svc(f"250.1.1.{i}")
        assert am.add([AddrEntry(TIME_INIT, 0, a)], source, now=NOW)
        assert am.good(a, now=NOW)
    a59 = svc("250.1.1.59")
    assert am.add([AddrEntry(TIME_INIT, 0, a59)], source, now=NOW)
    assert not am.good(a59, now=NOW)
    sel = am.select_tried_collision()[0]
    assert sel is not None and str(sel.service) == "250.1.1.10:0"
    assert not am.add([AddrEntry(TIME_INIT, 0, a36)], source, now=NOW)
    assert not am.good(a36, now=NOW)
    assert am.select_tried_collision()[0] is not None
    am.resolve_collisions(now=NOW)
    assert am.select_tried_collision() == (None, 0.0)


def test_addrman_evictionworks() -> None:
    am = det()
    assert am.select_tried_collision() == (None, 0.0)
    source = ip("252.2.2.2")
    for i in range(1, 36):
        a = svc(f"250.1.1.{i}")
        assert am.add([AddrEntry(TIME_INIT, 0, a)], source, now=NOW)
        assert am.good(a, now=NOW)
    a36 = svc("250.1.1.36")
    assert am.add([AddrEntry(TIME_INIT, 0, a36)], source, now=NOW)
    assert not am.good(a36, now=NOW)
    info, _ = am.select_tried_collision()
    assert info is not None and str(info.service) == "250.1.1.19:0"
    # the test of 19 fails: last success in the deep past, attempted 61 s ago
    assert not am.good(info.service, now=1)
    am.attempt(info.service, False, NOW - 61)
    am.resolve_collisions(now=NOW)
    assert am.select_tried_collision() == (None, 0.0)
    pos = am.find_position(a36)
    assert pos is not None and pos.tried
    assert not am.good(a36, now=NOW)  # duplicate now
    assert am.select_tried_collision() == (None, 0.0)
    a19 = svc("250.1.1.19")
    assert not am.good(a19, now=NOW)  # collides with 36
    sel = am.select_tried_collision()[0]
    assert sel is not None and str(sel.service) == "250.1.1.36:0"
    am.resolve_collisions(now=NOW + 4 * 3600)
    assert am.select_tried_collision() == (None, 0.0)
    p19, p36 = am.find_position(a19), am.find_position(a36)
    assert p19 is not None and p19.tried
    assert p36 is not None and not p36.tried
    assert am.check() == 0


def test_tried_collision_set_is_bounded() -> None:
    am = det()
    source = ip("252.2.2.2")
    rng = random.Random(5)
    for _ in range(3000):
        a = svc(f"250.{rng.randrange(1, 3)}.{rng.randrange(256)}.{rng.randrange(1, 255)}")
        am.add([AddrEntry(NOW, 0, a)], source, now=NOW)
        am.good(a, NOW)
    assert len(am._tried_collisions) <= ADDRMAN_SET_TRIED_COLLISION_SIZE
    assert am.check() == 0


def test_addrman_update_address() -> None:
    am = det()
    source = ip("252.2.2.2")
    start = NOW - 10000
    addr = ca("250.1.1.1", 8333, time=start)
    assert am.add([addr], source, now=NOW)
    assert am.size() == 1
    other_port = svc("250.1.1.1", 8334)
    am.connected(other_port, NOW)
    am.set_services(other_port, NODE_NETWORK_LIMITED)
    (e,) = am.get_addr(0, 0, NOW)
    assert e.time == start and e.services == NODE_NONE
    am.connected(addr.service, NOW)
    am.set_services(addr.service, NODE_NETWORK_LIMITED)
    (e,) = am.get_addr(0, 0, NOW)
    assert e.time >= start + 10000 and e.services == NODE_NETWORK_LIMITED
    addr_v2 = ca("250.1.1.1", 8333, services=NODE_P2P_V2, time=start)
    assert not am.add([addr_v2], source, now=NOW)
    (e,) = am.get_addr(0, 0, NOW)
    assert e.services == NODE_P2P_V2 | NODE_NETWORK_LIMITED
    am.set_services(addr.service, NODE_NETWORK)
    (e,) = am.get_addr(0, 0, NOW)
    assert e.services == NODE_NETWORK
    assert am.good(addr.service, NOW)
    (e,) = am.get_addr(0, 0, NOW)
    assert e.services == NODE_NETWORK
    assert not am.add([addr_v2], source, now=NOW)
    (e,) = am.get_addr(0, 0, NOW)
    assert e.services == NODE_NETWORK | NODE_P2P_V2
    assert am.check() == 0


def test_addrman_size() -> None:
    am = det()
    source = ip("252.2.2.2")
    assert am.size(None, None) == am.size(Network.IPV4) == am.size(None, True) == 0
    assert am.size(Network.IPV4, False) == 0
    a1, a2 = ca("250.1.1.1", 8333), ca("250.1.1.2", 8333)
    assert am.add([a1], source, now=NOW)
    assert am.good(a1.service, now=NOW)
    assert am.add([a2], source, now=NOW)
    assert am.size() == 2 and am.size(Network.IPV4) == 2
    assert am.size(None, True) == 1 and am.size(None, False) == 1
    assert am.size(Network.IPV4, True) == 1 and am.size(Network.IPV4, False) == 1
    i2p = AddrEntry(TIME_INIT, 0, Service(NetAddr.parse(I2P_1), 0))
    assert am.add([i2p], source, now=NOW)
    assert am.size() == 3 and am.size(Network.IPV4) == 2
    assert am.size(Network.I2P) == 1 and am.size(Network.I2P, True) == 1
    assert am.size(None, True) == 2 and am.size(None, False) == 1
    info = am.info()
    assert info["ipv4"] == {"new": 1, "tried": 1, "total": 2}
    assert info["i2p"] == {"new": 1, "tried": 0, "total": 1}
    assert info["all_networks"] == {"new": 2, "tried": 1, "total": 3}
    assert list(info) == ["ipv4", "ipv6", "onion", "i2p", "cjdns", "all_networks"]


def test_attempt_counts_once_per_good() -> None:
    am = det()
    a = ca("250.1.1.1", 8333, time=NOW)
    am.add([a], None, now=NOW)
    am.attempt(a.service, True, NOW)
    am.attempt(a.service, True, NOW + 1)  # no Good since: not counted again
    info = am.find(a.service)
    assert info is not None and info.attempts == 1 and info.last_try == NOW + 1
    am.good(svc("250.9.9.9"), NOW + 2)  # unknown address, but m_last_good moves
    am.attempt(a.service, True, NOW + 3)
    info = am.find(a.service)
    assert info is not None and info.attempts == 2
    am.attempt(a.service, False, NOW + 10)
    info = am.find(a.service)
    assert info is not None and info.attempts == 2 and info.last_try == NOW + 10


def test_compat_methods_and_source() -> None:
    am = det()
    a = ca("250.1.1.1", 8333, time=NOW)
    b = ca("250.2.1.1", 8333, time=NOW)
    assert am.add([a], svc("252.2.2.2", 8333), 7200, now=NOW) == 1
    assert am.add([b], None, now=NOW) == 1
    assert am.source_of(a.service) == ip("252.2.2.2")
    assert am.source_of(b.service) == b.service.addr
    assert am.source_of(svc("250.3.3.3")) is None
    entries = {e.service: e for e in am.entries()}
    assert entries[a.service].time == NOW - 7200 and entries[b.service].time == NOW
    assert len(am) == 2


# --- Floresta state and service preference --------------------------------------------


def test_floresta_state() -> None:
    am = det()
    a = ca("250.1.1.1", 8333, time=NOW)
    am.add([a], None, now=NOW)
    s = a.service
    assert am.state(s, NOW) == AddrState.never_tried()
    assert am.state(svc("250.7.7.7"), NOW).kind is AddrStateKind.NEVER_TRIED
    am.attempt(s, True, NOW)
    assert am.state(s, NOW) == AddrState.failed(NOW)
    am.good(s, NOW + 5)
    assert am.state(s, NOW + 5) == AddrState.tried(NOW + 5)
    am.mark_connected(s, True)
    assert am.state(s, NOW + 6).kind is AddrStateKind.CONNECTED
    am.mark_connected(s, False)
    am.mark_banned(s, NOW + 100, now=NOW)
    assert am.state(s, NOW + 6) == AddrState.banned(NOW + 100)
    assert am.state(s, NOW + 100) == AddrState.tried(NOW + 5)  # ban expired


def test_select_skips_connected_and_banned() -> None:
    am = det()
    a = ca("250.1.1.1", 8333, time=NOW)
    am.add([a], None, now=NOW)
    assert am.select(now=NOW, floresta=True)[0] == a
    am.mark_connected(a.service, True)
    assert am.select(now=NOW, floresta=True) == (None, 0.0)
    am.mark_connected(a.service, False)
    am.mark_banned(a.service, NOW + 10, now=NOW)
    assert am.select(now=NOW, floresta=True) == (None, 0.0)
    assert am.select(now=NOW + 11, floresta=True)[0] == a


def test_select_failed_retry_time() -> None:
    am = det()
    a = ca("250.1.1.1", 8333, time=NOW)
    am.add([a], None, now=NOW)
    am.attempt(a.service, True, NOW)
    assert am.select(now=NOW + FLORESTA_RETRY_TIME, floresta=True) == (None, 0.0)
    entry, last_try = am.select(now=NOW + FLORESTA_RETRY_TIME + 1, floresta=True)
    assert entry == a and last_try == NOW


def test_select_required_services_prefers_and_falls_back() -> None:
    am = det(seed=11)
    source = ip("252.2.2.2")
    plain = [ca(f"250.{i}.1.1", 8333, NODE_NETWORK, NOW) for i in range(1, 40)]
    am.add(plain, source, now=NOW)
    want = NODE_NETWORK | NODE_WITNESS | (1 << 24)
    special = ca("251.9.9.9", 8333, want, NOW)
    assert am.add([special], source, now=NOW)
    for _ in range(30):
        assert am.select(now=NOW, required_services=want)[0] == special
    # nobody has bit 30: fall back to any entry
    got = {am.select(now=NOW, required_services=1 << 30)[0] for _ in range(40)}
    assert None not in got and len(got) > 5
    # services learned later count too
    am.set_services(plain[0].service, want)
    seen = {am.select(now=NOW, required_services=want)[0] for _ in range(60)}
    assert {e.service for e in seen if e} == {special.service, plain[0].service}
    # with the only matching entries connected, Floresta returns None after its tries
    am.mark_connected(special.service, True)
    am.mark_connected(plain[0].service, True)
    assert am.select(now=NOW, required_services=want) == (None, 0.0)


def test_mark_banned_is_bounded() -> None:
    am = det()
    import peerkeeper.bitcoin.addrman as mod

    limit = mod._MAX_BANNED
    mod._MAX_BANNED = 5
    try:
        for i in range(10):
            am.mark_banned(svc(f"250.1.1.{i + 1}"), NOW + 100 + i, now=NOW)
        assert len(am._banned) == 5
        assert max(am._banned.values()) == NOW + 109
    finally:
        mod._MAX_BANNED = limit


# --- serialization --------------------------------------------------------------------


def _filled(seed: int = 1, n: int = 300, asmap: bytes | None = None) -> AddrMan:
    rng = random.Random(seed)
    am = AddrMan(random.Random(seed), asmap=asmap)
    for k in range(n):
        src = svc(f"{rng.randrange(1, 200)}.{rng.randrange(256)}.1.1")
        batch = []
        for _ in range(5):
            if rng.random() < 0.2:
                a = Service(NetAddr(Network.IPV6, b"\x2a\x01" + rng.randbytes(14)), 8333)
            else:
                a = svc(
                    f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.1", 8333
                )
            batch.append(AddrEntry(NOW - rng.randrange(10000), rng.choice((1, 9, 1033)), a))
        am.add(batch, src, now=NOW)
        if k % 3 == 0:
            am.good(batch[0].service, NOW)
        if k % 7 == 0:
            am.attempt(batch[1].service, True, NOW)
    am.add([AddrEntry(NOW, 1, Service(NetAddr.parse(I2P_1), 0))], None, now=NOW)
    onion = NetAddr(Network.TORV3, bytes(range(32)))
    am.add([AddrEntry(NOW, 1, Service(onion, 8333))], ip("1.2.3.4"), now=NOW)
    am.add(
        [AddrEntry(NOW, 1, Service(NetAddr(Network.CJDNS, b"\xfc" + bytes(15)), 1))], None, now=NOW
    )
    am.add([AddrEntry(NOW, 1, svc("8.8.8.8", 8333))], NetAddr.internal("fixedseeds"), now=NOW)
    return am


def _state(am: AddrMan) -> tuple[object, ...]:
    return (
        am.key,
        am.raw_entries(),
        am.info(),
        sorted(
            (str(i.service), i.last_success, i.attempts)
            for i, _ in am.get_entries(False) + am.get_entries(True)
        ),
    )


def test_serialize_roundtrip() -> None:
    am = _filled()
    assert am.check() == 0
    data = am.serialize()
    assert data[:2] == bytes((4, 36)) and data[2:34] == am.key
    assert data[42:46] == bytes.fromhex("00040040")
    am2 = AddrMan.deserialize(data, random.Random(2))
    assert _state(am2) == _state(am)
    assert am2.serialize() == data
    # a source that is an internal address survives (written as IPv6 with Core's prefix)
    assert am2.source_of(svc("8.8.8.8", 8333)) == NetAddr.internal("fixedseeds")
    raw = am2.raw_entries()
    assert any(e["network"] == "i2p" for e in raw["new"].values())
    assert any(e["source_network"] == "internal" for e in raw["new"].values())


def test_serialize_format3_is_read() -> None:
    am = _filled(n=50)
    data = bytearray(am.serialize())
    data[0], data[1] = 3, 32 + 3
    am2 = AddrMan.deserialize(bytes(data), random.Random(2))
    assert _state(am2) == _state(am)


def test_unsupported_version() -> None:
    data = bytearray(det().serialize())
    data[1] = 32 + 5
    with pytest.raises(AddrManVersionError, match="Unsupported format"):
        AddrMan.deserialize(bytes(data), random.Random(0))
    data[0], data[1] = 9, 32 + 4  # a newer format compatible with ours is read
    assert len(AddrMan.deserialize(bytes(data), random.Random(0))) == 0
    data[1] = 31
    with pytest.raises(AddrManFormatError, match="compat value"):
        AddrMan.deserialize(bytes(data), random.Random(0))


def test_load_addrman() -> None:
    am = det()
    addrs = [ca("250.7.1.1", 8333), ca("250.7.2.2", 9999), ca("250.7.3.3", 9999)]
    assert am.add(addrs, svc("252.5.1.1", 8333), now=NOW) == 3
    am1 = AddrMan.deserialize(am.serialize(), random.Random(9))
    assert am1.size() == 3


def test_load_addrman_corrupted() -> None:
    """MakeCorruptPeersDat: format 1, nNew=10, nTried=10 but a single V1 entry."""
    import struct

    body = bytes((1, 32)) + b"\x01" + bytes(31) + struct.pack("<iii", 10, 10, 1024 ^ (1 << 30))
    v1 = bytes(10) + b"\xff\xff"
    body += struct.pack("<IIQ", 220000, TIME_INIT, 0) + v1 + bytes((252, 1, 1, 1)) + b"\x1e\x61"
    body += v1 + bytes((252, 2, 2, 2)) + struct.pack("<qi", 0, 0)
    with pytest.raises(AddrManFormatError) as ei:
        AddrMan.deserialize(body, random.Random(0))
    assert ei.value.truncated


def test_v1_format_file_is_read() -> None:
    """A format-1 (pre-BIP155, pre-asmap) body with one new entry is re-bucketed."""
    import struct

    n_ub = 1024 ^ (1 << 30)
    body = bytes((1, 32)) + b"\x01" + bytes(31) + struct.pack("<iii", 1, 0, n_ub)
    v1 = bytes(10) + b"\xff\xff"
    body += struct.pack("<IIQ", 220000, NOW, 9) + v1 + bytes((250, 1, 1, 1)) + b"\x20\x8d"
    body += v1 + bytes((252, 2, 2, 2)) + struct.pack("<qi", 0, 0)
    for b in range(1024):
        body += struct.pack("<i", 1 if b == 5 else 0) + (struct.pack("<i", 0) if b == 5 else b"")
    am = AddrMan.deserialize(body, random.Random(0))
    assert [str(e.service) for e in am.entries()] == ["250.1.1.1:8333"]
    assert am.source_of(svc("250.1.1.1", 8333)) == ip("252.2.2.2")
    assert am.find(svc("250.1.1.1", 8333)).services == 9  # type: ignore[union-attr]
    assert am.check() == 0


def test_addrman_serialization_asmap() -> None:
    """addrman_serialization: same asmap restores positions; another asmap re-buckets."""
    addr = ca("250.1.1.1")
    default_source = NetAddr(Network.IPV6, bytes(16))  # CNetAddr{}
    am_asmap = det(asmap=TEST_ASMAP)
    am_asmap.add([addr], default_source, now=NOW)
    dup = AddrMan.deserialize(am_asmap.serialize(), random.Random(0), asmap=TEST_ASMAP)
    p1, p2 = am_asmap.find_position(addr.service), dup.find_position(addr.service)
    assert p1 is not None and p2 is not None and p1.multiplicity != 0 and p1 == p2
    noasmap = AddrMan.deserialize(am_asmap.serialize(), random.Random(0))
    p3 = noasmap.find_position(addr.service)
    assert p3 is not None and p3.multiplicity != 0
    assert p1.bucket != p3.bucket and p1.position != p3.position

    am_noasmap = det()
    am_noasmap.add([addr], default_source, now=NOW)
    am_asmap2 = AddrMan.deserialize(am_noasmap.serialize(), random.Random(0), asmap=TEST_ASMAP)
    p4 = am_asmap2.find_position(addr.service)
    assert p4 is not None and p4.multiplicity != 0 and p4.bucket != p3.bucket and p4 == p2

    am_noasmap = det()
    addr2 = ca("250.2.1.1")
    am_noasmap.add([addr, addr2], default_source, now=NOW)
    p5, p6 = am_noasmap.find_position(addr.service), am_noasmap.find_position(addr2.service)
    assert p5 is not None and p6 is not None and p5.bucket != p6.bucket
    am_asmap3 = AddrMan.deserialize(am_noasmap.serialize(), random.Random(0), asmap=TEST_ASMAP)
    p7, p8 = am_asmap3.find_position(addr.service), am_asmap3.find_position(addr2.service)
    assert p7 is not None and p8 is not None
    assert p7.bucket == p8.bucket and p7.position != p8.position


def test_remove_invalid() -> None:
    am = det()
    new1, new2, tried1, tried2 = (ca(s) for s in ("5.5.5.5", "6.6.6.6", "7.7.7.7", "8.8.8.8"))
    am.add([new1, tried1, new2, tried2], NetAddr(Network.IPV6, bytes(16)), now=NOW)
    am.good(tried1.service, now=NOW)
    am.good(tried2.service, now=NOW)
    assert am.size() == 4
    data = bytearray(am.serialize())
    pos = data.find(bytes((6, 6, 6, 6)))
    data[pos : pos + 4] = bytes(4)  # 0.0.0.0 is !IsValid()
    pos = data.find(bytes((8, 8, 8, 8)))
    data[pos : pos + 4] = b"\xff" * 4  # 255.255.255.255 is !IsValid()
    am2 = AddrMan.deserialize(bytes(data), random.Random(0))
    assert am2.size() == 2
    assert am2.check() == 0


def test_deserialize_rejects_inconsistent() -> None:
    am = det()
    am.add([ca("250.1.1.1"), ca("250.2.2.2")], ip("252.2.2.2"), now=NOW)
    good = am.serialize()
    # trailing data
    with pytest.raises(AddrManFormatError, match="trailing"):
        AddrMan.deserialize(good + b"\x00", random.Random(0))
    # a null key fails Core's consistency check (-16)
    nullkey = good[:2] + bytes(32) + good[34:]
    with pytest.raises(AddrManFormatError, match="code -16"):
        AddrMan.deserialize(nullkey, random.Random(0))
    # nNew out of range
    bad = good[:34] + (70000).to_bytes(4, "little") + good[38:]
    with pytest.raises(AddrManFormatError, match="nNew=70000"):
        AddrMan.deserialize(bad, random.Random(0))
    # a duplicate entry in the new list breaks mapAddr consistency (-5)
    import struct

    first_end = good.index(bytes((250, 2, 2, 2))) - 11  # start of the second entry
    e1 = good[46:first_end]
    n_ub = struct.pack("<i", 1024 ^ (1 << 30))
    dup_body = good[:34] + struct.pack("<ii", 2, 0) + n_ub + e1 + e1
    buckets = bytearray()
    b1 = am.find_position(svc("250.1.1.1"))
    assert b1 is not None
    for b in range(1024):
        buckets += (
            struct.pack("<i", 1) + struct.pack("<i", 0) if b == b1.bucket else struct.pack("<i", 0)
        )
    with pytest.raises(AddrManFormatError, match="code"):
        AddrMan.deserialize(dup_body + bytes(buckets) + bytes(32), random.Random(0))


def _valid_blob() -> bytes:
    am = det()
    am.add([ca("250.1.1.1", 8333, 9, NOW), ca("2a01::1", 8333, 1, NOW)], ip("252.2.2.2"), now=NOW)
    am.add([AddrEntry(NOW, 1, Service(NetAddr.parse(I2P_1), 0))], None, now=NOW)
    am.good(svc("250.1.1.1", 8333), NOW)
    return am.serialize()


_VALID = _valid_blob()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_deserialize_random_bytes_only_format_error(data: bytes) -> None:
    for blob in (data, _VALID[:46] + data):
        try:
            am = AddrMan.deserialize(blob, random.Random(0))
        except AddrManFormatError as e:
            assert str(e)
            continue
        assert am.check() == 0


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)), min_size=1, max_size=4
    ),
    st.integers(0, len(_VALID)),
)
def test_deserialize_mutated_only_format_error(edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(_VALID)
    for pos, val in edits:
        data[pos] = val
    for blob in (bytes(data), bytes(data[:cut])):
        try:
            am = AddrMan.deserialize(blob, random.Random(0))
        except AddrManFormatError:
            continue
        assert am.check() == 0
        assert len(am) <= 3


def test_deserialize_bucket_count_mismatch_rebuckets() -> None:
    import struct

    am = det()
    am.add(
        [ca("250.1.1.1", 8333, time=NOW), ca("250.2.1.1", 8333, time=NOW)], ip("252.2.2.2"), now=NOW
    )
    data = bytearray(am.serialize())
    # claim 1023 buckets (drop the last bucket's count): positions are recomputed from
    # each entry's own source, which here gives the same places
    data[42:46] = struct.pack("<i", 1023 ^ (1 << 30))
    last = len(data) - 32 - 4
    assert data[last : last + 4] == bytes(4)
    del data[last : last + 4]
    am2 = AddrMan.deserialize(bytes(data), random.Random(0))
    assert am2.raw_entries() == am.raw_entries()


def test_ubucket_count_is_not_allocated() -> None:
    """A huge bucket entry count with no data fails fast, without allocation."""
    import struct

    data = bytearray(det().serialize())
    data[46:50] = struct.pack("<i", 0x7FFFFFFF)
    with pytest.raises(AddrManFormatError, match="truncated"):
        AddrMan.deserialize(bytes(data), random.Random(0))


def test_constants() -> None:
    assert ADDRMAN_NEW_BUCKET_COUNT * ADDRMAN_BUCKET_SIZE == 65536
    with pytest.raises(ValueError):
        AddrMan(random.Random(0), key=b"short")


def _check_internal(am: AddrMan) -> None:
    """Our own bookkeeping (bucket occupancy, per-service counts) matches the tables."""
    for tried, table, fill in (
        (False, am._vv_new, am._new_fill),
        (True, am._vv_tried, am._tried_fill),
    ):
        counts = [0] * len(fill.count)
        net_counts: dict[Network, list[int]] = {}
        for slot, e in enumerate(table):
            if e is not None:
                counts[slot // ADDRMAN_BUCKET_SIZE] += 1
                net_counts.setdefault(e._network, [0] * len(fill.count))[
                    slot // ADDRMAN_BUCKET_SIZE
                ] += 1
        assert fill.count == counts
        assert sorted(fill.nonempty) == [b for b, c in enumerate(counts) if c]
        for (t, net), nf in am._net_fill.items():
            if t == tried:
                assert nf.count == net_counts.get(net, [0] * len(fill.count))
                assert sorted(nf.nonempty) == [b for b, c in enumerate(nf.count) if c]
    svc: dict[tuple[Network, int], list[int]] = {}
    for info in am._map_info.values():
        svc.setdefault((info._network, info.services), [0, 0])[1 if info.in_tried else 0] += 1
    assert am._svc_counts == svc
    slots: dict[int, list[int]] = {}
    for i, e in enumerate(am._vv_new):
        if e is not None:
            slots.setdefault(id(e), []).append(i)
    for info in am._map_info.values():
        assert sorted(info._slots) == slots.get(id(info), [])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_operations_keep_invariants(seed: int) -> None:
    rng = random.Random(seed)
    am = AddrMan(random.Random(seed))
    pool = [
        svc(
            f"{rng.randrange(1, 4)}.{rng.randrange(3)}.{rng.randrange(256)}.{rng.randrange(1, 4)}",
            8333,
        )
        for _ in range(1500)
    ]
    pool += [Service(NetAddr.parse(I2P_1), 0), Service(NetAddr.parse(I2P_2), 0), svc("2a01::5", 1)]
    t = NOW
    for step in range(4000):
        t += rng.randrange(0, 400)
        op = rng.random()
        s = rng.choice(pool)
        if op < 0.45:
            src = rng.choice(pool).addr if rng.random() < 0.8 else None
            when = t - rng.randrange(-900, 40 * 86400)
            am.add(
                [AddrEntry(max(0, when), rng.choice((0, 1, 9, 1033)), s)],
                src,
                rng.choice((0, 7200)),
                now=t,
            )
        elif op < 0.6:
            am.good(s, now=t)
        elif op < 0.7:
            am.attempt(s, rng.random() < 0.7, now=t - rng.randrange(0, 120))
        elif op < 0.75:
            am.set_services(s, rng.choice((0, 1, 9, 1 << 24)))
        elif op < 0.8:
            am.connected(s, now=t)
        elif op < 0.85:
            am.resolve_collisions(now=t)
        elif op < 0.9:
            am.select_tried_collision()
        elif op < 0.95:
            nets = rng.choice((None, {Network.IPV4}, {Network.I2P}, {Network.IPV6, Network.I2P}))
            e, _ = am.select(
                rng.random() < 0.3, nets, now=t, required_services=rng.choice((0, 0, 8, 1 << 24))
            )
            if e is not None:
                assert am.find(e.service) is not None
                if nets is not None:
                    assert e.service.addr.get_network() in nets
        else:
            got = am.get_addr(rng.choice((0, 10, 1000)), rng.choice((0, 23)), now=t)
            assert len({e.service for e in got}) == len(got)
        if step % 500 == 0:
            assert am.check() == 0
            _check_internal(am)
    assert am.check() == 0
    _check_internal(am)
    am2 = AddrMan.deserialize(am.serialize(), random.Random(0))
    assert am2.raw_entries() == am.raw_entries()
    _check_internal(am2)


def test_plain_select_is_core_select_without_floresta_state() -> None:
    am = det()
    a = ca("250.1.1.1", 8333, time=NOW)
    am.add([a], None, now=NOW)
    am.mark_connected(a.service, True)
    assert am.select(now=NOW)[0] == a  # Core's Select knows nothing of "connected"
    assert am.select(now=NOW, floresta=True) == (None, 0.0)
