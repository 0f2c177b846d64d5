"""The per-point retry back-off (Octez's rule) used for manual and automatic dials."""

from __future__ import annotations

import pytest

from peerkeeper.bitcoin.backoff import Backoff


def test_delays_grow_by_factor_and_cap() -> None:
    b = Backoff(initial=1.0, factor=1.2, cap=60.0)
    now = 1000.0
    delays = []
    for _ in range(30):
        delays.append(b.failed("p", now) - now)
    assert delays[:4] == pytest.approx([1.0, 1.2, 1.44, 1.728])
    assert max(delays) == 60.0 and delays[-1] == 60.0
    assert all(b2 >= b1 for b1, b2 in zip(delays, delays[1:], strict=False))


def test_ready_reset_and_independent_keys() -> None:
    b = Backoff()
    assert b.ready("p", 0.0)
    nxt = b.failed("p", 10.0)
    assert not b.ready("p", nxt - 0.001) and b.ready("p", nxt)
    assert b.ready("q", 10.0)  # other targets unaffected
    b.failed("p", nxt)
    b.reset("p")
    assert b.ready("p", 0.0)
    assert b.failed("p", 100.0) == 101.0  # starts over at the initial delay


def test_prune_bounds_the_table() -> None:
    b = Backoff(cap=60.0)
    for i in range(1000):
        b.failed(f"p{i}", float(i))
    assert b.prune(500.0) == 439  # waits (i + 1 s) that ended more than 60 s before 500 s
    assert b.ready("p0", 500.0) and b.failed("p0", 500.0) == 501.0
    assert not b.ready("p999", 999.5)
