"""PeerPool, its state machines and its GC rules, in simulated time (seed 003, Octez)."""

from __future__ import annotations

import random

import pytest
from support import ME, T0, connect, pid, pt

from peerkeeper.native.identity import Identity, PeerId
from peerkeeper.native.messages import NackReason
from peerkeeper.native.pool import (
    MY_ID_POINTS_SIZE,
    SCORE_HALF_LIFE,
    PeerPool,
    PoolConfig,
    PoolEvent,
)
from peerkeeper.native.poolstate import (
    IllegalTransition,
    PeerInfo,
    PeerState,
    PointInfo,
    PointState,
    ReconnectionConfig,
)
from peerkeeper.net.netaddr import NetAddr, Service


def make_pool(**kw: object) -> tuple[PeerPool, list[PoolEvent], list[tuple[object, str]]]:
    events: list[PoolEvent] = []
    closed: list[tuple[object, str]] = []
    pool = PeerPool(
        PoolConfig(**kw),  # type: ignore[arg-type]
        my_peer_id=ME,
        now=T0,
        rng=random.Random(1),
        close=lambda conn, reason: closed.append((conn, reason)),
    )
    pool.subscribe(events.append)
    return pool, events, closed


# -- state machines ------------------------------------------------------------------------


def test_point_transitions_and_backoff() -> None:
    cfg = ReconnectionConfig()
    info = PointInfo(pt(1), created=T0)
    with pytest.raises(IllegalTransition):
        info.set_disconnected(T0, cfg)
    info.set_requested(T0)
    info.set_requested(T0)  # requested -> requested is legal
    info.set_disconnected(T0, cfg)  # failed dial
    assert info.last_failed_connection == T0
    assert info.reconnection_end == T0 + 1.0
    assert info.reconnection_delay == pytest.approx(1.2)
    assert not info.can_reconnect(T0 + 1.0) and info.can_reconnect(T0 + 1.01)
    info.set_requested(T0 + 2)
    info.set_disconnected(T0 + 2, cfg, rejected=True)
    assert info.last_rejected_connection == T0 + 2
    assert info.reconnection_end == pytest.approx(T0 + 2 + 1.2)
    assert info.reconnection_delay == pytest.approx(1.44)
    info.set_accepted(pid(1), T0 + 3, incoming=True)
    with pytest.raises(IllegalTransition):
        info.set_requested(T0 + 3)
    with pytest.raises(IllegalTransition):
        info.set_running(pid(2), T0 + 3)  # accepted with another peer
    info.set_running(pid(1), T0 + 3)
    with pytest.raises(IllegalTransition):
        info.set_running(pid(1), T0 + 3)
    with pytest.raises(IllegalTransition):
        info.set_accepted(pid(1), T0 + 3, incoming=False)
    info.set_disconnected(T0 + 10, cfg)
    # A running connection that ends: 60 s, and the delay starts again at 1 s.
    assert info.reconnection_end == T0 + 70
    assert info.reconnection_delay == 1.0
    assert info.last_seen == T0 + 10 and info.last_miss == T0 + 10
    assert [e[1] for e in info.events][-2:] == ["connection_established", "disconnection"]


def test_backoff_is_capped() -> None:
    cfg = ReconnectionConfig(increase_cap=5.0)
    info = PointInfo(pt(1), created=T0)
    for _ in range(30):
        info.set_requested(T0)
        info.set_disconnected(T0, cfg)
    assert info.reconnection_delay == 5.0


def test_peer_transitions() -> None:
    info = PeerInfo(pid(1), created=T0)
    with pytest.raises(IllegalTransition):
        info.set_disconnected(T0)
    info.set_accepted(pt(1), T0)
    with pytest.raises(IllegalTransition):
        info.set_accepted(pt(1), T0)
    with pytest.raises(IllegalTransition):
        info.set_running(pt(2), T0)  # accepted on another point
    info.set_running(pt(1), T0 + 1)
    assert info.last_established_connection == (pt(1), T0 + 1)
    info.set_disconnected(T0 + 5)
    assert info.state is PeerState.DISCONNECTED
    assert info.last_disconnection == (pt(1), T0 + 5)
    assert info.last_seen == (pt(1), T0 + 5)
    info.set_running(pt(2), T0 + 6)  # disconnected -> running is legal
    assert info.current_point == pt(2)


def test_event_ring_is_bounded() -> None:
    info = PointInfo(pt(1), created=T0)
    for i in range(500):
        info.set_requested(T0 + i)
        info.set_disconnected(T0 + i, ReconnectionConfig())
    assert len(info.events) == 100


# -- points ---------------------------------------------------------------------------------


def test_register_point_and_events() -> None:
    pool, events, _ = make_pool()
    info = pool.register_point(pt(1), T0)
    assert info is pool.register_point(pt(1), T0 + 1)
    assert [e.kind for e in events] == ["new_point"]
    assert not info.trusted
    pool.register_point(pt(1), T0, trusted=True)
    assert info.trusted
    pool.register_point(pt(1), T0)  # trusted not given: unchanged
    assert info.trusted
    pool.unregister_point(pt(1), T0)
    assert pt(1) not in pool.known_points
    assert events[-1].kind == "point_unregistered"


def test_trusted_points_from_config() -> None:
    pool, _, _ = make_pool(trusted_points=((pt(1), pid(1)), (pt(2), None)))
    assert pool.known_points[pt(1)].trusted and pool.known_points[pt(2)].trusted
    assert pool.known_points[pt(1)].expected_peer_id == pid(1)
    assert pool.known_points[pt(2)].expected_peer_id is None


def test_my_id_points() -> None:
    pool, _, _ = make_pool()
    pool.register_point(pt(1), T0)
    pool.add_to_id_points(pt(1), T0)
    assert pt(1) not in pool.known_points
    assert pool.register_new_point(pt(1), T0) is None
    assert pool.may_dial(pt(1), T0) == "myself"
    for n in range(2, 2 + MY_ID_POINTS_SIZE):
        pool.add_to_id_points(pt(n), T0)
    assert len(pool.my_id_points) == MY_ID_POINTS_SIZE
    assert pt(1) not in pool.my_id_points  # LRU: the oldest went
    assert pool.register_new_point(pt(1), T0) is not None


def test_register_list_of_new_points_skips_banned_and_ours() -> None:
    pool, events, _ = make_pool()
    pool.greylist_addr(pt(2).addr, T0)
    pool.add_to_id_points(pt(3), T0)
    pool.register_point(pt(4), T0)
    new = pool.register_list_of_new_points(
        [pt(1), pt(2), pt(3), pt(4), pt(5)], T0, medium="advertise", source=pid(9)
    )
    assert new == 2
    assert set(pool.known_points) == {pt(1), pt(4), pt(5)}
    assert events[-1].kind == "new_points_registered"
    assert events[-1].reason == "advertise: 2 new" and events[-1].peer_id == pid(9)


def test_set_expected_peer_id_mismatch_disconnects_and_greylists() -> None:
    pool, events, closed = make_pool()
    conn = connect(pool, 1)
    pool.set_expected_peer_id(pt(1), pid(1), T0)  # the right one: nothing happens
    assert closed == []
    pool.set_expected_peer_id(pt(1), pid(2), T0)
    assert closed == [(conn, "unexpected peer id")]
    assert pool.banned_addr(pt(1).addr)
    assert any(e.kind == "greylisted_addr" for e in events)


def test_expected_peer_id_checked_at_authentication() -> None:
    pool, _, _ = make_pool()
    pool.register_point(pt(1), T0, expected_peer_id=pid(7))
    pool.dial_started(pt(1), T0, "c")
    reason = pool.authenticated(
        "c", pt(1), pid(8), T0, incoming=False, listen_port=9732, private=False
    )
    assert reason is NackReason.UNEXPECTED_PEER_ID
    assert pool.banned_addr(pt(1).addr)


def test_trusted_point_with_wrong_id_is_refused_not_greylisted() -> None:
    pool, _, _ = make_pool(trusted_points=((pt(1), pid(7)),))
    pool.dial_started(pt(1), T0, "c")
    reason = pool.authenticated(
        "c", pt(1), pid(8), T0, incoming=False, listen_port=9732, private=False
    )
    assert reason is NackReason.UNEXPECTED_PEER_ID
    assert not pool.banned_addr(pt(1).addr)


# -- connections ----------------------------------------------------------------------------


def test_connection_lifecycle_and_counts() -> None:
    pool, events, _ = make_pool()
    connect(pool, 1)
    connect(pool, 2, incoming=True)
    assert pool.active_connections() == 2
    assert set(pool.connected_peer_ids()) == {pid(1), pid(2)}
    assert pool.known_points[pt(1)].state is PointState.RUNNING
    pool.connection_ended(pt(1), pid(1), T0 + 100, reason="bye")
    assert pool.active_connections() == 1
    assert pool.known_points[pt(1)].state is PointState.DISCONNECTED
    assert pool.known_points[pt(1)].reconnection_end == T0 + 160
    assert pool.known_peer_ids[pid(1)].last_disconnection == (pt(1), T0 + 100)
    kinds = [e.kind for e in events]
    assert kinds.count("connection_established") == 2
    assert events[-1].kind == "connection_closed" and events[-1].reason == "bye"


def test_failed_dial_is_not_a_disconnection() -> None:
    pool, events, _ = make_pool()
    pool.dial_started(pt(1), T0, "c")
    pool.dial_failed(pt(1), T0 + 1, "refused")
    assert events[-1].kind == "connection_failed" and events[-1].reason == "refused"
    assert pool.known_points[pt(1)].last_failed_connection == T0 + 1
    assert pt(1) not in pool.connected_points
    assert not any(e.kind == "connection_closed" for e in events)


def test_authentication_refusals() -> None:
    pool, _, _ = make_pool()
    # Ourselves, dialled: the point becomes ours.
    pool.dial_started(pt(1), T0, "a")
    assert (
        pool.authenticated("a", pt(1), ME, T0, incoming=False, listen_port=9732, private=False)
        is NackReason.MYSELF
    )
    assert pt(1) in pool.my_id_points and pt(1) not in pool.known_points
    assert pt(1) not in pool.connected_points
    # Greylisted peer id.
    pool.greylist_peer(pid(2), T0)
    assert (
        pool.authenticated("b", pt(2), pid(2), T0, incoming=True, listen_port=0, private=False)
        is NackReason.GREYLISTED
    )
    # Already connected peer on another point.
    connect(pool, 3)
    assert (
        pool.authenticated("c", pt(4), pid(3), T0, incoming=True, listen_port=9732, private=False)
        is NackReason.ALREADY_CONNECTED
    )
    # Simultaneous open: incoming from a point we are dialling.
    pool.dial_started(pt(5), T0, "d")
    assert (
        pool.authenticated("e", pt(5), pid(5), T0, incoming=True, listen_port=9732, private=False)
        is NackReason.ALREADY_CONNECTED
    )
    # No slot: max_connections + U{0,1} <= active.
    assert (
        pool.authenticated(
            "f",
            pt(6),
            pid(6),
            T0,
            incoming=True,
            listen_port=9732,
            private=False,
            max_connections=0,
        )
        is NackReason.TOO_MANY_CONNECTIONS
    )


def test_incoming_without_listening_port_is_not_a_known_point() -> None:
    pool, _, _ = make_pool()
    sock = Service(NetAddr.parse("11.0.9.1"), 50123)
    assert (
        pool.authenticated("c", sock, pid(9), T0, incoming=True, listen_port=0, private=False)
        is None
    )
    pool.established(pid(9), T0)
    assert sock not in pool.known_points
    assert pool.active_connections() == 1
    pool.connection_ended(sock, pid(9), T0 + 1, reason="x")
    assert pool.active_connections() == 0


def test_private_mode_only_trusted() -> None:
    pool, _, _ = make_pool(private_mode=True, trusted_points=((pt(1), None),))
    assert pool.may_dial(pt(2), T0) == "private mode"
    assert pool.may_dial(pt(1), T0) is None
    assert (
        pool.authenticated("c", pt(2), pid(2), T0, incoming=True, listen_port=9732, private=False)
        is NackReason.PRIVATE_MODE
    )
    pool.dial_started(pt(1), T0, "t")
    assert (
        pool.authenticated("t", pt(1), pid(1), T0, incoming=False, listen_port=9732, private=False)
        is None
    )
    # A trusted peer id is accepted from any point.
    pool.trust_peer(pid(3), T0)
    assert (
        pool.authenticated("u", pt(3), pid(3), T0, incoming=True, listen_port=9732, private=False)
        is None
    )


def test_private_remote_is_not_advertised() -> None:
    pool, _, _ = make_pool()
    pool.dial_started(pt(1), T0, "c")
    pool.authenticated("c", pt(1), pid(1), T0, incoming=False, listen_port=9732, private=True)
    pool.established(pid(1), T0)
    assert pool.known_peer_ids[pid(1)].private
    assert pt(1) not in pool.list_known_points(ignore_private=True)
    assert pt(1) in pool.list_known_points(ignore_private=False)


def test_tear_down_connections() -> None:
    pool, _, closed = make_pool()
    a = connect(pool, 1)
    b = connect(pool, 2, incoming=True)
    pool.dial_started(pt(3), T0, "pending")
    assert pool.tear_down_connections("shutdown") == 3
    assert sorted(c for c, _ in closed) == sorted([a, b, "pending"])
    assert {r for _, r in closed} == {"shutdown"}


# -- greylists and ACL ----------------------------------------------------------------------


def test_greylist_peer_also_greylists_its_address() -> None:
    pool, _, _ = make_pool()
    connect(pool, 1)
    assert pool.greylist_peer(pid(1), T0, reason="bad message")
    assert pool.banned_peer(pid(1))
    assert pool.banned_addr(pt(1).addr)
    assert pool.may_dial(pt(1), T0) == "banned"
    assert not pool.may_accept_socket(pt(1).addr)
    pool.clear_greylist()
    assert not pool.banned_peer(pid(1)) and not pool.banned_addr(pt(1).addr)


def test_trusted_never_greylisted() -> None:
    pool, _, _ = make_pool(trusted_points=((pt(1), None),))
    assert not pool.greylist_addr(pt(1).addr, T0)
    assert not pool.banned_addr(pt(1).addr)
    pool.trust_peer(pid(2), T0)
    assert not pool.greylist_peer(pid(2), T0)
    assert not pool.banned_peer(pid(2))


def test_trust_unbans() -> None:
    pool, _, _ = make_pool()
    pool.greylist_addr(pt(1).addr, T0)
    pool.banned_addrs.add(pt(1).addr)
    pool.trust_point(pt(1), T0)
    assert not pool.banned_addr(pt(1).addr)
    assert pool.known_points[pt(1)].trusted
    pool.untrust_point(pt(1), T0)
    assert not pool.known_points[pt(1)].trusted


def test_ip_greylist_decays_with_gc() -> None:
    pool, _, _ = make_pool(ip_greylist_cleanup_delay=1600.0)
    pool.greylist_addr(pt(1).addr, T0)
    pool.gc_greylist(T0 + 1400)  # 14 countdowns of 100 s
    assert pool.banned_addr(pt(1).addr)
    pool.gc_greylist(T0 + 1700)
    assert not pool.banned_addr(pt(1).addr)


def test_acl_clear() -> None:
    pool, _, _ = make_pool()
    pool.banned_peers.add(pid(1))
    pool.banned_addrs.add(pt(2).addr)
    pool.greylist_addr(pt(3).addr, T0)
    pool.acl_clear()
    assert not (
        pool.banned_peer(pid(1)) or pool.banned_addr(pt(2).addr) or pool.banned_addr(pt(3).addr)
    )


# -- GC -------------------------------------------------------------------------------------


def test_gc_points_oldest_miss_first_keeps_trusted_and_connected() -> None:
    pool, events, _ = make_pool(max_known_points=(10, 5))
    pool.register_point(pt(100), T0, trusted=True)
    connect(pool, 101)
    for n in range(8):
        info = pool.register_point(pt(n), T0 + n)
        info.last_failed_connection = T0 + 1000 - n  # pt(7) missed longest ago
    assert len(pool.known_points) == 10
    pool.register_point(pt(50), T0 + 2000)  # full: GC first
    assert sum(e.kind == "gc_points" for e in events) == 1
    assert pt(100) in pool.known_points and pt(101) in pool.known_points
    # 10 -> 5 removed the 5 oldest misses: pt(7), pt(6), pt(5), pt(4), pt(3).
    assert {pt(n) for n in (3, 4, 5, 6, 7)}.isdisjoint(pool.known_points)
    assert {pt(0), pt(1), pt(2), pt(50)} <= set(pool.known_points)
    assert len(pool.known_points) == 6


def test_gc_peer_ids_lowest_score_then_newest() -> None:
    pool, _, _ = make_pool(max_known_peer_ids=(6, 3))
    pool.trust_peer(pid(100), T0)
    for n in range(5):
        pool.register_peer(pid(n), T0 + n)
    pool.add_score(pid(0), 5.0, T0 + 10)
    pool.add_score(pid(4), 3.0, T0 + 10)
    pool.register_peer(pid(9), T0 + 20)  # 6 known: GC down to 3
    assert pid(100) in pool.known_peer_ids  # trusted
    # Score 0: pid 3, 2, 1 (newest first) removed; then pid(9) joined.
    assert set(pool.known_peer_ids) == {pid(100), pid(0), pid(4), pid(9)}


def test_gc_disabled() -> None:
    pool, _, _ = make_pool(max_known_points=None)
    for n in range(600):
        pool.register_point(pt(n), T0)
    assert len(pool.known_points) == 600
    assert pool.gc_points(T0) == 0


def test_bad_gc_limits() -> None:
    with pytest.raises(ValueError):
        PoolConfig(max_known_points=(3, 5))


# -- list_known_points and score -------------------------------------------------------------


def test_list_known_points_mix() -> None:
    pool, _, _ = make_pool(max_known_points=None)
    for n in range(5):
        connect(pool, n, T0 + n)
    for n in range(10, 200):
        info = pool.register_point(pt(n), T0)
        info.last_disconnection = T0 + n
    pool.register_point(pt(300), T0, trusted=True)
    pool.greylist_addr(pt(199).addr, T0)
    listed = pool.list_known_points(ignore_private=True)
    assert 30 < len(listed) <= 50
    # 3/5 best: the 5 connected, oldest established first, then most recently seen.
    assert listed[:5] == [pt(n) for n in range(5)]
    assert listed[5:30] == [pt(n) for n in range(198, 173, -1)]
    assert pt(300) not in listed and pt(199) not in listed
    assert len(set(listed)) == len(listed)
    assert pool.list_known_points(ignore_private=True, size=0) == []
    with pytest.raises(ValueError):
        pool.list_known_points(ignore_private=True, size=-1)


def test_score_decays_and_survives_disconnect() -> None:
    pool, _, _ = make_pool()
    connect(pool, 1)
    pool.add_score(pid(1), 8.0, T0)
    pool.connection_ended(pt(1), pid(1), T0 + 1, reason="x")
    assert pool.score(pid(1), T0 + SCORE_HALF_LIFE) == pytest.approx(4.0)
    assert pool.score(pid(1), T0 + 2 * SCORE_HALF_LIFE) == pytest.approx(2.0)
    assert pool.score(pid(99), T0) == 0.0


def test_pluggable_score() -> None:
    pool, _, _ = make_pool(score=lambda info, now: float(info.listen_port))
    pool.register_peer(pid(1), T0).listen_port = 7
    assert pool.score(pid(1), T0) == 7.0


# -- persistence -----------------------------------------------------------------------------


def test_documents_round_trip() -> None:
    pool, _, _ = make_pool(trusted_points=((pt(1), pid(1)),))
    connect(pool, 1)
    connect(pool, 2, incoming=True)
    pool.add_score(pid(2), 3.0, T0)
    pool.connection_ended(pt(2), pid(2), T0 + 50, reason="x")
    pool.register_point(pt(3), T0)
    peers, points = pool.peers_document(), pool.points_document()
    assert {p["peer_id"] for p in peers} == {str(pid(1)), str(pid(2))}
    assert peers[1]["last_disconnection"] == [["11.0.2.1", 9732], T0 + 50]
    fresh, _, _ = make_pool()
    assert fresh.load_points_document(points, T0 + 100) == 3
    assert fresh.load_peers_document(peers, T0 + 100) == 2
    assert fresh.known_points[pt(1)].trusted
    assert fresh.known_points[pt(1)].expected_peer_id == pid(1)
    assert fresh.known_points[pt(2)].reconnection_end == T0 + 110
    assert all(i.state is PointState.DISCONNECTED for i in fresh.known_points.values())
    assert fresh.score(pid(2), T0) == pytest.approx(3.0)
    assert fresh.known_peer_ids[pid(2)].last_disconnection == (pt(2), T0 + 50)


@pytest.mark.parametrize(
    "doc",
    [
        {"not": "a list"},
        [{"peer_id": "nonsense", "created": 1}],
        [{"created": 1}],
        [{"peer_id": str(PeerId(bytes(16))), "created": "x"}],
        [
            {"peer_id": str(PeerId(bytes(16))), "created": 1},
            {"peer_id": str(PeerId(bytes(16))), "created": 1, "last_disconnection": [1, 2, 3]},
        ],
    ],
)
def test_bad_peers_document_loads_nothing(doc: object) -> None:
    pool, _, _ = make_pool()
    with pytest.raises(ValueError):
        pool.load_peers_document(doc, T0)
    assert pool.known_peer_ids == {}


def test_bad_points_document_loads_nothing() -> None:
    pool, _, _ = make_pool()
    good = {"point": ["11.0.0.1", 1], "created": 1}
    with pytest.raises(ValueError, match="record 1"):
        pool.load_points_document([good, {"point": ["x", 1], "created": 1}], T0)
    assert pool.known_points == {}


def test_identity_in_config_gives_our_peer_id() -> None:
    ident = Identity.generate(0.0, random.Random(4))
    pool = PeerPool(PoolConfig(identity=ident), now=T0, rng=random.Random(5))
    assert pool.my_peer_id == ident.peer_id
    pool.dial_started(pt(1), T0, "c")
    assert (
        pool.authenticated(
            "c", pt(1), ident.peer_id, T0, incoming=False, listen_port=9732, private=False
        )
        is NackReason.MYSELF
    )


def test_a_connection_cannot_take_a_point_another_holds() -> None:
    pool, _, _ = make_pool()
    sock = Service(NetAddr.parse("11.0.9.1"), 50123)
    # X: incoming, no listening port: held under its socket address.
    assert (
        pool.authenticated("x", sock, pid(1), T0, incoming=True, listen_port=0, private=False)
        is None
    )
    # Y claims X's socket port as its listening port: same key, refused.
    assert (
        pool.authenticated("y", sock, pid(2), T0, incoming=True, listen_port=50123, private=False)
        is NackReason.ALREADY_CONNECTED
    )
    pool.established(pid(1), T0)
    pool.connection_ended(sock, pid(1), T0 + 1, reason="x")
    assert pool.active_connections() == 0


def test_peer_at_a_trusted_point_is_not_locked_out() -> None:
    pool, _, _ = make_pool(trusted_points=((pt(1), None),))
    connect(pool, 1)
    assert not pool.greylist_peer(pid(1), T0, reason="bad message")
    assert not pool.banned_peer(pid(1))
    pool.connection_ended(pt(1), pid(1), T0, reason="x")
    pool.peer_greylist.add(pid(1).raw)  # greylisted some other way
    pool.dial_started(pt(1), T0 + 100, "c")
    assert (
        pool.authenticated(
            "c", pt(1), pid(1), T0 + 100, incoming=False, listen_port=9732, private=False
        )
        is None
    )


def test_pool_timer_is_the_greylist_countdown() -> None:
    pool, _, _ = make_pool(ip_greylist_cleanup_delay=160.0)
    step = 160.0 / 16  # Octez P2p_acl.create: a countdown every cleanup_delay / 16
    assert pool.next_wakeup() == T0 + step
    assert pool.gc_greylist(T0 + step - 0.001) == 0
    assert pool.next_wakeup() == T0 + step
    assert pool.gc_greylist(T0 + step) == 1
    assert pool.next_wakeup() == T0 + 2 * step
    assert pool.gc_greylist(T0 + 5.5 * step) == 4  # a late timer runs every due countdown
    assert pool.next_wakeup() == T0 + 6 * step
