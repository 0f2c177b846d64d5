"""The inbound-flood scenario: one netgroup floods a node's inbound slots (issue 14).

b10c observed a single netgroup opening about 40 connections a minute to reachable nodes
while honest peers arrive at about 3 a minute. Here ``flooders`` attacker nodes, all in one
/16, open connections to the victim at ``flood_per_minute`` (Poisson arrivals; each
flooder holds one connection and opens the next when it lost it), and honest nodes of the
network open a connection each at ``honest_per_minute``. When the victim's inbound slots
are full, Core's eviction (src/node/eviction.cpp ``SelectNodeToEvict``, peerkeeper's
:mod:`peerkeeper.bitcoin.eviction`) chooses whom to drop: the report says which honest,
long-lived peers it kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from peerkeeper.bitcoin.peer import PeerConfig
from peerkeeper.net.connection_types import ConnectionType
from peerkeeper.net.netaddr import NetAddr
from peerkeeper.sim.network import (
    SIM_SERVICES,
    SimConfig,
    SimError,
    SimNode,
    Simulation,
    virtual_address,
)

__all__ = ["FLOOD_ROW_FIELDS", "FloodConfig", "FloodResult", "run_inbound_flood"]

FLOOD_ROW_FIELDS = [
    "t",
    "inbound",
    "flood_inbound",
    "honest_inbound",
    "flood_opened",
    "honest_arrived",
]


@dataclass(frozen=True)
class FloodConfig:
    """The flood (seconds of simulated time).

    Args:
        honest: network nodes (>= 3); all but the victim may arrive at it (an arrival
            that finds a connection between the two already is not counted).
        victim_max_connections: the victim's ``-maxconnections`` (>= 11).
        flood_per_minute: flood connection attempts per minute (> 0).
        honest_per_minute: honest arrivals per minute (> 0).
        flooders: flooding nodes, one connection each at a time (>= 1).
        flood_addresses: addresses of the flood's /16 (>= flooders).
        warmup: seconds before the flood starts (>= 0).
        duration: seconds of flood (> 0).
        long_lived: an honest peer connected this long at the end counts as long-lived.
        sample_interval: seconds between rows (> 0).
        seed: the random seed.

    Raises :class:`SimError` for a value out of range.
    """

    honest: int = 80
    victim_max_connections: int = 125
    flood_per_minute: float = 40.0
    honest_per_minute: float = 3.0
    flooders: int = 120
    flood_addresses: int = 4096
    warmup: float = 300.0
    duration: float = 1800.0
    long_lived: float = 600.0
    sample_interval: float = 60.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.honest < 3:
            raise SimError(f"honest must be at least 3, not {self.honest}")
        if self.victim_max_connections < 11:
            raise SimError("victim_max_connections must leave room for 11 outbound peers")
        if self.flooders < 1:
            raise SimError(f"flooders must be at least 1, not {self.flooders}")
        if self.flood_addresses < self.flooders:
            raise SimError("flood_addresses must be at least flooders")
        for name in ("flood_per_minute", "honest_per_minute", "duration", "sample_interval"):
            if not getattr(self, name) > 0:
                raise SimError(f"{name} must be > 0, not {getattr(self, name)}")
        if self.warmup < 0 or self.long_lived < 0:
            raise SimError("warmup and long_lived must be >= 0")

    @classmethod
    def quick(cls, **changes: object) -> FloodConfig:
        """30 nodes, a victim with 29 inbound slots, 40 flooders, 10 minutes of flood."""
        base = cls(
            honest=30,
            victim_max_connections=40,
            flooders=40,
            flood_addresses=512,
            warmup=120.0,
            duration=600.0,
            long_lived=300.0,
        )
        return replace(base, **changes)  # type: ignore[arg-type]


@dataclass
class FloodResult:
    """``report`` (JSON-ready) and ``rows`` (:data:`FLOOD_ROW_FIELDS`)."""

    report: dict[str, object]
    rows: list[dict[str, object]]


def run_inbound_flood(
    cfg: FloodConfig, *, progress: Callable[[float, int], None] | None = None
) -> FloodResult:
    """Run the flood ``cfg`` describes; ``progress(simulated_seconds, events)`` at every
    sample. The report's ``honest_kept`` / ``honest_arrived`` and ``long_lived_kept`` /
    ``long_lived`` say how the victim's eviction treated honest peers."""
    sim = Simulation(
        SimConfig(nodes=cfg.honest, seed=cfg.seed),
        options=lambda i, o: (
            replace(o, max_connections=cfg.victim_max_connections) if i == 0 else o
        ),
    )
    victim = sim.nodes[0]
    victim.tags.add("victim")
    port = sim.chain.default_port
    group = cfg.honest  # the first /16 after the honest nodes'
    addresses = [virtual_address(k, 1, port, first_group=group) for k in range(cfg.flood_addresses)]
    flood_addrs: set[NetAddr] = {s.addr for s in addresses}
    flooders: list[SimNode] = []
    for j in range(cfg.flooders):
        own = addresses[j :: cfg.flooders]
        opts = replace(
            sim.default_options(),
            listen=False,
            automatic_outbound=False,
            dnsseed=False,
            peer=PeerConfig(services=SIM_SERVICES),
        )
        flooders.append(sim.add_node(own[0], opts, aliases=own[1:], tags={"flooder"}))
    arrivals = list(sim.honest[1:])
    sim.rng.shuffle(arrivals)
    state = {"flood_opened": 0, "next_flooder": 0, "honest_arrived": 0}
    arrived: list[tuple[SimNode, float]] = []  # (node, arrival time)
    rows: list[dict[str, object]] = []
    end = cfg.warmup + cfg.duration

    def victim_inbound() -> list[tuple[NetAddr, float]]:
        return [
            (p.addr.addr, p.connected_at - sim.epoch)
            for p in victim.core.peers.values()
            if p.inbound and not p.closed
        ]

    def connected_to_victim(node: SimNode) -> bool:
        return any(
            p.addr == victim.service and not p.closed for p in node.core.peers.values()
        ) or bool(node.core.pending_manual)

    def flood() -> None:
        for _ in range(len(flooders)):
            j = state["next_flooder"] % len(flooders)
            state["next_flooder"] += 1
            node = flooders[j]
            if not connected_to_victim(node):
                node.core.open_connection(
                    victim.service, ConnectionType.MANUAL, sim.clock, steady=sim.clock
                )
                state["flood_opened"] += 1
                break
        if sim.now < end:
            sim.call_at(sim.now + sim.rng.expovariate(cfg.flood_per_minute / 60), flood)

    def honest_arrives() -> None:
        if arrivals:
            node = arrivals.pop()

            def done(peer: object, node: SimNode = node) -> None:
                if peer is not None:  # not refused (an existing link, a full table)
                    arrived.append((node, sim.now))
                    state["honest_arrived"] += 1

            node.core.open_connection(
                victim.service, ConnectionType.MANUAL, sim.clock, steady=sim.clock, on_done=done
            )
        if sim.now < end and arrivals:
            sim.call_at(sim.now + sim.rng.expovariate(cfg.honest_per_minute / 60), honest_arrives)

    def sample() -> None:
        inbound = victim_inbound()
        bad = sum(1 for a, _ in inbound if a in flood_addrs)
        rows.append(
            {
                "t": round(sim.now, 3),
                "inbound": len(inbound),
                "flood_inbound": bad,
                "honest_inbound": len(inbound) - bad,
                "flood_opened": state["flood_opened"],
                "honest_arrived": state["honest_arrived"],
            }
        )
        if progress is not None:
            progress(sim.now, sim.events)
        sim.call_at(sim.now + cfg.sample_interval, sample)

    sim.call_at(0.0, sample)
    sim.call_at(cfg.warmup, flood)
    sim.call_at(cfg.warmup, honest_arrives)
    sim.run_until(end)
    inbound = dict(victim_inbound())
    kept = [n for n, _ in arrived if n.service.addr in inbound]
    # Arrived early enough to have been connected ``long_lived`` seconds by the end.
    long_lived = [n for n, t in arrived if end - t >= cfg.long_lived]
    long_kept = [n for n in long_lived if n.service.addr in inbound]
    report: dict[str, object] = {
        "scenario": "inbound-flood",
        "params": asdict(cfg),
        "victim_inbound_slots": victim.options.max_inbound,
        "flood_opened": state["flood_opened"],
        "flood_inbound_at_end": sum(1 for a in inbound if a in flood_addrs),
        "honest_inbound_at_end": sum(1 for a in inbound if a not in flood_addrs),
        "honest_arrived": len(arrived),
        "honest_kept": len(kept),
        "long_lived": len(long_lived),
        "long_lived_kept": len(long_kept),
        "simulated_seconds": end,
        "events": sim.events,
        "trace_sha256": sim.trace_sha256,
    }
    return FloodResult(report, rows)
