"""Native-protocol networks in simulated time: real NativeNodeCores (issue 14).

Every node is peerkeeper's own :class:`~peerkeeper.native.node.NativeNodeCore` (its
PeerPool, NativePeers over BIP324, maintenance worker and swaps: Octez's policy, no rule
re-implemented), on the same event loop as the Bitcoin simulation
(:class:`~peerkeeper.sim.engine.Network`): links with latency, dials accepted or refused
by the target's core. Nodes start knowing the points of the first ``bootstrap`` nodes
(Octez's bootstrap peers) and find the rest through ``bootstrap``/``advertise``
messages, nacks and swaps. A restart keeps the identity and the pool (through the
documents the shell saves: ``points_document`` / ``peers_document``).

``liars``: the last nodes misbehave once their connections run: the simulation flips a
bit of the last byte of everything they send then (its BIP324 tag: a peer sending what
does not decode, as Octez's ``p2p_conn.ml`` meets it), so their peers' own cores greylist them; the rows show how
fast the honest nodes shut them out.

:func:`run_native` is the scenario: the connection counts against Octez's
min/expected/max over time, swaps, greylists; ``peerkeeper sim native`` runs it.
"""

from __future__ import annotations

import random
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from peerkeeper.native.identity import Identity
from peerkeeper.native.maintenance import MaintenanceConfig, bounds
from peerkeeper.native.node import CancelDial, Close, Dial, NativeNodeCore, Send
from peerkeeper.native.pool import PoolConfig
from peerkeeper.net.netaddr import Service
from peerkeeper.sim.engine import (
    MAX_GROUPS,
    BaseNode,
    Churn,
    Network,
    SimError,
    virtual_address,
)

__all__ = [
    "NATIVE_ROW_FIELDS",
    "NativeResult",
    "NativeSimConfig",
    "NativeSimNode",
    "NativeSimulation",
    "run_native",
]

#: The native protocol's port in the simulation (Octez's default).
NATIVE_SIM_PORT = 9732


@dataclass(frozen=True)
class NativeSimConfig:
    """The native network to build and run.

    Args:
        nodes: how many nodes (>= 2).
        seed: the random seed; the same seed gives the same run.
        hours: simulated hours :func:`run_native` runs (> 0).
        limits: Octez's connection counts and timers (:class:`MaintenanceConfig`;
            default min 4, expected 8, max 12: Octez's 10/50/100 needs a bigger network).
        bootstrap: how many of the first nodes every node knows at start (1 .. nodes).
        netgroups: /16 groups the nodes are spread over (default one per node).
        latency, jitter, epoch: as :class:`~peerkeeper.sim.network.SimConfig`.
        churn: nodes leave and come back (:class:`Churn`), or None.
        sample_interval: seconds between time-series rows (> 0).
        liars: how many of the last nodes send corrupt bytes once a connection runs
            (0 .. nodes - bootstrap).

    Raises :class:`SimError` for a value out of range.
    """

    nodes: int = 50
    seed: int = 0
    hours: float = 1.0
    limits: MaintenanceConfig = field(
        default_factory=lambda: MaintenanceConfig(
            min_connections=4, expected_connections=8, max_connections=12
        )
    )
    bootstrap: int = 3
    netgroups: int | None = None
    latency: tuple[float, float] = (0.01, 0.15)
    jitter: float = 0.005
    epoch: float = 1_700_000_000.0
    churn: Churn | None = None
    sample_interval: float = 60.0
    liars: int = 0

    def __post_init__(self) -> None:
        if self.nodes < 2:
            raise SimError(f"nodes must be at least 2, not {self.nodes}")
        groups = self.nodes if self.netgroups is None else self.netgroups
        if not 1 <= groups <= min(self.nodes, MAX_GROUPS):
            raise SimError(f"netgroups must be in 1..nodes ({self.nodes}), not {groups}")
        if not 1 <= self.bootstrap <= self.nodes:
            raise SimError(f"bootstrap must be in 1..nodes, not {self.bootstrap}")
        if not 0 <= self.liars <= self.nodes - self.bootstrap:
            raise SimError(f"liars must be in 0..nodes - bootstrap, not {self.liars}")
        if not self.hours > 0:
            raise SimError(f"hours must be > 0, not {self.hours}")
        if not self.sample_interval > 0:
            raise SimError(f"sample_interval must be > 0, not {self.sample_interval}")
        low, high = self.latency
        if not 0 <= low <= high or self.jitter < 0:
            raise SimError(f"latency {self.latency} and jitter {self.jitter} must be >= 0")

    @property
    def groups(self) -> int:
        return self.nodes if self.netgroups is None else self.netgroups


@dataclass(kw_only=True)
class NativeSimNode(BaseNode):
    """One simulated native node (:class:`~peerkeeper.sim.engine.BaseNode`): its
    identity (kept across restarts) and its core."""

    identity: Identity
    core: NativeNodeCore

    def connections(self) -> int:
        """Running connections (Octez ``active_connections``)."""
        return self.core.pool.active_connections()


class NativeSimulation(Network[NativeSimNode]):
    """``NativeSimulation(NativeSimConfig(nodes=50, seed=7))``, then :meth:`run_until`
    (see the module docstring); ``pool_config`` is every node's :class:`PoolConfig`."""

    def __init__(self, config: NativeSimConfig, *, pool_config: PoolConfig | None = None) -> None:
        super().__init__(
            random.Random(config.seed),
            latency=config.latency,
            jitter=config.jitter,
            epoch=config.epoch,
        )
        self.config = config
        self.pool_config = pool_config or PoolConfig()
        self.churned = 0
        for i in range(config.nodes):
            identity = Identity.generate(0.0, random.Random(self.rng.getrandbits(64)))
            service = virtual_address(i, config.groups, NATIVE_SIM_PORT)
            core = self._make_core(identity)
            self._register(NativeSimNode(index=i, service=service, identity=identity, core=core))
        self.bootstrap_points = [n.service for n in self.nodes[: config.bootstrap]]
        #: The misbehaving nodes' indexes (the last ``liars``).
        self.liars = set(range(config.nodes - config.liars, config.nodes))
        for node in self.nodes:
            self._start(node)
        if config.churn is not None:
            for node in self.nodes:
                self._schedule_leave(node.index, config.churn)

    def _make_core(self, identity: Identity) -> NativeNodeCore:
        return NativeNodeCore(
            self.pool_config,
            self.config.limits,
            identity,
            rng=random.Random(self.rng.getrandbits(64)),
            now=self.clock,
            difficulty=0.0,
            listen_port=NATIVE_SIM_PORT,
        )

    def _start(self, node: NativeSimNode) -> None:
        points = [p for p in self.bootstrap_points if p != node.service]
        node.core.start(self.clock, points)
        self._drain(node)

    # -- restarts -------------------------------------------------------------------------

    def stop(self, index: int) -> None:
        """Stop node ``index`` (Octez ``destroy``: its connections close)."""
        node = self.nodes[index]
        if not node.up:
            return
        node.core.stop(self.clock)
        self._drain(node)
        self._went_down(node)

    def start(self, index: int) -> None:
        """Start a stopped node again with its identity and its pool's saved documents."""
        node = self.nodes[index]
        if node.up:
            return
        old = node.core.pool
        points, peers = old.points_document(), old.peers_document()
        node.core = self._make_core(node.identity)
        node.core.pool.load_points_document(points, self.clock)
        node.core.pool.load_peers_document(peers, self.clock)
        node.up = True
        self._record("start", (index,), 0)
        self._start(node)

    def restart(self, index: int) -> None:
        """:meth:`stop`, then :meth:`start` at once."""
        self.stop(index)
        self.start(index)

    def _schedule_leave(self, index: int, churn: Churn) -> None:
        def leave() -> None:
            self.stop(index)
            self.churned += 1
            self.call_at(self.now + self.rng.expovariate(1 / churn.downtime), come_back)

        def come_back() -> None:
            self.start(index)
            self._schedule_leave(index, churn)

        self.call_at(self.now + self.rng.expovariate(1 / churn.mean_lifetime), leave)

    # -- the cores ------------------------------------------------------------------------

    def _core_tick(self, node: NativeSimNode) -> None:
        node.core.tick(self.clock)

    def _core_accepted(
        self, node: NativeSimNode, conn: int, bind: Service, remote: Service
    ) -> bool:
        return node.core.accepted(conn, remote, self.clock)

    def _core_connected(self, node: NativeSimNode, dial: int, conn: int, local: Service) -> None:
        node.core.connected(dial, conn, self.clock)

    def _core_dial_failed(self, node: NativeSimNode, dial: int, reason: str) -> None:
        node.core.dial_failed(dial, reason, self.clock)

    def _core_received(self, node: NativeSimNode, conn: int, data: bytes) -> None:
        node.core.received(conn, data, self.clock)

    def _core_closed(self, node: NativeSimNode, conn: int, reason: str) -> None:
        node.core.closed(conn, reason, self.clock)

    def _core_wakeup(self, node: NativeSimNode) -> float:
        return node.core.next_wakeup()

    def _core_actions(self, node: NativeSimNode) -> list[Any]:
        return node.core.poll_actions()

    def _execute(self, node: NativeSimNode, action: Any) -> None:
        if isinstance(action, Send):
            data = action.data
            if node.index in self.liars:
                conn = node.core.conns.get(action.conn_id)
                if conn is not None and conn.peer is not None and conn.peer.state == "running":
                    data = data[:-1] + bytes([data[-1] ^ 1])  # a broken BIP324 tag
            self._send(node, action.conn_id, data)
        elif isinstance(action, Dial):
            self._dial(node, action.id, action.point)
        elif isinstance(action, Close):
            self._close(node, action.conn_id)
        elif isinstance(action, CancelDial):
            node.dials.pop(action.id, None)  # a syn still under way finds no dial
        # DialDone, Deliver, Signal: for a layer above; the simulation has none.


NATIVE_ROW_FIELDS = [
    "t",
    "running_nodes",
    "connections_min",
    "connections_mean",
    "connections_max",
    "below_min",
    "above_max",
    "known_points_mean",
    "swaps",
    "greylisted_dials",
    "liar_connections",
    "liars_greylisted_mean",
]


@dataclass
class NativeResult:
    """``report`` (JSON-ready) and ``rows`` (one dict per sample, :data:`NATIVE_ROW_FIELDS`)."""

    report: dict[str, object]
    rows: list[dict[str, object]]


def run_native(
    cfg: NativeSimConfig, *, progress: Callable[[float, int], None] | None = None
) -> NativeResult:
    """Run ``cfg``'s network for ``cfg.hours``. Rows: the honest nodes' connection
    counts against the bounds, known points, swaps and greylisted dials so far, the
    liars' connections and how many liars an honest node holds greylisted. The report:
    ``within_bounds_after`` (the first sample at which every running honest node had
    between ``min_connections`` and ``max_connections``; None if never), the final
    degree distribution, swaps, the liars' fate, and ``trace_sha256``."""
    sim = NativeSimulation(cfg)
    limits = cfg.limits
    rows: list[dict[str, object]] = []
    settled: list[float] = []

    liar_addrs = [sim.nodes[i].service.addr for i in sorted(sim.liars)]

    def liars_greylisted(honest: list[NativeSimNode]) -> float:
        """Mean number of liars each running honest node holds greylisted."""
        if not honest or not liar_addrs:
            return 0.0
        return statistics.fmean(
            sum(1 for a in liar_addrs if n.core.pool.banned_addr(a)) for n in honest
        )

    def sample() -> None:
        nodes = [n for n in sim.nodes if n.up]
        honest = [n for n in nodes if n.index not in sim.liars]
        counts = [n.connections() for n in honest]
        below = sum(1 for c in counts if c < limits.min_connections)
        above = sum(1 for c in counts if c > limits.max_connections)
        if not below and not above and not settled:
            settled.append(sim.now)
        rows.append(
            {
                "t": round(sim.now, 3),
                "running_nodes": len(nodes),
                "connections_min": min(counts),
                "connections_mean": statistics.fmean(counts),
                "connections_max": max(counts),
                "below_min": below,
                "above_max": above,
                "known_points_mean": statistics.fmean(len(n.core.pool.known_points) for n in nodes),
                "swaps": sum(n.core.swaps for n in sim.nodes),
                "greylisted_dials": sum(n.core.greylisted_dials for n in sim.nodes),
                "liar_connections": sum(n.connections() for n in nodes if n.index in sim.liars),
                "liars_greylisted_mean": liars_greylisted(honest),
            }
        )
        if progress is not None:
            progress(sim.now, sim.events)
        sim.call_at(sim.now + cfg.sample_interval, sample)

    sim.call_at(0.0, sample)
    end = cfg.hours * 3600
    sim.run_until(end)
    nodes = [n for n in sim.nodes if n.up and n.index not in sim.liars]
    degree = Counter(n.connections() for n in nodes)
    b = bounds(limits.min_connections, limits.expected_connections, limits.max_connections)
    params = asdict(cfg)
    report: dict[str, object] = {
        "scenario": "native",
        "params": params,
        "nodes": cfg.nodes,
        "bounds": asdict(b),
        "simulated_seconds": end,
        "within_bounds_after": settled[0] if settled else None,
        "running_nodes": len(nodes),
        "departures": sim.churned,
        "degree": {str(k): v for k, v in sorted(degree.items())},
        "connections_mean": statistics.fmean(degree.elements()) if nodes else 0.0,
        "swaps": sum(n.core.swaps for n in sim.nodes),
        "greylisted_dials": sum(n.core.greylisted_dials for n in sim.nodes),
        "liars": cfg.liars,
        "liar_connections_at_end": sum(
            n.connections() for n in sim.nodes if n.up and n.index in sim.liars
        ),
        "liars_greylisted_mean": liars_greylisted(nodes),
        "events": sim.events,
        "trace_sha256": sim.trace_sha256,
    }
    return NativeResult(report, rows)
