"""Simulator speed: events/s, wall time per simulated node-hour, memory per node.

Builds a :class:`peerkeeper.sim.Simulation` of ``--nodes`` real ConnManCores, runs it for
``--hours`` of simulated time, and prints the wall time, the events processed and their
rate, the nodes' full-relay/block-relay outbound counts and the RSS growth per node.

The baseline, run in the same process: the same number of events through a bare event
heap (heappush/heappop plus the trace's SHA-256 update, no node behind them), so the
ratio is what one event of a real node costs over the simulator's own bookkeeping.

Run: ``python3 bench/sim.py --nodes 100 --hours 1``. Issue 14's targets: 1,000 nodes x
24 h within 2 minutes, 10,000 x 24 h within 20 minutes (not met; see the issue's note).
``--native`` runs native-protocol nodes (NativeNodeCores, Octez's bounds 4/8/12) instead.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import resource
import statistics
import time

from peerkeeper.net.connection_types import ConnectionType
from peerkeeper.sim import NativeSimConfig, NativeSimulation, SimConfig, Simulation


def bare_heap(events: int) -> float:
    """Seconds to push and pop ``events`` events through a heap, hashing each."""
    t0 = time.perf_counter()
    heap: list[tuple[float, int, str, tuple[int, ...], bytes]] = []
    trace = hashlib.sha256()
    for i in range(events):
        heapq.heappush(heap, (i * 0.001, i, "data", (i % 100, i), b""))
        if len(heap) > 1000:
            at, _, kind, args, data = heapq.heappop(heap)
            trace.update(f"{at:.6f} {kind} {args} {len(data)}\n".encode())
    while heap:
        at, _, kind, args, data = heapq.heappop(heap)
        trace.update(f"{at:.6f} {kind} {args} {len(data)}\n".encode())
    return time.perf_counter() - t0


def rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--native", action="store_true", help="native-protocol nodes")
    a = ap.parse_args()
    rss0 = rss_kib()
    t0 = time.perf_counter()
    sim: Simulation | NativeSimulation
    if a.native:
        sim = NativeSimulation(NativeSimConfig(nodes=a.nodes, seed=a.seed, hours=a.hours))
    else:
        sim = Simulation(SimConfig(nodes=a.nodes, seed=a.seed))
    built = time.perf_counter() - t0
    sim.run_until(a.hours * 3600)
    wall = time.perf_counter() - t0
    rss = rss_kib() - rss0
    base = bare_heap(sim.events)
    node_hours = a.nodes * a.hours
    print(f"{a.nodes} nodes x {a.hours:g} h: wall {wall:.1f} s (build {built:.1f} s)")
    print(
        f"events {sim.events:,} ({sim.events / wall:,.0f}/s, {sim.events / node_hours:,.0f} per node-hour)"
    )
    print(f"wall per simulated node-hour: {wall / node_hours * 1000:.1f} ms")
    print(f"bare event heap, same events: {base:.2f} s; ratio sim / bare {wall / base:.1f}x")
    print(f"RSS growth: {rss / a.nodes:,.0f} KiB per node")
    if isinstance(sim, NativeSimulation):
        conns = [n.connections() for n in sim.nodes]
        print(f"connections: mean {statistics.mean(conns):.2f}, min {min(conns)}, max {max(conns)}")
    else:
        full = [n.outbound(ConnectionType.OUTBOUND_FULL_RELAY) for n in sim.nodes]
        block = [n.outbound(ConnectionType.BLOCK_RELAY) for n in sim.nodes]
        print(f"full-relay outbound: mean {statistics.mean(full):.2f}, min {min(full)}")
        print(f"block-relay outbound: mean {statistics.mean(block):.2f}, min {min(block)}")
    print(f"trace {sim.trace_sha256[:16]}")
    for target_nodes, budget in ((1_000, 120), (10_000, 1_200)):
        est = wall / node_hours * target_nodes * 24
        print(
            f"extrapolated {target_nodes:,} nodes x 24 h: {est / 60:,.0f} min (target {budget // 60} min)"
        )


if __name__ == "__main__":
    main()
