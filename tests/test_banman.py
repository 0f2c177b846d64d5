"""Tests for peerkeeper.bitcoin.banman.

Ported from Bitcoin Core src/test/banman_tests.cpp (``file``), plus the rules of
src/banman.cpp, src/net_types.cpp, src/addrdb.cpp / src/common/settings.cpp (banlist.json),
src/rpc/net.cpp (listbanned) and src/net.cpp (CreateNodeFromAcceptedSocket,
OpenNetworkConnection), and a check against files from a real Core node
(../shared/data/core_files/banlist.json and listbanned.json; skipped when absent).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from peerkeeper.bitcoin.banman import (
    DEFAULT_MISBEHAVING_BANTIME,
    BanEntry,
    BanlistError,
    BanMan,
    banlist_json_text,
    banmap_from_json,
    parse_banlist_json,
    sorted_banmap,
)
from peerkeeper.bitcoin.bloom import RollingBloomFilter
from peerkeeper.io.addrdb import load_banlist, read_banlist_json, write_banlist_json
from peerkeeper.net.netaddr import IPV4_IN_IPV6_PREFIX, NetAddr, Network, SubNet

CORE_FILES = Path(__file__).resolve().parents[2] / "shared" / "data" / "core_files"
TOR_ADDR = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"
I2P_ADDR = "ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p"
T0 = 1_700_000_000


def ip(s: str) -> NetAddr:
    return NetAddr.parse(s)


def net(s: str) -> SubNet:
    return SubNet.parse(s)


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    return path


# --- Core's banman_tests.cpp --------------------------------------------------------


def test_core_banman_tests_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # BOOST_AUTO_TEST_CASE(file): FakeNodeClock clock{777s}
    entries_write = (
        '{ "banned_nets": ['
        '  { "version": 1, "ban_created": 0, "banned_until": 778, "address": "aaaaaaaaa" },'
        '  { "version": 2, "ban_created": 0, "banned_until": 778, "address": "bbbbbbbbb" },'
        '  { "version": 1, "ban_created": 0, "banned_until": 778, "address": "1.0.0.0/8" }'
        "] }"
    )
    path = write(tmp_path / "banlist_test.json", entries_write)
    with caplog.at_level(logging.INFO, logger="peerkeeper.net"):
        banman = BanMan(tweak=0)
        load_banlist(banman, path, now=777)
    # The invalid entries will be dropped, but the valid one remains
    msgs = [r.getMessage() for r in caplog.records]
    assert "Dropping entry with unparseable address or subnet (aaaaaaaaa) from ban list" in msgs
    assert "Dropping entry with unknown version (2) from ban list" in msgs
    entries_read = banman.get_banned(now=777)
    assert len(entries_read) == 1
    assert entries_read == {net("1.0.0.0/8"): BanEntry(create_time=0, ban_until=778)}


# --- banning ------------------------------------------------------------------------


def test_ban_address_is_host_subnet() -> None:
    bm = BanMan(tweak=1)
    assert bm.ban(ip("198.51.100.7"), now=T0)
    assert bm.dirty
    assert bm.get_banned(T0) == {
        net("198.51.100.7/32"): BanEntry(T0, T0 + DEFAULT_MISBEHAVING_BANTIME)
    }
    assert bm.is_banned(ip("198.51.100.7"), T0)
    assert not bm.is_banned(ip("198.51.100.8"), T0)
    # IsBanned(CSubNet) is an exact lookup, not containment
    assert bm.is_banned(net("198.51.100.7/32"), T0)
    assert bm.is_banned(SubNet.single(ip("198.51.100.7")), T0)
    assert not bm.is_banned(net("198.51.100.0/24"), T0)
    # the same host as IPv4-mapped IPv6 text is the same IPv4 address
    assert bm.is_banned(ip("::ffff:198.51.100.7"), T0)
    # IPv6 /128
    bm.ban(ip("2001:db8::1"), now=T0)
    assert [e["address"] for e in bm.list_banned(T0)] == ["198.51.100.7/32", "2001:db8::1/128"]


def test_ban_subnet_matches_members() -> None:
    bm = BanMan(tweak=2)
    bm.ban(net("203.0.113.0/24"), now=T0)
    bm.ban(net("2a01:4f8::/32"), now=T0, bantime=3600)
    assert bm.is_banned(ip("203.0.113.0"), T0)
    assert bm.is_banned(ip("203.0.113.255"), T0)
    assert not bm.is_banned(ip("203.0.114.1"), T0)
    assert bm.is_banned(ip("2a01:4f8:ffff::1"), T0)
    assert not bm.is_banned(ip("2a01:4f9::1"), T0)
    # networks do not mix: an IPv4 ban does not match IPv6, 0.0.0.0/0 only IPv4
    bm.ban(net("0.0.0.0/0"), now=T0)
    assert bm.is_banned(ip("8.8.8.8"), T0)
    assert not bm.is_banned(ip("2002::1"), T0)
    # an invalid address matches nothing (CSubNet::Match): "::", and, as in Core, the
    # documentation range 2001:db8::/32 (CNetAddr::IsValid refuses RFC 3849 addresses),
    # so a ban of that subnet is listed but matches no address.
    assert not bm.is_banned(NetAddr(Network.IPV6, bytes(16)), T0)
    bm.ban(net("2001:db8::/32"), now=T0)
    assert bm.is_banned(net("2001:db8::/32"), T0)
    assert not bm.is_banned(ip("2001:db8::1"), T0)
    # non-contiguous-mask text is normalised like Core
    assert str(net("203.0.113.77/255.255.255.0")) == "203.0.113.0/24"


def test_ban_non_ip_networks() -> None:
    bm = BanMan(tweak=3)
    tor = ip(TOR_ADDR)
    i2p = ip(I2P_ADDR)
    cjdns = NetAddr.parse("fc00::1", cjdns=True)
    for a in (tor, i2p, cjdns):
        bm.ban(a, now=T0)
        assert bm.is_banned(a, T0)
    assert not bm.is_banned(ip("fc00::1"), T0)  # the IPv6 address is another network
    assert not bm.is_banned(
        ip("kpgvmscirrdqpekbqjsvw5teanhatztpp2gl6eee4zkowvwfxwenqaid.onion"), T0
    )
    # Core's map order: m_net (IPv4 1, IPv6 2, onion 3, i2p 4, cjdns 5)
    assert [e["address"] for e in bm.list_banned(T0)] == [TOR_ADDR, I2P_ADDR, "fc00::1"]


def test_internal_address_cannot_be_banned() -> None:
    # CSubNet(internal CNetAddr) is invalid: Core inserts it and the next sweep drops it.
    bm = BanMan(tweak=4)
    internal = NetAddr.internal("seed.example.org")
    assert not bm.ban(internal, now=T0)
    assert not bm.is_banned(internal, T0)
    assert not bm.unban(internal)
    assert bm.get_banned(T0) == {}


def test_bantime_rules() -> None:
    bm = BanMan(tweak=5)
    a, b, c, d = ip("1.1.1.1"), ip("2.2.2.2"), ip("3.3.3.3"), ip("4.4.4.4")
    bm.ban(a, now=T0, bantime=0)  # 0: default, relative
    bm.ban(b, now=T0, bantime=-5, absolute=True)  # <= 0: default, absolute ignored
    bm.ban(c, now=T0, bantime=T0 + 100, absolute=True)  # until that unix time
    bm.ban(d, now=T0 + 0.9, bantime=60.7)  # whole seconds like GetTime()
    got = bm.get_banned(T0)
    assert got[SubNet.single(a)] == BanEntry(T0, T0 + 86400)
    assert got[SubNet.single(b)] == BanEntry(T0, T0 + 86400)
    assert got[SubNet.single(c)] == BanEntry(T0, T0 + 100)
    assert got[SubNet.single(d)] == BanEntry(T0, T0 + 60)


def test_configured_default_ban_time() -> None:
    bm = BanMan(tweak=5, default_ban_time=600)
    bm.ban(ip("1.1.1.1"), now=T0)
    assert bm.list_banned(T0)[0]["ban_duration"] == 600


def test_ban_only_extends() -> None:
    bm = BanMan(tweak=6)
    a = ip("5.6.7.8")
    assert bm.ban(a, now=T0, bantime=1000)
    bm.dirty = False
    # shorter or equal: no change, not dirty, creation time kept
    assert not bm.ban(a, now=T0 + 10, bantime=990)
    assert not bm.ban(a, now=T0 + 10, bantime=100)
    assert not bm.dirty
    assert bm.get_banned(T0)[SubNet.single(a)] == BanEntry(T0, T0 + 1000)
    # longer: replaced, with the new creation time
    assert bm.ban(a, now=T0 + 10, bantime=991)
    assert bm.dirty
    assert bm.get_banned(T0)[SubNet.single(a)] == BanEntry(T0 + 10, T0 + 1001)


def test_expiry_and_sweep() -> None:
    bm = BanMan(tweak=7)
    a = ip("9.9.9.9")
    bm.ban(a, now=T0, bantime=100)
    bm.ban(net("10.0.0.0/8"), now=T0, bantime=1000)
    bm.dirty = False
    until = T0 + 100
    assert bm.is_banned(a, until - 1)
    assert bm.is_banned(a, until - 0.5)
    # IsBanned: current_time < nBanUntil
    assert not bm.is_banned(a, until)
    assert not bm.is_banned(SubNet.single(a), until)
    # SweepBanned: now > nBanUntil, so a ban ending now stays in the map for a second
    assert bm.sweep_banned(until) == 0
    assert not bm.dirty
    assert len(bm) == 2
    assert bm.sweep_banned(until + 1) == 1
    assert bm.dirty
    assert [e["address"] for e in bm.list_banned(until + 1)] == ["10.0.0.0/8"]
    assert bm.sweep_banned(T0 + 1001) == 1
    assert len(bm) == 0


def test_unban_is_exact() -> None:
    bm = BanMan(tweak=8)
    bm.ban(net("192.0.2.0/24"), now=T0)
    bm.ban(ip("192.0.2.9"), now=T0)
    bm.dirty = False
    assert not bm.unban(ip("192.0.2.10"))  # inside the /24, but not itself banned
    assert not bm.unban(net("192.0.2.0/25"))
    assert not bm.dirty
    assert bm.unban(ip("192.0.2.9"))
    assert bm.dirty
    assert bm.is_banned(ip("192.0.2.9"), T0)  # still inside the /24
    assert bm.unban(net("192.0.2.0/24"))
    assert not bm.is_banned(ip("192.0.2.9"), T0)
    assert not bm.unban(net("192.0.2.0/24"))


def test_clear_banned() -> None:
    bm = BanMan(tweak=9)
    bm.clear_banned()
    assert bm.dirty  # Core marks dirty even when empty
    bm.ban(ip("1.2.3.4"), now=T0)
    bm.ban(net("5.6.0.0/16"), now=T0)
    bm.dirty = False
    bm.clear_banned()
    assert bm.dirty
    assert bm.get_banned(T0) == {}
    assert not bm.is_banned(ip("1.2.3.4"), T0)


def test_list_banned_fields_and_core_order() -> None:
    bm = BanMan(tweak=10)
    bm.ban(net("2001:db8::/32"), now=T0, bantime=3600)
    bm.ban(net("1.2.3.0/25"), now=T0)
    bm.ban(net("1.2.3.0/24"), now=T0 + 5, bantime=T0 + 7205, absolute=True)
    bm.ban(ip("1.2.3.4"), now=T0)
    bm.ban(ip("0.255.0.1"), now=T0)
    listed = bm.list_banned(T0 + 100)
    # std::map<CSubNet> order: network address bytes, then netmask bytes
    assert [e["address"] for e in listed] == [
        "0.255.0.1/32",
        "1.2.3.0/24",
        "1.2.3.0/25",
        "1.2.3.4/32",
        "2001:db8::/32",
    ]
    assert listed[1] == {
        "address": "1.2.3.0/24",
        "ban_created": T0 + 5,
        "banned_until": T0 + 7205,
        "ban_duration": 7200,
        "time_remaining": 7105,
    }
    assert list(listed[0]) == [
        "address",
        "ban_created",
        "banned_until",
        "ban_duration",
        "time_remaining",
    ]
    assert listed[4]["time_remaining"] == 3500
    # listbanned sweeps (GetBanned): expired bans disappear
    assert [e["address"] for e in bm.list_banned(T0 + 3601)][-1] == "1.2.3.4/32"


def test_sorted_banmap_order() -> None:
    subnets = [net(s) for s in ("10.0.0.0/8", "9.0.0.0/8", "::/0", "9.0.0.0/16", TOR_ADDR)]
    bans = {s: BanEntry(0, 1) for s in subnets}
    assert [str(s) for s in sorted_banmap(bans)] == [
        "9.0.0.0/8",
        "9.0.0.0/16",
        "10.0.0.0/8",
        "::/0",
        TOR_ADDR,
    ]


def test_many_bans_lookup() -> None:
    bm = BanMan(tweak=11)
    for i in range(2000):
        bm.ban(NetAddr(Network.IPV4, bytes([11, i >> 8, i & 0xFF, 1])), now=T0)
    bm.ban(net("172.16.0.0/12"), now=T0)
    assert bm.is_banned(ip("11.7.159.1"), T0)  # i = 1951
    assert not bm.is_banned(ip("11.7.159.2"), T0)
    assert not bm.is_banned(ip("11.7.208.1"), T0)  # i = 2000
    assert bm.is_banned(ip("172.31.255.255"), T0)
    assert bm.unban(ip("11.7.159.1"))
    assert not bm.is_banned(ip("11.7.159.1"), T0)  # index rebuilt after a change


# --- dirty flag and dumping ------------------------------------------------------------


def test_dump_if_dirty() -> None:
    bm = BanMan(tweak=12)
    assert not bm.dirty
    assert bm.dump_if_dirty(T0) is None
    bm.ban(ip("1.2.3.4"), now=T0, bantime=10)
    dumped = bm.dump_if_dirty(T0)
    assert dumped == {net("1.2.3.4/32"): BanEntry(T0, T0 + 10)}
    assert not bm.dirty
    assert bm.dump_if_dirty(T0) is None
    bm.mark_dirty()  # the write failed
    assert bm.dump_if_dirty(T0) is not None
    # DumpBanlist sweeps first; the sweep makes it dirty
    assert bm.dump_if_dirty(T0 + 11) == {}
    # discouragement never makes the ban list dirty
    bm.discourage(ip("1.2.3.4"))
    assert not bm.dirty


# --- discouragement ----------------------------------------------------------------------


def test_discourage_keyed_by_get_addr_bytes() -> None:
    tweak = 0x1234_5678
    bm = BanMan(tweak=tweak)
    a = ip("198.51.100.7")
    assert not bm.is_discouraged(a)
    bm.discourage(a)
    assert bm.is_discouraged(a)
    assert not bm.is_discouraged(ip("198.51.100.8"))
    # Core inserts CNetAddr::GetAddrBytes(): the 16-byte v1 form for IPv4
    reference = RollingBloomFilter(50000, 0.000001, tweak)
    reference.insert(IPV4_IN_IPV6_PREFIX + a.addr)
    assert reference.data_words() == bm._discouraged.data_words()
    # Tor v3: the raw 32-byte key
    tor = ip(TOR_ADDR)
    bm.discourage(tor)
    reference.insert(tor.addr)
    assert reference.data_words() == bm._discouraged.data_words()
    assert bm.is_discouraged(tor)
    # discouraged is not banned
    assert not bm.is_banned(a, T0)


def test_clear_discouraged() -> None:
    bm = BanMan(tweak=13)
    a = ip("7.7.7.7")
    bm.discourage(a)
    bm.clear_discouraged()
    assert not bm.is_discouraged(a)
    bm.discourage(a)
    bm.clear_discouraged(tweak=99)
    assert not bm.is_discouraged(a)
    bm.discourage(a)
    assert bm.is_discouraged(a)


# --- admission (src/net.cpp) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "noban", "inbound", "expected"),
    [
        ("plain", False, 0, "accept"),
        ("plain", False, 9, "accept"),
        ("plain", False, 10, "evict-needed"),
        ("plain", True, 10, "evict-needed"),
        ("banned", False, 0, "refuse-banned"),
        ("banned", False, 10, "refuse-banned"),
        ("banned", True, 0, "accept"),
        ("banned", True, 10, "evict-needed"),
        ("discouraged", False, 0, "accept-prefer-evict"),
        ("discouraged", False, 8, "accept-prefer-evict"),
        ("discouraged", False, 9, "refuse-discouraged"),  # nInbound + 1 >= m_max_inbound
        ("discouraged", False, 10, "refuse-discouraged"),
        ("discouraged", True, 9, "accept-prefer-evict"),  # prefer_evict even with NoBan
        ("discouraged", True, 10, "evict-needed"),
        ("both", False, 0, "refuse-banned"),  # the ban is checked first
        ("both", True, 0, "accept-prefer-evict"),
    ],
)
def test_inbound_decision(who: str, noban: bool, inbound: int, expected: str) -> None:
    bm = BanMan(tweak=14)
    addrs = {
        "plain": ip("8.8.8.8"),
        "banned": ip("203.0.113.5"),
        "discouraged": ip("192.0.2.1"),
        "both": ip("203.0.113.6"),
    }
    bm.ban(net("203.0.113.0/24"), now=T0)
    bm.discourage(addrs["discouraged"])
    bm.discourage(addrs["both"])
    got = bm.inbound_decision(addrs[who], T0, noban=noban, inbound_count=inbound, max_inbound=10)
    assert got == expected


def test_inbound_decision_ban_expires() -> None:
    bm = BanMan(tweak=15)
    a = ip("203.0.113.5")
    bm.ban(a, now=T0, bantime=60)
    kw: dict[str, Any] = {"noban": False, "inbound_count": 0, "max_inbound": 10}
    assert bm.inbound_decision(a, T0 + 59, **kw) == "refuse-banned"
    assert bm.inbound_decision(a, T0 + 60, **kw) == "accept"


def test_outbound_allowed() -> None:
    bm = BanMan(tweak=16)
    bm.ban(net("203.0.113.0/24"), now=T0, bantime=60)
    bm.discourage(ip("192.0.2.1"))
    assert bm.outbound_allowed(ip("8.8.8.8"), T0)
    assert not bm.outbound_allowed(ip("203.0.113.77"), T0)
    assert bm.outbound_allowed(ip("203.0.113.77"), T0 + 60)
    assert not bm.outbound_allowed(ip("192.0.2.1"), T0)


# --- banlist.json ---------------------------------------------------------------------


def _entry(
    address: Any, version: Any = 1, created: Any = 10, until: Any = T0 + 50
) -> dict[str, Any]:
    return {"version": version, "ban_created": created, "banned_until": until, "address": address}


def test_write_then_read_roundtrip(tmp_path: Path) -> None:
    bm = BanMan(tweak=17)
    bm.ban(net("2001:db8::/32"), now=T0, bantime=3600)
    bm.ban(ip("198.51.100.7"), now=T0)
    bm.ban(ip(TOR_ADDR), now=T0)
    path = tmp_path / "banlist.json"
    write_banlist_json(path, bm.get_banned(T0))
    assert os.listdir(tmp_path) == ["banlist.json"]  # no temporary file left behind
    text = path.read_text()
    assert text == banlist_json_text(bm.get_banned(T0))
    assert json.loads(text) == bm.to_json()
    assert read_banlist_json(path, T0) == bm.get_banned(T0)
    bm2 = BanMan(tweak=18)
    bm2.load_json(bm.to_json(), T0)
    assert bm2.list_banned(T0) == bm.list_banned(T0)
    assert not bm2.dirty


def test_empty_banlist_text_is_univalue() -> None:
    # UniValue writes an empty array over two lines, unlike Python's json module.
    assert banlist_json_text({}) == (
        "{\n"
        '    "_warning_": "This file is automatically generated and updated by Bitcoin Core. '
        "Please do not edit this file while the node is running, as any changes might be "
        'ignored or overwritten.",\n'
        '    "banned_nets": [\n'
        "    ]\n"
        "}\n"
    )


def test_write_failure_leaves_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "banlist.json", "original")

    def boom(src: str, dst: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk on fire"):
        write_banlist_json(path, {net("1.2.3.4/32"): BanEntry(0, 1)})
    assert path.read_text() == "original"
    assert os.listdir(tmp_path) == ["banlist.json"]


def test_load_sweeps_expired_and_marks_dirty(tmp_path: Path) -> None:
    obj = {"banned_nets": [_entry("1.2.3.4", until=T0 - 1), _entry("5.6.7.8", until=T0)]}
    bm = BanMan(tweak=19)
    bm.load_json(obj, T0)
    assert [e["address"] for e in bm.list_banned(T0)] == ["5.6.7.8/32"]
    assert bm.dirty  # SweepBanned removed one
    path = write(tmp_path / "b.json", json.dumps(obj))
    assert list(read_banlist_json(path, T0)) == [net("5.6.7.8/32")]


def test_load_replaces_current_bans() -> None:
    bm = BanMan(tweak=20)
    bm.ban(ip("9.9.9.9"), now=T0)
    bm.load_json({"banned_nets": [_entry("1.2.3.4/32")]}, T0)
    assert not bm.dirty
    assert not bm.is_banned(ip("9.9.9.9"), T0)
    assert bm.is_banned(ip("1.2.3.4"), T0)


def test_banmap_from_json_entry_rules(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="peerkeeper.net"):
        bans, dropped = banmap_from_json(
            [
                _entry("1.2.3.4", created=1, until=T0 + 1),
                _entry("1.2.3.4/32", created=2, until=T0 + 2),  # same subnet: last wins
                _entry("1.2.3.0/255.255.255.0"),
                {"version": 2},  # unknown version: dropped before the address is read
                _entry("not-an-ip", created="x"),  # bad address: dropped before the times
                _entry("1.2.3.4/33"),
                _entry("10.0.0.1/0.255.0.0"),  # non-contiguous netmask
                _entry("[2001:db8::1]"),
                _entry(TOR_ADDR),
                _entry("example.com"),  # no name lookups
            ]
        )
    assert bans == {
        net("1.2.3.0/24"): BanEntry(10, T0 + 50),
        net("1.2.3.4/32"): BanEntry(2, T0 + 2),
        net("2001:db8::1/128"): BanEntry(10, T0 + 50),
        SubNet.single(ip(TOR_ADDR)): BanEntry(10, T0 + 50),
    }
    assert dropped == [
        "Dropping entry with unknown version (2) from ban list",
        "Dropping entry with unparseable address or subnet (not-an-ip) from ban list",
        "Dropping entry with unparseable address or subnet (1.2.3.4/33) from ban list",
        "Dropping entry with unparseable address or subnet (10.0.0.1/0.255.0.0) from ban list",
        "Dropping entry with unparseable address or subnet (example.com) from ban list",
    ]
    assert [r.getMessage() for r in caplog.records] == dropped


def test_banmap_from_json_object_values_and_duplicate_keys() -> None:
    # UniValue getValues() also accepts an object (its values); duplicate keys inside an
    # entry: operator[] finds the first.
    obj = parse_banlist_json(
        '{"banned_nets": {"x": {"version": 1, "ban_created": 1, "ban_created": 99,'
        ' "banned_until": 5, "address": "1.1.1.1"}}}'
    )
    bans, _ = banmap_from_json(obj["banned_nets"])
    assert bans == {net("1.1.1.1/32"): BanEntry(1, 5)}


def test_banmap_from_json_cjdns() -> None:
    bans, _ = banmap_from_json([_entry("fc00::1")], cjdns=True)
    (subnet,) = bans
    assert subnet.network.network is Network.CJDNS
    bans, _ = banmap_from_json([_entry("fc00::1")])
    (subnet,) = bans
    assert subnet.network.network is Network.IPV6


BAD_SHAPES = [
    # (text, words the message must contain)
    ("", "does not contain valid JSON"),
    ("not json", "does not contain valid JSON"),
    ('{"banned_nets": []', "does not contain valid JSON"),
    ('{"banned_nets": [NaN]}', "does not contain valid JSON"),
    ("\ufeff{}", "does not contain valid JSON"),
    ("[]", "Found non-object value [] in settings file"),
    ("42", "Found non-object value 42"),
    ('{"banned_nets": [], "banned_nets": []}', "Found duplicate key banned_nets"),
    ("{}", "JSON value is not an object or array as expected"),
    ('{"banned_nets": 5}', "JSON value is not an object or array as expected"),
    ('{"banned_nets": null}', "JSON value is not an object or array as expected"),
    ('{"banned_nets": [5]}', "JSON value of type null is not of expected type number"),
    ('{"banned_nets": [{}]}', "JSON value of type null is not of expected type number"),
    ('{"banned_nets": [{"version": "1"}]}', "of type string is not of expected type number"),
    ('{"banned_nets": [{"version": true}]}', "of type bool is not of expected type number"),
    ('{"banned_nets": [{"version": 1.0}]}', "JSON integer out of range"),
    ('{"banned_nets": [{"version": 1e0}]}', "JSON integer out of range"),
    ('{"banned_nets": [{"version": 4294967297}]}', "JSON integer out of range"),
    ('{"banned_nets": [{"version": 1}]}', "of type null is not of expected type string"),
    ('{"banned_nets": [{"version": 1, "address": 7}]}', "of type number is not of expected"),
    (
        '{"banned_nets": [{"version": 1, "address": "1.2.3.4", "banned_until": 5}]}',
        "JSON value of type null is not of expected type number",
    ),
    (
        '{"banned_nets": [{"version": 1, "address": "1.2.3.4", "ban_created": 1,'
        ' "banned_until": 9223372036854775808}]}',
        "JSON integer out of range",
    ),
]


@pytest.mark.parametrize(("text", "problem"), BAD_SHAPES)
def test_bad_files_raise_and_leave_bans(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path / "banlist.json", text)
    bm = BanMan(tweak=21)
    bm.ban(ip("9.9.9.9"), now=T0)
    before = bm.get_banned(T0)
    with pytest.raises(BanlistError) as ei:
        load_banlist(bm, path, T0)
    assert problem in str(ei.value)
    assert str(path) in str(ei.value)
    assert bm.get_banned(T0) == before
    assert bm.dirty  # untouched: still the ban's dirty flag
    with pytest.raises(BanlistError):
        read_banlist_json(path, T0)


def test_bad_bytes_and_missing_file(tmp_path: Path) -> None:
    path = write(tmp_path / "banlist.json", b'{"banned_nets": ["\xff"]}')
    with pytest.raises(BanlistError, match="does not contain valid JSON"):
        read_banlist_json(path, T0)
    with pytest.raises(BanlistError, match="does not exist"):
        read_banlist_json(tmp_path / "nope.json", T0)
    with pytest.raises(BanlistError, match="nope.json"):
        load_banlist(BanMan(tweak=0), tmp_path / "nope.json", T0)


def test_whole_file_error_even_after_good_entries() -> None:
    # Core throws out of BanMapFromJson at the bad entry; the whole file is unusable.
    obj = {"banned_nets": [_entry("1.1.1.1"), {"version": 1, "address": "2.2.2.2"}]}
    bm = BanMan(tweak=22)
    with pytest.raises(BanlistError, match="Cannot parse banlist"):
        bm.load_json(obj, T0)
    assert len(bm) == 0
    assert not bm.dirty


def test_warning_key_and_unknown_keys_ignored() -> None:
    obj = parse_banlist_json('{"_warning_": "x", "other": 1, "banned_nets": []}')
    assert obj == {"other": 1, "banned_nets": []}


# --- files from a real Core node ------------------------------------------------------


def _core_file(name: str) -> Path:
    path = CORE_FILES / name
    if not path.is_file():
        pytest.skip(f"Core reference file {path} not present (shared test data not mounted)")
    return path


def test_core_banlist_matches_listbanned() -> None:
    banlist = _core_file("banlist.json")
    listbanned = json.loads(_core_file("listbanned.json").read_text())
    # The node answered listbanned at the moment the bans were created.
    now = min(e["ban_created"] for e in listbanned)
    bm = BanMan(tweak=23)
    load_banlist(bm, banlist, now)
    assert not bm.dirty
    assert bm.list_banned(now) == listbanned
    bans = read_banlist_json(banlist, now)
    assert [(str(s), e.create_time, e.ban_until) for s, e in bans.items()] == [
        (e["address"], e["ban_created"], e["banned_until"]) for e in listbanned
    ]


def test_core_banlist_written_back_identically(tmp_path: Path) -> None:
    banlist = _core_file("banlist.json")
    core_text = banlist.read_text()
    now = min(e["ban_created"] for e in json.loads(core_text)["banned_nets"])
    bm = BanMan(tweak=24)
    load_banlist(bm, banlist, now)
    assert bm.to_json() == json.loads(core_text)
    out = tmp_path / "banlist.json"
    write_banlist_json(out, bm.get_banned(now))
    assert json.loads(out.read_text()) == json.loads(core_text)
    assert out.read_bytes() == banlist.read_bytes()  # byte for byte


def test_core_banlist_later_sweeps() -> None:
    banlist = _core_file("banlist.json")
    listbanned = json.loads(_core_file("listbanned.json").read_text())
    shortest = min(listbanned, key=lambda e: e["banned_until"])
    later = shortest["banned_until"] + 1
    bans = read_banlist_json(banlist, later)
    assert shortest["address"] not in {str(s) for s in bans}
    assert len(bans) == len(listbanned) - 1
