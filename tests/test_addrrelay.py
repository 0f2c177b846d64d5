"""addrrelay: Core's RelayAddress peer choice and exponential timers (pure, simulated time)."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from peerkeeper.bitcoin.addrrelay import (
    AVG_ADDRESS_BROADCAST_INTERVAL,
    RANDOMIZER_ID_ADDRESS_RELAY,
    ROTATE_ADDR_RELAY_DEST_INTERVAL,
    rand_exp_duration,
    relay_targets,
    service_hash,
)
from peerkeeper.bitcoin.eviction import siphash24
from peerkeeper.net.netaddr import NetAddr, Network, Service
from peerkeeper.wire.messages import AddrEntry

K0 = 0x0123456789ABCDEF
K1 = 0xFEDCBA9876543210
NOW = 1_800_000_000.0
MASK64 = (1 << 64) - 1

# Reference values printed by a small C++ program linked against Bitcoin Core's
# src/crypto/siphash.cpp, building CServiceHash(0, 0) and RelayAddress's hasher chain
# (GetDeterministicRandomizer(RANDOMIZER_ID_ADDRESS_RELAY).Write(hash_addr)
# .Write(time_addr), then .Write(id)) with k0=K0, k1=K1 at time 1800000000.
CORE_SVC_IPV4 = 11850989682105975746  # 1.2.3.4:8333
CORE_SVC_IPV6 = 9165440510322011864  # [2a01:4f8::1]:8333
CORE_SVC_TOR = 1715348297216365422  # Tor v3 pubkey bytes 0..31, port 9050
CORE_TIME_ADDR = 137164232452615
CORE_FINAL = 272326692943711107
CORE_SCORES = {
    0: 12765246795651998816,
    1: 14851836302663029718,
    2: 12444152183913909967,
    3: 15207885928393259210,
    4: 18218754420045791217,
    5: 5426394445656571231,
    6: 12311728130764564529,
    7: 15785889967973053733,
    -1: 14878743501401169896,
}


def svc(i: int) -> Service:
    """A distinct routable IPv4 service per i."""
    return Service(
        NetAddr(Network.IPV4, bytes([23, (i >> 16) & 255, (i >> 8) & 255, i & 255])), 8333
    )


def bucket_start(service: Service, t: int) -> int:
    """The first second of the 24 h relay window containing t, for this address."""
    h = service_hash(service)
    return t - ((t + h) & MASK64) % ROTATE_ADDR_RELAY_DEST_INTERVAL


def test_service_hash_matches_core() -> None:
    assert service_hash(Service.parse("1.2.3.4:8333", 0)) == CORE_SVC_IPV4
    assert service_hash(Service.parse("[2a01:4f8::1]:8333", 0)) == CORE_SVC_IPV6
    tor = Service(NetAddr(Network.TORV3, bytes(range(32))), 9050)
    assert service_hash(tor) == CORE_SVC_TOR
    # The port and the network take part in the hash.
    assert service_hash(Service.parse("1.2.3.4:8334", 0)) != CORE_SVC_IPV4


def test_relay_hasher_chain_matches_core() -> None:
    s = Service.parse("1.2.3.4:8333", 0)
    time_addr = (int(NOW) + CORE_SVC_IPV4) // ROTATE_ADDR_RELAY_DEST_INTERVAL
    assert time_addr == CORE_TIME_ADDR
    prefix = (
        RANDOMIZER_ID_ADDRESS_RELAY.to_bytes(8, "little")
        + CORE_SVC_IPV4.to_bytes(8, "little")
        + CORE_TIME_ADDR.to_bytes(8, "little")
    )
    assert siphash24(K0, K1, prefix) == CORE_FINAL
    for peer_id, score in CORE_SCORES.items():
        assert siphash24(K0, K1, prefix + (peer_id & MASK64).to_bytes(8, "little")) == score
    # Best two scores among 0..7 are 4 then 7; with -1 added nothing changes.
    assert relay_targets(s, NOW + 0.5, range(8), K0, K1, reachable=True) == [4, 7]
    assert relay_targets(s, NOW, [-1, *range(8)], K0, K1, reachable=True) == [4, 7]
    # CORE_FINAL is odd: an unreachable address also goes to two peers here.
    assert relay_targets(s, NOW, range(8), K0, K1, reachable=False) == [4, 7]
    # Without the top peer (the originator), the next best takes its place.
    assert relay_targets(s, NOW, [0, 1, 2, 3, 5, 6, 7], K0, K1, reachable=True) == [7, 3]
    # An AddrEntry is accepted as well as a Service; duplicates are ignored.
    e = AddrEntry(int(NOW), 9, s)
    assert relay_targets(e, NOW, [7, 4, 4, 0], K0, K1, reachable=True) == [4, 7]


def test_same_peers_for_24_hours_then_rotation() -> None:
    candidates = list(range(1, 13))
    changes = 0
    for i in range(20):
        s = svc(i)
        start = bucket_start(s, int(NOW))
        chosen = relay_targets(s, start, candidates, K0, K1, reachable=True)
        assert len(chosen) == 2
        for offset in (1, 3600, 12 * 3600, 86399, 86399.9):
            assert relay_targets(s, start + offset, candidates, K0, K1, reachable=True) == chosen
        if relay_targets(s, start + 86400, candidates, K0, K1, reachable=True) != chosen:
            changes += 1
        if relay_targets(s, start - 1, candidates, K0, K1, reachable=True) != chosen:
            changes += 1
    assert changes >= 25  # with 12 candidates the pair stays the same only ~1.5% of the time


def test_windows_are_shifted_per_address() -> None:
    starts = {bucket_start(svc(i), int(NOW)) for i in range(50)}
    assert len(starts) > 40  # not every address rotates at the same moment


def test_originator_never_chosen() -> None:
    for i in range(200):
        others = [p for p in range(10) if p != i % 10]
        chosen = relay_targets(svc(i), NOW, others, K0, K1, reachable=True)
        assert i % 10 not in chosen
        assert len(chosen) == 2 and set(chosen) <= set(others)


def test_unreachable_goes_to_one_or_two_peers() -> None:
    counts = Counter(
        len(relay_targets(svc(i), NOW, range(10), K0, K1, reachable=False)) for i in range(1000)
    )
    assert set(counts) == {1, 2}
    assert 400 <= counts[1] <= 600  # one hash bit decides
    assert all(
        len(relay_targets(svc(i), NOW, range(10), K0, K1, reachable=True)) == 2 for i in range(200)
    )


def test_unreachable_internal_address_is_not_relayed() -> None:
    internal = Service(NetAddr.internal("example.com"), 0)
    assert relay_targets(internal, NOW, range(5), K0, K1, reachable=False) == []
    assert len(relay_targets(internal, NOW, range(5), K0, K1, reachable=True)) == 2


def test_few_candidates() -> None:
    assert relay_targets(svc(1), NOW, [], K0, K1, reachable=True) == []
    assert relay_targets(svc(1), NOW, [9], K0, K1, reachable=True) == [9]


def test_peers_chosen_roughly_uniformly() -> None:
    hits: Counter[int] = Counter()
    for i in range(2000):
        hits.update(relay_targets(svc(i), NOW, range(10), K0, K1, reachable=True))
    assert sum(hits.values()) == 4000
    for peer_id in range(10):
        assert 300 <= hits[peer_id] <= 500, hits  # expected 400 each


def test_key_changes_choice() -> None:
    a = [relay_targets(svc(i), NOW, range(20), K0, K1, reachable=True) for i in range(50)]
    b = [relay_targets(svc(i), NOW, range(20), K1, K0, reachable=True) for i in range(50)]
    assert sum(x != y for x, y in zip(a, b, strict=True)) > 40


def test_relay_targets_bad_input() -> None:
    with pytest.raises(ValueError, match="finite"):
        relay_targets(svc(1), math.nan, [1], K0, K1, reachable=True)
    with pytest.raises(ValueError, match="finite"):
        relay_targets(svc(1), math.inf, [1], K0, K1, reachable=True)
    with pytest.raises(ValueError, match="64-bit"):
        relay_targets(svc(1), NOW, [1], -1, K1, reachable=True)
    with pytest.raises(ValueError, match="64-bit"):
        relay_targets(svc(1), NOW, [1], K0, 1 << 64, reachable=True)
    with pytest.raises(ValueError, match="signed 64-bit"):
        relay_targets(svc(1), NOW, [1 << 63], K0, K1, reachable=True)
    with pytest.raises(ValueError, match="signed 64-bit"):
        relay_targets(svc(1), NOW, [-(1 << 63) - 1], K0, K1, reachable=True)
    with pytest.raises(ValueError):
        service_hash(svc(1), k0=-1)


def test_rand_exp_duration_mean_and_bad_input() -> None:
    rng = random.Random(7)
    samples = [rand_exp_duration(AVG_ADDRESS_BROADCAST_INTERVAL, rng) for _ in range(2000)]
    assert all(s >= 0 for s in samples)
    mean = sum(samples) / len(samples)
    assert 24.0 <= mean <= 36.0
    # Exponential: about e^-1 of the samples exceed the mean.
    assert 0.30 <= sum(s > 30.0 for s in samples) / len(samples) <= 0.44
    assert rand_exp_duration(0.0, rng) == 0.0
    for bad in (-1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="mean"):
            rand_exp_duration(bad, rng)
