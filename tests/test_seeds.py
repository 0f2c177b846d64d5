"""Tests for peerkeeper.bitcoin.seeds and peerkeeper.io.dns: fixed seeds (Core
contrib/seeds nodes_*.txt), the DNS seed schedule (Core ThreadDNSAddressSeed) in
simulated time, and the asyncio shell against a real DNS server (dnslib) on 127.0.0.1.

The real fixed-seed lists are read from ``../shared/data/fixed_seeds`` (skipped when
absent).  No test connects to any seeded address: the DNS answers are only handed to
callbacks and inspected.
"""

from __future__ import annotations

import hashlib
import logging
import random
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import SeedZone, dns_server

from peerkeeper.bitcoin import seeds
from peerkeeper.bitcoin.addrman import AddrMan
from peerkeeper.bitcoin.connman import ConnManCore, ConnManOptions, Resolve
from peerkeeper.bitcoin.seeds import (
    DNS_SEEDS,
    DnsSeedSchedule,
    Done,
    QuerySeed,
    SeedFileError,
    Wait,
    dns_seed_entries,
    dns_seed_source,
    fixed_seed_entries,
    fixed_seeds_reason,
    fixed_seeds_source,
    parse_fixed_seeds,
    seed_query_name,
)
from peerkeeper.io.addrdb import load_fixed_seeds
from peerkeeper.io.dns import is_invalid_name, make_resolver, resolve_seed, resolve_service
from peerkeeper.net.chains import CHAINS
from peerkeeper.net.netaddr import NetAddr, Network, Service
from peerkeeper.net.netbase import ProxySettings, parse_proxy
from peerkeeper.wire.messages import AddrEntry, ServiceFlags

FIXED_SEEDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "fixed_seeds"
DAY = 86400
NOW = 1_700_000_000.0

# A valid Tor v3 name (from Core's src/test/netbase_tests.cpp) and an I2P name.
ONION = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"
I2P = "ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p"


# --- constants ---------------------------------------------------------------------------


def test_core_constants() -> None:
    assert seeds.DNSSEEDS_TO_QUERY_AT_ONCE == 3
    assert seeds.SEED_OUTBOUND_CONNECTION_THRESHOLD == 2
    assert seeds.DNSSEEDS_DELAY_FEW_PEERS == 11
    assert seeds.DNSSEEDS_DELAY_MANY_PEERS == 300
    assert seeds.DNSSEEDS_DELAY_PEER_THRESHOLD == 1000
    assert seeds.SEEDNODE_TIMEOUT == 30
    assert seeds.FIXED_SEEDS_DELAY == 60
    assert seeds.ADD_NEXT_SEEDNODE == 10
    assert seeds.MAX_IPS_PER_DNS_SEED == 32
    assert seeds.SEEDS_SERVICE_FLAGS == 0x9
    assert seeds.SEEDS_ASSUMED_SERVICE_FLAGS == (
        ServiceFlags.NODE_NETWORK | ServiceFlags.NODE_WITNESS | ServiceFlags.NODE_P2P_V2
    )


def test_dns_seeds_per_chain() -> None:
    assert set(DNS_SEEDS) == set(CHAINS)
    assert DNS_SEEDS["regtest"] == ("dummySeed.invalid.",)  # Core chainparams.cpp
    assert DNS_SEEDS["main"][0] == "dnsseed.bluematt.me."
    assert len(DNS_SEEDS["main"]) == 7
    for chain, names in DNS_SEEDS.items():
        assert all(n.endswith(".") for n in names)  # Core spells them with the root dot
        # chains.py lists the same seeds (without the dot), in Core's order.
        assert tuple(n.rstrip(".") for n in names) == CHAINS[chain].dns_seeds


def test_seed_query_name_and_sources() -> None:
    assert seed_query_name("dnsseed.bluematt.me.") == "x9.dnsseed.bluematt.me."
    assert seed_query_name("seed.example.", 0xD) == "xd.seed.example."
    assert seed_query_name("seed.example.", 0x809) == "x809.seed.example."
    src = dns_seed_source("x9.dnsseed.bluematt.me.")
    assert src.network is Network.INTERNAL
    assert src == NetAddr.internal("x9.dnsseed.bluematt.me.")
    assert src != NetAddr.internal("x9.dnsseed.bluematt.me")  # the dot is hashed too
    assert fixed_seeds_source() == NetAddr.internal("fixedseeds")
    assert str(fixed_seeds_source()).endswith(".internal")


# --- parse_fixed_seeds -------------------------------------------------------------------

GOOD_LINES: list[tuple[str, Network, int, str]] = [
    ("1.2.3.4:8333", Network.IPV4, 8333, "1.2.3.4:8333"),
    ("1.2.3.4", Network.IPV4, 18444, "1.2.3.4:18444"),
    ("[2001:db8::1]:8333", Network.IPV6, 8333, "[2001:db8::1]:8333"),
    ("2a01:4f8::1", Network.IPV6, 18444, "[2a01:4f8::1]:18444"),
    (
        "[fc32:17ea:e415:c3bf:9808:149d:b5a2:c9aa]:8333",
        Network.CJDNS,
        8333,
        "[fc32:17ea:e415:c3bf:9808:149d:b5a2:c9aa]:8333",
    ),
    (f"{ONION}:8333", Network.TORV3, 8333, f"{ONION}:8333"),
    (f"{I2P}:0", Network.I2P, 0, f"{I2P}:0"),
    ("  1.2.3.4:8333\t# a comment", Network.IPV4, 8333, "1.2.3.4:8333"),
]


@pytest.mark.parametrize(("line", "net", "port", "text"), GOOD_LINES)
def test_parse_good_line(line: str, net: Network, port: int, text: str) -> None:
    [svc] = parse_fixed_seeds(line, 18444)
    assert svc.addr.network is net
    assert svc.port == port
    assert str(svc) == text


def test_parse_comments_blank_lines_crlf_and_torv2() -> None:
    text = (
        "# header comment\r\n"
        "\r\n"
        "1.2.3.4:8333\r\n"
        "   \n"
        "expyuzz4wqqyqhjn.onion:8333  # Tor v2: skipped, as Core's generator does\n"
        "[2a01:4f8::1]:8333\r"
        "5.6.7.8:8333"
    )
    got = parse_fixed_seeds(text, 8333)
    assert [str(s) for s in got] == ["1.2.3.4:8333", "[2a01:4f8::1]:8333", "5.6.7.8:8333"]
    assert parse_fixed_seeds("", 8333) == []
    assert parse_fixed_seeds("# only\n\n#comments\n", 8333) == []
    # duplicates are kept, like the generator
    assert len(parse_fixed_seeds("1.2.3.4:8333\n1.2.3.4:8333\n", 0)) == 2


BAD_ONION_CHECKSUM = ONION[:10] + ("a" if ONION[10] != "a" else "b") + ONION[11:]

BAD_LINES = [
    "garbage",
    "1.2.3.4:99999",
    "1.2.3.4:65536",
    "1.2.3.4:-1",
    "1.2.3.4:abc",
    "1.2.3.4:",
    "256.1.1.1:8333",
    "1.2.3:8333",
    "[2001:db8::1:8333",
    "2001:db8:::1",
    "seed.bitcoin.sipa.be:8333",
    f"{BAD_ONION_CHECKSUM}:8333",
    "aaaa.onion:8333",
    "abc.b32.i2p:0",
    "fe80::1%1",
    "[fe80::1%1]:8333",
    "1.2.3.4:8333 5.6.7.8:8333",
    "1.2.3.4\x00:8333",
    "[fd6b:88c0:8724::1]:8333",  # Core's internal range: refused
]


@pytest.mark.parametrize("bad", BAD_LINES)
def test_parse_bad_line_raises_with_line_number(bad: str) -> None:
    text = f"# comment\n1.2.3.4:8333\n\n{bad}\n5.6.7.8:8333\n"
    with pytest.raises(SeedFileError) as ei:
        parse_fixed_seeds(text, 8333, source="nodes_x.txt")
    err = ei.value
    assert isinstance(err, ValueError)
    assert err.lineno == 4
    assert err.line == bad
    assert err.source == "nodes_x.txt"
    assert str(err).startswith("nodes_x.txt:4: ")
    assert err.reason


def test_bad_onion_checksum_is_the_only_difference() -> None:
    assert parse_fixed_seeds(f"{ONION}:8333", 0)
    with pytest.raises(SeedFileError):
        parse_fixed_seeds(f"{BAD_ONION_CHECKSUM}:8333", 0)


def test_parse_bad_default_port() -> None:
    with pytest.raises(SeedFileError) as ei:
        parse_fixed_seeds("1.2.3.4:8333", 70000)
    assert ei.value.lineno is None


def test_load_fixed_seeds_errors(tmp_path: Path) -> None:
    bad_utf8 = tmp_path / "nodes_bad.txt"
    bad_utf8.write_bytes(b"1.2.3.4:8333\n\xff\xfe:8333\n")
    with pytest.raises(SeedFileError) as ei:
        load_fixed_seeds(bad_utf8)
    assert ei.value.lineno == 2
    assert str(bad_utf8) in str(ei.value)
    bad_line = tmp_path / "nodes_bad2.txt"
    bad_line.write_text("1.2.3.4:8333\nnope\n", encoding="utf-8")
    with pytest.raises(SeedFileError) as ei2:
        load_fixed_seeds(bad_line)
    assert ei2.value.lineno == 2 and ei2.value.source == str(bad_line)
    with pytest.raises(OSError):
        load_fixed_seeds(tmp_path / "missing.txt")
    good = tmp_path / "nodes_ok.txt"
    good.write_text("1.2.3.4\n", encoding="utf-8")
    assert load_fixed_seeds(good) == [Service(NetAddr.parse("1.2.3.4"), 0)]
    assert load_fixed_seeds(good, 8333) == [Service(NetAddr.parse("1.2.3.4"), 8333)]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_parse_arbitrary_text_never_raises_other_errors(text: str) -> None:
    try:
        out = parse_fixed_seeds(text, 8333)
    except SeedFileError as e:
        assert e.lineno is not None and e.lineno >= 1
    else:
        assert all(isinstance(s, Service) for s in out)


_IPV6_SPECIAL = (
    bytes.fromhex("00000000000000000000ffff"),  # v4-mapped -> IPv4
)


def _seed_addrs() -> st.SearchStrategy[NetAddr]:
    def ok_ipv6(b: bytes) -> bool:
        return (
            b[0] != 0xFC
            and b[:12] not in _IPV6_SPECIAL
            and b[:6] not in (bytes.fromhex("fd87d87eeb43"), bytes.fromhex("fd6b88c08724"))
        )

    return st.one_of(
        st.binary(min_size=4, max_size=4).map(lambda b: NetAddr(Network.IPV4, b)),
        st.binary(min_size=16, max_size=16).filter(ok_ipv6).map(lambda b: NetAddr(Network.IPV6, b)),
        st.binary(min_size=15, max_size=15).map(lambda b: NetAddr(Network.CJDNS, b"\xfc" + b)),
        st.binary(min_size=32, max_size=32).map(lambda b: NetAddr(Network.TORV3, b)),
        st.binary(min_size=32, max_size=32).map(lambda b: NetAddr(Network.I2P, b)),
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_seed_addrs(), st.integers(0, 65535)), max_size=20))
def test_parse_round_trips_core_text(pairs: list[tuple[NetAddr, int]]) -> None:
    svcs = [Service(a, p) for a, p in pairs]
    text = "\n".join(str(s) for s in svcs)
    assert parse_fixed_seeds(text, 1) == svcs


# --- the real lists ----------------------------------------------------------------------

# sha256 of Core's generated chainparams_seed_<chain> arrays (src/chainparamsseeds.h of
# the Core version these nodes_*.txt files come from): parsing the text and serializing
# it BIP155-style, as contrib/seeds/generate-seeds.py does, must give the same bytes.
CORE_SEED_BLOB_SHA256 = {
    "main": "7d10e20028806d791445e5780f6ab230d36ba52d2549f7d1159287c4cf341a10",
    "signet": "ba4e881f3ae7c97c8a17a8fb2432ce082d058d34373c9356f8ef13d0e8293332",
    "test": "31062ba72abafb74792a47062a9ffc343998124d9d861096b5ba5be6c336a34f",
    "testnet4": "e01497b6399a196ff32b880b3585e99b967e0bf70711bc062a018e02215b4b64",
}


def _seed_file(chain: str) -> Path:
    path = FIXED_SEEDS / f"nodes_{chain}.txt"
    if not path.exists():
        pytest.skip(f"fixed seed list {path} not present (shared test data not mounted)")
    return path


def _classify(line: str) -> Network | None:
    """A deliberately simple classifier for the shipped lists (all lines carry a port)."""
    line = line.split("#")[0].strip()
    if not line:
        return None
    host = line.rsplit(":", 1)[0]
    if host.endswith(".onion"):
        return Network.TORV3
    if host.endswith(".b32.i2p"):
        return Network.I2P
    if host.startswith("[fc"):
        return Network.CJDNS
    if host.startswith("["):
        return Network.IPV6
    return Network.IPV4


@pytest.mark.parametrize("chain", ["main", "test", "testnet4", "signet"])
def test_real_lists_parse_like_core(chain: str) -> None:
    path = _seed_file(chain)
    got = load_fixed_seeds(path, CHAINS[chain].default_port)
    counts: dict[Network, int] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        net = _classify(line)
        if net is not None:
            counts[net] = counts.get(net, 0) + 1
    parsed: dict[Network, int] = {}
    for svc in got:
        parsed[svc.addr.network] = parsed.get(svc.addr.network, 0) + 1
    assert parsed == counts
    assert sum(counts.values()) == len(got) > 100
    # Byte-exact with Core's generated array.
    blob = bytearray()
    for svc in got:
        net_id, raw = svc.addr.to_bip155()
        assert len(raw) < 253
        blob += bytes([net_id, len(raw)]) + raw + svc.port.to_bytes(2, "big")
    assert hashlib.sha256(blob).hexdigest() == CORE_SEED_BLOB_SHA256[chain]


def test_real_main_list_counts_and_ports() -> None:
    path = _seed_file("main")
    got = load_fixed_seeds(path)
    by_net: dict[Network, list[Service]] = {}
    for svc in got:
        by_net.setdefault(svc.addr.network, []).append(svc)
    assert set(by_net) == {Network.IPV4, Network.IPV6, Network.TORV3, Network.I2P, Network.CJDNS}
    # independent count of CJDNS lines straight from the text
    text = path.read_text(encoding="utf-8")
    assert len(by_net[Network.CJDNS]) == sum(
        1 for ln in text.splitlines() if ln.strip().lower().startswith("[fc")
    )
    assert all(s.port == 0 for s in by_net[Network.I2P])
    assert all(s.port == 8333 for s in by_net[Network.IPV4])
    assert all(s.addr.is_routable() for s in got)


# --- fixed seeds: entries and the "when" rule --------------------------------------------


def _services(*texts: str) -> list[Service]:
    return [Service.parse(t, 8333, cjdns=True) for t in texts]


def test_fixed_seed_entries_filter_time_services_order() -> None:
    svcs = _services(
        "1.2.3.4:8333", f"{ONION}:8333", "[2a01:4f8::1]:8333", "5.6.7.8:8333", f"{I2P}:0"
    )
    rng = random.Random(1)
    entries = fixed_seed_entries(svcs, {Network.IPV4, Network.I2P}, NOW + 0.9, rng)
    assert [e.service for e in entries] == [svcs[0], svcs[3], svcs[4]]  # file order kept
    for e in entries:
        assert isinstance(e, AddrEntry)
        assert e.services == 0x809
        assert NOW - 14 * DAY < e.time <= NOW - 7 * DAY
        assert isinstance(e.time, int)
    assert fixed_seed_entries(svcs, set(), NOW, rng) == []
    assert [e.service for e in fixed_seed_entries(svcs, None, NOW, rng)] == svcs
    # times are drawn for every seed before filtering (Core ConvertSeeds then remove_if):
    a = fixed_seed_entries(svcs, None, NOW, random.Random(7))
    b = fixed_seed_entries(svcs, {Network.IPV4}, NOW, random.Random(7))
    assert [e for e in a if e.service.addr.network is Network.IPV4] == b


def test_fixed_seed_entries_time_window_covered() -> None:
    svcs = _services("1.2.3.4:8333") * 2000
    times = [e.time for e in fixed_seed_entries(svcs, None, NOW, random.Random(3))]
    assert min(times) > NOW - 14 * DAY and max(times) <= NOW - 7 * DAY
    assert min(times) < NOW - 13.9 * DAY and max(times) > NOW - 7.1 * DAY


def test_fixed_seed_entries_skip_unroutable_network() -> None:
    # An unroutable address's network is UNROUTABLE (Core GetNetwork): never matched.
    svcs = _services("10.0.0.1:8333", "1.2.3.4:8333")
    got = fixed_seed_entries(svcs, {Network.IPV4}, NOW, random.Random(0))
    assert [str(e.service) for e in got] == ["1.2.3.4:8333"]


FIX_KW: dict[str, Any] = dict(
    fixedseeds_enabled=True,
    already_added=False,
    empty_reachable_networks={Network.IPV4},
    dnsseed=True,
    seednodes=False,
    addnodes=False,
)


@pytest.mark.parametrize(
    ("elapsed", "changes", "expected"),
    [
        (0, {}, None),
        (60, {}, None),  # "> start + 1 min", not >=
        (60.9, {}, None),  # whole seconds compared
        (61, {}, seeds.FIXED_SEEDS_AFTER_DELAY_MSG),
        (61, {"fixedseeds_enabled": False}, None),
        (61, {"already_added": True}, None),
        (61, {"empty_reachable_networks": set()}, None),
        (0, {"dnsseed": False}, seeds.FIXED_SEEDS_NO_OTHER_SOURCE_MSG),
        (0, {"dnsseed": False, "seednodes": True}, None),
        (0, {"dnsseed": False, "addnodes": True}, None),
        (0, {"dnsseed": False, "fixedseeds_enabled": False}, None),
        (0, {"dnsseed": False, "empty_reachable_networks": set()}, None),
        (61, {"dnsseed": False, "addnodes": True}, seeds.FIXED_SEEDS_AFTER_DELAY_MSG),
    ],
)
def test_fixed_seeds_reason(elapsed: float, changes: dict[str, Any], expected: str | None) -> None:
    kw = {**FIX_KW, **changes}
    start = NOW
    assert fixed_seeds_reason(start + elapsed, start, **kw) == expected


# --- DNS seed entries --------------------------------------------------------------------


def test_dns_seed_entries() -> None:
    addrs = [NetAddr.parse(f"8.8.{i // 256}.{i % 256}") for i in range(40)]
    addrs.insert(1, NetAddr.internal("x"))  # internal results are never accepted
    rng = random.Random(5)
    entries = dns_seed_entries(addrs, 8333, NOW + 0.5, rng)
    assert len(entries) == 32
    assert [e.service.addr for e in entries] == [a for a in addrs if not a.is_internal()][:32]
    for e in entries:
        assert e.service.port == 8333
        assert e.services == 0x809
        assert NOW - 7 * DAY < e.time <= NOW - 3 * DAY
    many = dns_seed_entries([addrs[0]] * 32, 1, NOW, rng) * 100
    times = [e.time for e in many]
    assert len(set(times)) > 1
    assert dns_seed_entries([], 8333, NOW, rng) == []


# --- DnsSeedSchedule in simulated time ---------------------------------------------------

Snap = Callable[[float], tuple[int, int, bool]]


def _drive(
    sched: DnsSeedSchedule,
    snap: Snap,
    found: Callable[[str], int] = lambda s: 1,
    t0: float = NOW,
    max_steps: int = 10_000,
) -> tuple[list[tuple[str, float, Any]], float]:
    """Run a schedule: ("wait", t, seconds), ("query", t, seed), ("log", t, msg), ("done", t, None)."""
    t = t0
    trace: list[tuple[str, float, Any]] = []
    for _ in range(max_steps):
        size, outbound, active = snap(t)
        step = sched.next_step(
            t, addrman_size=size, full_outbound_count=outbound, network_active=active
        )
        for m in step.messages:
            trace.append(("log", t, m))
        if isinstance(step, Wait):
            assert step.until > t
            trace.append(("wait", t, round(step.until - t, 6)))
            t = step.until
        elif isinstance(step, QuerySeed):
            assert step.query_name == f"x9.{step.seed}"
            trace.append(("query", t, step.seed))
            sched.seed_done(found(step.seed))
        else:
            assert isinstance(step, Done)
            trace.append(("done", t, None))
            return trace, t
    raise AssertionError("schedule did not finish")


def _kinds(trace: list[tuple[str, float, Any]], kind: str) -> list[Any]:
    return [x[2] for x in trace if x[0] == kind]


SEEDS7 = [f"seed{i}.example." for i in range(7)]


def test_schedule_empty_addrman_queries_all_at_once() -> None:
    sched = DnsSeedSchedule(SEEDS7, random.Random(1))
    trace, end = _drive(sched, lambda t: (0, 0, True))
    assert _kinds(trace, "wait") == []
    assert sorted(_kinds(trace, "query")) == sorted(SEEDS7)
    assert _kinds(trace, "query") == sched.seeds  # in shuffled order
    assert end == NOW
    assert _kinds(trace, "log")[-1] == "7 addresses found from DNS seeds"
    assert sched.done and sched.found == 7


def test_schedule_shuffles_with_rng() -> None:
    a = DnsSeedSchedule(SEEDS7, random.Random(1)).seeds
    b = DnsSeedSchedule(SEEDS7, random.Random(1)).seeds
    c = DnsSeedSchedule(SEEDS7, random.Random(2)).seeds
    assert a == b and sorted(a) == SEEDS7
    others = [DnsSeedSchedule(SEEDS7, random.Random(i)).seeds for i in range(2, 12)]
    assert any(o != a for o in others + [c])  # the rng decides the order
    assert any(o != SEEDS7 for o in others)  # and it is shuffled


def test_schedule_forced_queries_all_even_with_addresses() -> None:
    sched = DnsSeedSchedule(SEEDS7, random.Random(1), forcednsseed=True)
    trace, end = _drive(sched, lambda t: (5000, 0, True))
    assert _kinds(trace, "wait") == []
    assert len(_kinds(trace, "query")) == 7 and end == NOW


def test_schedule_few_peers_batches_of_three_with_11s_waits() -> None:
    sched = DnsSeedSchedule(SEEDS7, random.Random(1))
    trace, end = _drive(sched, lambda t: (10, 0, True))
    queries = [(x[1] - NOW, x[2]) for x in trace if x[0] == "query"]
    assert [q[0] for q in queries] == [11, 11, 11, 22, 22, 22, 33]
    assert _kinds(trace, "wait") == [11, 11, 11]
    assert _kinds(trace, "log").count("Waiting 11 seconds before querying DNS seeds.") == 3
    assert end == NOW + 33


def test_schedule_many_peers_waits_5_minutes_in_11s_slices() -> None:
    sched = DnsSeedSchedule(SEEDS7[:3], random.Random(1))
    trace, end = _drive(sched, lambda t: (1000, 0, True))
    waits = _kinds(trace, "wait")
    assert waits == [11] * 27 + [3]
    assert sum(waits) == 300
    assert "Waiting 300 seconds before querying DNS seeds." in _kinds(trace, "log")
    assert [x[1] - NOW for x in trace if x[0] == "query"] == [300, 300, 300]
    assert end == NOW + 300


def test_schedule_999_is_few_peers() -> None:
    trace, _ = _drive(DnsSeedSchedule(SEEDS7[:1], random.Random(1)), lambda t: (999, 0, True))
    assert _kinds(trace, "wait") == [11]


def test_schedule_delay_fixed_at_start_but_wait_decided_per_batch() -> None:
    # Addrman empty at start -> every seed "right now", no waits even if it fills later.
    sizes = iter([0] + [50] * 100)
    trace, _ = _drive(DnsSeedSchedule(SEEDS7, random.Random(1)), lambda t: (next(sizes), 0, True))
    assert _kinds(trace, "wait") == []
    assert len(_kinds(trace, "query")) == 7


def test_schedule_stops_when_peers_arrive_during_wait() -> None:
    # First batch waits 11 s then queries 3; peers arrive at +20 s, seen at the next slice.
    sched = DnsSeedSchedule(SEEDS7, random.Random(1))
    trace, end = _drive(sched, lambda t: (10, 2 if t >= NOW + 20 else 0, True))
    assert len(_kinds(trace, "query")) == 3
    assert end == NOW + 22
    logs = _kinds(trace, "log")
    assert logs[-2:] == [
        "3 addresses found from DNS seeds",
        "P2P peers available. Finished DNS seeding.",
    ]


def test_schedule_skips_when_peers_arrive_before_any_query() -> None:
    sched = DnsSeedSchedule(SEEDS7, random.Random(1))
    trace, end = _drive(sched, lambda t: (10, 2 if t > NOW else 0, True))
    assert _kinds(trace, "query") == []
    assert end == NOW + 11
    assert _kinds(trace, "log")[-1] == "P2P peers available. Skipped DNS seeding."
    # found stays 0 even if a batch ran but answered nothing
    sched2 = DnsSeedSchedule(SEEDS7, random.Random(1))
    trace2, _ = _drive(sched2, lambda t: (10, 2 if t >= NOW + 20 else 0, True), found=lambda s: 0)
    assert _kinds(trace2, "log")[-1] == "P2P peers available. Skipped DNS seeding."


def test_schedule_many_peers_wakes_early_every_11s() -> None:
    sched = DnsSeedSchedule(SEEDS7, random.Random(1))
    trace, end = _drive(sched, lambda t: (5000, 2 if t >= NOW + 40 else 0, True))
    assert _kinds(trace, "query") == []
    assert end == NOW + 44  # slices end at 11, 22, 33, 44


def test_schedule_seednode_reaches_threshold_then_skips() -> None:
    sched = DnsSeedSchedule(SEEDS7, random.Random(1), seednode_configured=True)
    trace, end = _drive(sched, lambda t: (10, 2 if t >= NOW + 5 else 0, True))
    assert set(_kinds(trace, "wait")) == {0.5}
    assert end == NOW + 5
    logs = _kinds(trace, "log")
    assert logs[0].startswith("-seednode enabled. Trying the provided seeds for 30 seconds")
    assert "P2P peers available. Finished fetching data from seed nodes." in logs
    assert logs[-1] == "Skipping DNS seeds. Enough peers have been found"
    assert _kinds(trace, "query") == []


def test_schedule_seednode_threshold_but_empty_addrman_still_queries() -> None:
    sched = DnsSeedSchedule(SEEDS7, random.Random(1), seednode_configured=True)
    trace, _ = _drive(sched, lambda t: (0, 2 if t >= NOW + 1 else 0, True))
    assert len(_kinds(trace, "query")) == 7


def test_schedule_seednode_threshold_with_forcednsseed_still_queries() -> None:
    sched = DnsSeedSchedule(SEEDS7, random.Random(1), seednode_configured=True, forcednsseed=True)
    trace, _ = _drive(sched, lambda t: (50, 2, True))
    assert len(_kinds(trace, "query")) == 7
    assert _kinds(trace, "wait") == [0.5]


def test_schedule_seednode_timeout_hands_over_to_dns() -> None:
    sched = DnsSeedSchedule(SEEDS7[:2], random.Random(1), seednode_configured=True)
    trace, end = _drive(sched, lambda t: (10, 1, True))
    logs = _kinds(trace, "log")
    assert (
        "Couldn't connect to enough peers via seed nodes. Handing fetch logic to the DNS seeds."
        in logs
    )
    first_query = next(x[1] for x in trace if x[0] == "query")
    assert first_query == NOW + 30.5 + 11  # timeout is "> 30 s", then the batch delay
    assert end == first_query


def test_schedule_waits_for_network_activation() -> None:
    sched = DnsSeedSchedule(SEEDS7[:2], random.Random(1))
    trace, _ = _drive(sched, lambda t: (0, 0, t >= NOW + 2.5))
    logs = _kinds(trace, "log")
    assert logs.count("Waiting for network to be reactivated before querying DNS seeds.") == 1
    assert _kinds(trace, "wait") == [1, 1, 1]
    assert [x[1] - NOW for x in trace if x[0] == "query"] == [3, 3]


def test_schedule_network_wait_sleeps_at_least_once() -> None:
    # Core's do { sleep 1s } while (!fNetworkActive): even if it comes back at once.
    sched = DnsSeedSchedule(SEEDS7[:1], random.Random(1))
    calls = iter([(0, 0, False)] + [(0, 0, True)] * 10)
    trace, _ = _drive(sched, lambda t: next(calls))
    assert _kinds(trace, "wait") == [1]


def test_schedule_no_seeds() -> None:
    trace, end = _drive(DnsSeedSchedule([], random.Random(1)), lambda t: (10, 0, True))
    assert _kinds(trace, "log") == ["0 addresses found from DNS seeds"] and end == NOW


def test_schedule_early_call_repeats_wait_and_misuse_raises() -> None:
    sched = DnsSeedSchedule(SEEDS7, random.Random(1))
    kw: dict[str, Any] = dict(addrman_size=10, full_outbound_count=0, network_active=True)
    step = sched.next_step(NOW, **kw)
    assert isinstance(step, Wait) and step.until == NOW + 11 and step.messages
    again = sched.next_step(NOW + 5, **kw)
    assert again == Wait(NOW + 11)
    q = sched.next_step(NOW + 11, **kw)
    assert isinstance(q, QuerySeed) and q.messages == (f"Loading addresses from DNS seed {q.seed}",)
    with pytest.raises(RuntimeError):
        sched.next_step(NOW + 11, **kw)
    with pytest.raises(ValueError):
        sched.seed_done(-1)
    sched.seed_done(4)
    with pytest.raises(RuntimeError):
        sched.seed_done(1)
    assert sched.found == 4
    # After Done, it stays done.
    s2 = DnsSeedSchedule([], random.Random(1))
    assert isinstance(s2.next_step(NOW, **kw), Done)
    assert s2.next_step(NOW + 1, **kw) == Done()


# --- a real DNS server on loopback -------------------------------------------------------


RECORDS: dict[str, list[tuple[str, str]]] = {
    "x9.seed-a.example.": [
        ("A", "127.1.0.1"),
        ("A", "127.1.0.2"),
        ("A", "127.1.0.3"),
        ("AAAA", "::1"),
        ("AAAA", "::ffff:127.1.0.4"),  # v4-mapped -> IPv4, like Core's CNetAddr(in6_addr)
        ("AAAA", "fd6b:88c0:8724::1"),  # Core's internal range: dropped
    ],
    "x9.seed-b.example.": [("A", "127.2.0.1"), ("A", "127.2.0.2")],
    "x9.noanswer.example.": [("TXT", "no addresses here")],
    "x9.many.example.": [("A", f"127.3.0.{i}") for i in range(1, 41)],
}


@pytest.fixture
def zone() -> SeedZone:
    return SeedZone(RECORDS)


@pytest.fixture
def dns_port(zone: SeedZone) -> Iterator[int]:
    with dns_server(zone) as port:
        yield port


@pytest.mark.timeout(20)
async def test_resolve_seed_exact_records(zone: SeedZone, dns_port: int) -> None:
    resolver = make_resolver(["127.0.0.1"], dns_port)
    got = await resolve_seed(resolver, "x9.seed-a.example.", timeout=2)
    assert got == [
        NetAddr.parse("127.1.0.1"),
        NetAddr.parse("127.1.0.2"),
        NetAddr.parse("127.1.0.3"),
        NetAddr.parse("::1"),
        NetAddr.parse("127.1.0.4"),
    ]
    assert got[4].network is Network.IPV4
    assert {(q[0], q[1]) for q in zone.queries} == {
        ("x9.seed-a.example.", "A"),
        ("x9.seed-a.example.", "AAAA"),
    }
    assert await resolve_seed(resolver, "x9.seed-b.example.", timeout=2) == [
        NetAddr.parse("127.2.0.1"),
        NetAddr.parse("127.2.0.2"),
    ]
    # NXDOMAIN and NoAnswer: empty, no exception
    assert await resolve_seed(resolver, "x9.unknown.example.", timeout=2) == []
    assert await resolve_seed(resolver, "x9.noanswer.example.", timeout=2) == []
    # A relative-looking name is asked as absolute (no search domains appended)
    assert len(await resolve_seed(resolver, "x9.seed-b.example", timeout=2)) == 2


@pytest.mark.timeout(20)
async def test_resolve_seed_caps_at_32_via_tcp(zone: SeedZone, dns_port: int) -> None:
    resolver = make_resolver(["127.0.0.1"], dns_port)
    got = await resolve_seed(resolver, "x9.many.example.", timeout=2)
    assert got == [NetAddr.parse(f"127.3.0.{i}") for i in range(1, 33)]
    assert ("x9.many.example.", "A", "tcp") in zone.queries  # UDP truncated, retried on TCP
    uncapped = await resolve_seed(resolver, "x9.many.example.", timeout=2, max_solutions=0)
    assert len(uncapped) == 40


@pytest.mark.timeout(20)
async def test_resolve_seed_timeout_is_bounded() -> None:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # reads nothing, answers nothing
    try:
        sink.bind(("127.0.0.1", 0))
        resolver = make_resolver(["127.0.0.1"], sink.getsockname()[1])
        t0 = time.monotonic()
        got = await resolve_seed(resolver, "x9.seed-a.example.", timeout=0.3)
        elapsed = time.monotonic() - t0
    finally:
        sink.close()
    assert got == []
    assert elapsed < 1.5


def _seeding_core(seeds: list[str], **kw: object) -> ConnManCore:
    """A ConnManCore that seeds from DNS (no peers, no listening), at NOW."""
    fields: dict[str, object] = {
        "chain": CHAINS["regtest"],
        "listen": False,
        "dnsseed": True,
        "dns_seeds": seeds,
        "fixedseeds": False,
    }
    fields.update(kw)
    opts = ConnManOptions(**fields)  # type: ignore[arg-type]
    return ConnManCore(
        opts,
        AddrMan(random.Random(1), deterministic=True),
        rng=random.Random(3),
        transport_rng=random.Random(4).randbytes,
    )


async def _drive_seeding(core: ConnManCore, dns_port: int) -> list[str]:
    """Carry the core's Resolve actions out with dnspython against the test server, as
    the asyncio driver does; returns the names asked, in order."""
    resolver = make_resolver(["127.0.0.1"], dns_port)
    asked: list[str] = []
    core.start(NOW)
    for _ in range(20):
        resolves = [a for a in core.poll_actions() if isinstance(a, Resolve) and a.seed]
        if not resolves:
            break
        for req in resolves:
            asked.append(req.name)
            core.seed_resolved(req.id, await resolve_seed(resolver, req.name, timeout=2), NOW)
    return asked


@pytest.mark.timeout(30)
async def test_dns_seeding_with_real_resolver(
    zone: SeedZone, dns_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Core ThreadDNSAddressSeed through ConnManCore: empty addrman, so every seed is
    asked at once; answers go to addrman with the query name as source, a seed that
    answers nothing becomes an addr-fetch target."""
    seeds = ["seed-a.example.", "seed-b.example.", "empty.example.", "noanswer.example."]
    core = _seeding_core(seeds)
    added: dict[NetAddr, list[AddrEntry]] = {}
    real_add = core.addrman.add

    def add(entries: list[AddrEntry], source: NetAddr, *a: object, **kw: object) -> int:
        added[source] = entries  # loopback answers: addrman itself refuses them
        return real_add(entries, source, *a, **kw)  # type: ignore[arg-type]

    core.addrman.add = add  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO, logger="peerkeeper.net"):
        asked = await _drive_seeding(core, dns_port)
    assert sorted(asked) == sorted(f"x9.{s}" for s in seeds)
    assert set(added) == {
        NetAddr.internal("x9.seed-a.example."),
        NetAddr.internal("x9.seed-b.example."),
    }
    assert [str(e.service) for e in added[NetAddr.internal("x9.seed-a.example.")]] == [
        "127.1.0.1:18444",
        "127.1.0.2:18444",
        "127.1.0.3:18444",
        "[::1]:18444",
        "127.1.0.4:18444",
    ]
    for e in (e for entries in added.values() for e in entries):
        assert e.services == 0x809
        assert NOW - 7 * DAY < e.time <= NOW - 3 * DAY
    assert sorted(core._addr_fetches) == ["empty.example.", "noanswer.example."]
    msgs = [r.getMessage() for r in caplog.records if r.name == "peerkeeper.net"]
    assert "Loading addresses from DNS seed seed-a.example." in msgs
    assert msgs[-1] == "7 addresses found from DNS seeds"
    assert core.next_wakeup() > NOW  # seeding is over: only the regular passes remain


@pytest.mark.timeout(20)
async def test_dns_seeding_with_a_name_proxy_makes_no_query(zone: SeedZone, dns_port: int) -> None:
    """Core: with a proxy that resolves names, seeds become addr-fetch targets unasked."""
    proxies = ProxySettings(name_proxy=parse_proxy("127.0.0.1:9050"))
    core = _seeding_core(["seed-a.example.", "seed-b.example."], proxies=proxies)
    asked = await _drive_seeding(core, dns_port)
    assert asked == [] and zone.queries == []
    assert sorted(core._addr_fetches) == ["seed-a.example.", "seed-b.example."]
    assert len(core.addrman) == 0


@pytest.mark.timeout(20)
async def test_invalid_names_are_answered_locally(zone: SeedZone, dns_port: int) -> None:
    """RFC 6761 section 6.4: ``.invalid`` names get an immediate negative answer; the
    nameserver is never asked (regtest's ``dummySeed.invalid.`` stays on the machine)."""
    resolver = make_resolver(["127.0.0.1"], dns_port)
    for name in ("x9.dummySeed.invalid.", "x9.dummySeed.INVALID", "invalid"):
        assert is_invalid_name(name)
        assert await resolve_seed(resolver, name, timeout=2) == []
    assert not is_invalid_name("x9.invalid.example.")
    assert zone.queries == []
    with pytest.raises(ValueError, match="RFC 6761"):
        await resolve_service("fakenodeaddr.fakedomain.invalid.:8333", 18444)


def test_dns_seeding_runs_with_connect_as_in_core() -> None:
    """Core CConnman::Start runs ThreadDNSAddressSeed whenever -dnsseed is on, also with
    -connect (p2p_dns_seeds: "running -connect and -dnsseed means DNS logic runs")."""
    core = _seeding_core(["dummySeed.invalid."], connect=["fakenodeaddr.fakedomain.invalid."])
    assert not core.options.open_automatic
    core.start(NOW)
    resolves = [a for a in core.poll_actions() if isinstance(a, Resolve)]
    assert [r.name for r in resolves if r.seed] == ["x9.dummySeed.invalid."]


def test_dns_seeding_off_logs_core_line(caplog: pytest.LogCaptureFixture) -> None:
    core = _seeding_core(["dummySeed.invalid."], dnsseed=False)
    with caplog.at_level(logging.INFO, logger="peerkeeper.net"):
        core.start(NOW)
    assert "DNS seeding disabled" in [r.getMessage() for r in caplog.records]
    assert not [a for a in core.poll_actions() if isinstance(a, Resolve) and a.seed]
