"""ConnManCore in simulated time: no sockets, no clock, no event loop.

Several cores are wired together in memory by :class:`MemNet`: a ``Dial`` to a known
virtual address reaches the other core's ``accepted``, ``Send`` bytes reach its
``received``, ``Close`` reaches its ``closed``. Time only moves when the test moves it,
so back-offs of minutes take no wall-clock time.
"""

from __future__ import annotations

import gc
import logging
import random
import weakref
from collections.abc import Callable

import pytest

from peerkeeper.bitcoin.addrman import AddrMan
from peerkeeper.bitcoin.banman import BanMan
from peerkeeper.bitcoin.connman import (
    ADDR_FETCH_TIMEOUT,
    Close,
    ConnManCore,
    ConnManOptions,
    Dial,
    PauseRead,
    Resolve,
    ResumeRead,
    Send,
)
from peerkeeper.bitcoin.outbound import FEELER_SLEEP_WINDOW
from peerkeeper.bitcoin.peer import PeerConfig
from peerkeeper.bitcoin.seeds import ADD_NEXT_SEEDNODE
from peerkeeper.net.asmap import encode_asmap
from peerkeeper.net.chains import CHAINS
from peerkeeper.net.connection_types import ConnectionType
from peerkeeper.net.i2p import dest_bin_to_addr
from peerkeeper.net.netaddr import NetAddr, Network, Service, parse_network
from peerkeeper.net.netbase import Proxy, ProxySettings
from peerkeeper.wire.messages import AddrEntry, Ping, ServiceFlags
from peerkeeper.wire.v1 import V1Transport, frame_v1

REGTEST = CHAINS["regtest"]
T0 = 1_700_000_000.0
SERVICES = ServiceFlags.NODE_NETWORK | ServiceFlags.NODE_WITNESS


def svc(i: int) -> Service:
    """Node ``i``'s virtual routable address (one /16 each)."""
    return Service(NetAddr.parse(f"11.{i}.0.1"), REGTEST.default_port)


class MemNet:
    """Cores joined by in-memory links with no latency."""

    def __init__(self) -> None:
        self.now = T0
        self.nodes: dict[Service, ConnManCore] = {}
        self.links: dict[tuple[int, int], tuple[int, int]] = {}  # (core, conn) -> (core, conn)
        self.cores: dict[int, ConnManCore] = {}
        self.next_conn = 1
        self.dials: list[tuple[float, int, Dial]] = []  # (time, core index, dial)
        self.closes: list[tuple[int, str]] = []
        self.pauses: list[tuple[int, object]] = []
        self.down: set[Service] = set()

    def add(self, i: int, **kw: object) -> ConnManCore:
        kw.setdefault("peer", PeerConfig(services=SERVICES))
        opts = ConnManOptions(chain=REGTEST, listen=False, **kw)  # type: ignore[arg-type]
        core = ConnManCore(
            opts,
            AddrMan(random.Random(i), deterministic=True),
            rng=random.Random(1000 + i),
            transport_rng=random.Random(2000 + i).randbytes,
            banman=BanMan(i),
        )
        self.cores[i] = core
        self.nodes[svc(i)] = core
        return core

    def start(self, *idx: int) -> None:
        for i in idx:
            self.cores[i].start(self.now)
        self.pump()

    def index(self, core: ConnManCore) -> int:
        return next(i for i, c in self.cores.items() if c is core)

    def pump(self) -> None:
        busy = True
        while busy:
            busy = False
            for i, core in list(self.cores.items()):
                for action in core.poll_actions():
                    busy = True
                    self.execute(i, core, action)

    def execute(self, i: int, core: ConnManCore, action: object) -> None:
        now = self.now
        if isinstance(action, Dial):
            self.dials.append((now, i, action))
            remote = self.nodes.get(action.service)
            if remote is None or action.service in self.down:
                core.dial_failed(action.id, "connection refused", now)
                return
            a_conn, b_conn = self.next_conn, self.next_conn + 1
            self.next_conn += 2
            j = self.index(remote)
            if not remote.accepted(b_conn, action.service, svc(i), now):
                core.dial_failed(action.id, "connection reset", now)
                return
            self.links[(i, a_conn)] = (j, b_conn)
            self.links[(j, b_conn)] = (i, a_conn)
            core.connected(action.id, a_conn, svc(i), now)
        elif isinstance(action, Send):
            other = self.links.get((i, action.conn_id))
            if other is not None:
                self.cores[other[0]].received(other[1], action.data, now)
        elif isinstance(action, Close):
            self.closes.append((i, action.reason))
            other = self.links.pop((i, action.conn_id), None)
            if other is not None:
                self.links.pop(other, None)
                self.cores[other[0]].closed(other[1], "socket closed", now)
        elif isinstance(action, PauseRead | ResumeRead):
            self.pauses.append((i, action))
        elif isinstance(action, Resolve):
            if action.seed:
                core.seed_resolved(action.id, [], now)
            else:
                core.resolved(action.id, None, "no such name", now)

    def run_until(self, t_end: float) -> None:
        """Advance simulated time to ``t_end``, ticking every core at each wakeup."""
        while True:
            at = min(c.next_wakeup() for c in self.cores.values())
            if at > t_end:
                break
            self.now = max(self.now, at)
            for core in self.cores.values():
                if core.next_wakeup() <= self.now:
                    core.tick(self.now)
            self.pump()
        self.now = t_end
        for core in self.cores.values():
            core.tick(t_end)
        self.pump()

    def run_while(self, cond: Callable[[], bool], limit: float) -> None:
        end = self.now + limit
        while cond() and self.now < end:
            self.run_until(min(end, self.now + 0.1))


def peers_of(core: ConnManCore, conn_type: ConnectionType | None = None) -> list[object]:
    return [p for p in core.peers.values() if conn_type is None or p.conn_type is conn_type]


def handshaken(core: ConnManCore) -> int:
    return sum(1 for p in core.peers.values() if p.proto.successfully_connected)


# -- manual connections (ThreadOpenAddedConnections) ---------------------------------------


def test_manual_peer_backs_off_1s_x1_2_and_resets_after_60s_up() -> None:
    net = MemNet()
    a = net.add(0, addnode=[str(svc(1))], v2transport=False)
    b = net.add(1, v2transport=False)
    net.down.add(svc(1))
    net.start(0, 1)
    net.run_until(T0 + 10)
    times = [t for t, i, d in net.dials if i == 0]
    gaps = [round(y - x, 3) for x, y in zip(times, times[1:], strict=False)]
    # 1 s, 1.2 s, 1.44 s, 1.728 s ... each seen at the next 0.5 s pass after it ends.
    expected = [1.0, 1.2, 1.44, 1.728, 2.074]
    assert len(gaps) >= 5
    for gap, delay in zip(gaps, expected, strict=False):
        assert delay <= gap < delay + 0.5 + 1e-9, (gaps, expected)

    # The peer comes up: connected, handshaken, and kept for 61 s.
    net.down.clear()
    net.run_while(lambda: handshaken(a) == 0, 30)
    assert handshaken(a) == 1 and handshaken(b) == 1
    net.run_until(net.now + 61)
    # B drops A after 61 s: the back-off resets and A redials at the next pass.
    b.disconnect_node(net.now, peer_id=next(iter(b.peers)))
    dropped_at = net.now
    net.dials.clear()
    net.pump()
    net.run_while(lambda: not net.dials, 5)
    assert net.dials and net.dials[0][0] - dropped_at <= 0.5

    # Now a short-lived connection (10 s): the next dial waits the 1 s back-off.
    net.run_while(lambda: handshaken(a) == 0, 5)
    net.run_until(net.now + 10)
    b.disconnect_node(net.now, peer_id=next(iter(b.peers)))
    dropped_at = net.now
    net.dials.clear()
    net.pump()
    net.run_while(lambda: not net.dials, 5)
    assert net.dials and 1.0 <= net.dials[0][0] - dropped_at < 1.5 + 1e-9


def test_v2_key_hang_up_is_retried_at_once_as_v1() -> None:
    """Core ``ShouldReconnectV1``: a v1-only peer drops our BIP324 key; we redial in v1."""
    net = MemNet()
    a = net.add(0, addnode=[str(svc(1))], v2transport=True)
    b = net.add(1, v2transport=False)
    net.start(0, 1)
    net.run_while(lambda: handshaken(a) == 0, 10)
    dials = [d for _, i, d in net.dials if i == 0]
    assert len(dials) == 2
    assert dials[0].v2 is False or dials[1].v2 is False  # the driver's hint only
    peer = next(iter(a.peers.values()))
    assert isinstance(peer.transport, V1Transport)
    assert handshaken(a) == 1 and handshaken(b) == 1
    assert net.dials[1][0] - net.dials[0][0] < 0.5 + 1e-9  # no back-off for the retry


# -- inbound admission ------------------------------------------------------------------------


def test_inbound_admission_full_table_evicts_and_banned_refused() -> None:
    net = MemNet()
    b = net.add(0, max_connections=41)  # 30 inbound slots
    net.start(0)
    me = svc(0)
    for k in range(1, 31):
        assert b.accepted(k, me, svc(100 + k), net.now)
    assert b.inbound_count == 30
    # The 31st: Core's eviction frees a slot (some peer loses its connection).
    assert b.accepted(31, me, svc(131), net.now)
    assert b.inbound_count == 30
    closes = [a for a in b.poll_actions() if isinstance(a, Close)]
    assert len(closes) == 1 and closes[0].reason == "evicted for an inbound slot"
    # Banned: refused whatever the slots.
    assert b.banman is not None
    b.banman.ban(NetAddr.parse("11.200.0.1"), net.now, 3600)
    assert not b.accepted(32, me, svc(200), net.now)
    # Network off: refused.
    b.set_network_active(False, net.now)
    assert not b.accepted(33, me, svc(201), net.now)


def test_discouraged_inbound_admitted_prefer_evict_then_refused_when_nearly_full() -> None:
    net = MemNet()
    b = net.add(0, max_connections=14)  # 3 inbound slots
    net.start(0)
    me = svc(0)
    assert b.banman is not None
    b.banman.discourage(NetAddr.parse("11.150.0.1"))
    assert b.accepted(1, me, svc(150), net.now)
    peer = next(iter(b.peers.values()))
    assert peer.prefer_evict
    assert b.accepted(2, me, svc(151), net.now)
    # inbound_count + 1 >= max_inbound: a discouraged newcomer is refused.
    assert not b.accepted(3, me, svc(150), net.now)
    assert b.accepted(4, me, svc(152), net.now)


def test_misbehaving_inbound_is_discouraged_and_disconnected() -> None:
    net = MemNet()
    b = net.add(0)
    net.start(0)
    assert b.accepted(1, svc(0), svc(7), net.now)
    peer = next(iter(b.peers.values()))
    b._misbehaving(peer, "test")
    assert b.banman is not None and b.banman.is_discouraged(svc(7).addr)
    assert any(isinstance(a, Close) and a.conn_id == 1 for a in b.poll_actions())
    assert not b.peers


# -- automatic connections (ThreadOpenConnections) -----------------------------------------


def test_seednode_addr_fetch_then_next_seednode_after_10s_and_expiry_after_5min() -> None:
    net = MemNet()
    a = net.add(0, seednode=[str(svc(1)), str(svc(2))], v2transport=False, fixedseeds=False)
    net.add(1, v2transport=False)
    net.add(2, v2transport=False)
    net.start(0, 1, 2)
    net.run_until(T0 + 1)
    fetches = [(t, d) for t, i, d in net.dials if i == 0]
    assert len(fetches) == 1 and fetches[0][1].conn_type is ConnectionType.ADDR_FETCH
    first = fetches[0][1].service
    # Both seed nodes know nothing: the second seednode comes ADD_NEXT_SEEDNODE later.
    net.run_until(T0 + ADD_NEXT_SEEDNODE + 1.5)
    fetches = [(t, d) for t, i, d in net.dials if i == 0]
    assert len(fetches) == 2 and fetches[1][1].service != first
    assert ADD_NEXT_SEEDNODE <= fetches[1][0] - fetches[0][0] <= ADD_NEXT_SEEDNODE + 1.0
    assert len(peers_of(a, ConnectionType.ADDR_FETCH)) == 2
    # Addr-fetch connections last at most 5 minutes.
    net.run_until(fetches[0][0] + ADDR_FETCH_TIMEOUT - 1)
    assert len(peers_of(a, ConnectionType.ADDR_FETCH)) == 2
    net.run_until(fetches[1][0] + ADDR_FETCH_TIMEOUT + 1)
    assert not peers_of(a, ConnectionType.ADDR_FETCH)
    assert "addrfetch connection timeout" in {r for i, r in net.closes if i == 0}


def fill_table(core: ConnManCore, ids: range, now: float) -> None:
    for k in ids:
        core.addrman.add(
            [AddrEntry(int(now) - 600, SERVICES, svc(k))], NetAddr.parse("13.0.0.1"), now=now
        )


def test_anchors_first_then_full_relay_and_anchors_saved_at_stop() -> None:
    net = MemNet()
    anchors = [AddrEntry(int(T0), SERVICES, svc(k)) for k in (1, 2)]
    a = net.add(0, anchors=anchors, v2transport=False, fixedseeds=False)
    for k in range(1, 15):
        net.add(k, v2transport=False)
    fill_table(a, range(3, 15), T0)
    net.start(*range(15))
    net.run_while(lambda: len(peers_of(a, ConnectionType.OUTBOUND_FULL_RELAY)) < 8, 60)
    auto = [d for _, i, d in net.dials if i == 0]
    assert {d.service for d in auto[:2]} == {svc(1), svc(2)}
    assert all(d.conn_type is ConnectionType.BLOCK_RELAY for d in auto[:2])
    assert len(peers_of(a, ConnectionType.OUTBOUND_FULL_RELAY)) == 8
    # One automatic dial at a time, 500 ms apart at least.
    times = [t for t, i, _ in net.dials if i == 0]
    assert all(y - x >= 0.5 - 1e-9 for x, y in zip(times, times[1:], strict=False))
    a.stop(net.now)
    assert {e.service for e in a.anchors_at_stop} == {svc(1), svc(2)}


def test_feeler_waits_its_random_delay_and_leaves_after_version() -> None:
    net = MemNet()
    a = net.add(0, v2transport=False, fixedseeds=False)
    for k in range(1, 16):
        net.add(k, v2transport=False)
    fill_table(a, range(1, 16), T0)
    net.start(*range(16))
    net.run_while(lambda: len(peers_of(a, ConnectionType.OUTBOUND_FULL_RELAY)) < 8, 60)
    net.run_while(lambda: len(peers_of(a, ConnectionType.BLOCK_RELAY)) < 2, 60)
    assert a.policy is not None
    due = a.policy.timers.next_feeler
    net.run_while(lambda: a.feelers_made == 0, 600)
    feeler = [(t, d) for t, i, d in net.dials if i == 0 and d.conn_type is ConnectionType.FEELER]
    assert feeler, "a feeler was made"
    assert due <= feeler[0][0] <= due + FEELER_SLEEP_WINDOW + 0.5
    net.run_until(net.now + 1)
    assert a.feelers_done >= 1 and not peers_of(a, ConnectionType.FEELER)


def test_extra_block_relay_peer_comes_on_its_timer_and_the_youngest_goes() -> None:
    net = MemNet()
    a = net.add(0, v2transport=False, fixedseeds=False)
    for k in range(1, 20):
        net.add(k, v2transport=False)
    fill_table(a, range(1, 20), T0)
    net.start(*range(20))
    net.run_while(lambda: len(peers_of(a, ConnectionType.BLOCK_RELAY)) < 2, 60)
    assert a.policy is not None
    due = a.policy.timers.next_extra_block_relay
    net.run_while(lambda: len(peers_of(a, ConnectionType.BLOCK_RELAY)) < 3, due - net.now + 5)
    extra = [t for t, i, d in net.dials if i == 0 and d.conn_type is ConnectionType.BLOCK_RELAY][-1]
    assert extra >= due
    youngest = max(p.id for p in a.peers.values() if p.conn_type is ConnectionType.BLOCK_RELAY)
    # Core's EvictExtraOutboundPeers runs every 45 s and drops the youngest after 30 s.
    net.run_until(net.now + 100)
    assert youngest not in a.peers
    assert len(peers_of(a, ConnectionType.BLOCK_RELAY)) >= 2


def test_a_loop_with_nothing_to_do_sleeps_until_a_timer_or_a_change() -> None:
    """Core's ThreadOpenConnections wakes every 500 ms; a pass that finds every slot
    taken and no timer due is skipped until the next timer, and a peer leaving brings
    the loop back at the next 500 ms step (the pass then dials)."""
    net = MemNet()
    a = net.add(0, v2transport=False, fixedseeds=False)
    for k in range(1, 16):
        net.add(k, v2transport=False)
    fill_table(a, range(1, 16), T0)
    net.start(*range(16))
    net.run_while(lambda: len(peers_of(a, ConnectionType.BLOCK_RELAY)) < 2, 60)
    net.run_while(lambda: len(peers_of(a, ConnectionType.OUTBOUND_FULL_RELAY)) < 8, 60)
    assert a.policy is not None
    timers = a.policy.timers
    timers.next_feeler = timers.next_extra_network_peer = net.now + 10_000
    a.policy.start_extra_block_relay_peers = False
    passes: list[float] = []
    pick = a._pick_step

    def counting(now: float) -> None:
        passes.append(now)
        pick(now)

    a._pick_step = counting  # type: ignore[method-assign]
    start = net.now
    net.run_until(start + 600)
    # Polling would be 1,200 passes; the loop wakes for the 45 s extra-peer check only.
    assert 1 <= len(passes) <= 600 / 45 + 2
    victim = peers_of(a, ConnectionType.OUTBOUND_FULL_RELAY)[0]
    dials = len(net.dials)
    a.disconnect_node(net.now, peer_id=victim.id)  # type: ignore[attr-defined]
    net.pump()
    assert a.next_wakeup() <= net.now + 0.5
    net.run_until(net.now + 1)
    assert len(net.dials) > dials  # the freed slot was refilled at once
    assert len(peers_of(a, ConnectionType.OUTBOUND_FULL_RELAY)) == 8


# -- flow control, memory ---------------------------------------------------------------------


def test_full_send_buffer_pauses_processing_until_writable() -> None:
    """Core ``fPauseSend``: past ``-maxsendbuffer`` nothing more is processed (reading
    pauses) until the driver reports the buffer drained."""
    net = MemNet()
    a = net.add(0, addnode=[str(svc(1))], v2transport=False)
    b = net.add(1, max_send_buffer=1_000, v2transport=False)
    net.start(0, 1)
    net.run_while(lambda: handshaken(b) == 0, 10)
    (b_conn,) = [c for (i, c) in net.links if i == 1]
    b.poll_actions()
    pings = b"".join(frame_v1(REGTEST.magic, "ping", Ping(k + 1).encode()) for k in range(200))
    b.writable(b_conn, net.now)  # the handshake's bytes were written out
    b.received(b_conn, pings, net.now)
    actions = b.poll_actions()
    pongs = sum(len(x.data) for x in actions if isinstance(x, Send)) // 32
    assert 1_000 // 32 <= pongs <= 1_000 // 32 + 1  # stops right after passing the mark
    assert any(isinstance(x, PauseRead) and x.send for x in actions)
    b.writable(b_conn, net.now)  # drained: the next slice is answered
    actions = b.poll_actions()
    assert sum(len(x.data) for x in actions if isinstance(x, Send)) // 32 == pongs
    for _ in range(10):
        b.writable(b_conn, net.now)
    actions = b.poll_actions()
    assert any(isinstance(x, ResumeRead) for x in actions)  # everything answered
    assert a.peers  # the pinging side is still connected


def test_closed_peer_is_freed_without_the_cyclic_gc() -> None:
    """A closed peer must be freed at once (no reference cycle through its callbacks)."""
    net = MemNet()
    b = net.add(0)
    b.options.listen = True
    b.start(net.now, [("0.0.0.0", REGTEST.default_port)])
    gc.collect()
    gc.disable()
    try:
        refs = []
        for k in range(1, 6):
            assert b.accepted(k, svc(0), svc(10 + k), net.now)
            peer = b.peers[k - 1]
            assert peer.proto is not None
            # A v1 header announcing a 4,000,000-byte ping, most of it sent.
            header = frame_v1(REGTEST.magic, "ping", b"")[:16]
            b.received(k, header + (4_000_000).to_bytes(4, "little") + b"\0" * 4, net.now)
            b.received(k, b"\0" * 3_900_000, net.now)
            refs.append(weakref.ref(peer))
            del peer
            b.closed(k, "socket closed", net.now)
            b.poll_actions()
        assert all(r() is None for r in refs), "closed peers still referenced"
    finally:
        gc.enable()


def test_flapping_manual_peer_backs_off() -> None:
    """An -addnode peer that completes the handshake and hangs up at once is retried with a
    growing delay (Octez's back-off: only a connection that lasted 60 s resets it)."""
    net = MemNet()
    a = net.add(0, addnode=[str(svc(1))], v2transport=False)
    b = net.add(1, v2transport=False)
    net.start(0, 1)
    drops: list[float] = []
    for _ in range(4):
        net.run_while(lambda: handshaken(b) == 0, 10)
        drops.append(net.now)
        b.disconnect_node(net.now, peer_id=next(iter(b.peers)))
        net.pump()
    times = [t for t, i, _ in net.dials if i == 0]
    waits = [round(t - d, 3) for t, d in zip(times[1:], drops, strict=False)]
    assert len(waits) == 3
    for wait, delay in zip(waits, [1.0, 1.2, 1.44], strict=True):
        assert delay <= wait < delay + 0.5 + 1e-9, waits
    assert not a.backoff.ready(str(svc(1)), drops[-1] + 1.0)


def test_time_offsets_sampled_from_outbound_versions_and_kept_after_disconnect() -> None:
    """Core ``m_outbound_time_offsets``: one sample per outbound version, never inbound,
    kept when the peer leaves; the median needs 5 samples."""
    net = MemNet()
    a = net.add(0, addnode=[str(svc(k)) for k in range(1, 6)], v2transport=False)
    others = [net.add(k, v2transport=False) for k in range(1, 6)]
    net.start(*range(6))
    net.run_while(lambda: handshaken(a) < 5, 20)
    assert len(a.time_offsets) == 5 and a.time_offsets.median() == 0
    assert all(len(o.time_offsets) == 0 for o in others)  # inbound peers give none
    a.set_network_active(False, net.now)
    assert not a.peers and len(a.time_offsets) == 5


# -- two timelines: rules on the (mockable) clock, pacing on steady time -------------------


def drive(core: ConnManCore, now: float, steady: float, fail_after: float | None = None) -> list:
    """Tick once and answer its dials as refused; returns the dials made."""
    core.tick(now, steady=steady)
    dials = []
    for a in core.poll_actions():
        if isinstance(a, Dial):
            dials.append(a)
            core.dial_failed(a.id, "refused", now, steady=steady)
    return dials


def test_frozen_mock_time_does_not_stall_the_loops() -> None:
    """Core's loops sleep on steady time: with the clock frozen (setmocktime), manual
    redials and automatic picks go on as real time passes."""
    net = MemNet()
    a = net.add(0, addnode=[str(svc(1))], v2transport=False, fixedseeds=False)
    fill_table(a, range(2, 12), T0)
    a.start(T0, steady=0.0)
    made = []
    steady = 0.0
    while steady < 10.0:
        steady += 0.25
        made += drive(a, T0, steady)  # the clock never moves
    manual = [d for d in made if d.conn_type is ConnectionType.MANUAL]
    auto = [d for d in made if d.conn_type is ConnectionType.OUTBOUND_FULL_RELAY]
    assert len(manual) >= 4  # 1 s, 1.2 s, 1.44 s, 1.728 s ... back-offs on steady time
    assert len(auto) >= 8
    # And a jump of the clock (setmocktime a day ahead, then back) changes nothing.
    made = []
    for k in range(20):
        made += drive(a, T0 + 86400 if k < 10 else T0, steady + 0.25 * (k + 1))
    assert [d for d in made if d.conn_type is ConnectionType.OUTBOUND_FULL_RELAY]


def test_addr_fetch_and_picks_alternate_as_in_cores_loop() -> None:
    """Core's loop: ProcessAddrFetch, sleep 500 ms, one pick, again. Queued addr-fetch
    targets do not starve the picks; each dial holds the loop until it ends."""
    net = MemNet()
    a = net.add(0, v2transport=False, fixedseeds=False)
    fill_table(a, range(2, 12), T0)
    for k in range(20, 24):
        a.add_addr_fetch(str(svc(k)))
    a.start(T0, steady=0.0)
    steady, log_ = 0.0, []
    pending: list[tuple[float, Dial]] = []
    while steady < 8.0:
        for a_ in a.poll_actions():
            if isinstance(a_, Dial):
                log_.append((round(steady, 2), a_.conn_type))
                pending.append((steady + 2.0, a_))  # every dial fails after 2 s
        for end, d in [p for p in pending if p[0] <= steady]:
            pending.remove((end, d))
            a.dial_failed(d.id, "timeout", T0 + steady, steady=steady)
        steady = round(steady + 0.1, 2)
        a.tick(T0 + steady, steady=steady)
    kinds = [k for _, k in log_]
    assert kinds[:4] == [
        ConnectionType.ADDR_FETCH,
        ConnectionType.OUTBOUND_FULL_RELAY,
        ConnectionType.ADDR_FETCH,
        ConnectionType.OUTBOUND_FULL_RELAY,
    ]
    times = [t for t, _ in log_]
    assert times[1] - times[0] >= 2.5 - 1e-9  # the dial's 2 s, then the 500 ms sleep
    assert times[2] - times[1] >= 2.0 - 1e-9  # after a pick's dial: the next fetch at once
    assert times[2] - times[1] <= 2.1 + 1e-9


def test_a_failure_while_starting_a_connection_releases_the_dial() -> None:
    net = MemNet()
    a = net.add(0, addnode=[str(svc(1))], v2transport=False, fixedseeds=False)
    net.add(1, v2transport=False)
    fill_table(a, range(2, 5), T0)
    a.start(T0)
    dials = [x for x in a.poll_actions() if isinstance(x, Dial)]
    assert dials

    def broken(*args: object, **kw: object) -> None:
        raise RuntimeError("injected")

    a._new_peer = broken  # type: ignore[method-assign]
    for k, d in enumerate(dials):
        with pytest.raises(RuntimeError, match="injected"):
            a.connected(d.id, 100 + k, svc(0), T0)
    assert a.automatic_pending == 0 and not a._auto_busy
    assert not a.pending_manual


def test_a_failing_loop_does_not_stop_the_others() -> None:
    net = MemNet()
    a = net.add(0, addnode=[str(svc(1))], v2transport=False)
    net.add(1, v2transport=False)
    net.start(0, 1)
    net.run_while(lambda: handshaken(a) == 0, 10)

    def broken(now: float) -> None:
        raise RuntimeError("injected")

    a._thread_open_added_connections = broken  # type: ignore[method-assign]
    peer = next(iter(a.peers.values()))
    net.run_until(net.now + 20 * 60 + 5)  # the peer's pings still go out and are answered
    assert peer.proto.ping.min_time is not None


def test_addresses_on_unreachable_networks_are_not_stored() -> None:
    """Core ProcessAddrs: "Do not store addresses outside our network"."""
    from peerkeeper.bitcoin.actions import LearnedAddresses

    net = MemNet()
    b = net.add(0)
    net.start(0)
    assert b.accepted(1, svc(0), svc(5), net.now)
    peer = next(iter(b.peers.values()))
    onion = Service(
        NetAddr.parse("pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"), 8333
    )
    entries = [AddrEntry(int(net.now), SERVICES, onion), AddrEntry(int(net.now), SERVICES, svc(9))]
    b._learned(peer, LearnedAddresses(entries=entries, relay=[]), net.now)
    stored = {e.service for e in b.addrman.entries()}
    assert svc(9) in stored and onion not in stored


def test_inbound_on_an_onion_bind_is_a_tor_peer() -> None:
    """Core m_inbound_onion: a connection accepted on a -bind=...=onion listener counts
    as Tor inbound (getpeerinfo network, eviction's network protection)."""
    net = MemNet()
    b = net.add(0)
    b.start(net.now, [("11.0.0.1", 18444)], onion_listening=[("127.0.0.1", 18445)])
    assert b.accepted(1, Service.parse("127.0.0.1:18445", 0), svc(5), net.now)
    assert b.accepted(2, svc(0), svc(6), net.now)
    by_conn = {p.conn_id: p for p in b.peers.values()}
    assert by_conn[1].net_class.rpc_name == "onion"
    assert by_conn[2].net_class.rpc_name == "ipv4"


def test_addconnection_caps_and_addr_fetch_expiry_without_automatic_connections() -> None:
    """Core CConnman::AddConnection: 8 full-relay / 2 block-relay-only at most, addr-fetch
    and feelers unlimited, never inbound or manual; an addr-fetch peer leaves after 5
    minutes even when no automatic connections run (Core checks it per peer)."""
    net = MemNet()
    a = net.add(0, connect=["0"], v2transport=False)
    for k in range(1, 13):
        net.add(k, v2transport=False)
    net.start(*range(13))
    assert a.policy is None
    for k in range(1, 9):
        assert a.add_connection(str(svc(k)), ConnectionType.OUTBOUND_FULL_RELAY, False, net.now)
    net.pump()
    assert len(peers_of(a, ConnectionType.OUTBOUND_FULL_RELAY)) == 8
    assert not a.add_connection(str(svc(9)), ConnectionType.OUTBOUND_FULL_RELAY, False, net.now)
    assert not a.add_connection(str(svc(9)), ConnectionType.INBOUND, False, net.now)
    assert not a.add_connection(str(svc(9)), ConnectionType.MANUAL, False, net.now)
    assert a.add_connection(str(svc(10)), ConnectionType.ADDR_FETCH, False, net.now)
    net.pump()
    net.run_while(lambda: handshaken(a) < 9, 10)
    opened = net.now
    assert a.automatic_pending == 0  # every dial ended and gave its grant back
    net.run_until(opened + 295)
    assert len(peers_of(a, ConnectionType.ADDR_FETCH)) == 1
    net.run_until(opened + 301)
    assert not peers_of(a, ConnectionType.ADDR_FETCH)
    assert "addrfetch connection timeout" in {r for i, r in net.closes if i == 0}


def test_getaddr_cache_is_per_network_key() -> None:
    """Core's m_network_key: inbound peers share a getaddr answer only when they reach us
    on the same local address and port through the same network (onion listeners apart)."""
    net = MemNet()
    b = net.add(0)
    b.start(net.now, [("11.0.0.1", 18444)], onion_listening=[("127.0.0.1", 18445)])
    local_a = Service.parse("11.0.0.1:18444", 0)
    local_b = Service.parse("11.0.0.1:18446", 0)
    onion = Service.parse("127.0.0.1:18445", 0)
    for k, local in enumerate((local_a, local_a, local_b, onion), start=1):
        assert b.accepted(k, local, svc(20 + k), net.now)
    keys = {p.conn_id: p.proto.addr_source.key for p in b.peers.values()}  # type: ignore[attr-defined]
    assert keys[1] == keys[2]  # same bind, same network: one cached answer
    assert len({keys[1], keys[3], keys[4]}) == 3  # another port; an onion listener


def test_cjdns_literals_flip_and_proxied_names_are_unroutable_peers() -> None:
    """Core ConnectNode: with -cjdnsreachable an fc00::/8 literal is a CJDNS address
    (MaybeFlipIPv6toCJDNS), so it goes to the CJDNS proxy; a name sent to a name proxy
    gives a peer with Core's empty address, whose class is not_publicly_routable
    (feature_proxy's network_test)."""
    proxies = ProxySettings.from_options(["127.0.0.1:9050"], None, False)
    net = MemNet()
    core = net.add(
        0,
        proxies=proxies,
        reachable=frozenset({Network.IPV4, Network.IPV6, Network.CJDNS}),
        automatic_outbound=False,
    )
    core.start(net.now)
    net.pump()
    core.add_node("[fc00:1:2:3:4:5:6:7]:8888", "onetry", net.now)
    core.add_node("node.noumenon:8333", "onetry", net.now)
    dials = [a for a in core.poll_actions() if isinstance(a, Dial)]
    assert [d.service.addr.network for d in dials] == [Network.CJDNS, Network.INTERNAL]
    assert all(d.proxy == Proxy("127.0.0.1", 9050, False) for d in dials)
    core.connected(dials[1].id, 7, svc(0), net.now)
    (peer,) = [p for p in core.peers.values() if p.conn_id == 7]
    assert peer.net_class.rpc_name == "not_publicly_routable"
    assert peer.addr_name == "node.noumenon:8333"


def test_a_stalled_v2_handshake_is_cores_v2_handshake_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Core InactivityCheck: any bytes count as received (ReceiveMsgBytes), so a peer that
    answers our BIP324 key with a few bytes and then stalls is not "socket no message"
    but "V2 handshake timeout" (the transport is still detecting); Core's
    "start sending v2 handshake" line comes first (p2p_v2_misbehaving, p2p_v2_transport)."""
    net = MemNet()
    a = net.add(0, v2transport=True, automatic_outbound=False)
    a.start(net.now)
    a.open_connection(str(svc(9)), ConnectionType.MANUAL, net.now, use_v2=True)
    (dial,) = [x for x in a.poll_actions() if isinstance(x, Dial)]
    with caplog.at_level(logging.DEBUG, logger="peerkeeper.net"):
        a.connected(dial.id, 5, svc(0), net.now)
        a.received(5, b"\x01" * 10, net.now + 1)  # too few bytes for a key
        a.tick(net.now + 61)
    closes = [x for x in a.poll_actions() if isinstance(x, Close)]
    assert [c.reason for c in closes] == ["V2 handshake timeout"]
    lines = [r.getMessage() for r in caplog.records]
    assert "start sending v2 handshake to peer=0" in lines
    assert "V2 handshake timeout, disconnecting peer=" in " ".join(lines)


def test_addconnection_reports_when_its_dial_ends() -> None:
    """Core's AddConnection connects before the RPC answers: the core tells the caller
    the outcome (the peer, or None) so that the RPC can wait for it (p2p_handshake's
    getpeerinfo right after addconnection)."""
    net = MemNet()
    a = net.add(0, automatic_outbound=False)
    net.add(1)
    net.start(0, 1)
    outcomes: list[object] = []
    kinds = (ConnectionType.OUTBOUND_FULL_RELAY, False, net.now)
    assert a.add_connection(str(svc(1)), *kinds, on_done=outcomes.append)
    assert outcomes == []  # the dial is out
    net.pump()
    assert len(outcomes) == 1 and outcomes[0] is not None
    net.down.add(svc(2))
    assert a.add_connection(str(svc(2)), *kinds, on_done=outcomes.append)
    net.pump()
    assert outcomes[1] is None


def test_set_network_active_is_logged_as_core(caplog: pytest.LogCaptureFixture) -> None:
    """Core logs "SetNetworkActive: true|false" from CConnman's constructor and on every
    call (feature_config_args' -networkactive checks)."""
    net = MemNet()
    with caplog.at_level(logging.INFO, logger="peerkeeper.net"):
        core = net.add(0, network_active=False)
        core.set_network_active(True, net.now)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("SetNet")]
    assert lines == ["SetNetworkActive: false", "SetNetworkActive: true"]


def test_inbound_keyed_netgroup_is_the_as_with_an_asmap() -> None:
    """Core ``CalculateKeyedNetGroup`` hashes ``m_netgroupman.GetGroup`` (src/net.cpp):
    with -asmap, two /16s of one AS are one netgroup for eviction; without, two."""
    asmap = encode_asmap([("11.1.0.0/16", 64500), ("11.2.0.0/16", 64500), ("11.3.0.0/16", 7)])
    keys = {}
    for label, data in (("plain", None), ("asmap", asmap)):
        core = ConnManCore(
            ConnManOptions(chain=REGTEST, listen=True, peer=PeerConfig(services=SERVICES)),
            AddrMan(random.Random(1), deterministic=True, asmap=data),
            rng=random.Random(2),
            transport_rng=random.Random(3).randbytes,
            banman=BanMan(4),
        )
        core.start(T0)
        for conn, i in enumerate((1, 2, 3), start=1):
            assert core.accepted(conn, svc(0), svc(i), T0)
        keys[label] = [p.keyed_netgroup for p in sorted(core.peers.values(), key=lambda p: p.id)]
    assert len(set(keys["plain"])) == 3
    a, b, c = keys["asmap"]
    assert a == b != c


# -- events and statistics (Core's tracepoints, doc/tracing.md) ------------------------------


def test_core_events_eviction_misbehaving_and_stats() -> None:
    from peerkeeper.wire.events import Event

    net = MemNet()
    b = net.add(0, max_connections=41)  # 30 inbound slots
    got: list[Event] = []
    b.on_event = got.append
    net.start(0)
    for k in range(1, 31):
        assert b.accepted(k, svc(0), svc(100 + k), net.now)
    assert [e.fields["existing"] for e in got] == list(range(1, 31))  # this one included
    assert {e.name for e in got} == {"net:inbound_connection"}
    assert got[0].fields["addr"] == str(svc(101)) and got[0].fields["network"] == "ipv4"
    assert got[0].fields["conn_type"] == "inbound" and got[0].fields["id"] == 0
    del got[:]
    assert b.accepted(31, svc(0), svc(131), net.now)  # full: someone is evicted
    names = [e.name for e in got]
    assert names == [
        "net:evicted_inbound_connection",
        "net:closed_connection",
        "net:inbound_connection",
    ]
    assert got[1].fields["reason"] == "evicted for an inbound slot"
    assert got[0].fields["time_established"] == int(net.now)
    assert got[0].fields["id"] == got[1].fields["id"]
    assert b.stats.counters["evictions"] == 1
    del got[:]
    victim = next(iter(b.peers.values()))
    b._misbehaving(victim, "bad thing")
    tail = [(e.name, e.fields.get("message", e.fields.get("address"))) for e in got]
    assert tail[:2] == [
        ("net:misbehaving_connection", "bad thing"),
        ("discourage", str(victim.addr.addr)),
    ]
    assert b.stats.counters["discouragements"] == 1
    # Per-message events only when asked for; NetStats counts either way.
    peer = next(iter(b.peers.values()))
    n = len(got)
    b.send_message(peer.id, Ping(5), net.now)
    assert len(got) == n
    b.message_events = True
    b.send_message(peer.id, Ping(6), net.now)
    (ev,) = got[n:]
    assert ev.name == "net:outbound_message" and ev.fields["msg_type"] == "ping"
    assert ev.fields["size"] == 8
    (entry,) = [v for k, v in b.stats.messages.items() if k[3] == "ping"]
    assert entry == [2, peer.sent_per_msg["ping"]]  # two pings, bytes as on the wire


def test_anchor_events_at_start_and_stop() -> None:
    from peerkeeper.wire.events import Event

    net = MemNet()
    anchors = [AddrEntry(int(T0), SERVICES, svc(k)) for k in (1, 2)]
    a = net.add(0, anchors=anchors, v2transport=False, fixedseeds=False)
    got: list[Event] = []
    a.on_event = got.append
    for k in (1, 2):
        net.add(k, v2transport=False)
    net.start(0, 1, 2)
    assert [(e.fields["addr"], e.fields["action"]) for e in got if e.name == "anchor"] == [
        (str(svc(1)), "loaded"),
        (str(svc(2)), "loaded"),
    ]
    net.run_while(lambda: len(peers_of(a, ConnectionType.BLOCK_RELAY)) < 2, 30)
    outs = [e for e in got if e.name == "net:outbound_connection"]
    assert [e.fields["conn_type"] for e in outs] == ["block-relay-only"] * 2
    net.run_while(lambda: sum(e.name == "net:handshake" for e in got) < 2, 30)
    a.stop(net.now)
    saved = [e.fields["addr"] for e in got if e.name == "anchor" and e.fields["action"] == "saved"]
    assert sorted(saved) == sorted([str(svc(1)), str(svc(2))])
    assert a.stats.counters["connection_attempts"] == 2
    assert sum(a.stats.handshake_counts) == 2


def test_a_failing_event_sink_changes_no_decision(caplog: pytest.LogCaptureFixture) -> None:
    net = MemNet()
    b = net.add(0, max_connections=41)

    def boom(event: object) -> None:
        raise RuntimeError("observer bug")

    b.on_event = boom
    net.start(0)
    for k in range(1, 32):  # the 31st evicts someone, while the sink raises
        assert b.accepted(k, svc(0), svc(100 + k), net.now)
    assert b.inbound_count == 30 and b.stats.counters["evictions"] == 1
    assert sum(isinstance(a, Close) for a in b.poll_actions()) == 1
    assert "event sink failed" in caplog.text


def inbound_pair() -> tuple[MemNet, ConnManCore, ConnManCore]:
    """Node 1 connects to node 0 by hand (v1); returns once node 0 has the handshake."""
    net = MemNet()
    a = net.add(0, v2transport=False, fixedseeds=False)
    b = net.add(1, v2transport=False, automatic_outbound=False)
    net.start(0, 1)
    b.open_connection(svc(0), ConnectionType.MANUAL, net.now)
    net.pump()
    net.run_while(lambda: handshaken(a) < 1, 10)
    return net, a, b


def test_the_outbound_loop_skips_addresses_connected_inbound_using_its_indexes() -> None:
    """Core ``AlreadyConnectedToAddress``: an address connected inbound is not dialled;
    ConnManCore answers it from address indexes kept as peers come and go (not by
    walking every peer on each pass), and counts only the non-inbound peers."""
    net, a, b = inbound_pair()
    assert [p.conn_type for p in a.peers.values()] == [ConnectionType.INBOUND]
    assert a._outbound == {} and a._connected_to(svc(1))
    fill_table(a, range(1, 2), net.now)  # its only address is the inbound peer's
    dials_before = len([d for _, i, d in net.dials if i == 0])
    net.run_until(net.now + 30)
    assert len([d for _, i, d in net.dials if i == 0]) == dials_before  # never dialled
    b.disconnect_node(net.now, peer_id=next(iter(b.peers)))
    net.pump()
    assert not a._connected_to(svc(1)) and a._netaddr_refs == {}
    net.run_while(lambda: not peers_of(a, ConnectionType.OUTBOUND_FULL_RELAY), 30)
    assert [p.addr for p in peers_of(a, ConnectionType.OUTBOUND_FULL_RELAY)] == [svc(1)]
    assert list(a._outbound) == [p.id for p in peers_of(a, ConnectionType.OUTBOUND_FULL_RELAY)]


def test_eviction_candidates_follow_version_and_pong() -> None:
    """The candidates an admission copies are refreshed when an inbound peer's version
    (services, relay) or a pong (minimum ping) arrives, and dropped with the peer."""
    net, a, b = inbound_pair()
    (pid,) = a.peers
    cand = a._evict_cands[pid]
    assert cand.relay_txs == a.peers[pid].proto.their.relay
    # built at accept with no ping (inf); the handshake's pong (no latency here) refreshed it
    assert cand.min_ping_time == a.peers[pid].proto.ping.min_time == 0.0
    b.disconnect_node(net.now, peer_id=next(iter(b.peers)))
    net.pump()
    assert a._evict_cands == {}


def _i2p(k: int, port: int = 0) -> Service:
    return Service(dest_bin_to_addr(bytes([k]) * 387), port)


def _onion(k: int) -> Service:
    return Service(NetAddr(Network.TORV3, bytes([k]) * 32), REGTEST.default_port)


@pytest.mark.parametrize("only", ["i2p", "onion"])
def test_onlynet_keeps_the_outbound_loop_on_that_network_and_its_proxy(only: str) -> None:
    """-onlynet=i2p / -onlynet=onion: Core's g_reachable_nets holds that network only, so
    the automatic loop picks only its addresses (Select with reachable_nets), and each
    dial goes through the network's proxy: the SAM bridge for I2P (port 0), the onion
    proxy for Tor. IPv4 addresses in the table are never dialled."""
    proxies = ProxySettings.from_options([], "127.0.0.1:9050", True, i2psam="127.0.0.1:7656")
    network = parse_network(only)
    reachable = proxies.reachable_networks([only], i2p_sam=True)
    assert reachable == {network}
    net = MemNet()
    a = net.add(0, proxies=proxies, reachable=frozenset(reachable), fixedseeds=False)
    fill_table(a, range(3, 15), T0)
    own = [_i2p(k) for k in range(1, 5)] if only == "i2p" else [_onion(0), _onion(1)]
    for s in own:
        a.addrman.add([AddrEntry(int(T0) - 600, SERVICES, s)], NetAddr.parse("13.0.0.1"), now=T0)
    net.start(0)
    net.run_until(T0 + 30)
    dials = [d for _, i, d in net.dials if i == 0]
    assert len(dials) >= len(own)
    assert {d.service for d in dials} <= set(own)
    assert all(d.proxy == proxies.for_network(network) for d in dials)
    if only == "i2p":
        assert all(
            d.service.port == 0 and d.proxy == Proxy("127.0.0.1", 7656, False) for d in dials
        )


def test_an_i2p_name_without_a_port_is_dialled_on_port_0() -> None:
    """Core CConnman::GetDefaultPort(name): 0 for an I2P name (SAM 3.1 has no ports), the
    chain's port otherwise; an explicit port is kept (the session refuses it later)."""
    proxies = ProxySettings.from_options([], None, True, i2psam="127.0.0.1:7656")
    net = MemNet()
    a = net.add(0, proxies=proxies, automatic_outbound=False)
    a.start(net.now)
    name = str(_i2p(1).addr)
    assert a.default_port(name) == 0 and a.default_port("1.2.3.4") == REGTEST.default_port
    a.add_node(name, "onetry", net.now)
    a.add_node(f"{name}:8333", "onetry", net.now)
    a.add_node("11.1.0.1", "onetry", net.now)
    dials = [x for x in a.poll_actions() if isinstance(x, Dial)]
    assert [d.service.port for d in dials] == [0, 8333, REGTEST.default_port]
    assert [d.proxy for d in dials] == [Proxy("127.0.0.1", 7656, False)] * 2 + [None]
    a.add_node(name, "add", net.now)
    assert a._is_added_node(_i2p(1))  # matched on port 0, as Core's AddedNodesContain


def test_onlynet_onion_waits_for_the_socks_port_tor_control_names() -> None:
    """-onlynet=onion with -listenonion and no -onion: no proxy yet, so nothing is
    reachable and nothing is dialled; once Tor's control port names its SOCKS listener
    (Core get_socks_cb) onion becomes reachable and only onion peers are dialled,
    through that proxy."""
    proxies = ProxySettings.from_options([], None, True)
    reachable = proxies.reachable_networks(["onion"], listen_onion=True)
    assert reachable == set()
    net = MemNet()
    a = net.add(0, proxies=proxies, reachable=frozenset(reachable), fixedseeds=False)
    fill_table(a, range(3, 15), T0)
    for s in (_onion(0), _onion(1)):
        a.addrman.add([AddrEntry(int(T0) - 600, SERVICES, s)], NetAddr.parse("13.0.0.1"), now=T0)
    net.start(0)
    net.run_until(T0 + 20)
    assert [d for _, i, d in net.dials if i == 0] == []
    tor_socks = Proxy("127.0.0.1", 9050, True)
    a.set_onion_proxy(tor_socks, reachable=True)
    net.run_until(T0 + 50)
    dials = [d for _, i, d in net.dials if i == 0]
    assert dials and {d.service for d in dials} <= {_onion(0), _onion(1)}
    assert all(d.proxy == tor_socks for d in dials)


@pytest.mark.parametrize("through_sam", [False, True])
def test_a_made_connection_counts_an_attempt_unless_it_went_through_sam(through_sam: bool) -> None:
    """Core ConnectNode calls addrman.Attempt unless proxyConnectionFailed; Session::Connect
    sets proxy_error first and clears it only for CANT_REACH_PEER/TIMEOUT, so a made I2P
    connection counts no attempt (src/i2p.cpp, src/net.cpp), unlike a TCP one."""
    proxies = ProxySettings.from_options([], None, True, i2psam="127.0.0.1:7656")
    net = MemNet()
    a = net.add(0, proxies=proxies, automatic_outbound=False)
    a.start(net.now)
    target = _i2p(7) if through_sam else svc(7)
    a.addrman.add([AddrEntry(int(T0) - 600, SERVICES, target)], NetAddr.parse("13.0.0.1"), now=T0)
    a.open_connection(str(target), ConnectionType.FEELER, net.now + 100)
    (dial,) = [x for x in a.poll_actions() if isinstance(x, Dial)]
    assert a.connected(dial.id, 5, svc(0), net.now + 100, through_sam=through_sam)
    info = a.addrman.find(target)
    assert info is not None
    assert (info.last_try, info.attempts) == ((0, 0) if through_sam else (int(T0) + 100, 1))
