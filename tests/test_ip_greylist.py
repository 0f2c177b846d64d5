"""Octez's IP greylist (generational counting Bloom filter) and peer-id FIFO."""

from __future__ import annotations

import random

import pytest

from peerkeeper.native.greylist import (
    DEFAULT_PEER_GREYLIST_SIZE,
    IpGreylist,
    PeerGreylist,
)
from peerkeeper.net.netaddr import NetAddr

A = NetAddr.parse("11.0.0.1")


def addr(n: int) -> NetAddr:
    return NetAddr.parse(f"12.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}")


def test_sizes_follow_octez() -> None:
    # numbits(2048 * 8 * 1024 / 4) = 23 index bits, 4-bit cells: 4 MiB.
    g = IpGreylist()
    assert g.index_bits == 23 and g.memory_bytes == 4 * 1024 * 1024
    assert g.countdown_interval == 86_400 / 16
    small = IpGreylist(16)
    assert small.index_bits == 16 and small.memory_bytes == 32 * 1024


def test_member_then_decays_after_15_countdowns() -> None:
    g = IpGreylist(16)
    g.add(A, 0.0)
    assert A in g
    for _ in range(14):
        g.countdown()
    assert A in g
    g.countdown()
    assert A not in g


def test_tick_runs_countdowns_in_simulated_time() -> None:
    g = IpGreylist(16, cleanup_delay=1600.0)
    assert g.tick(0.0) == 0
    g.add(A, 0.0)
    assert g.tick(99.0) == 0
    assert g.tick(1450.0) == 14
    assert A in g
    assert g.tick(1500.0) == 1
    assert A not in g
    # A long pause runs at most a full decay's worth of countdowns, no busy loop.
    g.add(A, 2000.0)
    assert g.tick(10_000_000.0) > 16 and A not in g


def test_ipv4_and_mapped_ipv6_are_one_key_and_other_networks_work() -> None:
    g = IpGreylist(16)
    g.add(A, 0.0)
    assert NetAddr.parse("::ffff:11.0.0.1") in g
    onion = NetAddr.parse("pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion")
    g.add(onion, 0.0)
    assert onion in g
    assert "not an address" not in g


def test_remove_and_clear() -> None:
    g = IpGreylist(16)
    g.add(A, 0.0)
    g.remove(A)
    assert A not in g and g.listed() == []
    g.add(A, 0.0)
    g.clear()
    assert A not in g


def test_flood_keeps_memory_fixed_and_listing_bounded() -> None:
    g = IpGreylist(64, listing_size=100)
    before = g.memory_bytes
    for n in range(30_000):
        g.add(addr(n), float(n))
    assert g.memory_bytes == before
    assert len(g.listed()) == 100
    assert g.fifo_not_reliable_since == 100.0
    assert addr(29_999) in g


def test_false_positive_rate_is_small() -> None:
    g = IpGreylist(64)  # 2^18 cells
    for n in range(5_000):
        g.add(addr(n), 0.0)
    rng = random.Random(5)
    trials = 20_000
    fp = sum(
        NetAddr.parse(f"13.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}") in g
        for _ in range(trials)
    )
    # (1 - e^(-k n / m))^k with k = 5, n = 5,000, m = 2^18: about 5e-7.
    assert fp <= 5


@pytest.mark.parametrize(
    "kw", [{"size_in_kilobytes": 0}, {"cleanup_delay": 0.0}, {"size_in_kilobytes": 100_000}]
)
def test_bad_arguments(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        IpGreylist(**kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PeerGreylist(0)


def test_peer_greylist_fifo() -> None:
    g = PeerGreylist()
    ids = [n.to_bytes(16, "big") for n in range(DEFAULT_PEER_GREYLIST_SIZE + 5)]
    for i in ids:
        g.add(i)
    assert len(g) == DEFAULT_PEER_GREYLIST_SIZE
    assert ids[0] not in g and ids[4] not in g and ids[5] in g and ids[-1] in g
    g.add(ids[5])  # already there: becomes the newest (Ringo's FIFO add)
    assert g.listed()[-1] == ids[5] and g.listed()[0] == ids[6]
    g.remove(ids[5])
    assert ids[5] not in g
    g.clear()
    assert len(g) == 0
