"""The swap policy (Octez p2p_maintenance.ml send_swap_request, p2p_protocol.ml
on_swap_request / on_swap_ack), pure, in simulated time."""

from __future__ import annotations

import dataclasses
import random

from peerkeeper.native.maintenance import (
    MaintenanceConfig,
    SwapProposal,
    decide_swap_ack,
    decide_swap_proposal,
    decide_swap_request,
    listening_point,
    swap_candidates,
)
from peerkeeper.native.pool import PeerPool, PoolConfig
from tests.test_pool import ME, T0, connect, pid, pt

CFG = MaintenanceConfig()  # swap_linger 30 s
NEVER = float("-inf")


def make_pool(n: int = 0, **kw: object) -> PeerPool:
    pool = PeerPool(
        PoolConfig(**kw),  # type: ignore[arg-type]
        my_peer_id=ME,
        now=T0,
        rng=random.Random(3),
    )
    for i in range(1, n + 1):
        connect(pool, i)
    return pool


def private_pool(n: int) -> PeerPool:
    """``n`` running connections, then private mode switched on."""
    pool = make_pool(n)
    pool.config = dataclasses.replace(pool.config, private_mode=True)
    return pool


def test_candidates_skip_private_trusted_and_not_listening() -> None:
    pool = make_pool(4)
    assert {p.peer_id for p in swap_candidates(pool, set())} == {pid(1), pid(2), pid(3), pid(4)}
    pool.known_peer_ids[pid(1)].private = True
    pool.trust_point(pt(2), T0)
    pool.known_peer_ids[pid(3)].listen_port = 0
    assert [p.peer_id for p in swap_candidates(pool, set())] == [pid(4)]
    assert swap_candidates(pool, {pid(4)}) == []


def test_proposal_names_two_distinct_candidates_with_the_rng() -> None:
    pool = make_pool(3)
    got = decide_swap_proposal(pool, CFG, T0, last_proposal=NEVER, rng=random.Random(1))
    assert isinstance(got, SwapProposal)
    assert got.recipient.peer_id != got.proposed.peer_id
    assert (
        got.point
        == listening_point(got.proposed)
        == pt(int.from_bytes(got.proposed.peer_id.raw[:1]))
    )
    # The same seed draws the same pair (the rng is the only randomness).
    again = decide_swap_proposal(pool, CFG, T0, last_proposal=NEVER, rng=random.Random(1))
    assert again == got
    draws = {
        decide_swap_proposal(pool, CFG, T0, last_proposal=NEVER, rng=random.Random(s))
        for s in range(30)
    }
    assert len({(d.recipient.peer_id, d.proposed.peer_id) for d in draws if d}) > 1


def test_no_proposal_within_linger_alone_or_private() -> None:
    pool = make_pool(3)
    rng = random.Random(1)
    assert decide_swap_proposal(pool, CFG, T0 + 29.9, last_proposal=T0, rng=rng) is None
    assert decide_swap_proposal(pool, CFG, T0 + 30.0, last_proposal=T0, rng=rng) is not None
    assert decide_swap_proposal(make_pool(1), CFG, T0, last_proposal=NEVER, rng=rng) is None
    private = private_pool(3)
    assert decide_swap_proposal(private, CFG, T0, last_proposal=NEVER, rng=rng) is None


def test_request_offers_someone_else_than_the_source() -> None:
    pool = make_pool(2)
    new = pt(50)
    for seed in range(10):
        given = decide_swap_request(
            pool,
            CFG,
            T0,
            source=pid(1),
            point=new,
            peer_id=pid(50),
            last_swap=NEVER,
            rng=random.Random(seed),
        )
        assert given is not None and given.peer_id == pid(2)


def test_request_ignored() -> None:
    pool = make_pool(3)
    rng = random.Random(1)

    def ask(point: object = pt(50), peer_id: object = pid(50), **kw: object) -> object:
        args = {"source": pid(1), "point": point, "peer_id": peer_id, "last_swap": NEVER}
        args.update(kw)
        return decide_swap_request(pool, CFG, T0, rng=rng, **args)  # type: ignore[arg-type]

    assert ask() is not None
    assert ask(last_swap=T0 - 29.0) is None  # we swapped less than swap_linger ago
    assert ask(last_swap=T0 - 30.0) is not None
    assert ask(peer_id=ME) is None  # proposes ourselves
    assert ask(peer_id=pid(2)) is None  # already connected
    assert ask(point=pt(2), peer_id=pid(60)) is None  # that point is connected
    pool.greylist_addr(pt(51).addr, T0)
    assert ask(point=pt(51)) is None  # may not be dialled
    assert (
        decide_swap_request(
            private_pool(3),
            CFG,
            T0,
            source=pid(1),
            point=pt(50),
            peer_id=pid(50),
            last_swap=NEVER,
            rng=rng,
        )
        is None
    )
    # Nobody to offer but the source itself.
    alone = make_pool(1)
    assert (
        decide_swap_request(
            alone,
            CFG,
            T0,
            source=pid(1),
            point=pt(50),
            peer_id=pid(50),
            last_swap=NEVER,
            rng=rng,
        )
        is None
    )


def test_ack_followed_only_after_our_proposal() -> None:
    pool = make_pool(2)
    assert decide_swap_ack(pool, T0, point=pt(50), peer_id=pid(50), proposed=pid(2))
    assert not decide_swap_ack(pool, T0, point=pt(50), peer_id=pid(50), proposed=None)
    assert not decide_swap_ack(pool, T0, point=pt(50), peer_id=ME, proposed=pid(2))
    assert not decide_swap_ack(pool, T0, point=pt(1), peer_id=pid(1), proposed=pid(2))
    pool.greylist_addr(pt(50).addr, T0)
    assert not decide_swap_ack(pool, T0, point=pt(50), peer_id=pid(50), proposed=pid(2))
