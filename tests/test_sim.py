"""peerkeeper.sim: real ConnManCores in simulated time (issue 14, first part)."""

from __future__ import annotations

import pytest

from peerkeeper.net.connection_types import ConnectionType
from peerkeeper.sim import SimConfig, SimError, Simulation, virtual_address


def run(seed: int, seconds: float = 60.0) -> Simulation:
    sim = Simulation(SimConfig(nodes=8, seed=seed, seeds=2))
    sim.run_until(seconds)
    return sim


def test_the_same_seed_gives_the_same_trace() -> None:
    a, b, c = run(7), run(7), run(8)
    assert a.trace_sha256 == b.trace_sha256 and a.events == b.events > 0
    assert c.trace_sha256 != a.trace_sha256
    # The cores really ran: nodes found the seeds and connected to them.
    full = [n.outbound(ConnectionType.OUTBOUND_FULL_RELAY) for n in a.nodes]
    assert sum(full) > 0
    assert all(n.core.addrman for n in a.nodes[2:])  # the DNS seeds' answers were stored


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
        ({"nodes": 10, "seeds": 0}, "seeds must be in 1..nodes"),
        ({"nodes": 10, "latency": (0.2, 0.1)}, "latency"),
        ({"nodes": 10, "jitter": -1.0}, "latency"),
        ({"nodes": 10, "max_connections": 5}, "max_connections"),
    ],
)
def test_parameters_out_of_range_fail_before_anything_runs(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(SimError, match=message):
        SimConfig(**kwargs)  # type: ignore[arg-type]
