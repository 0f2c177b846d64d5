"""Address relay: which peers get a gossiped address, and the Poisson timers (pure).

Bitcoin Core relays a freshly announced address (``ProcessAddrs`` in
src/net_processing.cpp) to one or two of its other peers, chosen by
``PeerManagerImpl::RelayAddress``.  The choice is deterministic for a given address
during a 24-hour window, so that a peer repeating its address does not buy itself
more propagation: the chosen peers' ``m_addr_known`` filters absorb the repeats.

This module holds the pure part: :func:`service_hash` (Core ``CServiceHash``),
:func:`relay_targets` (the choice) and :func:`rand_exp_duration` (Core's exponential
timer draw), plus the constants.  Per-peer queues, known-address filters and flush
timers live in :class:`peerkeeper.bitcoin.peer.BitcoinPeer`.

How the owner (ConnMan) wires it, for each entry ``e`` of a
:class:`~peerkeeper.bitcoin.actions.LearnedAddresses` ``relay`` tuple received
from peer ``P`` at time ``now``:

1. skip ``e`` if it is banned or discouraged (Core skips relay for those);
2. ``reachable`` = whether ``e``'s network is one we reach (Core ``g_reachable_nets``);
3. ``candidates`` = ids of the other peers with ``proto.addr_relay_enabled`` and
   ``proto.is_addr_compatible(e)``, excluding ``P`` (Core's loop over ``m_peer_map``);
4. for each id in ``relay_targets(e, now, candidates, k0, k1, reachable=reachable)``
   call that peer's ``proto.push_address(e, now)`` and reschedule its timer
   (``next_wakeup`` may have moved earlier).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable

from peerkeeper.bitcoin.eviction import siphash24
from peerkeeper.net.netaddr import Service
from peerkeeper.wire.messages import AddrEntry

__all__ = [
    "RANDOMIZER_ID_ADDRESS_RELAY",
    "ROTATE_ADDR_RELAY_DEST_INTERVAL",
    "AVG_ADDRESS_BROADCAST_INTERVAL",
    "AVG_LOCAL_ADDRESS_BROADCAST_INTERVAL",
    "ADDR_KNOWN_ELEMENTS",
    "ADDR_KNOWN_FP_RATE",
    "service_hash",
    "relay_targets",
    "rand_exp_duration",
]

#: Core ``RANDOMIZER_ID_ADDRESS_RELAY`` (src/net_processing.cpp): ``SHA256("addressrelay")[0:8]``.
RANDOMIZER_ID_ADDRESS_RELAY = 0x3CAC0035B5866B90
#: Seconds during which an address goes to the same peers (src/net_processing.cpp
#: ``ROTATE_ADDR_RELAY_DEST_INTERVAL``, 24 h).
ROTATE_ADDR_RELAY_DEST_INTERVAL = 24 * 3600
#: Mean seconds between two addr messages to one peer (src/net_processing.cpp
#: ``AVG_ADDRESS_BROADCAST_INTERVAL``, 30 s).
AVG_ADDRESS_BROADCAST_INTERVAL = 30.0
#: Mean seconds between two self-announcements to one peer (src/net_processing.cpp
#: ``AVG_LOCAL_ADDRESS_BROADCAST_INTERVAL``, 24 h).
AVG_LOCAL_ADDRESS_BROADCAST_INTERVAL = 24 * 3600.0
#: ``m_addr_known`` size: Core ``CRollingBloomFilter(5000, 0.001)`` (src/net_processing.cpp
#: ``SetupAddressRelay``).
ADDR_KNOWN_ELEMENTS = 5000
#: ``m_addr_known`` false-positive rate (see :data:`ADDR_KNOWN_ELEMENTS`).
ADDR_KNOWN_FP_RATE = 0.001

_MASK64 = 0xFFFFFFFFFFFFFFFF
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_RANDOMIZER_BYTES = RANDOMIZER_ID_ADDRESS_RELAY.to_bytes(8, "little")


def service_hash(service: Service, k0: int = 0, k1: int = 0) -> int:
    """Core ``CServiceHash(k0, k1)(service)`` (src/netaddress.h), an unsigned 64-bit int.

    SipHash-2-4 keyed ``(k0, k1)`` of: Core's ``enum Network`` number of the address
    (``Network.core_id``, as a little-endian uint64), the port (little-endian uint64),
    then the raw address bytes (``m_addr``: 4 bytes for IPv4, 16 for IPv6/CJDNS,
    32 for Tor v3/I2P, 10 for internal).  ``RelayAddress`` uses the unkeyed
    ``CServiceHash(0, 0)``.

    Raises:
        ValueError: ``k0`` or ``k1`` not in 0..2**64-1.
    """
    a = service.addr
    data = a.network.core_id.to_bytes(8, "little") + service.port.to_bytes(8, "little") + a.addr
    return siphash24(k0, k1, data)


def relay_targets(
    addr: Service | AddrEntry,
    now: float,
    candidates: Iterable[int],
    k0: int,
    k1: int,
    *,
    reachable: bool,
) -> list[int]:
    """The peer ids Core would relay ``addr`` to, best first (0, 1 or 2 of them).

    Core ``PeerManagerImpl::RelayAddress`` (src/net_processing.cpp):

    * an address of a network we do not reach is relayed only if it is relayable
      (``CNetAddr::IsRelayable``: not internal); else ``[]``;
    * ``hash_addr = CServiceHash(0, 0)(addr)`` (:func:`service_hash`);
    * ``time_addr = (uint64(int(now)) + hash_addr) / 86400`` in 64-bit unsigned
      arithmetic: the day bucket, shifted per address so that not every address
      rotates at the same moment;
    * ``hasher = SipHash(k0, k1)`` over ``RANDOMIZER_ID_ADDRESS_RELAY``,
      ``hash_addr``, ``time_addr`` (each a little-endian uint64; Core's
      ``GetDeterministicRandomizer(...).Write(hash_addr).Write(time_addr)``, with
      ``k0, k1`` = ConnMan's ``nSeed0, nSeed1``);
    * relay to 2 peers if ``reachable``, else to 1 or 2: 2 when the low bit of
      ``hasher.Finalize()`` is set;
    * each candidate scores ``hasher.Write(id).Finalize()`` (the peer id as a
      two's-complement uint64); the highest scores win, ties going to the lower id
      (Core walks its id-ordered peer map and needs a strictly greater score), and a
      score of 0 is never chosen.

    Args:
        addr: the address (an :class:`~peerkeeper.wire.messages.AddrEntry` or its
            :class:`~peerkeeper.net.netaddr.Service`).
        now: current time, unix seconds (truncated to whole seconds like Core's
            ``GetTime<std::chrono::seconds>()``).
        candidates: ids (int64) of the peers that may receive it: addr relay enabled,
            address-compatible (``BitcoinPeer.is_addr_compatible``) and not the peer
            that sent it.  Duplicates are ignored.
        k0, k1: the node's deterministic-randomizer key (64-bit unsigned each).
        reachable: whether ``addr``'s network is reachable (Core ``g_reachable_nets``).

    Returns:
        A list of at most 2 peer ids, highest score first.

    Raises:
        ValueError: ``now`` not finite, ``k0``/``k1`` not 64-bit unsigned, or a
            candidate id outside the int64 range.
    """
    if not math.isfinite(now):
        raise ValueError(f"now must be a finite number of seconds, got {now!r}")
    if not (0 <= k0 <= _MASK64 and 0 <= k1 <= _MASK64):
        raise ValueError("k0 and k1 must be unsigned 64-bit integers")
    service = addr.service if isinstance(addr, AddrEntry) else addr
    ids = sorted(set(candidates))
    if ids and (ids[0] < _INT64_MIN or ids[-1] > _INT64_MAX):
        raise ValueError("peer ids must fit in a signed 64-bit integer")
    if not reachable and not service.addr.is_relayable():
        return []
    hash_addr = service_hash(service)
    time_addr = ((int(now) + hash_addr) & _MASK64) // ROTATE_ADDR_RELAY_DEST_INTERVAL
    prefix = _RANDOMIZER_BYTES + hash_addr.to_bytes(8, "little") + time_addr.to_bytes(8, "little")
    n_relay = 2 if reachable or siphash24(k0, k1, prefix) & 1 else 1
    best: list[tuple[int, int]] = [(0, 0)] * n_relay  # (score, id), best first
    for peer_id in ids:
        score = siphash24(k0, k1, prefix + (peer_id & _MASK64).to_bytes(8, "little"))
        for i in range(n_relay):
            if score > best[i][0]:
                best.insert(i, (score, peer_id))
                best.pop()
                break
    return [peer_id for score, peer_id in best if score != 0]


def rand_exp_duration(mean: float, rng: random.Random) -> float:
    """An exponentially distributed delay of average ``mean`` seconds, as a float.

    Core ``FastRandomContext::rand_exp_duration`` (src/random.h) with
    ``MakeExponentiallyDistributed`` (src/random.cpp): ``-ln(1 - U) * mean`` for a
    53-bit uniform ``U`` in [0, 1) (here ``rng.random()``).  Core then rounds to
    microseconds; seconds as a float are kept here.  Used for Poisson timers: the
    addr flush (30 s), self-announcements (24 h).

    Raises:
        ValueError: ``mean`` negative or not finite.
    """
    if not (math.isfinite(mean) and mean >= 0):
        raise ValueError(f"mean must be a finite non-negative number of seconds, got {mean!r}")
    return -math.log1p(-rng.random()) * mean
