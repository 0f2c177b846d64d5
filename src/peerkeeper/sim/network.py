"""A discrete-event network of real ConnManCores in simulated time (issue 14).

Every node is peerkeeper's own :class:`~peerkeeper.bitcoin.connman.ConnManCore` with its
:class:`~peerkeeper.bitcoin.addrman.AddrMan` and :class:`~peerkeeper.bitcoin.banman.BanMan`:
no rule is re-implemented here. The simulation only carries the cores' actions out, on
:class:`~peerkeeper.sim.engine.Network`'s event loop:

* one event heap ordered by (time, sequence): the cores' wakeups, dial outcomes, byte
  deliveries, closes and the scenario's own calls (:meth:`Simulation.call_at`);
* a link carries bytes one way with the pair's latency (a base per pair, drawn once,
  plus jitter per delivery) and keeps TCP's order: a later send never arrives earlier;
* a dial reaches its target after one latency and is accepted or refused by the target's
  own core (inbound slots, bans); an unknown or stopped target refuses;
* a DNS seed answers as a crawler-fed seeder does (bitcoin-seeder): ``seed_answers``
  addresses drawn at random among the running nodes;
* each node has a routable virtual address: ``netgroups`` /16s hold the nodes in turn;
  a node may answer on more addresses (:meth:`Simulation.add_node` ``aliases``: an
  attacker's), and dials out from them in turn;
* with ``asmap=True`` the virtual Internet has autonomous systems: the honest /16s are
  spread over ``ases`` ASes, ``as_blocks`` put more /16s into one AS each, and the
  nodes run with that asmap (Core's ``-asmap``: buckets, outbound diversity and
  eviction group by AS);
* a node stops and starts again as a real restart does (:meth:`Simulation.restart`): its
  connections close, its address book goes through peers.dat's bytes (Core's
  serialization) and its block-relay-only peers come back as anchors.

Deterministic: everything random comes from ``random.Random`` instances derived from
``seed``, and every event is folded into a SHA-256 (:attr:`Simulation.trace_sha256`), so
two runs with the same seed and parameters give the same hash.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from peerkeeper.bitcoin.addrman import AddrMan
from peerkeeper.bitcoin.banman import BanMan
from peerkeeper.bitcoin.connman import (
    Close,
    ConnManCore,
    ConnManOptions,
    Dial,
    PauseRead,
    Resolve,
    ResumeRead,
    Send,
)
from peerkeeper.bitcoin.peer import PeerConfig
from peerkeeper.net.asmap import encode_asmap
from peerkeeper.net.chains import CHAINS, Chain
from peerkeeper.net.connection_types import ConnectionType
from peerkeeper.net.netaddr import NetAddr, Service
from peerkeeper.sim.engine import (
    HONEST_AS_BASE,
    MAX_GROUPS,
    BaseNode,
    Churn,
    Network,
    SimError,
    check_links,
    group_prefix,
    virtual_address,
)
from peerkeeper.wire.messages import ServiceFlags

__all__ = [
    "HONEST_AS_BASE",
    "MAX_GROUPS",
    "AsBlock",
    "Churn",
    "SimConfig",
    "SimError",
    "SimNode",
    "Simulation",
    "group_prefix",
    "virtual_address",
]

#: What simulated nodes announce: a full node (Core's NODE_NETWORK | NODE_WITNESS).
SIM_SERVICES = int(ServiceFlags.NODE_NETWORK | ServiceFlags.NODE_WITNESS)


@dataclass(frozen=True)
class AsBlock:
    """Virtual /16 groups ``first_group .. first_group + count - 1``, all in AS ``asn``
    (an attacker owning many /16s inside one AS, Erebus's shape)."""

    first_group: int
    count: int
    asn: int


@dataclass(frozen=True)
class SimConfig:
    """The network to build.

    Args:
        nodes: how many honest nodes (>= 2).
        seed: the random seed; the same seed gives the same run.
        netgroups: how many /16 groups the nodes are spread over (1 .. nodes; default
            one per node).
        seed_answers: how many addresses a DNS seed query returns (drawn among the
            running nodes, as a crawler-fed seeder answers; >= 1).
        latency: base one-way latency range, seconds (each pair draws one value).
        latency_matrix: the base one-way latencies between the ``nodes`` honest nodes,
            given: ``nodes`` rows of ``nodes`` seconds, symmetric, >= 0 (pairs with
            nodes added later draw from ``latency``).
        jitter: extra delay per delivery, uniform in [0, jitter) seconds.
        bandwidth: every node's uplink, bytes per second (> 0), or None (unlimited).
        max_connections: each node's ``-maxconnections``.
        epoch: the unix time the run starts at (the cores' clocks read ``epoch + t``;
            addresses' timestamps need a realistic one).
        churn: honest nodes leave and come back (:class:`Churn`), or None.
        asmap: give the virtual Internet autonomous systems and run the nodes with
            that asmap (Core's ``-asmap``); see :attr:`Simulation.asmap`.
        ases: how many ASes the honest /16s are spread over (1 .. netgroups; default
            one AS per /16); only with ``asmap``.
        as_blocks: more /16s mapped to an AS each (:class:`AsBlock`: outside the
            honest groups, not overlapping); only with ``asmap``.

    Raises :class:`SimError` for a value out of range.
    """

    nodes: int
    seed: int = 0
    netgroups: int | None = None
    seed_answers: int = 25
    latency: tuple[float, float] = (0.01, 0.15)
    latency_matrix: tuple[tuple[float, ...], ...] | None = None
    jitter: float = 0.005
    bandwidth: float | None = None
    max_connections: int = 125
    epoch: float = 1_700_000_000.0
    churn: Churn | None = None
    asmap: bool = False
    ases: int | None = None
    as_blocks: tuple[AsBlock, ...] = ()

    def __post_init__(self) -> None:
        if self.nodes < 2:
            raise SimError(f"nodes must be at least 2, not {self.nodes}")
        groups = self.groups
        if not 1 <= groups <= self.nodes:
            raise SimError(f"netgroups must be in 1..nodes ({self.nodes}), not {groups}")
        if groups > MAX_GROUPS or self.nodes // groups >= 254 * 256:
            raise SimError("too many nodes or netgroups for the virtual address space")
        if self.seed_answers < 1:
            raise SimError(f"seed_answers must be at least 1, not {self.seed_answers}")
        low, high = self.latency
        if not 0 <= low <= high or self.jitter < 0:
            raise SimError(f"latency {self.latency} and jitter {self.jitter} must be >= 0")
        if self.max_connections < 11:
            raise SimError("max_connections must leave room for 11 outbound peers")
        check_links(self.nodes, self.latency_matrix, self.bandwidth)
        if (self.ases is not None or self.as_blocks) and not self.asmap:
            raise SimError("ases and as_blocks need asmap=True")
        if self.ases is not None and not 1 <= self.ases <= groups:
            raise SimError(f"ases must be in 1..netgroups ({groups}), not {self.ases}")
        taken = set(range(groups))
        for block in self.as_blocks:
            span = range(block.first_group, block.first_group + block.count)
            if block.count < 1 or block.asn < 1 or span.stop > MAX_GROUPS or block.first_group < 0:
                raise SimError(f"{block} is out of range")
            if taken.intersection(span):
                raise SimError(f"{block} overlaps the honest groups or another block")
            taken.update(span)

    @property
    def groups(self) -> int:
        return self.nodes if self.netgroups is None else self.netgroups

    def build_asmap(self) -> bytes:
        """The virtual Internet's asmap (empty without ``asmap``): honest group g in AS
        ``HONEST_AS_BASE + g % ases``, then the :attr:`as_blocks`."""
        if not self.asmap:
            return b""
        ases = self.ases or self.groups
        entries = [(group_prefix(g), HONEST_AS_BASE + g % ases) for g in range(self.groups)]
        for block in self.as_blocks:
            span = range(block.first_group, block.first_group + block.count)
            entries += [(group_prefix(g), block.asn) for g in span]
        return encode_asmap(entries)


@dataclass(kw_only=True)
class SimNode(BaseNode):
    """One simulated Bitcoin node: its address(es), options, core, whether it runs
    (:class:`~peerkeeper.sim.engine.BaseNode`); ``asmap``: whether it runs with the
    simulation's asmap (Core's ``-asmap``)."""

    options: ConnManOptions
    core: ConnManCore
    asmap: bool = False

    def outbound(self, conn_type: ConnectionType) -> int:
        """Live, handshaken outbound peers of ``conn_type``."""
        return len(self.outbound_peers(conn_type))

    def outbound_peers(self, *conn_types: ConnectionType) -> list[Service]:
        """Addresses of the live, handshaken outbound peers of ``conn_types`` (default:
        full-relay and block-relay-only, the 8 + 2 slots Core fills)."""
        types = conn_types or (ConnectionType.OUTBOUND_FULL_RELAY, ConnectionType.BLOCK_RELAY)
        return [
            p.addr
            for p in self.core.peers.values()
            if p.conn_type in types and p.proto.successfully_connected and not p.closed
        ]


class Simulation(Network[SimNode]):
    """A network of ``config.nodes`` real cores (see the module docstring).

    ``Simulation(SimConfig(nodes=100, seed=7))``, then :meth:`run_until` (seconds of
    simulated time from 0). Attributes: ``nodes`` (list of :class:`SimNode`), ``now``,
    ``events`` (how many were processed), :attr:`trace_sha256`.
    """

    def __init__(
        self,
        config: SimConfig,
        *,
        chain: Chain | None = None,
        options: Callable[[int, ConnManOptions], ConnManOptions] | None = None,
        use_asmap: Callable[[int], bool] | None = None,
    ) -> None:
        """``options(index, defaults)`` may change a node's ConnManOptions (a victim's
        countermeasures, say); ``use_asmap(index)`` says whether node ``index`` runs
        with the asmap (default: every node, when the config has one)."""
        super().__init__(
            random.Random(config.seed),
            latency=config.latency,
            jitter=config.jitter,
            epoch=config.epoch,
            latency_matrix=config.latency_matrix,
            bandwidth=config.bandwidth,
        )
        self.config = config
        #: The virtual Internet's asmap bytes (:meth:`SimConfig.build_asmap`; empty: none).
        self.asmap = config.build_asmap()
        self.chain = chain or CHAINS["regtest"]
        self._answers: dict[tuple[int, int], list[NetAddr]] = {}
        self._honest = config.nodes
        port = self.chain.default_port
        for i in range(config.nodes):
            opts = self.default_options()
            if options is not None:
                opts = options(i, opts)
            asmap = bool(self.asmap) and (use_asmap is None or use_asmap(i))
            self._add(virtual_address(i, config.groups, port), opts, [], asmap)
        for node in self.nodes:
            self._start(node)
        self.churned = 0  # how many times a node left
        if config.churn is not None:
            for node in self.honest:
                self._schedule_leave(node.index, config.churn)

    # -- building -------------------------------------------------------------------------

    def default_options(self) -> ConnManOptions:
        """An honest node's ConnManOptions: listening, DNS-seeded, v1, Core's limits."""
        return ConnManOptions(
            chain=self.chain,
            listen=True,
            max_connections=self.config.max_connections,
            peer=PeerConfig(services=SIM_SERVICES),
            v2transport=False,
            dnsseed=True,
            dns_seeds=["seed.sim."],
            fixedseeds=False,
        )

    def add_node(
        self,
        service: Service,
        options: ConnManOptions,
        *,
        aliases: list[Service] | None = None,
        tags: set[str] | None = None,
        asmap: bool = True,
    ) -> SimNode:
        """Add and start a node at ``service`` (and ``aliases``), with the simulation's
        asmap if it has one and ``asmap``; raises :class:`SimError` if an address is
        taken."""
        node = self._add(service, options, aliases or [], asmap and bool(self.asmap))
        node.tags |= tags or set()
        self._start(node)
        return node

    def _add(
        self, service: Service, options: ConnManOptions, aliases: list[Service], asmap: bool
    ) -> SimNode:
        base = self.rng.getrandbits(64)
        addrman = AddrMan(random.Random(base), asmap=self._asmap(asmap))
        core = self._make_core(options, addrman, base)
        node = SimNode(
            index=len(self.nodes),
            service=service,
            aliases=list(aliases),
            options=options,
            core=core,
            asmap=asmap,
        )
        return self._register(node)

    def _asmap(self, use: bool) -> bytes | None:
        return self.asmap if use and self.asmap else None

    def _make_core(
        self, options: ConnManOptions, addrman: AddrMan, base: int | None = None
    ) -> ConnManCore:
        """The core; its random streams derive from ``base`` (drawn when None)."""
        if base is None:
            base = self.rng.getrandbits(64)
        return ConnManCore(
            options,
            addrman,
            rng=random.Random(base + 1),
            transport_rng=random.Random(base + 2).randbytes,
            banman=BanMan(base & 0xFFFFFFFF),
        )

    def _start(self, node: SimNode) -> None:
        node.core.start(
            self.clock,
            [(str(node.service.addr), node.service.port)],
            steady=self.clock,
        )
        self._drain(node)

    @property
    def honest(self) -> list[SimNode]:
        """The ``config.nodes`` nodes built from the config (not those added later)."""
        return self.nodes[: self._honest]

    # -- restarts -------------------------------------------------------------------------

    def stop(self, index: int) -> None:
        """Stop node ``index`` as a clean shutdown does: its connections close, its
        block-relay-only peers are kept as anchors for :meth:`start`."""
        node = self.nodes[index]
        if not node.up:
            return
        node.core.stop(self.clock, steady=self.clock)
        self._drain(node)
        self._went_down(node)

    def start(self, index: int, *, anchors: bool = True) -> None:
        """Start a stopped node again: its address book goes through peers.dat's bytes
        (AddrMan serialization), ``anchors`` (Core's anchors.dat) are its block-relay-only
        peers at the stop (or none)."""
        node = self.nodes[index]
        if node.up:
            return
        old = node.core
        addrman = AddrMan.deserialize(
            old.addrman.serialize(),
            random.Random(self.rng.getrandbits(64)),
            asmap=self._asmap(node.asmap),
        )
        addrman.test_before_evict = old.addrman.test_before_evict
        addrman.resolve_tried_collisions = old.addrman.resolve_tried_collisions
        opts = replace(node.options, anchors=list(old.anchors_at_stop) if anchors else [])
        node.core = self._make_core(opts, addrman)
        node.up = True
        self._record("start", (index,), 0)
        self._start(node)

    def _schedule_leave(self, index: int, churn: Churn) -> None:
        def leave() -> None:
            if "victim" in self.nodes[index].tags:
                return  # a scenario's subject leaves only when the scenario says so
            self.stop(index)
            self.churned += 1
            back = self.rng.expovariate(1 / churn.downtime)
            self.call_at(self.now + back, come_back)

        def come_back() -> None:
            self.start(index)
            self._schedule_leave(index, churn)

        self.call_at(self.now + self.rng.expovariate(1 / churn.mean_lifetime), leave)

    def restart(self, index: int, *, anchors: bool = True) -> None:
        """:meth:`stop`, then :meth:`start` at once."""
        self.stop(index)
        self.start(index, anchors=anchors)

    # -- the cores ------------------------------------------------------------------------

    def _core_tick(self, node: SimNode) -> None:
        node.core.tick(self.clock, steady=self.clock)

    def _core_accepted(self, node: SimNode, conn: int, bind: Service, remote: Service) -> bool:
        return node.core.accepted(conn, bind, remote, self.clock, steady=self.clock)

    def _core_connected(self, node: SimNode, dial: int, conn: int, local: Service) -> None:
        node.core.connected(dial, conn, local, self.clock, steady=self.clock)

    def _core_dial_failed(self, node: SimNode, dial: int, reason: str) -> None:
        node.core.dial_failed(dial, reason, self.clock, steady=self.clock)

    def _core_received(self, node: SimNode, conn: int, data: bytes) -> None:
        node.core.received(conn, data, self.clock, steady=self.clock)

    def _core_closed(self, node: SimNode, conn: int, reason: str) -> None:
        node.core.closed(conn, reason, self.clock, steady=self.clock)

    def _core_wakeup(self, node: SimNode) -> float:
        return node.core.next_wakeup()

    def _core_actions(self, node: SimNode) -> list[Any]:
        return node.core.poll_actions()

    def _execute(self, node: SimNode, action: Any) -> None:
        if isinstance(action, Send):
            self._send(node, action.conn_id, action.data)
        elif isinstance(action, Dial):
            self._dial(node, action.id, action.service)
        elif isinstance(action, Close):
            self._close(node, action.conn_id)
        elif isinstance(action, Resolve):
            answer = self._seed_answer(node.index) if action.seed else []
            self._push(
                self.clock, "resolved", (node.index, node.generation, action.id, int(action.seed))
            )
            self._answers[(node.index, action.id)] = answer
        elif isinstance(action, PauseRead | ResumeRead):
            pass  # links have no buffers to fill; the core still pauses its own processing

    def _handle_other(self, kind: str, node: SimNode, args: tuple[int, ...]) -> None:
        if kind != "resolved":
            raise ValueError(kind)
        answer = self._answers.pop((node.index, args[2]), [])
        if args[3]:
            node.core.seed_resolved(args[2], answer, self.clock, steady=self.clock)
        else:
            node.core.resolved(args[2], None, "no such name", self.clock, steady=self.clock)

    def _stale(self, kind: str, args: tuple[int, ...]) -> None:
        self._answers.pop((args[0], args[2]), None)
        super()._stale(kind, args)

    def _seed_answer(self, asking: int) -> list[NetAddr]:
        up = [n for n in self.honest if n.up and n.index != asking]
        k = min(self.config.seed_answers, len(up))
        return [n.service.addr for n in self.rng.sample(up, k)]
