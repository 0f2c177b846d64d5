"""Octez's IP greylist (generational counting Bloom filter) and peer-id greylist (FIFO).

Rules: tezos/tezos-mirror src/lib_p2p/p2p_acl.ml and src/lib_stdlib/bloomer.ml; see the
docstring of peerkeeper.native.greylist.
"""

from __future__ import annotations

import hashlib
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerkeeper.native.greylist import (
    DEFAULT_IP_GREYLIST_CLEANUP_DELAY,
    DEFAULT_IP_GREYLIST_SIZE_KB,
    DEFAULT_PEER_GREYLIST_SIZE,
    GreylistError,
    IpGreylist,
    PeerGreylist,
    ip_greylist_index_bits,
)
from peerkeeper.net.netaddr import NetAddr, Network, trusted_netaddr

A = NetAddr.parse("11.0.0.1")


def v4(n: int) -> NetAddr:
    return NetAddr(Network.IPV4, (0x0C000000 + n).to_bytes(4, "big"))


def octez_peek(data: bytes, ofs: int, bits: int) -> int:
    """Bloomer.peek as Octez writes it: bytes last..first into an int, shift, mask."""
    first = ofs // 8
    last = first + ((ofs % 8) + bits + 7) // 8
    v = 0
    for i in range(last - 1, first - 1, -1):
        v = (v << 8) | data[i]
    return (v >> (ofs % 8)) & ((1 << bits) - 1)


def octez_cells(addr: NetAddr, index_bits: int) -> list[int]:
    """The 5 cells Octez uses for an IP: Blake2b-256 of the 16 IPv6 octets, peeked."""
    octets = addr.to_v1_bytes()
    assert octets is not None
    digest = hashlib.blake2b(octets, digest_size=32).digest()
    return [octez_peek(digest, index_bits * i, index_bits) for i in range(5)]


def cell(g: IpGreylist, j: int) -> int:
    """Cell j read as Octez's peek of the filter at bit offset 4j (layout check)."""
    return octez_peek(bytes(g._filter), 4 * j, 4)


# -- shape ----------------------------------------------------------------------------------


def test_defaults_and_sizes_follow_octez() -> None:
    assert DEFAULT_IP_GREYLIST_SIZE_KB == 2048
    assert DEFAULT_IP_GREYLIST_CLEANUP_DELAY == 86_400.0
    assert DEFAULT_PEER_GREYLIST_SIZE == 1023
    g = IpGreylist()
    # numbits(2048 * 8 * 1024 / 4) = numbits(2^22) = 23; 2^23 cells of 4 bits = 4 MiB.
    assert g.index_bits == 23
    assert g.memory_bytes == 4 * 1024 * 1024
    assert g.countdown_interval == 5400.0  # 90 minutes
    assert g.listing_size == 2048  # IpFIFOCache.create ip_size
    assert PeerGreylist().size == 1023
    assert [ip_greylist_index_bits(kb) for kb in (1, 2, 3, 16, 64, 8191)] == [
        12,
        13,
        13,
        16,
        18,
        24,
    ]


@given(st.integers(min_value=1, max_value=8191))
def test_memory_is_between_one_and_two_times_the_configured_kilobytes(kb: int) -> None:
    bits = ip_greylist_index_bits(kb)
    memory = (1 << bits) * 4 // 8
    assert kb * 1024 < memory <= 2 * kb * 1024


def test_add_sets_octez_cells_to_15_and_nothing_else() -> None:
    g = IpGreylist(16)
    g.add(A, 0.0)
    cells = octez_cells(A, g.index_bits)
    assert all(cell(g, j) == 15 for j in cells)
    hist = g.life_expectancy_histogram()
    assert hist[15] == len(set(cells)) and sum(hist) == 1 << g.index_bits
    assert hist[0] == (1 << g.index_bits) - len(set(cells))
    g.countdown()
    assert all(cell(g, j) == 14 for j in cells)
    assert g.life_expectancy_histogram()[14] == len(set(cells))


# -- membership and decay -------------------------------------------------------------------


def test_member_for_exactly_15_countdowns_without_collisions() -> None:
    g = IpGreylist(64)
    addrs = [v4(n) for n in range(200)]
    for a in addrs:
        g.add(a, 0.0)
    assert all(a in g for a in addrs)
    for _ in range(14):
        g.countdown()
    assert all(a in g for a in addrs)
    assert len(g.listed()) == 64  # the listing keeps the newest, all still members
    g.countdown()
    assert not any(a in g for a in addrs)
    assert g.listed() == [] and g.fill_ratio() == 0.0


def test_readding_restarts_the_countdown_and_refreshes_the_listing() -> None:
    g = IpGreylist(16, listing_size=2)
    b, c = v4(1), v4(2)
    g.add(A, 0.0)
    g.add(b, 0.0)
    for _ in range(10):
        g.countdown()
    g.add(A, 1.0)  # A becomes the newest listed entry (Ringo add)
    g.add(c, 2.0)  # pushes b, the oldest, out of the listing
    assert g.listed() == [A, c]
    assert g.fifo_not_reliable_since == 2.0
    for _ in range(14):
        g.countdown()
    assert A in g and b not in g


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 3)), max_size=60))
def test_no_false_negatives_within_15_countdowns(ops: list[tuple[int, int]]) -> None:
    g = IpGreylist(1, listing_size=8)
    generation = 0
    added: dict[NetAddr, int] = {}
    for n, countdowns in ops:
        g.add(v4(n), float(generation))
        added[v4(n)] = generation
        for _ in range(countdowns):
            g.countdown()
        generation += countdowns
        for a, at in added.items():
            if generation - at < 15:
                assert a in g
        listed = g.listed()
        assert len(listed) <= 8 and all(a in g and a in added for a in listed)


def test_tick_runs_countdowns_in_simulated_time() -> None:
    g = IpGreylist(16, cleanup_delay=1600.0)  # a countdown every 100 s
    assert g.countdown_interval == 100.0
    assert g.tick(0.0) == 0  # only starts the schedule
    g.add(A, 0.0)
    assert g.tick(99.0) == 0
    assert g.tick(1450.0) == 14
    assert A in g
    assert g.tick(1499.9) == 0
    assert g.tick(1500.0) == 1
    assert A not in g
    # A long pause: every due countdown is counted, the filter ends empty.
    g.add(A, 1500.0)
    assert g.tick(1_001_500.0) == 10_000
    assert A not in g and g.fill_ratio() == 0.0
    # A clock stepped back restarts the schedule there.
    assert g.tick(500.0) == 0
    g.add(A, 500.0)
    assert g.tick(1900.0) == 14 and A in g
    assert g.tick(2000.0) == 1 and A not in g


def test_default_greylist_runs_16_countdowns_per_day_and_forgets_after_22_5_hours() -> None:
    g = IpGreylist()
    assert g.tick(0.0) == 0
    g.add(A, 0.0)
    ran = 0
    t = 0.0
    while t < 80_940.0:  # one tick a minute until just before 15 * 5400 s
        t += 60.0
        ran += g.tick(t)
    assert ran == 14 and A in g
    ran += g.tick(81_000.0)
    assert ran == 15 and A not in g
    ran += g.tick(86_400.0)
    assert ran == 16  # cleanup_delay / (cleanup_delay / 16)


def test_tick_rejects_non_finite_time_and_keeps_its_schedule() -> None:
    g = IpGreylist(1, cleanup_delay=16.0)
    g.tick(0.0)
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(GreylistError):
            g.tick(bad)
    assert g.tick(3.0) == 3


# -- flood: fixed memory, bounded listing ---------------------------------------------------


def test_flood_of_a_million_addresses_keeps_memory_fixed() -> None:
    g = IpGreylist(64)  # 2^18 cells, 128 KiB; listing of 64
    before = g.memory_bytes
    rng = random.Random(1)
    last = A
    for i in range(1_000_000):
        last = trusted_netaddr(Network.IPV4, rng.randbytes(4))
        g.add(last, float(i))
    assert g.memory_bytes == before == 128 * 1024
    assert len(g._filter) == before  # the buffer itself did not grow
    assert len(g._listing) == 64 and len(g.listed()) == 64
    assert g.fifo_not_reliable_since == 64.0  # the 65th add dropped the first entry
    assert last in g and g.listed()[-1] == last
    assert g.fill_ratio() > 0.99  # a flood saturates the filter: everyone is greylisted
    for _ in range(15):
        g.countdown()
    assert g.fill_ratio() == 0.0 and g.listed() == [] and last not in g
    assert g.memory_bytes == before
    assert g.fifo_not_reliable_since == 64.0  # only clear() makes the listing reliable
    g.clear()
    assert g.fifo_not_reliable_since is None


# -- false positives ------------------------------------------------------------------------


def expected_fp(n: int, m: int, k: int = 5) -> float:
    """Bloom's approximation, as Octez's own false_positive_rate test uses it."""
    return (1.0 - math.exp(-k * n / m)) ** k


def count_fp(g: IpGreylist, trials: int, seed: int) -> int:
    rng = random.Random(seed)
    # 13.0.0.0/8 is disjoint from the 12.0.0.0/8 addresses added by v4().
    return sum(NetAddr(Network.IPV4, bytes([13]) + rng.randbytes(3)) in g for _ in range(trials))


def test_false_positive_rate_at_modest_fill_is_small() -> None:
    g = IpGreylist(64)  # m = 2^18 cells
    n, m, trials = 5_000, 1 << 18, 20_000
    for i in range(n):
        g.add(v4(i), 0.0)
    p = expected_fp(n, m)  # about 6e-6
    assert p < 1e-5
    mean = trials * p
    bound = mean + 5 * math.sqrt(mean) + 2  # Poisson tail, far beyond 5 sigma
    assert count_fp(g, trials, seed=5) <= bound


def test_false_positive_rate_at_heavy_fill_matches_bloom_formula() -> None:
    g = IpGreylist(64)
    n, m, trials = 40_000, 1 << 18, 20_000
    for i in range(n):
        g.add(v4(i), 0.0)
    p = expected_fp(n, m)  # about 0.044
    mean, sd = trials * p, math.sqrt(trials * p * (1 - p))
    assert abs(count_fp(g, trials, seed=6) - mean) < 5 * sd


# -- keys -----------------------------------------------------------------------------------


def test_ipv4_and_ipv4_mapped_ipv6_are_one_key() -> None:
    mapped = NetAddr(Network.IPV6, b"\x00" * 10 + b"\xff\xff" + bytes([11, 0, 0, 1]))
    g = IpGreylist(16)
    g.add(A, 0.0)
    assert mapped in g and NetAddr.parse("::ffff:11.0.0.1") in g
    g.add(mapped, 1.0)
    assert len(g.listed()) == 1  # one listing entry for both forms
    g.remove(mapped)
    assert A not in g and g.listed() == []


def test_other_networks_are_keyed_by_bip155_id_and_bytes() -> None:
    g = IpGreylist(64)
    others = [
        NetAddr.parse("pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"),
        NetAddr.parse("ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p"),
        NetAddr.parse("fc00::1", cjdns=True),
        NetAddr.internal("seed.example"),
    ]
    ipv6_fc00 = NetAddr.parse("fc00::1")
    assert others[2].is_cjdns() and ipv6_fc00.is_ipv6()
    for a in others:
        g.add(a, 0.0)
    assert all(a in g for a in others)
    assert ipv6_fc00 not in g  # CJDNS fc00::1 is keyed with its BIP155 id, not as IPv6
    assert g.listed() == others
    assert "11.0.0.1" not in g and None not in g


# -- remove and clear -----------------------------------------------------------------------


def test_remove_drops_the_address_and_may_evict_colliding_ones() -> None:
    g = IpGreylist(1)  # 2^12 cells: collisions are easy to find
    cells_a = set(octez_cells(A, g.index_bits))
    other = next(v4(n) for n in range(100_000) if cells_a & set(octez_cells(v4(n), g.index_bits)))
    g.add(A, 0.0)
    g.add(other, 0.0)
    g.remove(A)
    assert A not in g
    assert other not in g  # shares a zeroed cell: Bloomer.rem "may remove others"
    assert g.listed() == []  # hidden at once, pruned from the FIFO at the next countdown
    assert len(g._listing) == 1
    g.countdown()
    assert len(g._listing) == 0
    g.remove(A)  # removing an absent address is harmless
    # other's cells not shared with A survive (one countdown later: 14).
    survivors = set(octez_cells(other, g.index_bits)) - cells_a
    assert g.life_expectancy_histogram()[14] == len(survivors)


def test_clear_empties_filter_listing_and_reliability_flag() -> None:
    g = IpGreylist(16, listing_size=1)
    g.add(A, 0.0)
    g.add(v4(1), 7.0)
    assert g.fifo_not_reliable_since == 7.0
    size = g.memory_bytes
    g.clear()
    assert A not in g and v4(1) not in g and g.listed() == []
    assert g.fifo_not_reliable_since is None and g.fill_ratio() == 0.0
    assert g.memory_bytes == size


def test_bad_add_or_remove_raises_and_loses_nothing() -> None:
    g = IpGreylist(16)
    g.add(A, 0.0)
    with pytest.raises(GreylistError):
        g.add("11.0.0.1", 0.0)  # type: ignore[arg-type]
    with pytest.raises(GreylistError):
        g.remove(b"\x0b\x00\x00\x01")  # type: ignore[arg-type]
    assert A in g and g.listed() == [A]


# -- constructor errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size_in_kilobytes": 0},
        {"size_in_kilobytes": -1},
        {"size_in_kilobytes": 8192},  # 25 index bits: Bloomer.create refuses > 24
        {"size_in_kilobytes": 2.5},
        {"size_in_kilobytes": True},
        {"cleanup_delay": 0.0},
        {"cleanup_delay": -86_400.0},
        {"cleanup_delay": math.nan},
        {"cleanup_delay": math.inf},
        {"cleanup_delay": "1d"},
        {"listing_size": 0},
        {"listing_size": -3},
    ],
)
def test_ip_greylist_rejects_bad_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(GreylistError) as info:
        IpGreylist(**kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("size", [0, -1, 1.5, None])
def test_peer_greylist_rejects_bad_sizes(size: object) -> None:
    with pytest.raises(GreylistError):
        PeerGreylist(size)  # type: ignore[arg-type]


# -- peer greylist --------------------------------------------------------------------------


def pid(n: int) -> bytes:
    return n.to_bytes(16, "big")


def test_peer_greylist_is_a_fifo_of_1023() -> None:
    g = PeerGreylist()
    ids = [pid(n) for n in range(DEFAULT_PEER_GREYLIST_SIZE + 5)]
    for i in ids[:DEFAULT_PEER_GREYLIST_SIZE]:
        g.add(i)
    assert len(g) == 1023 and ids[0] in g
    for i in ids[DEFAULT_PEER_GREYLIST_SIZE:]:
        g.add(i)
    assert len(g) == 1023
    assert all(i not in g for i in ids[:5])
    assert all(i in g for i in ids[5:])
    assert g.listed() == ids[5:]  # oldest first


def test_peer_greylist_readd_refreshes_like_ringo() -> None:
    g = PeerGreylist(3)
    for n in range(3):
        g.add(pid(n))
    g.add(pid(0))  # Ringo add: pid(0) becomes the most recent, counted once
    assert len(g) == 3 and g.listed() == [pid(1), pid(2), pid(0)]
    g.add(pid(3))  # evicts pid(1), now the oldest
    assert pid(1) not in g and pid(0) in g
    assert g.listed() == [pid(2), pid(0), pid(3)]


def test_peer_greylist_remove_clear_and_bad_ids() -> None:
    g = PeerGreylist(4)
    g.add(pid(1))
    g.add(pid(2))
    g.remove(pid(1))
    g.remove(pid(9))  # absent: ignored
    assert pid(1) not in g and g.listed() == [pid(2)]
    with pytest.raises(GreylistError):
        g.add("peer")  # type: ignore[arg-type]
    assert g.listed() == [pid(2)] and "peer" not in g
    g.clear()
    assert len(g) == 0 and g.listed() == []
