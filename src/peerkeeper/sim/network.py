"""A discrete-event network of real ConnManCores in simulated time (issue 14).

Every node is peerkeeper's own :class:`~peerkeeper.bitcoin.connman.ConnManCore` with its
:class:`~peerkeeper.bitcoin.addrman.AddrMan` and :class:`~peerkeeper.bitcoin.banman.BanMan`:
no rule is re-implemented here. The simulation only carries the cores' actions out:

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

import hashlib
import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

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
from peerkeeper.wire.messages import ServiceFlags

__all__ = [
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
#: First octets of the virtual /16s: public unicast space, none of Core's special ranges.
_FIRST_OCTETS = [o for o in range(11, 224) if o not in (100, 127, 169, 172, 192, 198, 203)]
#: How many /16 groups the virtual address space holds.
MAX_GROUPS = 256 * len(_FIRST_OCTETS)


class SimError(ValueError):
    """A simulation parameter out of range; raised before anything runs."""


#: The honest /16s' AS numbers start here (group g is in AS ``HONEST_AS_BASE + g % ases``).
HONEST_AS_BASE = 1000


def group_prefix(group: int) -> str:
    """The CIDR of virtual /16 group ``group`` (``"A.B.0.0/16"``); raises
    :class:`SimError` past the virtual space."""
    if not 0 <= group < MAX_GROUPS:
        raise SimError(f"group {group} is outside the virtual space (0..{MAX_GROUPS - 1})")
    return f"{_FIRST_OCTETS[group // 256]}.{group % 256}.0.0/16"


def virtual_address(index: int, netgroups: int, port: int, *, first_group: int = 0) -> Service:
    """Address number ``index`` of a population spread over ``netgroups`` /16 groups
    (groups ``first_group`` .. ``first_group + netgroups - 1``): the groups take the
    addresses in turn, and an address's host part is its rank within its group
    (``A.B.x.y``). Raises :class:`SimError` past the virtual space."""
    group, rank = first_group + index % netgroups, index // netgroups
    if group >= MAX_GROUPS or rank >= 254 * 256:
        raise SimError("too many addresses or netgroups for the virtual address space")
    first, second = _FIRST_OCTETS[group // 256], group % 256
    return Service(NetAddr.parse(f"{first}.{second}.{rank // 254}.{rank % 254 + 1}"), port)


@dataclass(frozen=True)
class Churn:
    """Nodes leave and come back (a restart keeps the address book and anchors).

    Lifetimes are exponential with the mean that makes ``P(lifetime >= 1 h) = stay_1h``
    (default 0.9: KIT DSN's monitoring of the Bitcoin network found over 90 % of
    reachable peers staying an hour or more); downtimes are exponential with mean
    ``downtime`` seconds. Raises :class:`SimError` for ``stay_1h`` outside (0, 1) or a
    ``downtime`` not > 0.
    """

    stay_1h: float = 0.9
    downtime: float = 1800.0

    def __post_init__(self) -> None:
        if not 0 < self.stay_1h < 1:
            raise SimError(f"churn stay_1h must be in (0, 1), not {self.stay_1h}")
        if not self.downtime > 0:
            raise SimError(f"churn downtime must be > 0, not {self.downtime}")

    @property
    def mean_lifetime(self) -> float:
        """Seconds: ``3600 / -ln(stay_1h)`` (about 9.5 h for 0.9)."""
        return 3600.0 / -math.log(self.stay_1h)


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
        jitter: extra delay per delivery, uniform in [0, jitter) seconds.
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
    jitter: float = 0.005
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


@dataclass
class SimNode:
    """One simulated node: its address(es), its options, its core, whether it runs.

    ``aliases``: more addresses it answers on and dials from (an attacker's);
    ``generation`` counts restarts (events of an older generation are dropped);
    ``tags``: free-form labels for scenarios ("victim", "attacker"); ``asmap``:
    whether it runs with the simulation's asmap (Core's ``-asmap``)."""

    index: int
    service: Service
    options: ConnManOptions
    core: ConnManCore
    up: bool = True
    aliases: list[Service] = field(default_factory=list)
    generation: int = 0
    tags: set[str] = field(default_factory=set)
    asmap: bool = False
    #: conn_id -> (peer node index, the peer's conn_id)
    links: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: dial id -> (the address this node dials from, the address it dials)
    dials: dict[int, tuple[Service, Service]] = field(default_factory=dict)
    next_alias: int = 0

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


class Simulation:
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
        self.config = config
        #: The virtual Internet's asmap bytes (:meth:`SimConfig.build_asmap`; empty: none).
        self.asmap = config.build_asmap()
        self.chain = chain or CHAINS["regtest"]
        self.rng = random.Random(config.seed)
        #: The cores' clock (unix seconds, ``epoch`` at the start); :attr:`now` is the
        #: simulated time since the start.
        self.epoch = config.epoch
        self.clock = config.epoch
        self.events = 0
        self._heap: list[tuple[float, int, str, tuple[int, ...], bytes]] = []
        self._seq = 0
        self._trace = hashlib.sha256()
        self._latency: dict[tuple[int, int], float] = {}
        self._arrive: dict[tuple[int, int], float] = {}  # (node, conn) -> last delivery
        self._next_conn = 1
        self._wake_at: dict[int, float] = {}
        self._answers: dict[tuple[int, int], list[NetAddr]] = {}
        self._calls: dict[int, Callable[[], None]] = {}
        self.nodes: list[SimNode] = []
        self._by_service: dict[Service, int] = {}
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
        index = len(self.nodes)
        for svc in (service, *aliases):
            if svc in self._by_service:
                raise SimError(f"address {svc} is taken")
        base = self.rng.getrandbits(64)
        addrman = AddrMan(random.Random(base), asmap=self._asmap(asmap))
        core = self._make_core(options, addrman, base)
        node = SimNode(index, service, options, core, aliases=list(aliases), asmap=asmap)
        self.nodes.append(node)
        for svc in (service, *aliases):
            self._by_service[svc] = index
        return node

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
    def now(self) -> float:
        """Simulated seconds since the start."""
        return self.clock - self.epoch

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
        node.up = False
        node.generation += 1
        node.dials.clear()
        self._wake_at.pop(index, None)
        self._record("stop", (index,), 0)

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

    # -- the trace ------------------------------------------------------------------------

    @property
    def trace_sha256(self) -> str:
        """SHA-256 (hex) of every event processed so far, in order."""
        return self._trace.hexdigest()

    def _record(self, kind: str, args: tuple[int, ...], size: int) -> None:
        self._trace.update(f"{self.clock - self.epoch:.6f} {kind} {args} {size}\n".encode())

    # -- scheduling ---------------------------------------------------------------------

    def _push(self, at: float, kind: str, args: tuple[int, ...], data: bytes = b"") -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, kind, args, data))

    def call_at(self, at: float, fn: Callable[[], None]) -> None:
        """Run ``fn()`` at simulated time ``at`` (seconds; not before now), in order with
        the network's events; afterwards every node's new actions are carried out."""
        self._calls[self._seq + 1] = fn
        self._push(max(self.epoch + at, self.clock), "call", (0, self._seq + 1))

    def latency(self, a: int, b: int) -> float:
        """The one-way base latency between nodes ``a`` and ``b`` (seconds), drawn once."""
        key = (a, b) if a < b else (b, a)
        lat = self._latency.get(key)
        if lat is None:
            low, high = self.config.latency
            lat = self._latency[key] = self.rng.uniform(low, high)
        return lat

    def _delay(self, a: int, b: int) -> float:
        return self.latency(a, b) + self.rng.random() * self.config.jitter

    def _schedule_wakeup(self, node: SimNode) -> None:
        if not node.up:
            return
        at = max(node.core.next_wakeup(), self.clock)
        if at == float("inf") or self._wake_at.get(node.index) == at:
            return
        self._wake_at[node.index] = at
        self._push(at, "tick", (node.index,))

    # -- carrying the cores' actions out -------------------------------------------------

    def drain(self, node: SimNode) -> None:
        """Carry out what ``node``'s core decided (after a scenario called into it)."""
        self._drain(node)

    def _drain(self, node: SimNode) -> None:
        core = node.core
        while True:
            actions = core.poll_actions()
            if not actions:
                break
            for action in actions:
                self._execute(node, action)
        self._schedule_wakeup(node)

    def _execute(self, node: SimNode, action: object) -> None:
        i, gen = node.index, node.generation
        if isinstance(action, Dial):
            target = self._by_service.get(action.service)
            source = node.service
            if node.aliases:
                source = node.aliases[node.next_alias % len(node.aliases)]
                node.next_alias += 1
            node.dials[action.id] = (source, action.service)
            if target is None or target == i:
                self._push(self.clock, "refused", (i, gen, action.id))
            else:
                self._push(self.clock + self._delay(i, target), "syn", (i, gen, action.id, target))
        elif isinstance(action, Send):
            link = node.links.get(action.conn_id)
            if link is not None:
                j, their_conn = link
                at = max(self.clock + self._delay(i, j), self._arrive.get((j, their_conn), 0.0))
                self._arrive[(j, their_conn)] = at
                self._push(at, "data", (j, their_conn), action.data)
        elif isinstance(action, Close):
            link = node.links.pop(action.conn_id, None)
            if link is not None:
                j, their_conn = link
                at = max(self.clock + self._delay(i, j), self._arrive.get((j, their_conn), 0.0))
                self._arrive.pop((j, their_conn), None)
                self._push(at, "fin", (j, their_conn))
        elif isinstance(action, Resolve):
            answer = self._seed_answer(i) if action.seed else []
            self._push(self.clock, "resolved", (i, gen, action.id, int(action.seed)))
            self._answers[(i, action.id)] = answer
        elif isinstance(action, PauseRead | ResumeRead):
            pass  # links have no buffers to fill; the core still pauses its own processing

    def _seed_answer(self, asking: int) -> list[NetAddr]:
        up = [n for n in self.honest if n.up and n.index != asking]
        k = min(self.config.seed_answers, len(up))
        return [n.service.addr for n in self.rng.sample(up, k)]

    # -- events ---------------------------------------------------------------------------

    def run_until(
        self, end: float, *, on_event: Callable[[Simulation], None] | None = None
    ) -> None:
        """Process events until simulated time ``end`` (seconds); ``on_event`` is called
        after each one."""
        heap = self._heap
        end_clock = self.epoch + end
        while heap and heap[0][0] <= end_clock:
            at, _, kind, args, data = heapq.heappop(heap)
            self.clock = at
            self.events += 1
            self._record(kind, args, len(data))
            if kind == "call":
                self._calls.pop(args[1])()
                for node in self.nodes:
                    if node.up:
                        self._drain(node)
            else:
                self._handle(kind, args, data)
            if on_event is not None:
                on_event(self)
        self.clock = max(self.clock, end_clock)

    def _handle(self, kind: str, args: tuple[int, ...], data: bytes) -> None:
        now = self.clock
        node = self.nodes[args[0]]
        core = node.core
        if kind == "tick":
            if self._wake_at.get(node.index) != now:
                return  # superseded by a later arming
            del self._wake_at[node.index]
            if node.up:
                core.tick(now, steady=now)
        elif kind in ("refused", "syn", "synack", "resolved"):
            if args[1] != node.generation or not node.up:
                self._stale(kind, args)
                return
            if kind == "refused":
                node.dials.pop(args[2], None)
                core.dial_failed(args[2], "connection refused", now, steady=now)
            elif kind == "syn":
                self._syn(node, args[2], args[3])
                return
            elif kind == "synack":
                self._synack(node, args[2], args[3], args[4], args[5])
            else:
                answer = self._answers.pop((node.index, args[2]), [])
                if args[3]:
                    core.seed_resolved(args[2], answer, now, steady=now)
                else:
                    core.resolved(args[2], None, "no such name", now, steady=now)
        elif kind == "data":
            if args[1] in node.links:
                core.received(args[1], data, now, steady=now)
        elif kind == "fin":
            # Nothing more travels on this connection either way: forget both directions'
            # last delivery times, or a long run keeps one per connection it ever had.
            self._arrive.pop((node.index, args[1]), None)
            link = node.links.pop(args[1], None)
            if link is not None:
                self._arrive.pop(link, None)
                core.closed(args[1], "socket closed", now, steady=now)
        self._drain(node)

    def _stale(self, kind: str, args: tuple[int, ...]) -> None:
        """An event for a dial of a node's earlier run: a connection the other side
        accepted is closed again; everything else is forgotten."""
        self._answers.pop((args[0], args[2]), None)
        if kind == "synack":
            target, conn_b = args[4], args[5]
            other = self.nodes[target]
            if other.links.pop(conn_b, None) is not None:
                other.core.closed(conn_b, "socket closed", self.clock, steady=self.clock)
                self._drain(other)

    def _syn(self, node: SimNode, dial_id: int, target: int) -> None:
        now = self.clock
        other = self.nodes[target]
        local, dialled = node.dials[dial_id]
        conn_a, conn_b = self._next_conn, self._next_conn + 1
        self._next_conn += 2
        back = now + self._delay(node.index, target)
        if not other.up or not other.core.accepted(conn_b, dialled, local, now, steady=now):
            self._push(back, "refused", (node.index, node.generation, dial_id))
            self._drain(other)
            return
        other.links[conn_b] = (node.index, conn_a)
        self._drain(other)
        self._push(back, "synack", (node.index, node.generation, dial_id, conn_a, target, conn_b))

    def _synack(self, node: SimNode, dial_id: int, conn_a: int, target: int, conn_b: int) -> None:
        now = self.clock
        local = node.dials.pop(dial_id, (node.service, node.service))[0]
        if conn_b not in self.nodes[target].links:
            node.core.dial_failed(dial_id, "connection reset", now, steady=now)
        else:
            node.links[conn_a] = (target, conn_b)
            node.core.connected(dial_id, conn_a, local, now, steady=now)
