"""Octez's maintenance decisions (p2p_maintenance.ml), pure, in simulated time."""

from __future__ import annotations

import math
import random

import pytest
from support import ME, T0, connect, pid, pt

from peerkeeper.native.maintenance import (
    Bounds,
    MaintenanceConfig,
    MaintenanceSchedule,
    bounds,
    connections_to_drop,
    decide,
    points_to_contact,
)
from peerkeeper.native.pool import PeerPool, PoolConfig


def make_pool(**kw: object) -> PeerPool:
    return PeerPool(
        PoolConfig(**kw),  # type: ignore[arg-type]
        my_peer_id=ME,
        now=T0,
        rng=random.Random(3),
    )


def test_bounds_octez_defaults() -> None:
    assert bounds(10, 50, 100) == Bounds(23, 36, 68, 84)
    assert bounds(2, 4, 6) == Bounds(2, 2, 6, 6)
    assert bounds(0, 0, 0) == Bounds(0, 0, 0, 0)


def test_bad_limits() -> None:
    with pytest.raises(ValueError):
        MaintenanceConfig(min_connections=5, expected_connections=4, max_connections=10)


def test_points_to_contact_order_and_filters() -> None:
    pool = make_pool()
    never = pool.register_point(pt(1), T0)
    old_miss = pool.register_point(pt(2), T0)
    old_miss.last_failed_connection = T0 - 500
    recent = pool.register_point(pt(3), T0)
    recent.last_failed_connection = T0 - 100
    this_round = pool.register_point(pt(4), T0)
    this_round.last_failed_connection = T0 + 5  # missed after the round started
    backoff = pool.register_point(pt(5), T0)
    backoff.reconnection_end = T0 + 50
    pool.register_point(pt(6), T0)
    pool.greylist_addr(pt(6).addr, T0)
    pool.register_point(pt(7), T0, trusted=True)
    connect(pool, 8)
    seen: set = set()
    got = points_to_contact(pool, 10, T0 + 10, round_start=T0, seen=seen)
    assert got == [pt(7), pt(1), pt(2), pt(3)]
    assert never.point in seen
    # Already seen this round: not offered again.
    assert points_to_contact(pool, 10, T0 + 10, round_start=T0, seen=seen) == []
    # The bound holds.
    assert len(points_to_contact(pool, 2, T0 + 10, round_start=T0, seen=set())) == 2


def test_private_mode_contacts_only_trusted() -> None:
    pool = make_pool(private_mode=True, trusted_points=((pt(1), None),))
    pool.register_point(pt(2), T0)
    assert points_to_contact(pool, 10, T0, round_start=T0, seen=set()) == [pt(1)]


def test_decide_too_few_too_many_and_swap() -> None:
    cfg = MaintenanceConfig(min_connections=3, expected_connections=6, max_connections=9)
    b = bounds(3, 6, 9)
    assert b == Bounds(4, 5, 7, 8)
    pool = make_pool()
    for n in range(20):
        pool.register_point(pt(n), T0)
    step = decide(pool, cfg, T0, round_start=T0, seen=set())
    assert len(step.contact) == b.max_target and step.need == b.min_target
    # Pending dials count toward the targets.
    step = decide(pool, cfg, T0, round_start=T0, seen=set(), pending=3)
    assert len(step.contact) == b.max_target - 3
    for n in range(100, 105):
        connect(pool, n)
    step = decide(pool, cfg, T0, round_start=T0, seen=set())
    assert step.swap and not step.contact and not step.drop
    for n in range(105, 110):
        connect(pool, n)
    step = decide(pool, cfg, T0, round_start=T0, seen=set())
    assert len(step.drop) == 10 - b.max_target


def test_decide_bootstrap_when_nothing_to_dial() -> None:
    cfg = MaintenanceConfig(min_connections=3, expected_connections=6, max_connections=9)
    step = decide(make_pool(), cfg, T0, round_start=T0, seen=set())
    assert step.bootstrap and step.need == 5 and not step.contact
    private = make_pool(private_mode=True)
    step = decide(private, cfg, T0, round_start=T0, seen=set())
    assert not step.bootstrap and not step.swap


def test_trusted_reconnected_even_within_bounds() -> None:
    cfg = MaintenanceConfig(min_connections=1, expected_connections=2, max_connections=4)
    pool = make_pool(trusted_points=((pt(1), None),))
    for n in range(10, 13):
        connect(pool, n)
    step = decide(pool, cfg, T0, round_start=T0, seen=set())
    assert step.contact == (pt(1),)
    pool.known_points[pt(1)].reconnection_end = T0 + 60  # back-off still applies
    step = decide(pool, cfg, T0, round_start=T0, seen=set())
    assert step.contact == ()


def test_connections_to_drop_never_trusted_prefers_low_scores() -> None:
    pool = make_pool(trusted_points=((pt(1), None),))
    connect(pool, 1)
    for n in range(2, 12):
        connect(pool, n)
        pool.add_score(pid(n), float(n), T0)
    pool.trust_peer(pid(2), T0)
    for _ in range(20):
        dropped = connections_to_drop(pool, 3, T0)
        ids = {p.peer_id for p in dropped}
        assert len(ids) == 3
        assert pid(1) not in ids and pid(2) not in ids
        # Drawn from the lower-scored half of the 9 candidates (scores 3..11).
        assert all(pool.score(i, T0) <= 7.0 for i in ids)
    assert connections_to_drop(pool, 0, T0) == []
    assert len(connections_to_drop(pool, 50, T0)) == 9


def test_a_due_trusted_point_does_not_bring_untrusted_dials_within_bounds() -> None:
    cfg = MaintenanceConfig(min_connections=1, expected_connections=4, max_connections=10)
    pool = make_pool(trusted_points=((pt(1), None),))
    for n in range(10, 40):
        pool.register_point(pt(n), T0)
    for n in range(100, 104):
        connect(pool, n)
    step = decide(pool, cfg, T0, round_start=T0, seen=set())
    assert step.contact == (pt(1),)


def test_schedule_idle_and_look_timers() -> None:
    """Octez worker_loop's idle timer and ask_for_more_contacts' wait, in clock seconds."""
    s = MaintenanceSchedule(MaintenanceConfig())  # Octez: idle 120 s, look 5 s
    assert s.next_wakeup() == math.inf and not s.due(T0)
    assert s.idle(T0) == T0 + 120.0 == s.next_wakeup()
    assert not s.due(T0 + 119.99)
    assert s.due(T0 + 120.0)
    assert not s.due(T0 + 120.0)  # reported once
    assert s.next_wakeup() == math.inf
    assert s.look(T0) == T0 + 5.0 == s.next_wakeup()
    s.busy()  # the worker runs: no timer of its own
    assert s.next_wakeup() == math.inf and not s.due(T0 + 10.0)


def test_schedule_wakes_at_the_first_instant_a_trusted_point_may_be_dialled() -> None:
    cfg = MaintenanceConfig(min_connections=0, expected_connections=0, max_connections=4)
    pool = make_pool(trusted_points=((pt(1), None),))
    end = T0 + 60.0
    pool.known_points[pt(1)].reconnection_end = end
    s = MaintenanceSchedule(cfg)
    at = s.retry(end)
    s.look(T0)
    assert s.next_wakeup() == T0 + 5.0
    assert s.due(T0 + 5.0) and s.next_wakeup() == at
    # Octez cannot_reconnect_yet: now <= end. At end nothing is due and nothing dialled;
    # at the next instant both are.
    assert at > end and not s.due(end)
    assert decide(pool, cfg, end, round_start=end, seen=set()).contact == ()
    assert s.due(at) and s.next_wakeup() == math.inf
    assert decide(pool, cfg, at, round_start=at, seen=set()).contact == (pt(1),)
