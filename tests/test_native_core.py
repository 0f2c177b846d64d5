"""NativeNodeCore: the native node's policy without I/O, driven by hand (issue 14)."""

from __future__ import annotations

import random

from peerkeeper.native.identity import Identity
from peerkeeper.native.maintenance import MaintenanceConfig
from peerkeeper.native.messages import Envelope
from peerkeeper.native.node import (
    CancelDial,
    Close,
    Deliver,
    Dial,
    DialDone,
    NativeNodeCore,
    NodeAction,
    Send,
)
from peerkeeper.native.pool import PoolConfig
from peerkeeper.net.netaddr import NetAddr, Service

T0 = 1_700_000_000.0


def point(i: int) -> Service:
    return Service(NetAddr.parse(f"11.{i}.0.1"), 9732)


def core(i: int, **limits: int) -> NativeNodeCore:
    cfg = MaintenanceConfig(**limits) if limits else MaintenanceConfig()
    return NativeNodeCore(
        PoolConfig(),
        cfg,
        Identity.generate(0.0, random.Random(i)),
        rng=random.Random(100 + i),
        now=T0,
        difficulty=0.0,
        maintenance=bool(limits),
        listen_port=9732,
    )


class Wire:
    """Cores joined in memory, no latency; records every action."""

    def __init__(self, *cores: NativeNodeCore) -> None:
        self.cores = {point(i): c for i, c in enumerate(cores)}
        self.links: dict[tuple[int, int], tuple[int, int]] = {}
        self.next_conn = 1
        self.log: list[tuple[int, NodeAction]] = []
        self.down: set[Service] = set()
        self.hold: list[tuple[int, Dial]] = []  # dials left in flight

    def index(self, c: NativeNodeCore) -> int:
        return next(i for i, x in enumerate(self.cores.values()) if x is c)

    def pump(self, now: float = T0, hold_dials: bool = False) -> None:
        busy = True
        while busy:
            busy = False
            for i, c in enumerate(list(self.cores.values())):
                for action in c.poll_actions():
                    busy = True
                    self.log.append((i, action))
                    self.execute(i, c, action, now, hold_dials)

    def execute(
        self, i: int, c: NativeNodeCore, action: NodeAction, now: float, hold: bool
    ) -> None:
        if isinstance(action, Dial):
            if hold:
                self.hold.append((i, action))
                return
            self.complete(i, action, now)
        elif isinstance(action, Send):
            other = self.links.get((i, action.conn_id))
            if other is not None:
                list(self.cores.values())[other[0]].received(other[1], action.data, now)
        elif isinstance(action, Close):
            other = self.links.pop((i, action.conn_id), None)
            if other is not None:
                self.links.pop(other, None)
                list(self.cores.values())[other[0]].closed(other[1], "closed by peer", now)

    def complete(self, i: int, dial: Dial, now: float) -> None:
        c = list(self.cores.values())[i]
        remote = self.cores.get(dial.point)
        if remote is None or dial.point in self.down:
            c.dial_failed(dial.id, "connection refused", now)
            return
        a, b = self.next_conn, self.next_conn + 1
        self.next_conn += 2
        j = self.index(remote)
        if not remote.accepted(b, point(i), now):
            c.dial_failed(dial.id, "connection reset", now)
            return
        self.links[(i, a)] = (j, b)
        self.links[(j, b)] = (i, a)
        c.connected(dial.id, a, now)

    def of(self, kind: type) -> list[tuple[int, NodeAction]]:
        return [(i, a) for i, a in self.log if isinstance(a, kind)]


def test_connect_runs_the_handshake_and_reports_the_peer_id() -> None:
    a, b = core(0), core(1)
    a.start(T0)
    b.start(T0)
    wire = Wire(a, b)
    dial = a.connect(point(1), T0)
    assert dial is not None
    wire.pump()
    assert wire.of(DialDone) == [(0, DialDone(dial, b.identity.peer_id))]
    assert a.pool.active_connections() == b.pool.active_connections() == 1
    # Envelopes go up as Deliver actions.
    assert a.send(b.identity.peer_id, Envelope(b"hello"), T0)
    wire.pump()
    assert (1, Deliver(a.identity.peer_id, b"hello")) in wire.log


def test_a_failed_dial_and_a_refused_point_report_none() -> None:
    a = core(0)
    a.start(T0)
    wire = Wire(a)
    dial = a.connect(point(5), T0)
    wire.pump()
    assert wire.of(DialDone) == [(0, DialDone(dial, None))]  # type: ignore[arg-type]
    assert point(5) in a.pool.known_points
    a.pool.greylist_addr(point(6).addr, T0, reason="test")
    assert a.connect(point(6), T0) is None and a.last_refusal is not None


def test_tear_down_cancels_a_dial_in_flight_and_closes_a_late_socket() -> None:
    a, b = core(0), core(1)
    a.start(T0)
    b.start(T0)
    wire = Wire(a, b)
    dial = a.connect(point(1), T0)
    wire.pump(hold_dials=True)
    assert dial is not None and dial in a.dials
    a.tear_down_connections("test", T0)
    wire.pump()
    assert (0, CancelDial(dial)) in wire.log
    assert (0, DialDone(dial, None)) in wire.log
    assert dial not in a.dials
    # The socket opens anyway: the core closes it at once.
    a.connected(dial, 77, T0)
    assert a.poll_actions() == [Close(77, "closed while dialling")]
    assert a.pool.active_connections() == 0


def test_garbage_from_an_inbound_socket_greylists_its_address() -> None:
    a = core(0)
    a.start(T0)
    assert a.accepted(5, point(9), T0)
    a.received(5, b"\xff" * 8192, T0)  # no BIP324 garbage terminator in 4,095 bytes
    actions = a.poll_actions()
    assert any(isinstance(x, Close) and x.conn_id == 5 for x in actions)
    assert a.pool.banned_addr(point(9).addr)
    assert not a.accepted(6, point(9), T0)  # greylisted: refused at accept
    assert a.conns == {}


def test_the_worker_dials_looks_and_waits_on_the_clock() -> None:
    """Too few connections and one point that refuses: the pass dials it, then looks
    for contacts for time_between_looking_for_peers (5 s) on the core's clock."""
    a = core(0, min_connections=1, expected_connections=2, max_connections=4)
    a.start(T0, [point(5)])
    wire = Wire(a)
    wire.pump()
    assert [d.point for _i, d in wire.of(Dial)] == [point(5)]  # type: ignore[attr-defined]
    assert a.worker == "look" and a.next_wakeup() <= T0 + 5.0
    a.tick(T0 + 4.99)
    wire.pump(T0 + 4.99)
    assert len(wire.of(Dial)) == 1
    a.tick(T0 + 5.0)
    wire.pump(T0 + 5.0)
    assert len(wire.of(Dial)) == 2  # a new round: the point's miss is before it


def test_the_worker_fills_to_its_bounds_and_idles() -> None:
    nodes = [
        core(i, min_connections=2, expected_connections=3, max_connections=5) for i in range(6)
    ]
    wire = Wire(*nodes)
    for i, c in enumerate(nodes):  # nodes join one after the other, knowing those before
        c.start(T0, [point(j) for j in range(i)])
        wire.pump()
    for c in nodes[1:]:
        c.tick(T0 + 5.0)  # the looks end
    wire.pump(T0 + 5.0)
    for c in nodes:
        assert 2 <= c.pool.active_connections() <= 5
        assert c.worker == "idle"
    assert all(c.next_wakeup() <= T0 + 120.0 for c in nodes)
