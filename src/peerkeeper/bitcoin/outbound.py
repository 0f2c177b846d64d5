"""Outbound connection policy: which connection to open next, and to whom (sans-IO).

Bitcoin Core's ``CConnman::ThreadOpenConnections`` (src/net.cpp) cut into pure
decisions that take a snapshot of the peers, the address table and ``now``; the
asyncio loop in :mod:`peerkeeper.shell.connman` only calls them and carries the result
out, so every rule here is tested in simulated time.

* :class:`OutboundLimits` — slot arithmetic from ``-maxconnections``
  (``CConnman::Init``, src/net.h): 8 full-relay, 2 block-relay-only, 1 feeler, the
  rest inbound, ``-inboundrelaypercent`` of those for tx-relaying inbound peers.
* :func:`count_outbound` — the per-iteration census (full-relay and block-relay-only
  counts, the netgroups of manual/full-relay/block-relay-only IPv4/IPv6 peers, the
  privacy-network peers, manual+full-relay peers per network).
* :class:`OutboundTimers` and :func:`choose_connection_type` — Core's priority
  order: anchors, full-relay, block-relay-only, extra full-relay on a stale tip,
  extra block-relay-only every exp(5 min) once enabled, feeler every exp(2 min),
  extra peer on a missing reachable network every exp(5 min).
* :func:`select_outbound_address` — up to 100 draws from AddrMan with Core's filters.
* :func:`select_extra_outbound_to_evict` — ``PeerManagerImpl::EvictExtraOutboundPeers``
  (src/net_processing.cpp): the extra peers are dropped again.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from peerkeeper.bitcoin.addrman import AddrMan
from peerkeeper.bitcoin.addrrelay import rand_exp_duration
from peerkeeper.bitcoin.peer import has_all_desirable_service_flags, may_have_useful_address_db
from peerkeeper.net.connection_types import ConnectionType
from peerkeeper.net.netaddr import NetAddr, Network, Service, is_bad_port
from peerkeeper.wire.messages import AddrEntry, ServiceFlags

__all__ = [
    "MAX_OUTBOUND_FULL_RELAY_CONNECTIONS",
    "MAX_BLOCK_RELAY_ONLY_CONNECTIONS",
    "MAX_FEELER_CONNECTIONS",
    "MAX_ADDNODE_CONNECTIONS",
    "MAX_BLOCK_RELAY_ONLY_ANCHORS",
    "DEFAULT_MAX_PEER_CONNECTIONS",
    "DEFAULT_FULL_RELAY_INBOUND_PCT",
    "FEELER_INTERVAL",
    "EXTRA_BLOCK_RELAY_ONLY_PEER_INTERVAL",
    "EXTRA_NETWORK_PEER_INTERVAL",
    "FEELER_SLEEP_WINDOW",
    "MAX_SELECT_TRIES",
    "has_candidate",
    "MINIMUM_CONNECT_TIME",
    "EXTRA_PEER_CHECK_INTERVAL",
    "rand_exp_duration",
    "OutboundLimits",
    "OutboundCounts",
    "count_outbound",
    "OutboundTimers",
    "OutboundDecision",
    "choose_connection_type",
    "maybe_pick_preferred_network",
    "count_failures",
    "select_outbound_address",
    "ExtraPeer",
    "select_extra_outbound_to_evict",
    "OutboundPick",
    "OutboundPolicy",
]

#: src/net.h
MAX_OUTBOUND_FULL_RELAY_CONNECTIONS = 8
MAX_BLOCK_RELAY_ONLY_CONNECTIONS = 2
MAX_FEELER_CONNECTIONS = 1
MAX_ADDNODE_CONNECTIONS = 8
DEFAULT_MAX_PEER_CONNECTIONS = 200
#: ``-inboundrelaypercent`` default (src/net.h ``DEFAULT_FULL_RELAY_INBOUND_PCT``).
DEFAULT_FULL_RELAY_INBOUND_PCT = 50
#: Anchors kept across a restart (src/net.cpp ``MAX_BLOCK_RELAY_ONLY_ANCHORS``).
MAX_BLOCK_RELAY_ONLY_ANCHORS = 2
#: Mean seconds between feelers (src/net.h ``FEELER_INTERVAL``).
FEELER_INTERVAL = 120.0
#: Mean seconds between extra block-relay-only peers (src/net.h).
EXTRA_BLOCK_RELAY_ONLY_PEER_INTERVAL = 300.0
#: Mean seconds between extra peers on a missing network (src/net.cpp).
EXTRA_NETWORK_PEER_INTERVAL = 300.0
#: A feeler waits U(0, this) seconds before dialling (src/net.cpp ``FEELER_SLEEP_WINDOW``).
FEELER_SLEEP_WINDOW = 1.0
#: Draws from AddrMan per pick (src/net.cpp ``ThreadOpenConnections``: ``nTries > 100``).
MAX_SELECT_TRIES = 100
#: An extra peer is kept at least this long (src/net_processing.cpp ``MINIMUM_CONNECT_TIME``).
MINIMUM_CONNECT_TIME = 30.0
#: Seconds between extra-peer eviction checks (src/net_processing.cpp).
EXTRA_PEER_CHECK_INTERVAL = 45.0
#: A recently tried address is skipped for this long unless 30 draws failed (src/net.cpp).
RECENT_TRY_WINDOW = 600.0

_NODE_P2P_V2 = int(ServiceFlags.NODE_P2P_V2)
_PRIVACY_NETS = frozenset({Network.TORV3, Network.I2P, Network.CJDNS})
_PREFERRED_NETS = (Network.IPV4, Network.IPV6, Network.TORV3, Network.I2P, Network.CJDNS)


@dataclass(frozen=True, slots=True)
class OutboundLimits:
    """Connection slots derived from ``-maxconnections`` (Core ``CConnman::Init``, src/net.h).

    ``max_outbound_full_relay = min(8, N)``, ``max_outbound_block_relay = min(2, N - full)``,
    ``max_automatic_outbound = full + block + 1 feeler`` (Core's ``semOutbound`` is
    ``min(that, N)``), ``max_inbound = max(0, N - automatic outbound)`` and
    ``max_inbound_full_relay = int(pct / 100 * max_inbound)`` (``-inboundrelaypercent``).
    Manual connections (up to :data:`MAX_ADDNODE_CONNECTIONS`) are not counted in N.
    """

    max_connections: int = DEFAULT_MAX_PEER_CONNECTIONS
    inbound_relay_percent: int = DEFAULT_FULL_RELAY_INBOUND_PCT

    def __post_init__(self) -> None:
        if self.max_connections < 0:
            raise ValueError("-maxconnections must be >= 0")
        if not 0 <= self.inbound_relay_percent <= 100:
            raise ValueError("-inboundrelaypercent must be between 0 and 100")

    @property
    def max_outbound_full_relay(self) -> int:
        """Full-relay outbound slots: ``min(8, maxconnections)``."""
        return min(MAX_OUTBOUND_FULL_RELAY_CONNECTIONS, self.max_connections)

    @property
    def max_outbound_block_relay(self) -> int:
        """Block-relay-only slots: ``min(2, maxconnections - full-relay slots)``."""
        return min(
            MAX_BLOCK_RELAY_ONLY_CONNECTIONS, self.max_connections - self.max_outbound_full_relay
        )

    @property
    def max_automatic_outbound(self) -> int:
        """Core's ``semOutbound`` size: full-relay + block-relay-only + feeler, at most N."""
        return min(
            self.max_outbound_full_relay + self.max_outbound_block_relay + MAX_FEELER_CONNECTIONS,
            self.max_connections,
        )

    @property
    def max_inbound(self) -> int:
        """Inbound slots: ``max(0, N - (full + block + feeler))``."""
        return max(
            0,
            self.max_connections
            - (
                self.max_outbound_full_relay
                + self.max_outbound_block_relay
                + MAX_FEELER_CONNECTIONS
            ),
        )

    @property
    def max_inbound_full_relay(self) -> int:
        """Inbound slots for tx-relaying peers: ``int(pct / 100.0 * max_inbound)``."""
        return max(0, int(self.inbound_relay_percent / 100.0 * self.max_inbound))


@dataclass(slots=True)
class OutboundCounts:
    """Core's census at the top of each ``ThreadOpenConnections`` iteration (src/net.cpp).

    ``full_relay`` / ``block_relay``: live outbound-full-relay / block-relay-only
    connections; ``ipv46_netgroups``: netgroups of manual, full-relay and
    block-relay-only peers on IPv4/IPv6 (inbound, feeler and addr-fetch peers do not
    count: they are free to make or short-lived); ``privacy_peers``: such peers on
    Tor/I2P/CJDNS, whose groups are random and not diversified;
    ``network_counts``: manual + full-relay peers per network (Core's
    ``m_network_conn_counts``, used by :func:`maybe_pick_preferred_network`).
    """

    full_relay: int = 0
    block_relay: int = 0
    ipv46_netgroups: set[bytes] = field(default_factory=set)
    privacy_peers: int = 0
    network_counts: dict[Network, int] = field(default_factory=dict)


def count_outbound(
    peers: Iterable[tuple[ConnectionType, NetAddr]],
    group: Callable[[NetAddr], bytes] = NetAddr.netgroup,
) -> OutboundCounts:
    """Build :class:`OutboundCounts` from ``(connection type, address)`` pairs of live
    peers; ``group`` is the netgroup (Core ``NetGroupManager::GetGroup``: /16, or the AS
    with ``-asmap``)."""
    counts = OutboundCounts()
    for conn_type, addr in peers:
        if conn_type is ConnectionType.OUTBOUND_FULL_RELAY:
            counts.full_relay += 1
        elif conn_type is ConnectionType.BLOCK_RELAY:
            counts.block_relay += 1
        if conn_type in (
            ConnectionType.MANUAL,
            ConnectionType.OUTBOUND_FULL_RELAY,
            ConnectionType.BLOCK_RELAY,
        ):
            if addr.network in _PRIVACY_NETS:
                counts.privacy_peers += 1
            else:
                counts.ipv46_netgroups.add(group(addr))
            if conn_type is not ConnectionType.BLOCK_RELAY:
                net = addr.get_network()
                counts.network_counts[net] = counts.network_counts.get(net, 0) + 1
    return counts


@dataclass(slots=True)
class OutboundTimers:
    """The exponential timers of ``ThreadOpenConnections`` (seconds since the epoch).

    :meth:`start` draws the first deadlines at ``start + exp(mean)``, as Core does.
    """

    next_feeler: float = 0.0
    next_extra_block_relay: float = 0.0
    next_extra_network_peer: float = 0.0

    @classmethod
    def start(cls, now: float, rng: random.Random) -> OutboundTimers:
        """First deadlines: feeler exp(2 min), extra block-relay and network peer exp(5 min)."""
        return cls(
            next_feeler=now + rand_exp_duration(FEELER_INTERVAL, rng),
            next_extra_block_relay=now
            + rand_exp_duration(EXTRA_BLOCK_RELAY_ONLY_PEER_INTERVAL, rng),
            next_extra_network_peer=now + rand_exp_duration(EXTRA_NETWORK_PEER_INTERVAL, rng),
        )

    def next_deadline(self, *, extra_block_relay: bool) -> float:
        """The earliest timer that could start a connection (for the loop's sleep)."""
        t = min(self.next_feeler, self.next_extra_network_peer)
        return min(t, self.next_extra_block_relay) if extra_block_relay else t


@dataclass(frozen=True, slots=True)
class OutboundDecision:
    """What ``ThreadOpenConnections`` opens this iteration.

    ``anchor``: a block-relay-only connection to a saved anchor; ``feeler``: a
    feeler (test-before-evict or new-table probe); ``preferred_net``: the extra
    full-relay peer must be on this network.
    """

    conn_type: ConnectionType
    anchor: bool = False
    feeler: bool = False
    preferred_net: Network | None = None


def maybe_pick_preferred_network(
    reachable: Iterable[Network],
    network_counts: dict[Network, int],
    addrman_size: Callable[[Network], int],
    rng: random.Random,
) -> Network | None:
    """Core ``CConnman::MaybePickPreferredNetwork`` (src/net.cpp).

    In a random order of {IPv4, IPv6, Tor, I2P, CJDNS}: the first reachable network
    with no manual or full-relay outbound peer and a non-empty address table.
    """
    nets = list(_PREFERRED_NETS)
    rng.shuffle(nets)
    reach = set(reachable)
    for net in nets:
        if net in reach and network_counts.get(net, 0) == 0 and addrman_size(net) != 0:
            return net
    return None


def choose_connection_type(
    counts: OutboundCounts,
    limits: OutboundLimits,
    timers: OutboundTimers,
    now: float,
    rng: random.Random,
    *,
    anchors_pending: bool,
    try_new_outbound_peer: bool = False,
    start_extra_block_relay_peers: bool = False,
    pick_preferred_network: Callable[[], Network | None] = lambda: None,
    feelers: bool = True,
) -> OutboundDecision | None:
    """The next connection type in Core's priority order, or None (src/net.cpp
    ``ThreadOpenConnections``).

    1. anchors left and block-relay-only slots free: block-relay-only to an anchor;
    2. full-relay slots free: full-relay; 3. block-relay-only slots free: block-relay-only;
    4. ``try_new_outbound_peer`` (Core's stale-tip flag): an extra full-relay;
    5. ``start_extra_block_relay_peers`` and the extra-block-relay timer expired:
       block-relay-only, timer redrawn at exp(5 min);
    6. feeler timer expired: feeler, timer redrawn at exp(2 min);
    7. exactly 8 full-relay peers (the default maximum), the network timer expired
       and ``pick_preferred_network`` names a network: full-relay on it, timer
       redrawn at exp(5 min).

    ``timers`` is updated in place as Core updates its locals. ``feelers=False`` (a
    simulation switch; Core has none) leaves step 6 out.
    """
    if anchors_pending and counts.block_relay < limits.max_outbound_block_relay:
        return OutboundDecision(ConnectionType.BLOCK_RELAY, anchor=True)
    if counts.full_relay < limits.max_outbound_full_relay:
        return OutboundDecision(ConnectionType.OUTBOUND_FULL_RELAY)
    if counts.block_relay < limits.max_outbound_block_relay:
        return OutboundDecision(ConnectionType.BLOCK_RELAY)
    if try_new_outbound_peer:
        return OutboundDecision(ConnectionType.OUTBOUND_FULL_RELAY)
    if now > timers.next_extra_block_relay and start_extra_block_relay_peers:
        timers.next_extra_block_relay = now + rand_exp_duration(
            EXTRA_BLOCK_RELAY_ONLY_PEER_INTERVAL, rng
        )
        return OutboundDecision(ConnectionType.BLOCK_RELAY)
    if feelers and now > timers.next_feeler:
        timers.next_feeler = now + rand_exp_duration(FEELER_INTERVAL, rng)
        return OutboundDecision(ConnectionType.FEELER, feeler=True)
    if (
        counts.full_relay == limits.max_outbound_full_relay == MAX_OUTBOUND_FULL_RELAY_CONNECTIONS
        and now > timers.next_extra_network_peer
    ):
        net = pick_preferred_network()
        if net is not None:
            timers.next_extra_network_peer = now + rand_exp_duration(
                EXTRA_NETWORK_PEER_INTERVAL, rng
            )
            return OutboundDecision(ConnectionType.OUTBOUND_FULL_RELAY, preferred_net=net)
    return None


def count_failures(counts: OutboundCounts, max_automatic_connections: int) -> bool:
    """Whether a failed dial counts against the address (src/net.cpp ``count_failures``).

    Only once we have outbound peers in at least ``min(max_automatic - 1, 2)``
    distinct IPv4/IPv6 netgroups (plus privacy-network peers): an offline node,
    whose peers all sit in one local group, does not mark the table as failing.
    """
    return len(counts.ipv46_netgroups) + counts.privacy_peers >= min(
        max_automatic_connections - 1, 2
    )


def select_outbound_address(
    decision: OutboundDecision,
    addrman: AddrMan,
    counts: OutboundCounts,
    now: float,
    *,
    reachable: set[Network],
    anchors: list[AddrEntry],
    is_local: Callable[[Service], bool] = lambda s: False,
    already_connected: Callable[[Service], bool] = lambda s: False,
    added_node: Callable[[Service], bool] = lambda s: False,
    outbound_allowed: Callable[[NetAddr], bool] = lambda a: True,
    dial_ready: Callable[[Service], bool] = lambda s: True,
    desirable: Callable[[int], bool] = has_all_desirable_service_flags,
    max_tries: int = MAX_SELECT_TRIES,
    group: Callable[[NetAddr], bytes] = NetAddr.netgroup,
) -> AddrEntry | None:
    """Pick the address for ``decision``: Core's selection loop (src/net.cpp
    ``ThreadOpenConnections``), or None after ``max_tries`` draws.

    Anchors: popped from the back of ``anchors`` (mutated); skipped when invalid,
    ours, unreachable, lacking desirable services or in a used netgroup.
    Feelers: a tried-table collision occupant first (``select_tried_collision``; if
    we are already connected to it, it is marked good and a new-table address is
    drawn instead), else a new-table address. Others: any table, restricted to
    ``decision.preferred_net`` when set. Each draw is then rejected when: in a
    netgroup already used by a manual/full/block-relay IPv4/IPv6 peer (not for
    feelers); invalid or ours (ends the pick, as Core's ``break``); unreachable
    (``-onlynet``); tried in the last 10 min (unless 30 draws failed); lacking
    NODE_NETWORK|WITNESS (or the limited form), or for feelers NODE_NETWORK or
    NETWORK_LIMITED; on one of Core's bad ports (unless 50 draws failed); an
    ``-addnode`` peer; already connected; banned or discouraged (Core refuses those
    in ``OpenNetworkConnection``: here the draw is simply rejected); still in its
    failure back-off (``dial_ready`` False: peerkeeper's per-point back-off, Octez's
    rule, on top of Core's 10-minute window).
    """
    used = counts.ipv46_netgroups
    if decision.anchor:
        while anchors:
            anchor = anchors.pop()
            a = anchor.service.addr
            if (
                not a.is_valid()
                or is_local(anchor.service)
                or a.get_network() not in reachable
                or not desirable(anchor.services)
                or (a.network not in _PRIVACY_NETS and group(a) in used)
                or already_connected(anchor.service)
                or not outbound_allowed(a)
            ):
                continue
            return anchor
        return None
    nets = [decision.preferred_net] if decision.preferred_net is not None else sorted(reachable)
    tries = 0
    while True:
        tries += 1
        if tries > max_tries:
            return None
        entry: AddrEntry | None
        if decision.feeler:
            entry, last_try = addrman.select_tried_collision(now)
            if entry is None:
                entry, last_try = addrman.select(True, nets, now=now)
            elif already_connected(entry.service):
                addrman.good(entry.service, now=now)
                entry, last_try = addrman.select(True, nets, now=now)
        else:
            entry, last_try = addrman.select(False, nets, now=now)
        if entry is None:
            return None  # Core: an invalid (empty) address ends the pick
        addr = entry.service.addr
        if not decision.feeler and addr.network not in _PRIVACY_NETS and group(addr) in used:
            continue
        if not addr.is_valid() or is_local(entry.service):
            return None
        if addr.get_network() not in reachable:
            continue
        if now - last_try < RECENT_TRY_WINDOW and tries < 30:
            continue
        if decision.feeler:
            if not may_have_useful_address_db(entry.services):
                continue
        elif not desirable(entry.services):
            continue
        if (
            tries < 50
            and addr.network in (Network.IPV4, Network.IPV6)
            and is_bad_port(entry.service.port)
        ):
            continue
        if added_node(entry.service):
            continue
        if (
            already_connected(entry.service)
            or not outbound_allowed(addr)
            or not dial_ready(entry.service)
        ):
            continue
        return entry


def has_candidate(
    decision: OutboundDecision,
    addrman: AddrMan,
    counts: OutboundCounts,
    *,
    reachable: set[Network],
    is_local: Callable[[Service], bool] = lambda s: False,
    already_connected: Callable[[Service], bool] = lambda s: False,
    added_node: Callable[[Service], bool] = lambda s: False,
    outbound_allowed: Callable[[NetAddr], bool] = lambda a: True,
    dial_ready: Callable[[Service], bool] = lambda s: True,
    desirable: Callable[[int], bool] = has_all_desirable_service_flags,
    group: Callable[[NetAddr], bytes] = NetAddr.netgroup,
) -> bool:
    """Whether any AddrMan entry could pass :func:`select_outbound_address`'s filters
    for ``decision`` (not an anchor): the ones that hold however often it draws.

    The filters that only delay an entry (tried in the last 10 minutes, a bad port)
    are left out, so False means the draws cannot return an address and need not be
    made: draws have no side effects, so skipping them changes nothing but the random
    stream. A feeler with tried collisions waiting is not for this function (its draw
    marks entries good).
    """
    used = counts.ipv46_netgroups
    nets = {decision.preferred_net} if decision.preferred_net is not None else reachable
    feeler = decision.feeler
    for info in addrman.infos():
        if feeler and info.in_tried:
            continue
        svc = info.service
        addr = svc.addr
        if addr.get_network() not in nets:
            continue
        if not feeler and addr.network not in _PRIVACY_NETS and group(addr) in used:
            continue
        if not addr.is_valid() or is_local(svc):
            continue
        if not (may_have_useful_address_db(info.services) if feeler else desirable(info.services)):
            continue
        if added_node(svc) or already_connected(svc):
            continue
        if outbound_allowed(addr) and dial_ready(svc):
            return True
    return False


@dataclass(frozen=True, slots=True)
class ExtraPeer:
    """An outbound peer as ``EvictExtraOutboundPeers`` sees it (src/net_processing.cpp).

    ``id`` (higher = newer), ``conn_type``, ``connected`` (seconds since the epoch),
    ``last_block_time`` (Core's ``m_last_block_time``, block-relay-only peers),
    ``last_block_announcement`` (``m_last_block_announcement``, full-relay peers),
    ``network``, ``protected`` (``m_chain_sync.m_protect``), ``blocks_in_flight``,
    ``successfully_connected``.
    """

    id: int
    conn_type: ConnectionType
    connected: float
    network: Network
    last_block_time: float = 0.0
    last_block_announcement: float = 0.0
    protected: bool = False
    blocks_in_flight: int = 0
    successfully_connected: bool = True


def select_extra_outbound_to_evict(
    peers: Sequence[ExtraPeer], limits: OutboundLimits, now: float
) -> list[int]:
    """Peer ids to disconnect because we have more outbound peers than slots.

    Core ``PeerManagerImpl::EvictExtraOutboundPeers`` (src/net_processing.cpp), run
    every :data:`EXTRA_PEER_CHECK_INTERVAL`: an extra block-relay-only peer — the
    youngest, unless it gave us a block more recently than the second youngest, then
    that one; an extra full-relay peer — the one whose last block announcement is
    oldest (ties: the newer connection), never a protected peer nor the only manual
    or full-relay peer on its network. Either only after :data:`MINIMUM_CONNECT_TIME`
    and with no block in flight.
    """
    out: list[int] = []
    live = [p for p in peers if p.successfully_connected]
    blocks = sorted(
        (p for p in live if p.conn_type is ConnectionType.BLOCK_RELAY), key=lambda p: p.id
    )
    if len(blocks) > limits.max_outbound_block_relay and blocks:
        youngest = blocks[-1]
        victim = youngest
        if len(blocks) > 1 and youngest.last_block_time > blocks[-2].last_block_time:
            victim = blocks[-2]
        if now - victim.connected >= MINIMUM_CONNECT_TIME and victim.blocks_in_flight == 0:
            out.append(victim.id)
    fulls = [p for p in live if p.conn_type is ConnectionType.OUTBOUND_FULL_RELAY]
    if len(fulls) > limits.max_outbound_full_relay:
        per_net: dict[Network, int] = {}
        for p in peers:
            if p.conn_type in (ConnectionType.OUTBOUND_FULL_RELAY, ConnectionType.MANUAL):
                per_net[p.network] = per_net.get(p.network, 0) + 1
        worst: ExtraPeer | None = None
        for p in fulls:
            if p.protected or per_net.get(p.network, 0) <= 1:
                continue
            if (
                worst is None
                or p.last_block_announcement < worst.last_block_announcement
                or (p.last_block_announcement == worst.last_block_announcement and p.id > worst.id)
            ):
                worst = p
        if (
            worst is not None
            and now - worst.connected > MINIMUM_CONNECT_TIME
            and worst.blocks_in_flight == 0
        ):
            out.append(worst.id)
    return out


@dataclass(frozen=True, slots=True)
class OutboundPick:
    """The result of one :meth:`OutboundPolicy.next_connection`: dial ``entry`` as ``decision``.

    ``count_failure`` says whether a failed dial counts against the address
    (:func:`count_failures`); ``use_v2`` whether to try BIP324 (both sides advertise
    NODE_P2P_V2, src/net.cpp ``use_v2transport``).
    """

    decision: OutboundDecision
    entry: AddrEntry
    count_failure: bool
    use_v2: bool


class OutboundPolicy:
    """One ``ThreadOpenConnections`` iteration at a time, without I/O (src/net.cpp).

    ``OutboundPolicy(limits, addrman, rng, now, reachable=..., anchors=[...])``; call
    :meth:`next_connection` with the live peers each time a slot may be free (Core
    loops every 500 ms); it returns what to dial or None. The caller dials one pick
    at a time, as Core does, and tells AddrMan about the attempt. ``local_services``
    are ours (for the v2 choice); ``is_local`` names our own addresses,
    ``added_node`` the ``-addnode`` peers, ``outbound_allowed`` is BanMan's
    "neither banned nor discouraged", ``dial_ready`` the failure back-off.
    """

    def __init__(
        self,
        limits: OutboundLimits,
        addrman: AddrMan,
        rng: random.Random,
        now: float,
        *,
        reachable: set[Network],
        anchors: Sequence[AddrEntry] = (),
        local_services: int = 0,
        is_local: Callable[[Service], bool] = lambda s: False,
        added_node: Callable[[Service], bool] = lambda s: False,
        outbound_allowed: Callable[[NetAddr], bool] = lambda a: True,
        dial_ready: Callable[[Service], bool] = lambda s: True,
        feelers: bool = True,
        netgroup_diversity: bool = True,
    ) -> None:
        self.limits = limits
        #: Switches for simulation studies (Core has none): feeler connections, and one
        #: outbound peer per netgroup.
        self.feelers = feelers
        self.netgroup_diversity = netgroup_diversity
        self.dial_ready = dial_ready
        self.addrman = addrman
        self.rng = rng
        self.reachable = set(reachable)
        #: ``reachable`` in a fixed order (for state keys).
        self.reachable_sorted = tuple(sorted(self.reachable))
        self.anchors: list[AddrEntry] = list(anchors)[:MAX_BLOCK_RELAY_ONLY_ANCHORS]
        self.timers = OutboundTimers.start(now, rng)
        self.local_services = local_services
        self.is_local = is_local
        self.added_node = added_node
        self.outbound_allowed = outbound_allowed
        #: Core ``m_start_extra_block_relay_peers``: set once out of IBD (``StartExtraBlockRelayPeers``).
        self.start_extra_block_relay_peers = False
        #: Core ``m_try_another_outbound_peer``: set on a stale tip (``SetTryNewOutboundPeer``).
        self.try_new_outbound_peer = False
        #: What the last :meth:`next_connection` decided (None: no slot or timer wanted one).
        self.last_decision: OutboundDecision | None = None
        #: True when the last :meth:`next_connection` found no entry that could pass.
        self.no_candidate = False

    def add_reachable(self, net: Network) -> None:
        """``net`` became reachable after start (Core ``g_reachable_nets.Add``: Tor's
        control port supplied the onion proxy, src/torcontrol.cpp ``get_socks_cb``)."""
        self.reachable.add(net)
        self.reachable_sorted = tuple(sorted(self.reachable))

    def idle_deadline(self, now: float) -> float:
        """When :func:`choose_connection_type` could next want a connection with the
        peers unchanged (seconds since the epoch): the feeler timer, the extra
        block-relay timer when those peers are on, the extra network-peer timer if it
        is still ahead (once passed, only a change of peers or of AddrMan's networks
        can make it pick)."""
        t = self.timers
        at = t.next_feeler if self.feelers else float("inf")
        if self.start_extra_block_relay_peers:
            at = min(at, t.next_extra_block_relay)
        if t.next_extra_network_peer >= now:
            at = min(at, t.next_extra_network_peer)
        return at

    def grant_available(self, automatic_outbound: int) -> bool:
        """Core's ``semOutbound``: a new automatic connection (full, block, feeler,
        addr-fetch, pending or live) only while fewer than ``max_automatic_outbound`` exist."""
        return automatic_outbound < self.limits.max_automatic_outbound

    def next_connection(
        self,
        peers: Iterable[tuple[ConnectionType, Service]],
        now: float,
    ) -> OutboundPick | None:
        """The next connection to open, or None (nothing due, or no acceptable address).

        ``peers``: ``(connection type, address)`` of every live connection. Runs
        AddrMan's ``resolve_collisions`` before drawing, as Core does.
        """
        peer_list = list(peers)
        connected = {s for _t, s in peer_list}
        connected_addrs = {s.addr for _t, s in peer_list}

        def already_connected(s: Service) -> bool:
            return s in connected or s.addr in connected_addrs

        outbound = [(t, s) for t, s in peer_list if not t.is_inbound]
        return self.next_connection_from(outbound, already_connected, now)

    def next_connection_from(
        self,
        outbound: Iterable[tuple[ConnectionType, Service]],
        already_connected: Callable[[Service], bool],
        now: float,
    ) -> OutboundPick | None:
        """:meth:`next_connection` for a caller that keeps its own indexes: ``outbound``
        are the live non-inbound connections (the only ones Core's census counts), and
        ``already_connected(service)`` says whether any live connection, inbound ones
        included, has that address (Core ``AlreadyConnectedToAddress``)."""
        group = self.addrman.netgroupman.get_group
        counts = count_outbound(((t, s.addr) for t, s in outbound), group)
        decision = choose_connection_type(
            counts,
            self.limits,
            self.timers,
            now,
            self.rng,
            anchors_pending=bool(self.anchors),
            try_new_outbound_peer=self.try_new_outbound_peer,
            start_extra_block_relay_peers=self.start_extra_block_relay_peers,
            pick_preferred_network=lambda: maybe_pick_preferred_network(
                self.reachable, counts.network_counts, self.addrman.size, self.rng
            ),
            feelers=self.feelers,
        )
        self.last_decision = decision
        self.no_candidate = False
        if decision is None:
            return None
        # Without netgroup diversity (a simulation switch) no netgroup counts as used.
        used = counts if self.netgroup_diversity else replace(counts, ipv46_netgroups=set())
        self.addrman.resolve_collisions(now)

        # Draws have no side effects, so when no entry can pass they are skipped (a
        # feeler with collisions waiting is the exception: its draw marks entries good).
        skip_check = decision.anchor or (decision.feeler and self.addrman.has_tried_collisions)
        if not skip_check and not has_candidate(
            decision,
            self.addrman,
            used,
            reachable=self.reachable,
            is_local=self.is_local,
            already_connected=already_connected,
            added_node=self.added_node,
            outbound_allowed=self.outbound_allowed,
            dial_ready=self.dial_ready,
            group=group,
        ):
            self.no_candidate = True
            return None
        entry = select_outbound_address(
            decision,
            self.addrman,
            used,
            now,
            reachable=self.reachable,
            anchors=self.anchors,
            is_local=self.is_local,
            already_connected=already_connected,
            added_node=self.added_node,
            outbound_allowed=self.outbound_allowed,
            dial_ready=self.dial_ready,
            group=group,
        )
        if entry is None:
            return None
        return OutboundPick(
            decision=decision,
            entry=entry,
            count_failure=count_failures(counts, self.limits.max_automatic_outbound),
            use_v2=bool(entry.services & self.local_services & _NODE_P2P_V2),
        )
