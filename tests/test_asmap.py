"""encode_asmap: prefixes -> asmap bytecode that Core's decoder reads back (issue 14)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerkeeper.net.asmap import (
    AsmapError,
    NetGroupManager,
    check_standard_asmap,
    encode_asmap,
    interpret,
)
from peerkeeper.net.netaddr import IPV4_IN_IPV6_PREFIX, NetAddr


def _ip(addr: str) -> bytes:
    ip = ipaddress.ip_address(addr)
    return IPV4_IN_IPV6_PREFIX + ip.packed if ip.version == 4 else ip.packed


def _longest_match(entries: list[tuple[str, int]], addr: str) -> int:
    """Longest-prefix match over the 128-bit space (IPv4 as ``::ffff:a.b.c.d``)."""
    ip = int.from_bytes(_ip(addr), "big")
    best, best_len = 0, -1
    for prefix, asn in entries:
        net = ipaddress.ip_network(prefix)
        base = int.from_bytes(_ip(str(net.network_address)), "big")
        length = net.prefixlen + (96 if net.version == 4 else 0)
        if ip >> (128 - length) == base >> (128 - length) and length > best_len:
            best, best_len = asn, length
    return best


def test_encode_asmap_maps_prefixes_and_nothing_else() -> None:
    entries = [
        ("11.0.0.0/16", 7),
        ("11.1.0.0/16", 7),
        ("12.0.0.0/8", 9),
        ("12.5.0.0/16", 3),
        ("2a01:4f8::/32", 24940),
    ]
    data = encode_asmap(entries)
    assert check_standard_asmap(data)
    expect = {
        "11.0.1.1": 7,
        "11.1.2.2": 7,
        "11.2.0.1": 0,  # unmapped: between two mapped /16s
        "12.9.9.9": 9,
        "12.5.1.1": 3,  # the longer prefix wins
        "13.0.0.1": 0,
        "2a01:4f8::1": 24940,
        "2a01:4f9::1": 0,
    }
    for addr, asn in expect.items():
        assert interpret(data, _ip(addr)) == asn, addr


def test_encoded_asmap_groups_an_as_over_many_16s() -> None:
    """The Erebus shape: one AS holding many /16s is one netgroup under -asmap."""
    data = encode_asmap([(f"20.{k}.0.0/16", 64500) for k in range(64)] + [("30.0.0.0/16", 1)])
    ngm = NetGroupManager(data)
    groups = {ngm.get_group(NetAddr.parse(f"20.{k}.1.1")) for k in range(64)}
    assert groups == {bytes((2,)) + (64500).to_bytes(4, "little")}
    assert ngm.get_group(NetAddr.parse("30.0.9.9")) != ngm.get_group(NetAddr.parse("20.0.1.1"))
    # Unmapped addresses keep their /16 group.
    assert ngm.get_group(NetAddr.parse("40.1.2.3")) == NetAddr.parse("40.1.2.3").netgroup()


@pytest.mark.parametrize(
    "entries",
    [[], [("11.0.0.0/16", 0)], [("11.0.0.0/16", 1 << 40)], [("11.0.0.1/16", 5)], [("x", 1)]],
)
def test_encode_asmap_rejects_bad_input(entries: list[tuple[str, int]]) -> None:
    with pytest.raises(AsmapError):
        encode_asmap(entries)


def test_whole_space_prefix() -> None:
    data = encode_asmap([("::/0", 5), ("0.0.0.0/0", 6)])
    assert check_standard_asmap(data)
    assert interpret(data, _ip("1.2.3.4")) == 6
    assert interpret(data, _ip("2a00::1")) == 5


_v4 = st.builds(
    lambda a, n: str(ipaddress.ip_network((a, n), strict=False)),
    st.integers(0, 2**32 - 1),
    st.integers(0, 32),
)
_v6 = st.builds(
    lambda a, n: str(ipaddress.ip_network((a, n), strict=False)),
    st.integers(0, 2**128 - 1),
    st.integers(0, 128),
)
_asn = st.integers(1, 2**24)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.one_of(_v4, _v6), _asn), min_size=1, max_size=25),
    st.lists(st.one_of(st.integers(0, 2**32 - 1), st.integers(2**32, 2**128 - 1)), max_size=20),
)
def test_encode_asmap_is_longest_prefix_match(
    entries: list[tuple[str, int]], probes: list[int]
) -> None:
    """Any prefix set: the bytecode is standard and answers as a longest-prefix match,
    for addresses inside each prefix and random ones (a later duplicate prefix wins)."""
    dedup = dict(entries)
    entries = list(dedup.items())
    data = encode_asmap(entries)
    assert check_standard_asmap(data)
    addrs = [str(ipaddress.ip_network(p).network_address) for p, _ in entries]
    addrs += [str(ipaddress.ip_address(p)) for p in probes]
    for addr in addrs:
        assert interpret(data, _ip(addr)) == _longest_match(entries, addr), addr
