"""The converge scenario: N honest nodes bootstrap from DNS seeds (issue 14).

Reports the time until every node has its 8 full-relay and 2 block-relay-only outbound
peers (Core's defaults, src/net.h ``MAX_OUTBOUND_FULL_RELAY_CONNECTIONS`` and
``MAX_BLOCK_RELAY_ONLY_CONNECTIONS``), the in/out degree distribution at the end, the
outbound netgroup diversity (distinct /16 groups among a node's outbound peers), and
address-book sizes over time. A plain function over
:class:`~peerkeeper.sim.network.Simulation`.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass

from peerkeeper.net.connection_types import ConnectionType
from peerkeeper.sim.network import Churn, SimConfig, SimError, SimNode, Simulation

__all__ = ["ConvergeConfig", "ConvergeResult", "run_converge", "CONVERGE_ROW_FIELDS"]

FULL, BLOCK = ConnectionType.OUTBOUND_FULL_RELAY, ConnectionType.BLOCK_RELAY

CONVERGE_ROW_FIELDS = [
    "t",
    "converged_nodes",
    "full_relay_mean",
    "block_relay_mean",
    "inbound_mean",
    "inbound_max",
    "addrman_mean",
    "addrman_min",
    "addrman_max",
    "tried_mean",
]


@dataclass(frozen=True)
class ConvergeConfig:
    """``nodes`` honest nodes for ``hours`` of simulated time (> 0), a row every
    ``sample_interval`` seconds (> 0); ``netgroups`` and ``churn`` as :class:`SimConfig`.
    Raises :class:`SimError` for values out of range."""

    nodes: int = 100
    hours: float = 1.0
    seed: int = 0
    netgroups: int | None = None
    sample_interval: float = 60.0
    churn: Churn | None = None

    def __post_init__(self) -> None:
        if not self.hours > 0:
            raise SimError(f"hours must be > 0, not {self.hours}")
        if not self.sample_interval > 0:
            raise SimError(f"sample_interval must be > 0, not {self.sample_interval}")
        self.sim_config()  # checks nodes and netgroups

    def sim_config(self) -> SimConfig:
        return SimConfig(
            nodes=self.nodes, seed=self.seed, netgroups=self.netgroups, churn=self.churn
        )


@dataclass
class ConvergeResult:
    """``report`` (JSON-ready) and ``rows`` (one dict per sample, :data:`CONVERGE_ROW_FIELDS`)."""

    report: dict[str, object]
    rows: list[dict[str, object]]


def _converged(node: SimNode) -> bool:
    return node.outbound(FULL) >= 8 and node.outbound(BLOCK) >= 2


def run_converge(
    cfg: ConvergeConfig, *, progress: Callable[[float, int], None] | None = None
) -> ConvergeResult:
    """Run ``cfg`` (see the module docstring); ``progress(simulated_seconds, events)`` is
    called at every sample. ``report["converged_after"]`` is the first sample time (s) at
    which every running node had 8 full-relay + 2 block-relay-only peers, or None."""
    sim = Simulation(cfg.sim_config())
    rows: list[dict[str, object]] = []
    converged_after: list[float] = []

    def sample() -> None:
        nodes = [n for n in sim.nodes if n.up]
        full = [n.outbound(FULL) for n in nodes]
        block = [n.outbound(BLOCK) for n in nodes]
        inbound = [
            sum(1 for p in n.core.peers.values() if p.inbound and not p.closed) for n in nodes
        ]
        books = [len(n.core.addrman) for n in nodes]
        done = sum(1 for n in nodes if _converged(n))
        if done == len(nodes) and not converged_after:
            converged_after.append(sim.now)
        rows.append(
            {
                "t": round(sim.now, 3),
                "converged_nodes": done,
                "full_relay_mean": statistics.fmean(full),
                "block_relay_mean": statistics.fmean(block),
                "inbound_mean": statistics.fmean(inbound),
                "inbound_max": max(inbound),
                "addrman_mean": statistics.fmean(books),
                "addrman_min": min(books),
                "addrman_max": max(books),
                "tried_mean": statistics.fmean(n.core.addrman.size(in_new=False) for n in nodes),
            }
        )
        if progress is not None:
            progress(sim.now, sim.events)
        sim.call_at(sim.now + cfg.sample_interval, sample)

    sim.call_at(0.0, sample)
    end = cfg.hours * 3600
    sim.run_until(end)
    nodes = [n for n in sim.nodes if n.up]
    diversity = []
    for n in nodes:
        out = n.outbound_peers(FULL, BLOCK)
        if out:
            diversity.append(len({s.addr.netgroup() for s in out}) / len(out))
    inbound = Counter(
        sum(1 for p in n.core.peers.values() if p.inbound and not p.closed) for n in nodes
    )
    outbound = Counter(len(n.outbound_peers(FULL, BLOCK)) for n in nodes)
    report: dict[str, object] = {
        "scenario": "converge",
        "params": asdict(cfg),
        "nodes": cfg.nodes,
        "simulated_seconds": end,
        "converged_after": converged_after[0] if converged_after else None,
        "converged_nodes": sum(1 for n in nodes if _converged(n)),
        "running_nodes": len(nodes),
        "departures": sim.churned,
        "inbound_degree": {str(k): v for k, v in sorted(inbound.items())},
        "outbound_degree": {str(k): v for k, v in sorted(outbound.items())},
        "outbound_netgroup_diversity": statistics.fmean(diversity) if diversity else 0.0,
        "addrman_size_mean": statistics.fmean(len(n.core.addrman) for n in nodes),
        "events": sim.events,
        "trace_sha256": sim.trace_sha256,
    }
    return ConvergeResult(report, rows)
