"""Inbound peer eviction: a pure port of Bitcoin Core's src/node/eviction.cpp.

When all inbound slots are full, Core picks an inbound peer to disconnect
(``CConnman::AttemptToEvictConnection``) by first *protecting* peers with distinct,
hard-to-forge qualities and then evicting from the most represented netgroup.  This
module ports that logic with no I/O:

* :class:`EvictionCandidate` -- Core ``NodeEvictionCandidate`` (src/node/eviction.h).
* :func:`protect_noban_connections`, :func:`protect_outbound_connections`,
  :func:`protect_eviction_candidates_by_ratio` and :func:`select_node_to_evict` --
  Core ``ProtectNoBanConnections``, ``ProtectOutboundConnections``,
  ``ProtectEvictionCandidatesByRatio`` and ``SelectNodeToEvict``.  Core mutates a
  ``std::vector`` in place; these functions leave their argument alone and return the
  remaining (unprotected) candidates as a new list, in the order Core's vector would end
  up in (up to the tie caveat below).
* :func:`keyed_netgroup` -- Core ``CConnman::CalculateKeyedNetGroup`` (src/net.cpp), with
  a pure-Python SipHash-2-4 (:func:`siphash24`, Core ``CSipHasher``, src/crypto/siphash.cpp).

Comparators become sort keys
----------------------------
Core's ``EraseLastKElements`` sorts with a "less than" comparator, so candidates that
compare *greatest* end up last and are the ones protected.  Each comparator is turned into
a key function whose tuple ordering is exactly the comparator's strict weak ordering
(``False < True``; "greater first" becomes a negated number):

=================================  ================================================================
Core comparator                    key (ascending; last elements are protected)
=================================  ================================================================
``ReverseCompareNodeMinPingTime``  ``-min_ping_time``  (lowest ping last)
``ReverseCompareNodeTimeConnected`` ``-connected``     (longest connected, i.e. oldest, last)
``CompareNetGroupKeyed``           ``keyed_netgroup``
``CompareNodeBlockTime``           ``(last_block_time, relevant_services, -connected)``
``CompareNodeTXTime``              ``(last_tx_time, relay_txs, not bloom_filter, -connected)``
``CompareNodeBlockRelayOnlyTime``  ``(not relay_txs, last_block_time, relevant_services,
                                   -connected)``
``CompareNodeNetworkTime(l, net)`` ``(l and is_local, network == net, -connected)``
=================================  ================================================================

Ties: Core uses ``std::sort``, which is not stable; Python's sort is stable.  Candidates
that are equal under a comparator may therefore end up in a different order than in
Core, which can change *which* of several equivalent candidates is protected or evicted.
This only matters for candidates that are equal under every criterion of that comparator;
Core gives no guarantee about their order either.  (``std::stable_sort`` of the network
table in ``ProtectEvictionCandidatesByRatio`` is stable in both.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from siphash24 import siphash24 as _siphash24

from peerkeeper.net.connection_types import ConnectionType
from peerkeeper.net.netaddr import Network

__all__ = [
    "RANDOMIZER_ID_NETGROUP",
    "EvictionCandidate",
    "keyed_netgroup",
    "protect_eviction_candidates_by_ratio",
    "protect_noban_connections",
    "protect_outbound_connections",
    "select_node_to_evict",
    "siphash24",
]

#: Core ``RANDOMIZER_ID_NETGROUP`` (src/net.cpp): ``SHA256("netgroup")[0:8]``.
RANDOMIZER_ID_NETGROUP = 0x6C0EDD8036EF4036

_MASK64 = 0xFFFFFFFFFFFFFFFF


@dataclass(slots=True)  # not frozen: frozen init costs ~3x, and ConnMan builds many per decision
class EvictionCandidate:
    """Core ``NodeEvictionCandidate`` (src/node/eviction.h), fields in snake_case.

    Times are seconds as ``float``: ``connected`` (``m_connected``, a point in time),
    ``min_ping_time`` (``m_min_ping_time``; ``math.inf`` when no ping is known, as Core
    uses ``std::chrono::microseconds::max()``), ``last_block_time`` / ``last_tx_time``
    (``m_last_block_time`` / ``m_last_tx_time``; 0 when none).  ``relevant_services`` is
    ``fRelevantServices``, ``bloom_filter`` is ``fBloomFilter``, ``keyed_netgroup`` is
    ``nKeyedNetGroup`` (see :func:`keyed_netgroup`).  ``network`` is the peer's network
    (``m_network``) as peerkeeper's :class:`~peerkeeper.net.netaddr.Network`: Core's
    ``NET_ONION`` is ``Network.TORV3``, ``NET_I2P`` ``Network.I2P``, ``NET_CJDNS``
    ``Network.CJDNS``; IPv4/IPv6/unroutable/internal map by name.
    """

    id: int
    connected: float
    min_ping_time: float = math.inf
    last_block_time: float = 0.0
    last_tx_time: float = 0.0
    relevant_services: bool = False
    relay_txs: bool = False
    bloom_filter: bool = False
    keyed_netgroup: int = 0
    prefer_evict: bool = False
    is_local: bool = False
    network: Network = Network.IPV4
    noban: bool = False
    conn_type: ConnectionType = ConnectionType.INBOUND
    # Core's comparator keys, computed once (a candidate is not changed after it is
    # built: dataclasses.replace makes a new one): the sorts then read them at C speed.
    k_ping: float = field(init=False, repr=False, compare=False)
    k_connected: float = field(init=False, repr=False, compare=False)
    k_tx: tuple[float, bool, bool, float] = field(init=False, repr=False, compare=False)
    k_block_relay: tuple[bool, float, bool, float] = field(init=False, repr=False, compare=False)
    k_block: tuple[float, bool, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        older_later = -self.connected
        self.k_connected = older_later
        self.k_ping = -self.min_ping_time
        self.k_tx = (self.last_tx_time, self.relay_txs, not self.bloom_filter, older_later)
        self.k_block_relay = (
            not self.relay_txs,
            self.last_block_time,
            self.relevant_services,
            older_later,
        )
        self.k_block = (self.last_block_time, self.relevant_services, older_later)


# ---------------------------------------------------------------------------
# SipHash-2-4 and the keyed netgroup (src/crypto/siphash.cpp, src/net.cpp)
# ---------------------------------------------------------------------------


def siphash24(k0: int, k1: int, data: bytes) -> int:
    """SipHash-2-4 of ``data`` under the 128-bit key ``(k0, k1)``, as an unsigned 64-bit int.

    Equals Core ``CSipHasher(k0, k1).Write(data).Finalize()`` (src/crypto/siphash.cpp);
    the key bytes are ``k0`` then ``k1``, each 8 bytes little-endian, as in the SipHash
    paper.  ``CSipHasher::Write(uint64_t x)`` is the same as writing ``x`` as 8
    little-endian bytes.  Computed by the siphash24 library (the reference C code);
    raises ValueError for a key outside 0 .. 2**64 - 1.
    """
    if not (0 <= k0 <= _MASK64 and 0 <= k1 <= _MASK64):
        raise ValueError("siphash24 keys must be unsigned 64-bit integers")
    key = k0.to_bytes(8, "little") + k1.to_bytes(8, "little")
    return int.from_bytes(_siphash24(data, key=key).digest(), "little")


def keyed_netgroup(netgroup: bytes, k0: int, k1: int) -> int:
    """Core ``CConnman::CalculateKeyedNetGroup`` (src/net.cpp) for an already computed group.

    ``GetDeterministicRandomizer(RANDOMIZER_ID_NETGROUP).Write(GetGroup(addr)).Finalize()``
    where ``GetDeterministicRandomizer(id)`` is ``CSipHasher(nSeed0, nSeed1).Write(id)``:
    SipHash-2-4 keyed with ``(k0, k1)`` (Core's ``nSeed0``/``nSeed1``) of the 8-byte
    little-endian :data:`RANDOMIZER_ID_NETGROUP` followed by ``netgroup`` (e.g.
    :meth:`peerkeeper.net.netaddr.NetAddr.netgroup`).
    """
    return siphash24(k0, k1, RANDOMIZER_ID_NETGROUP.to_bytes(8, "little") + bytes(netgroup))


# ---------------------------------------------------------------------------
# Sort keys for Core's comparators (src/node/eviction.cpp)
# ---------------------------------------------------------------------------

_SortKey = Callable[[EvictionCandidate], Any]


#: ``ReverseCompareNodeMinPingTime``: ``a.m_min_ping_time > b.m_min_ping_time``.
_key_min_ping_time: _SortKey = attrgetter("k_ping")
#: ``ReverseCompareNodeTimeConnected``: ``a.m_connected > b.m_connected``.
_key_time_connected: _SortKey = attrgetter("k_connected")
#: ``CompareNetGroupKeyed``: ``a.nKeyedNetGroup < b.nKeyedNetGroup``.
_key_netgroup: _SortKey = attrgetter("keyed_netgroup")
#: ``CompareNodeBlockTime``: last block time, then peers with relevant services
#: (``return b.fRelevantServices``) later, then the older connection later.
_key_block_time: _SortKey = attrgetter("k_block")
#: ``CompareNodeTXTime``: last tx time, then tx-relaying peers later
#: (``return b.m_relay_txs``), then bloom-filter peers *earlier* (``return a.fBloomFilter``),
#: then the older connection later.
_key_tx_time: _SortKey = attrgetter("k_tx")
#: ``CompareNodeBlockRelayOnlyTime``: tx-relaying peers first (``return a.m_relay_txs``),
#: then as ``CompareNodeBlockTime``.
_key_block_relay_only_time: _SortKey = attrgetter("k_block_relay")


def _key_network_time(is_local: bool, network: Network | None) -> _SortKey:
    """``CompareNodeNetworkTime(is_local, network)``: when ``is_local``, local peers later
    (``return b.m_is_local``); then peers on ``network`` later; then the older connection
    later.  Core passes ``NET_MAX`` (matches no peer) for the localhost entry; here ``None``.
    """

    def key(c: EvictionCandidate) -> tuple[bool, bool, float]:
        return (is_local and c.is_local, c.network == network, -c.connected)

    return key


def _erase_last_k_elements(
    elements: Iterable[EvictionCandidate],
    key: _SortKey,
    k: int,
    predicate: Callable[[EvictionCandidate], bool] | None = None,
) -> list[EvictionCandidate]:
    """Core ``EraseLastKElements``: sort by ``key``, then among the last ``min(k, size)``
    elements erase those matching ``predicate`` (every one when it is ``None``),
    keeping the order of the others."""
    ordered = sorted(elements, key=key)
    erase_size = min(k, len(ordered))
    split = len(ordered) - erase_size
    if predicate is None:
        del ordered[split:]
        return ordered
    return ordered[:split] + [c for c in ordered[split:] if not predicate(c)]


# ---------------------------------------------------------------------------
# Protection and selection (src/node/eviction.cpp)
# ---------------------------------------------------------------------------


def protect_noban_connections(candidates: Iterable[EvictionCandidate]) -> list[EvictionCandidate]:
    """Core ``ProtectNoBanConnections``: drop (protect) peers with the noban permission."""
    return [c for c in candidates if not c.noban]


def protect_outbound_connections(
    candidates: Iterable[EvictionCandidate],
) -> list[EvictionCandidate]:
    """Core ``ProtectOutboundConnections``: drop (protect) every non-inbound connection."""
    return [c for c in candidates if c.conn_type is ConnectionType.INBOUND]


@dataclass(slots=True)
class _Net:
    is_local: bool
    id: Network | None
    count: int

    def matches(self, c: EvictionCandidate) -> bool:
        return c.is_local if self.is_local else c.network == self.id


def _erase_network(elements: list[EvictionCandidate], net: _Net, k: int) -> list[EvictionCandidate]:
    """``EraseLastKElements(elements, CompareNodeNetworkTime(...), k, net.matches)``
    without a Python key per element: the same list, in the same order.

    Sorted by ``(matches, k_connected)`` every matching candidate comes after every
    other one, so the last ``k`` hold the ``min(k, m)`` oldest of the ``m`` matching
    ones, which are the ones erased; a stable sort of each part by ``k_connected``
    keeps the order ``sorted()`` gives ties (``CompareNodeNetworkTime`` for
    ``network=NET_MAX``, the localhost entry, only compares ``m_is_local`` and then
    ``m_connected``).
    """
    if net.is_local:
        match = [c for c in elements if c.is_local]
        other = [c for c in elements if not c.is_local]
    else:
        match = [c for c in elements if c.network == net.id]
        other = [c for c in elements if c.network != net.id]
    match.sort(key=_key_time_connected)
    other.sort(key=_key_time_connected)
    erase = min(k, len(match))
    return other + match[: len(match) - erase]


def protect_eviction_candidates_by_ratio(
    candidates: Sequence[EvictionCandidate],
) -> list[EvictionCandidate]:
    """Core ``ProtectEvictionCandidatesByRatio`` (src/node/eviction.cpp).

    Protects (removes) ``len(candidates) // 2`` candidates: first up to a quarter from the
    disadvantaged networks CJDNS, I2P, localhost (``is_local``) and onion (``TORV3``) --
    networks with fewer candidates first, ties in that array order, unused slots recovered
    by the others -- each sorted by uptime; then the rest by longest uptime overall.
    Returns the remaining candidates, sorted most recently connected first
    (``ReverseCompareNodeTimeConnected``).
    """
    remaining = list(candidates)
    initial_size = len(remaining)
    total_protect_size = initial_size // 2

    networks = [
        _Net(False, Network.CJDNS, 0),
        _Net(False, Network.I2P, 0),
        _Net(True, None, 0),  # localhost; Core uses NET_MAX
        _Net(False, Network.TORV3, 0),
    ]
    # One pass for the four counts (a local peer counts as localhost, whatever its network).
    local = 0
    per_net: dict[Network, int] = {}
    for c in remaining:
        local += c.is_local
        per_net[c.network] = per_net.get(c.network, 0) + 1
    for n in networks:
        n.count = local if n.is_local else per_net.get(n.id, 0) if n.id is not None else 0
    # std::stable_sort by ascending count; list.sort is stable too.
    networks.sort(key=lambda n: n.count)

    max_protect_by_network = total_protect_size // 2
    num_protected = 0

    while num_protected < max_protect_by_network:
        num_networks = sum(1 for n in networks if n.count)
        if num_networks == 0:
            break
        disadvantaged_to_protect = max_protect_by_network - num_protected
        protect_per_network = max(disadvantaged_to_protect // num_networks, 1)
        protected_at_least_one = False

        for n in networks:
            if n.count == 0:
                continue
            before = len(remaining)
            remaining = _erase_network(remaining, n, protect_per_network)
            after = len(remaining)
            if before > after:
                protected_at_least_one = True
                delta = before - after
                num_protected += delta
                if num_protected >= max_protect_by_network:
                    break
                n.count -= delta
        if not protected_at_least_one:
            break

    assert num_protected == initial_size - len(remaining)
    remaining_to_protect = total_protect_size - num_protected
    return _erase_last_k_elements(remaining, _key_time_connected, remaining_to_protect)


def select_node_to_evict(candidates: Iterable[EvictionCandidate]) -> int | None:
    """Core ``SelectNodeToEvict`` (src/node/eviction.cpp): the id of the peer to evict, or
    ``None`` when every candidate is protected.

    Protects noban and outbound peers, then 4 by keyed netgroup (highest), 8 by lowest
    minimum ping, 4 by most recent novel tx, up to 8 non-tx-relay peers with relevant
    services by most recent novel block, 4 by most recent novel block, then
    :func:`protect_eviction_candidates_by_ratio`.  Of the rest, if any prefer eviction only
    those are considered; the netgroup with the most peers (ties: the one whose youngest
    member connected most recently) loses its youngest member.
    """
    # ProtectNoBanConnections then ProtectOutboundConnections, in one pass.
    remaining = [c for c in candidates if not c.noban and c.conn_type is ConnectionType.INBOUND]
    remaining = _erase_last_k_elements(remaining, _key_netgroup, 4)
    remaining = _erase_last_k_elements(remaining, _key_min_ping_time, 8)
    remaining = _erase_last_k_elements(remaining, _key_tx_time, 4)
    remaining = _erase_last_k_elements(
        remaining,
        _key_block_relay_only_time,
        8,
        lambda c: not c.relay_txs and c.relevant_services,
    )
    remaining = _erase_last_k_elements(remaining, _key_block_time, 4)
    remaining = protect_eviction_candidates_by_ratio(remaining)

    if not remaining:
        return None

    if any(c.prefer_evict for c in remaining):
        remaining = [c for c in remaining if c.prefer_evict]

    # `remaining` is sorted most recently connected first, so group[0] is the youngest.
    most_connections = 0
    most_connections_time = 0.0  # NodeClock::epoch
    most_connections_group = 0
    groups: dict[int, list[EvictionCandidate]] = {}
    for node in remaining:
        group = groups.setdefault(node.keyed_netgroup, [])
        group.append(node)
        group_time = group[0].connected
        if len(group) > most_connections or (
            len(group) == most_connections and group_time > most_connections_time
        ):
            most_connections = len(group)
            most_connections_time = group_time
            most_connections_group = node.keyed_netgroup

    return groups[most_connections_group][0].id
