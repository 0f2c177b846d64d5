"""peerkeeper.sim: real ConnManCores in simulated time (issue 14, first part)."""

from __future__ import annotations

import pytest

from peerkeeper.net.connection_types import ConnectionType
from peerkeeper.sim import AsBlock, SimConfig, SimError, Simulation, virtual_address


def run(seed: int, seconds: float = 60.0) -> Simulation:
    sim = Simulation(SimConfig(nodes=8, seed=seed, seed_answers=3))
    sim.run_until(seconds)
    return sim


def test_the_same_seed_gives_the_same_trace() -> None:
    a, b, c = run(7), run(7), run(8)
    assert a.trace_sha256 == b.trace_sha256 and a.events == b.events > 0
    assert c.trace_sha256 != a.trace_sha256
    # The cores really ran: nodes found the seeds and connected to them.
    full = [n.outbound(ConnectionType.OUTBOUND_FULL_RELAY) for n in a.nodes]
    assert sum(full) > 0
    assert all(n.core.addrman for n in a.nodes)  # the DNS seeds' answers were stored


def test_virtual_addresses_spread_over_netgroups() -> None:
    one_each = {virtual_address(i, 50, 18444).addr.netgroup() for i in range(50)}
    assert len(one_each) == 50
    three = {virtual_address(i, 3, 18444).addr.netgroup() for i in range(30)}
    assert len(three) == 3
    assert all(virtual_address(i, 3, 18444).addr.is_routable() for i in range(30))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"nodes": 1}, "nodes must be at least 2"),
        ({"nodes": 10, "netgroups": 11}, "netgroups must be in 1..nodes"),
        ({"nodes": 10, "netgroups": 0}, "netgroups must be in 1..nodes"),
        ({"nodes": 10, "seed_answers": 0}, "seed_answers must be at least 1"),
        ({"nodes": 10, "latency": (0.2, 0.1)}, "latency"),
        ({"nodes": 10, "jitter": -1.0}, "latency"),
        ({"nodes": 10, "max_connections": 5}, "max_connections"),
        ({"nodes": 10, "ases": 2}, "need asmap=True"),
        ({"nodes": 10, "asmap": True, "ases": 11}, "ases must be in 1..netgroups"),
        ({"nodes": 10, "asmap": True, "as_blocks": (AsBlock(5, 2, 9),)}, "overlaps"),
        (
            {"nodes": 10, "asmap": True, "as_blocks": (AsBlock(20, 5, 9), AsBlock(24, 1, 8))},
            "overlaps",
        ),
        ({"nodes": 10, "asmap": True, "as_blocks": (AsBlock(20, 0, 9),)}, "out of range"),
        ({"nodes": 10, "asmap": True, "as_blocks": (AsBlock(20, 1, 0),)}, "out of range"),
    ],
)
def test_parameters_out_of_range_fail_before_anything_runs(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(SimError, match=message):
        SimConfig(**kwargs)  # type: ignore[arg-type]


def test_restart_keeps_the_address_book_and_comes_back_to_its_anchors() -> None:
    sim = Simulation(SimConfig(nodes=30, seed=3))
    sim.run_until(300)
    node = sim.nodes[0]
    before = node.core.addrman.serialize()
    block = set(node.outbound_peers(ConnectionType.BLOCK_RELAY))
    assert len(block) >= 2
    sim.restart(0)
    assert node.generation == 1 and node.up
    assert node.core.addrman.serialize() == before  # peers.dat's bytes round trip
    assert {e.service for e in node.core.options.anchors} == block
    sim.run_until(360)
    # Core connects to the anchors first, as block-relay-only peers.
    assert block <= set(node.outbound_peers(ConnectionType.BLOCK_RELAY))
    assert node.outbound(ConnectionType.OUTBOUND_FULL_RELAY) == 8
    # No peer still holds a link to the old run's connections.
    assert all(
        link[0] != 0 or link[1] in node.links for n in sim.nodes for link in n.links.values()
    )


def test_restart_without_anchors_and_a_stopped_node_refuses() -> None:
    sim = Simulation(SimConfig(nodes=12, seed=4))
    sim.run_until(120)
    sim.stop(1)
    assert not sim.nodes[1].up and not sim.nodes[1].links
    sim.run_until(240)
    assert all(
        sim.nodes[1].service not in n.outbound_peers(ConnectionType.OUTBOUND_FULL_RELAY)
        for n in sim.nodes
    )
    sim.start(1, anchors=False)
    assert sim.nodes[1].core.options.anchors == []
    sim.run_until(300)
    assert sim.nodes[1].outbound(ConnectionType.OUTBOUND_FULL_RELAY) > 0


def test_calls_run_in_time_order_with_the_network() -> None:
    sim = Simulation(SimConfig(nodes=4, seed=1))
    seen: list[tuple[str, float]] = []
    sim.call_at(5.0, lambda: seen.append(("b", sim.now)))
    sim.call_at(1.0, lambda: seen.append(("a", sim.now)))
    sim.run_until(10)
    assert seen == [("a", 1.0), ("b", 5.0)]


def test_churn_nodes_leave_and_come_back_with_their_address_book() -> None:
    from peerkeeper.sim import Churn

    churn = Churn(stay_1h=0.2, downtime=300.0)
    assert churn.mean_lifetime == pytest.approx(3600 / 1.6094, rel=1e-3)
    sim = Simulation(SimConfig(nodes=10, seed=5, churn=churn))
    sim.run_until(3600)
    assert sim.churned >= 8  # ~10 nodes x 1 h / 0.62 h mean lifetime
    came_back = [n for n in sim.nodes if n.generation > 0 and n.up]
    assert came_back
    # A node that came back found peers again from its own address book.
    assert all(n.outbound(ConnectionType.OUTBOUND_FULL_RELAY) > 0 for n in came_back)
    # Closed connections leave nothing behind: one delivery record per live direction.
    live = {(n.index, conn) for n in sim.nodes for conn in n.links}
    assert set(sim._arrive) <= live
    again = Simulation(SimConfig(nodes=10, seed=5, churn=churn))
    again.run_until(3600)
    assert again.trace_sha256 == sim.trace_sha256


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stay_1h": 1.0}, "stay_1h must be in"),
        ({"stay_1h": 0.0}, "stay_1h must be in"),
        ({"downtime": 0.0}, "downtime must be > 0"),
    ],
)
def test_churn_parameters_out_of_range(kwargs: dict[str, float], message: str) -> None:
    from peerkeeper.sim import Churn

    with pytest.raises(SimError, match=message):
        Churn(**kwargs)


def test_outbound_peers_default_to_the_ten_slots() -> None:
    sim = Simulation(SimConfig(nodes=20, seed=7))
    sim.run_until(120)
    node = sim.nodes[0]
    both = node.outbound_peers(ConnectionType.OUTBOUND_FULL_RELAY, ConnectionType.BLOCK_RELAY)
    assert node.outbound_peers() == both and len(both) >= 8


def test_the_virtual_internet_has_ases_and_nodes_run_with_its_asmap() -> None:
    """``asmap=True``: honest /16s spread over ``ases`` ASes, blocks of /16s in one AS;
    nodes group by AS (Core's -asmap), keep it across a restart, or run without it."""
    cfg = SimConfig(nodes=12, seed=2, asmap=True, ases=3, as_blocks=(AsBlock(40, 8, 777),))
    sim = Simulation(cfg, use_asmap=lambda i: i != 1)
    ngm = sim.nodes[0].core.addrman.netgroupman
    assert ngm.using_asmap() and not sim.nodes[1].core.addrman.netgroupman.using_asmap()
    honest_groups = {ngm.get_group(n.service.addr) for n in sim.nodes}
    assert len(honest_groups) == 3  # 12 /16s, 3 ASes
    block = {ngm.get_group(virtual_address(k, 8, 18444, first_group=40).addr) for k in range(16)}
    assert block == {bytes((2,)) + (777).to_bytes(4, "little")}
    sim.run_until(120)
    sim.restart(0)
    sim.restart(1)
    assert sim.nodes[0].core.addrman.netgroupman.using_asmap()
    assert not sim.nodes[1].core.addrman.netgroupman.using_asmap()
    # Outbound diversity is by AS: no node has two outbound peers in one AS.
    sim.run_until(400)
    for node in sim.nodes:
        if node.index == 1:
            continue
        groups = [ngm.get_group(s.addr) for s in node.outbound_peers()]
        assert len(groups) == len(set(groups)) <= 3
    assert Simulation(SimConfig(nodes=4)).asmap == b""


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"latency_matrix": ((0.0, 0.1), (0.1, 0.0))}, "must be 3 x 3"),
        ({"latency_matrix": ((0.0,) * 3,) * 2 + ((0.0, 0.0),)}, "must be 3 x 3"),
        ({"latency_matrix": ((0, 0.1, 0.2), (0.1, 0, 0.3), (0.2, 0.4, 0))}, "symmetric"),
        ({"latency_matrix": ((0, -1, 0), (-1, 0, 0), (0, 0, 0))}, "symmetric and >= 0"),
        ({"bandwidth": 0.0}, "bandwidth must be > 0"),
    ],
)
def test_link_parameters_out_of_range(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(SimError, match=message):
        SimConfig(nodes=3, **kwargs)  # type: ignore[arg-type]


def test_a_latency_matrix_sets_the_pairs_base_latency() -> None:
    m = ((0.0, 0.5, 0.02), (0.5, 0.0, 0.3), (0.02, 0.3, 0.0))
    sim = Simulation(SimConfig(nodes=3, latency_matrix=m))
    assert sim.latency(0, 1) == sim.latency(1, 0) == 0.5
    assert sim.latency(2, 0) == 0.02 and sim.latency(1, 2) == 0.3


def test_a_narrow_uplink_slows_the_handshakes() -> None:
    """Each node's sends leave one after the other at ``bandwidth`` bytes/s: at 20 B/s
    a version message (~100 bytes) takes seconds, so no handshake is done at 3 s."""

    def handshaken(sim: Simulation) -> int:
        return sum(len(n.outbound_peers(ConnectionType.OUTBOUND_FULL_RELAY)) for n in sim.nodes)

    fast = Simulation(SimConfig(nodes=6, seed=1, seed_answers=3))
    slow = Simulation(SimConfig(nodes=6, seed=1, seed_answers=3, bandwidth=20.0))
    fast.run_until(3)
    slow.run_until(3)
    assert handshaken(fast) > 0 and handshaken(slow) == 0
    slow.run_until(300)
    assert handshaken(slow) > 0
