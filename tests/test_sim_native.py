"""peerkeeper.sim.native: networks of real NativeNodeCores in simulated time (issue 14)."""

from __future__ import annotations

import pytest

from peerkeeper.native.maintenance import MaintenanceConfig
from peerkeeper.sim import Churn
from peerkeeper.sim.engine import SimError
from peerkeeper.sim.native import NativeSimConfig, NativeSimulation, run_native

SMALL = MaintenanceConfig(min_connections=3, expected_connections=5, max_connections=8)


def test_native_network_reaches_octez_bounds_swaps_and_is_deterministic() -> None:
    cfg = NativeSimConfig(nodes=20, seed=4, hours=0.2, limits=SMALL)
    a, b = run_native(cfg), run_native(cfg)
    assert a.report["trace_sha256"] == b.report["trace_sha256"] and a.rows == b.rows
    rep = a.report
    assert rep["within_bounds_after"] is not None
    degrees = {int(k): v for k, v in rep["degree"].items()}  # type: ignore[attr-defined]
    assert sum(degrees.values()) == 20
    assert min(degrees) >= SMALL.min_connections and max(degrees) <= SMALL.max_connections
    assert rep["swaps"] > 0  # type: ignore[operator]  # nodes idle 120 s, then propose swaps
    # Nodes learnt of each other beyond the 3 bootstrap points (advertise, nacks, swaps).
    assert a.rows[-1]["known_points_mean"] > 3  # type: ignore[operator]
    other = run_native(NativeSimConfig(nodes=20, seed=5, hours=0.2, limits=SMALL))
    assert other.report["trace_sha256"] != rep["trace_sha256"]


def test_liars_are_greylisted_and_shut_out() -> None:
    """Nodes whose bytes stop decoding once their connections run: their peers' cores
    greylist them (Octez), so they end with no connection while the honest nodes stay
    within bounds."""
    cfg = NativeSimConfig(nodes=20, seed=3, hours=0.5, limits=SMALL, liars=3)
    rep = run_native(cfg).report
    assert rep["liars"] == 3
    assert rep["liar_connections_at_end"] == 0
    assert rep["liars_greylisted_mean"] > 0  # type: ignore[operator]
    assert sum(rep["degree"].values()) == 17  # type: ignore[attr-defined]  # honest only
    assert rep["within_bounds_after"] is not None
    honest = run_native(NativeSimConfig(nodes=20, seed=3, hours=0.5, limits=SMALL)).report
    assert honest["liars_greylisted_mean"] == 0


def test_restart_keeps_identity_and_known_points_and_reconnects() -> None:
    sim = NativeSimulation(NativeSimConfig(nodes=12, seed=1, limits=SMALL))
    sim.run_until(300)
    node = sim.nodes[5]
    known = set(node.core.pool.known_points)
    peer_id = node.core.identity.peer_id
    assert node.connections() >= SMALL.min_connections
    sim.stop(5)
    assert not node.up and all(n.connections() <= SMALL.max_connections for n in sim.nodes)
    sim.run_until(400)
    sim.start(5)
    assert node.core.identity.peer_id == peer_id
    assert known <= set(node.core.pool.known_points)
    sim.run_until(600)
    assert node.connections() >= SMALL.min_connections


def test_churn_nodes_leave_and_come_back() -> None:
    cfg = NativeSimConfig(
        nodes=15, seed=2, hours=1.0, limits=SMALL, churn=Churn(stay_1h=0.5, downtime=300)
    )
    rep = run_native(cfg).report
    assert rep["departures"] > 0  # type: ignore[operator]
    assert rep["running_nodes"] <= 15


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"nodes": 1}, "nodes must be at least 2"),
        ({"nodes": 5, "bootstrap": 6}, "bootstrap must be in"),
        ({"nodes": 5, "hours": 0}, "hours must be > 0"),
        ({"nodes": 5, "netgroups": 6}, "netgroups must be in"),
        ({"nodes": 5, "latency": (0.3, 0.1)}, "latency"),
        ({"nodes": 5, "sample_interval": 0}, "sample_interval"),
        ({"nodes": 5, "bootstrap": 3, "liars": 3}, "liars must be in"),
    ],
)
def test_native_parameters_out_of_range(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(SimError, match=message):
        NativeSimConfig(**kwargs)  # type: ignore[arg-type]


def test_sim_native_command_writes_its_report(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from peerkeeper.daemon.cli import main

    out = tmp_path / "n"
    args = [
        "sim",
        "native",
        "--quick",
        "--connections",
        "3,5,8",
        "--no-progress",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["scenario"] == "native" and rep["params"]["limits"]["max_connections"] == 8
    assert rep["within_bounds_after"] is not None
    assert (out / "timeseries.csv").read_text().startswith("t,running_nodes")
    assert main([*args[:3], "--connections", "5,2,9", "--out", str(out)]) == 1
