"""Outbound connection policy (src/peerkeeper/bitcoin/outbound.py), in simulated time.

Unit tests of each rule of Core's ``ThreadOpenConnections`` and
``EvictExtraOutboundPeers``, then whole-policy simulations: a node starting from an
empty table fills 8 full-relay + 2 block-relay-only slots in distinct netgroups with
feelers running, and an attacker with 5,000 addresses in 3 netgroups never holds more
than 3 of the 10 outbound slots.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerkeeper.bitcoin.addrman import AddrMan
from peerkeeper.bitcoin.outbound import (
    FEELER_INTERVAL,
    ExtraPeer,
    OutboundCounts,
    OutboundDecision,
    OutboundLimits,
    OutboundPolicy,
    OutboundTimers,
    choose_connection_type,
    count_failures,
    count_outbound,
    has_candidate,
    maybe_pick_preferred_network,
    rand_exp_duration,
    select_extra_outbound_to_evict,
    select_outbound_address,
)
from peerkeeper.net.asmap import encode_asmap
from peerkeeper.net.connection_types import ConnectionType
from peerkeeper.net.netaddr import NetAddr, Network, Service
from peerkeeper.wire.messages import AddrEntry, ServiceFlags

NOW = 1_700_000_000.0
FULL = int(ServiceFlags.NODE_NETWORK | ServiceFlags.NODE_WITNESS)
V2 = int(ServiceFlags.NODE_P2P_V2)
ALL_NETS = {Network.IPV4, Network.IPV6, Network.TORV3, Network.I2P, Network.CJDNS}


def svc(s: str, port: int = 8333) -> Service:
    return Service.parse(s, port)


def entry(s: str, services: int = FULL, t: float = NOW - 3600, port: int = 8333) -> AddrEntry:
    return AddrEntry(int(t), services, svc(s, port))


def fresh_addrman(seed: int = 1) -> AddrMan:
    return AddrMan(random.Random(seed), deterministic=True)


# -- slots ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "full", "block", "auto", "inbound", "inbound_relay"),
    [
        (200, 8, 2, 11, 189, 94),  # Core's defaults (net.h: 200, 50 %)
        (125, 8, 2, 11, 114, 57),
        (11, 8, 2, 11, 0, 0),
        (9, 8, 1, 9, 0, 0),
        (8, 8, 0, 8, 0, 0),
        (3, 3, 0, 3, 0, 0),
        (0, 0, 0, 0, 0, 0),
        (12, 8, 2, 11, 1, 0),
    ],
)
def test_slot_arithmetic_is_core_init(
    n: int, full: int, block: int, auto: int, inbound: int, inbound_relay: int
) -> None:
    lim = OutboundLimits(n)
    assert lim.max_outbound_full_relay == full
    assert lim.max_outbound_block_relay == block
    assert lim.max_automatic_outbound == auto
    assert lim.max_inbound == inbound
    assert lim.max_inbound_full_relay == inbound_relay


def test_inbound_relay_percent() -> None:
    assert OutboundLimits(200, 100).max_inbound_full_relay == 189
    assert OutboundLimits(200, 0).max_inbound_full_relay == 0
    with pytest.raises(ValueError, match="inboundrelaypercent"):
        OutboundLimits(200, 101)
    with pytest.raises(ValueError, match="maxconnections"):
        OutboundLimits(-1)


# -- census ---------------------------------------------------------------------------------


def test_count_outbound_groups_only_persistent_ipv46_peers() -> None:
    onion = NetAddr.parse("pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion")
    c = count_outbound(
        [
            (ConnectionType.OUTBOUND_FULL_RELAY, NetAddr.parse("1.2.3.4")),
            (ConnectionType.OUTBOUND_FULL_RELAY, NetAddr.parse("1.2.9.9")),  # same /16
            (ConnectionType.BLOCK_RELAY, NetAddr.parse("5.6.7.8")),
            (ConnectionType.MANUAL, NetAddr.parse("2001:db9::1")),
            (ConnectionType.MANUAL, onion),
            (ConnectionType.INBOUND, NetAddr.parse("9.9.9.9")),
            (ConnectionType.FEELER, NetAddr.parse("8.8.8.8")),
            (ConnectionType.ADDR_FETCH, NetAddr.parse("7.7.7.7")),
        ]
    )
    assert c.full_relay == 2
    assert c.block_relay == 1
    assert c.ipv46_netgroups == {
        NetAddr.parse("1.2.3.4").netgroup(),
        NetAddr.parse("5.6.7.8").netgroup(),
        NetAddr.parse("2001:db9::1").netgroup(),
    }
    assert c.privacy_peers == 1
    # manual + full-relay per network (Core m_network_conn_counts); block-relay not counted
    assert c.network_counts == {Network.IPV4: 2, Network.IPV6: 1, Network.TORV3: 1}


def test_count_failures_needs_two_groups() -> None:
    c = OutboundCounts()
    assert not count_failures(c, 11)
    c.ipv46_netgroups.add(b"\x01\x01\x02")
    assert not count_failures(c, 11)
    c.privacy_peers = 1
    assert count_failures(c, 11)
    # tiny -maxconnections: min(max_automatic - 1, 2)
    assert count_failures(OutboundCounts(), 1)


# -- connection type --------------------------------------------------------------------------


def _timers(
    feeler: float = math.inf, block: float = math.inf, net: float = math.inf
) -> OutboundTimers:
    return OutboundTimers(
        next_feeler=feeler, next_extra_block_relay=block, next_extra_network_peer=net
    )


def _choose(
    counts: OutboundCounts, timers: OutboundTimers, **kw: object
) -> OutboundDecision | None:
    return choose_connection_type(
        counts,
        OutboundLimits(),
        timers,
        NOW,
        random.Random(1),
        **kw,  # type: ignore[arg-type]
    )


def test_priority_anchor_then_full_then_block() -> None:
    t = _timers(feeler=0)
    d = _choose(OutboundCounts(), t, anchors_pending=True)
    assert d == OutboundDecision(ConnectionType.BLOCK_RELAY, anchor=True)
    d = _choose(OutboundCounts(), t, anchors_pending=False)
    assert d == OutboundDecision(ConnectionType.OUTBOUND_FULL_RELAY)
    d = _choose(OutboundCounts(full_relay=8), t, anchors_pending=False)
    assert d == OutboundDecision(ConnectionType.BLOCK_RELAY)
    # anchors are only used while block-relay slots are free
    d = _choose(OutboundCounts(full_relay=3, block_relay=2), t, anchors_pending=True)
    assert d == OutboundDecision(ConnectionType.OUTBOUND_FULL_RELAY)
    assert t.next_feeler == 0  # no timer consumed


def test_stale_tip_extra_full_relay_before_timers() -> None:
    t = _timers(feeler=0, block=0)
    d = _choose(
        OutboundCounts(full_relay=8, block_relay=2),
        t,
        anchors_pending=False,
        try_new_outbound_peer=True,
        start_extra_block_relay_peers=True,
    )
    assert d == OutboundDecision(ConnectionType.OUTBOUND_FULL_RELAY)


def test_extra_block_relay_only_once_enabled_and_due() -> None:
    full = OutboundCounts(full_relay=8, block_relay=2)
    t = _timers(block=NOW - 1)
    assert _choose(full, t, anchors_pending=False) is None  # not enabled (IBD)
    d = _choose(full, t, anchors_pending=False, start_extra_block_relay_peers=True)
    assert d == OutboundDecision(ConnectionType.BLOCK_RELAY)
    assert t.next_extra_block_relay > NOW  # redrawn
    assert _choose(full, t, anchors_pending=False, start_extra_block_relay_peers=True) is None


def test_feeler_when_due_and_timer_redrawn() -> None:
    full = OutboundCounts(full_relay=8, block_relay=2)
    t = _timers(feeler=NOW + 1)
    assert _choose(full, t, anchors_pending=False) is None
    t.next_feeler = NOW - 0.001
    d = _choose(full, t, anchors_pending=False)
    assert d == OutboundDecision(ConnectionType.FEELER, feeler=True)
    assert t.next_feeler > NOW


def test_extra_network_peer_only_with_exactly_eight_full_relay() -> None:
    t = _timers(net=NOW - 1)
    picked: list[int] = []

    def pick() -> Network | None:
        picked.append(1)
        return Network.TORV3

    d = _choose(
        OutboundCounts(full_relay=8, block_relay=2),
        t,
        anchors_pending=False,
        pick_preferred_network=pick,
    )
    assert d == OutboundDecision(ConnectionType.OUTBOUND_FULL_RELAY, preferred_net=Network.TORV3)
    assert t.next_extra_network_peer > NOW
    # with a reduced -maxconnections (fewer than 8 full-relay slots) never
    t2 = _timers(net=NOW - 1)
    d = choose_connection_type(
        OutboundCounts(full_relay=5),
        OutboundLimits(5),
        t2,
        NOW,
        random.Random(1),
        anchors_pending=False,
        pick_preferred_network=pick,
    )
    assert d is None
    assert t2.next_extra_network_peer == NOW - 1
    # nothing to pick: timer not consumed
    t3 = _timers(net=NOW - 1)
    d = _choose(OutboundCounts(full_relay=8, block_relay=2), t3, anchors_pending=False)
    assert d is None and t3.next_extra_network_peer == NOW - 1


def test_maybe_pick_preferred_network() -> None:
    sizes = {Network.IPV4: 10, Network.IPV6: 0, Network.TORV3: 5}
    size: Callable[[Network], int] = lambda n: sizes.get(n, 0)  # noqa: E731
    counts = {Network.IPV4: 8}
    for seed in range(20):
        got = maybe_pick_preferred_network(ALL_NETS, counts, size, random.Random(seed))
        assert got is Network.TORV3  # the only reachable, non-empty network with no peer
    assert maybe_pick_preferred_network({Network.IPV4}, counts, size, random.Random(1)) is None
    # each eligible network is picked over many draws
    both = {maybe_pick_preferred_network(ALL_NETS, {}, size, random.Random(s)) for s in range(50)}
    assert both == {Network.IPV4, Network.TORV3}


def test_timers_start_exponential() -> None:
    rng = random.Random(5)
    draws = [rand_exp_duration(FEELER_INTERVAL, rng) for _ in range(20000)]
    mean = sum(draws) / len(draws)
    assert abs(mean - FEELER_INTERVAL) < 0.05 * FEELER_INTERVAL
    assert min(draws) >= 0
    t = OutboundTimers.start(NOW, random.Random(1))
    assert (
        t.next_feeler > NOW and t.next_extra_block_relay > NOW and t.next_extra_network_peer > NOW
    )


# -- address selection ----------------------------------------------------------------------


def _select(
    am: AddrMan, decision: OutboundDecision, counts: OutboundCounts | None = None, **kw: object
) -> AddrEntry | None:
    kw.setdefault("reachable", ALL_NETS)
    kw.setdefault("anchors", [])
    return select_outbound_address(decision, am, counts or OutboundCounts(), NOW, **kw)  # type: ignore[arg-type]


FULL_DECISION = OutboundDecision(ConnectionType.OUTBOUND_FULL_RELAY)
FEELER_DECISION = OutboundDecision(ConnectionType.FEELER, feeler=True)


def test_select_skips_used_netgroup() -> None:
    am = fresh_addrman()
    am.add([entry("1.2.3.4")], NetAddr.parse("9.9.9.9"), now=NOW)
    used = OutboundCounts(ipv46_netgroups={NetAddr.parse("1.2.200.1").netgroup()})
    assert _select(am, FULL_DECISION, used) is None
    assert _select(am, FULL_DECISION) == entry("1.2.3.4")
    # feelers ignore netgroup diversity
    assert _select(am, FEELER_DECISION, used) == entry("1.2.3.4")


def test_select_skips_recently_tried_and_missing_services() -> None:
    am = fresh_addrman()
    am.add([entry("1.2.3.4")], NetAddr.parse("9.9.9.9"), now=NOW)
    am.attempt(svc("1.2.3.4"), True, now=NOW - 60)
    # tried 60 s ago: skipped for the first 30 draws, then accepted (Core: nTries < 30)
    assert _select(am, FULL_DECISION, max_tries=29) is None
    assert _select(am, FULL_DECISION) == entry("1.2.3.4")
    am2 = fresh_addrman()
    am2.add(
        [entry("1.2.3.4", services=int(ServiceFlags.NODE_NETWORK))],
        NetAddr.parse("9.9.9.9"),
        now=NOW,
    )
    assert _select(am2, FULL_DECISION) is None  # no WITNESS
    # a feeler only needs NODE_NETWORK or NODE_NETWORK_LIMITED
    assert _select(am2, FEELER_DECISION) is not None
    am3 = fresh_addrman()
    am3.add(
        [entry("1.2.3.4", services=int(ServiceFlags.NODE_WITNESS))],
        NetAddr.parse("9.9.9.9"),
        now=NOW,
    )
    assert _select(am3, FEELER_DECISION) is None


def test_select_bad_port_until_fifty_tries() -> None:
    am = fresh_addrman()
    am.add([entry("1.2.3.4", port=22)], NetAddr.parse("9.9.9.9"), now=NOW)
    assert _select(am, FULL_DECISION, max_tries=49) is None
    got = _select(am, FULL_DECISION)
    assert got is not None and got.service.port == 22


def test_select_unreachable_addnode_connected_banned() -> None:
    am = fresh_addrman()
    am.add([entry("1.2.3.4")], NetAddr.parse("9.9.9.9"), now=NOW)
    assert _select(am, FULL_DECISION, reachable={Network.IPV6}) is None
    assert _select(am, FULL_DECISION, added_node=lambda s: s == svc("1.2.3.4")) is None
    assert _select(am, FULL_DECISION, already_connected=lambda s: True) is None
    assert _select(am, FULL_DECISION, outbound_allowed=lambda a: False) is None
    assert _select(am, FULL_DECISION, dial_ready=lambda s: False) is None  # in back-off
    # our own address ends the pick at once
    assert _select(am, FULL_DECISION, is_local=lambda s: True) is None
    assert _select(am, FULL_DECISION) is not None


def _candidate(am: AddrMan, decision: OutboundDecision, **kw: object) -> bool:
    kw.setdefault("reachable", ALL_NETS)
    return has_candidate(decision, am, kw.pop("counts", OutboundCounts()), **kw)  # type: ignore[arg-type]


def test_has_candidate_applies_the_filters_that_always_hold() -> None:
    am = fresh_addrman()
    am.add([entry("1.2.3.4")], NetAddr.parse("9.9.9.9"), now=NOW)
    used = OutboundCounts(ipv46_netgroups={NetAddr.parse("1.2.200.1").netgroup()})
    assert _candidate(am, FULL_DECISION)
    assert not _candidate(am, FULL_DECISION, counts=used)
    assert _candidate(am, FEELER_DECISION, counts=used)  # feelers ignore netgroups
    assert not _candidate(am, FULL_DECISION, reachable={Network.IPV6})
    assert not _candidate(am, FULL_DECISION, already_connected=lambda s: True)
    assert not _candidate(am, FULL_DECISION, added_node=lambda s: True)
    assert not _candidate(am, FULL_DECISION, outbound_allowed=lambda a: False)
    assert not _candidate(am, FULL_DECISION, dial_ready=lambda s: False)
    assert not _candidate(am, FULL_DECISION, is_local=lambda s: True)
    # What only delays an entry does not make it no candidate: tried a minute ago,
    # a bad port (Core accepts those after 30 / 50 draws).
    am.attempt(svc("1.2.3.4"), True, now=NOW - 60)
    assert _candidate(am, FULL_DECISION)
    am.good(svc("1.2.3.4"), now=NOW)
    assert not _candidate(am, FEELER_DECISION)  # feelers draw from the new table only
    assert not _candidate(fresh_addrman(), FULL_DECISION)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 6), st.integers(1, 3), st.booleans()), max_size=12),
    st.sets(st.integers(1, 6), max_size=6),
    st.sets(st.integers(1, 6), max_size=6),
    st.booleans(),
)
def test_no_candidate_means_the_draws_find_nothing(
    rows: list[tuple[int, int, bool]], used: set[int], connected: set[int], feeler: bool
) -> None:
    """has_candidate False => select_outbound_address returns None (so skipping the
    draws is safe); True => some entry passes every filter that always holds."""
    am = fresh_addrman()
    for group, host, tried in rows:
        e = entry(f"{group}.{group}.0.{host}")
        am.add([e], NetAddr.parse("9.9.9.9"), now=NOW)
        if tried:
            am.good(e.service, now=NOW)
    counts = OutboundCounts(
        ipv46_netgroups={NetAddr.parse(f"{g}.{g}.9.9").netgroup() for g in used}
    )
    decision = FEELER_DECISION if feeler else FULL_DECISION

    def connected_fn(s: Service) -> bool:
        return s.addr.addr[0] in connected

    if am.has_tried_collisions and feeler:
        return  # a feeler with collisions is not has_candidate's case
    if not _candidate(am, decision, counts=counts, already_connected=connected_fn):
        assert _select(am, decision, counts, already_connected=connected_fn) is None


def test_feelers_and_netgroup_diversity_switched_off() -> None:
    """Simulation switches (Core has none): no feeler when feelers are off; without
    netgroup diversity an address in a used netgroup is picked."""
    timers = OutboundTimers(
        next_feeler=NOW - 1, next_extra_block_relay=NOW + 1e6, next_extra_network_peer=NOW + 1e6
    )
    full = OutboundCounts(full_relay=8, block_relay=2)
    limits = OutboundLimits(125)
    rng = random.Random(1)
    assert (
        choose_connection_type(full, limits, timers, NOW, rng, anchors_pending=False, feelers=False)
        is None
    )
    assert choose_connection_type(full, limits, timers, NOW, rng, anchors_pending=False) == (
        FEELER_DECISION
    )
    am = fresh_addrman()
    am.add([entry("1.2.3.4")], NetAddr.parse("9.9.9.9"), now=NOW)
    group = NetAddr.parse("1.2.200.1")
    peers = [(ConnectionType.OUTBOUND_FULL_RELAY, svc("1.2.200.1"))]
    for diversity, expected in ((True, None), (False, svc("1.2.3.4"))):
        policy = OutboundPolicy(
            limits, am, random.Random(2), NOW, reachable=ALL_NETS, netgroup_diversity=diversity
        )
        pick = policy.next_connection(peers, NOW)
        assert (None if pick is None else pick.entry.service) == expected
        assert policy.no_candidate is (expected is None)
    assert group.netgroup() == svc("1.2.3.4").addr.netgroup()


def test_select_preferred_network_only() -> None:
    am = fresh_addrman()
    am.add([entry("1.2.3.4"), entry("2001:4860::1")], NetAddr.parse("9.9.9.9"), now=NOW)
    d = OutboundDecision(ConnectionType.OUTBOUND_FULL_RELAY, preferred_net=Network.IPV6)
    for _ in range(20):
        got = _select(am, d)
        assert got is not None and got.service.addr.network is Network.IPV6


def test_feeler_tests_tried_collision_occupant_first() -> None:
    am = fresh_addrman()
    # find two addresses whose tried slots collide
    base = entry("1.2.3.4")
    am.add([base], NetAddr.parse("9.9.9.9"), now=NOW)
    assert am.good(base.service, now=NOW - 7200)
    other = None
    for i in range(1, 50000):
        cand = entry(f"1.{2 + i // 250}.{i % 250}.9")
        am.add([cand], NetAddr.parse("9.9.9.9"), now=NOW)
        if not am.good(cand.service, now=NOW) and am.select_tried_collision()[0] is not None:
            other = cand
            break
    assert other is not None
    occupant, _ = am.select_tried_collision()
    assert occupant is not None
    got = _select(am, FEELER_DECISION)
    assert got is not None and got.service == occupant.service
    # already connected to the occupant: marked good, a new-table address instead
    got2 = _select(am, FEELER_DECISION, already_connected=lambda s: s == occupant.service)
    assert got2 is None or got2.service != occupant.service


def test_anchor_selection_pops_and_filters() -> None:
    am = fresh_addrman()
    anchors = [
        entry("5.6.7.8"),
        entry("1.2.3.4", services=int(ServiceFlags.NODE_NETWORK)),
        entry("10.0.0.1"),
    ]
    d = OutboundDecision(ConnectionType.BLOCK_RELAY, anchor=True)
    # 10.0.0.1 is unroutable (unreachable), 1.2.3.4 lacks WITNESS: 5.6.7.8 is used
    got = _select(am, d, anchors=anchors, reachable={Network.IPV4})
    assert got == entry("5.6.7.8")
    assert anchors == []
    used = OutboundCounts(ipv46_netgroups={NetAddr.parse("5.6.1.1").netgroup()})
    assert _select(am, d, used, anchors=[entry("5.6.7.8")]) is None


# -- extra peer eviction ----------------------------------------------------------------------


def test_evict_extra_block_relay_youngest_unless_it_gave_a_block() -> None:
    lim = OutboundLimits()
    peers = [ExtraPeer(i, ConnectionType.BLOCK_RELAY, NOW - 100, Network.IPV4) for i in (1, 2, 3)]
    assert select_extra_outbound_to_evict(peers, lim, NOW) == [3]
    peers[2] = ExtraPeer(
        3, ConnectionType.BLOCK_RELAY, NOW - 100, Network.IPV4, last_block_time=NOW - 5
    )
    assert select_extra_outbound_to_evict(peers, lim, NOW) == [2]
    young = [ExtraPeer(i, ConnectionType.BLOCK_RELAY, NOW - 10, Network.IPV4) for i in (1, 2, 3)]
    assert select_extra_outbound_to_evict(young, lim, NOW) == []  # < 30 s connected
    assert select_extra_outbound_to_evict(peers[:2], lim, NOW) == []  # not extra


def test_evict_extra_full_relay_oldest_announcement_not_only_on_network() -> None:
    lim = OutboundLimits()
    peers = [
        ExtraPeer(
            i,
            ConnectionType.OUTBOUND_FULL_RELAY,
            NOW - 100,
            Network.IPV4,
            last_block_announcement=NOW - i,
        )
        for i in range(1, 9)
    ]
    onion = ExtraPeer(
        9, ConnectionType.OUTBOUND_FULL_RELAY, NOW - 100, Network.TORV3, last_block_announcement=0
    )
    # the onion peer has the oldest announcement but is the only one on its network
    assert select_extra_outbound_to_evict([*peers, onion], lim, NOW) == [8]
    prot = [
        *peers[:7],
        ExtraPeer(
            8,
            ConnectionType.OUTBOUND_FULL_RELAY,
            NOW - 100,
            Network.IPV4,
            last_block_announcement=NOW - 8,
            protected=True,
        ),
        onion,
    ]
    assert select_extra_outbound_to_evict(prot, lim, NOW) == [7]
    tie = [
        ExtraPeer(i, ConnectionType.OUTBOUND_FULL_RELAY, NOW - 100, Network.IPV4)
        for i in range(1, 10)
    ]
    assert select_extra_outbound_to_evict(tie, lim, NOW) == [9]  # tie: newest connection


# -- whole-policy simulations --------------------------------------------------------------------


def _ip(group: int, host: int) -> str:
    """A routable IPv4 address in /16 group ``group`` (20.0/16 .. ), host index ``host``."""
    return f"{20 + group // 256}.{group % 256}.{host // 250}.{1 + host % 250}"


@dataclass
class SimNode:
    """A simulated node: the outbound policy plus a fake network, Core's loop every 0.5 s."""

    policy: OutboundPolicy
    addrman: AddrMan
    up: set[Service]
    gossip: Callable[[Service], list[AddrEntry]] = lambda s: []
    peers: dict[int, tuple[ConnectionType, Service]] = field(default_factory=dict)
    next_id: int = 0
    feelers: int = 0
    failures: int = 0
    log: list[tuple[float, ConnectionType, Service]] = field(default_factory=list)

    def step(self, now: float) -> None:
        automatic = sum(1 for t, _ in self.peers.values() if t is not ConnectionType.MANUAL)
        if not self.policy.grant_available(automatic):
            return
        pick = self.policy.next_connection(self.peers.values(), now)
        if pick is None:
            return
        s = pick.entry.service
        self.addrman.attempt(s, pick.count_failure, now=now)
        t = pick.decision.conn_type
        self.log.append((now, t, s))
        if s not in self.up:
            self.failures += 1
            return
        self.addrman.set_services(s, FULL)
        self.addrman.good(s, now=now)
        if t is ConnectionType.FEELER:
            self.feelers += 1  # disconnects right after version
            return
        self.peers[self.next_id] = (t, s)
        self.next_id += 1
        if t is ConnectionType.OUTBOUND_FULL_RELAY:
            self.addrman.add(self.gossip(s), s.addr, 2 * 3600, now=now)

    def run(self, start: float, seconds: float) -> None:
        steps = int(seconds / 0.5)
        for i in range(steps):
            self.step(start + i * 0.5)


def test_simulation_from_seeds_fills_slots_with_distinct_netgroups() -> None:
    rng = random.Random(42)
    honest = [svc(_ip(g, h)) for g in range(200) for h in range(5)]
    up = set(honest[::2])  # half of the network is reachable
    am = AddrMan(random.Random(3))
    policy = OutboundPolicy(
        OutboundLimits(), am, rng, NOW, reachable=ALL_NETS, local_services=FULL | V2
    )

    def gossip(_s: Service) -> list[AddrEntry]:
        return [
            AddrEntry(int(NOW - rng.randrange(3600, 86400)), FULL | V2, x)
            for x in rng.sample(honest, 100)
        ]

    node = SimNode(policy, am, up, gossip)
    node.run(NOW, 10)
    assert node.peers == {}  # empty table: nothing to dial
    # DNS seeds answer with 30 addresses (source: the seed's internal address)
    seed_entries = [AddrEntry(int(NOW - 4 * 86400), FULL | V2, x) for x in rng.sample(honest, 30)]
    am.add(seed_entries, NetAddr.internal("x9.seed.example"), now=NOW)
    node.run(NOW + 10, 1200)
    types = [t for t, _ in node.peers.values()]
    assert types.count(ConnectionType.OUTBOUND_FULL_RELAY) == 8
    assert types.count(ConnectionType.BLOCK_RELAY) == 2
    groups = [s.addr.netgroup() for _t, s in node.peers.values()]
    assert len(set(groups)) == 10
    assert node.feelers >= 3  # a feeler every ~2 min over 20 min
    assert am.size(in_new=False) >= 10 + node.feelers  # feelers promote to tried
    # every pick went to a different netgroup than the live persistent peers at the time
    assert all(s in set(honest) for _n, _t, s in node.log)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_simulation_attacker_with_three_netgroups_holds_at_most_three_slots(seed: int) -> None:
    rng = random.Random(seed)
    am = AddrMan(random.Random(seed))
    honest = [svc(_ip(g, h)) for g in range(200) for h in range(3)][:500]
    attacker = [
        svc(f"66.{60 + g}.{h // 250}.{1 + h % 250}") for g in range(3) for h in range(1667)
    ][:5000]
    for i, s in enumerate(honest):
        am.add([AddrEntry(int(NOW - 3600), FULL, s)], NetAddr.parse(_ip(i % 200, 200)), now=NOW)
    for i, s in enumerate(attacker):
        # worst case: the attacker's addresses reach us through sources in every group
        am.add([AddrEntry(int(NOW - 60), FULL, s)], NetAddr.parse(_ip((i * 7) % 200, 201)), now=NOW)
    attacker_set = set(attacker)
    in_table = sum(1 for e in am.entries() if e.service in attacker_set)
    assert in_table > 0.8 * am.size()  # the attacker dominates the table
    policy = OutboundPolicy(OutboundLimits(), am, rng, NOW, reachable=ALL_NETS)
    node = SimNode(policy, am, set(honest) | attacker_set)
    node.run(NOW, 300)
    persistent = [(t, s) for t, s in node.peers.values() if t is not ConnectionType.FEELER]
    assert len(persistent) == 10
    held = sum(1 for _t, s in persistent if s in attacker_set)
    assert 1 <= held <= 3  # competitive, yet one slot per attacker netgroup at most
    assert len({s.addr.netgroup() for _t, s in persistent}) == 10


@pytest.mark.parametrize("seed", [1, 2])
def test_asmap_groups_an_attackers_many_16s_into_one_slot(seed: int) -> None:
    """Erebus's shape: the attacker's addresses span 40 /16s but one AS. Without an
    asmap it can take most slots; with Core's -asmap its AS is one netgroup, so it holds
    at most one outbound slot (src/net.cpp ``m_netgroupman.GetGroup``)."""
    honest = [svc(_ip(g, h)) for g in range(200) for h in range(3)][:500]
    attacker = [svc(f"66.{g}.{h // 250}.{1 + h % 250}") for g in range(40) for h in range(125)]
    asmap = encode_asmap(
        [(f"66.{g}.0.0/16", 64666) for g in range(40)]
        + [(f"{20 + g // 256}.{g % 256}.0.0/16", 1000 + g) for g in range(200)]
    )
    attacker_set = set(attacker)
    held = {}
    for label, data in (("no asmap", None), ("asmap", asmap)):
        rng = random.Random(seed)
        am = AddrMan(random.Random(seed), asmap=data)
        for i, s in enumerate(honest):
            am.add([AddrEntry(int(NOW - 3600), FULL, s)], NetAddr.parse(_ip(i % 200, 200)), now=NOW)
        for i, s in enumerate(attacker):
            source = NetAddr.parse(_ip((i * 7) % 200, 201))
            am.add([AddrEntry(int(NOW - 60), FULL, s)], source, now=NOW)
        policy = OutboundPolicy(OutboundLimits(), am, rng, NOW, reachable=ALL_NETS)
        node = SimNode(policy, am, set(honest) | attacker_set)
        node.run(NOW, 300)
        persistent = [s for t, s in node.peers.values() if t is not ConnectionType.FEELER]
        assert len(persistent) == 10
        held[label] = sum(1 for s in persistent if s in attacker_set)
        groups = {am.netgroupman.get_group(s.addr) for s in persistent}
        assert len(groups) == 10  # one peer per (AS-based) netgroup
    assert held["asmap"] <= 1
    assert held["no asmap"] >= 3
