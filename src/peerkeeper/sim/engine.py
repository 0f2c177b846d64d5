"""The simulator's engine: one event heap, links with latency, dials, in simulated time.

:class:`Network` carries the actions of whatever sans-IO cores its nodes run: a dial
reaches its target after one latency and is accepted or refused by the target's own
core; a link carries bytes one way with the pair's latency (a base per pair, drawn once,
plus jitter per delivery) and keeps TCP's order (a later send never arrives earlier); a
close reaches the other side after one latency. The Bitcoin network
(:class:`peerkeeper.sim.network.Simulation`, ConnManCores) and the native one
(:class:`peerkeeper.sim.native.NativeSimulation`, NativeNodeCores) are its subclasses:
they build the nodes and translate between their cores and these events.

Deterministic: everything random comes from ``random.Random`` instances derived from
the seed, and every event is folded into a SHA-256 (:attr:`Network.trace_sha256`).
Also here: the virtual address space (:func:`virtual_address`), :class:`Churn`,
:class:`SimError`.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from peerkeeper.net.netaddr import NetAddr, Service

__all__ = [
    "HONEST_AS_BASE",
    "MAX_GROUPS",
    "BaseNode",
    "Churn",
    "Network",
    "SimError",
    "check_links",
    "group_prefix",
    "virtual_address",
]

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


def check_links(
    nodes: int, matrix: tuple[tuple[float, ...], ...] | None, bandwidth: float | None
) -> None:
    """Raise :class:`SimError` unless ``matrix`` is None or ``nodes`` x ``nodes``,
    symmetric, >= 0, and ``bandwidth`` None or > 0."""
    if bandwidth is not None and not bandwidth > 0:
        raise SimError(f"bandwidth must be > 0 bytes/s, not {bandwidth}")
    if matrix is None:
        return
    if len(matrix) != nodes or any(len(row) != nodes for row in matrix):
        shape = f"{len(matrix)} x {sorted({len(r) for r in matrix})}"
        raise SimError(f"latency_matrix must be {nodes} x {nodes} (one row per node), not {shape}")
    for a in range(nodes):
        for b in range(nodes):
            if not matrix[a][b] >= 0 or matrix[a][b] != matrix[b][a]:
                raise SimError(f"latency_matrix must be symmetric and >= 0 (at {a}, {b})")


@dataclass
class BaseNode:
    """What the engine keeps of every node: its address(es), whether it runs, its links.

    ``aliases``: more addresses it answers on and dials from (an attacker's);
    ``generation`` counts restarts (events of an older generation are dropped);
    ``tags``: free-form labels for scenarios ("victim", "attacker")."""

    index: int
    service: Service
    up: bool = True
    aliases: list[Service] = field(default_factory=list)
    generation: int = 0
    tags: set[str] = field(default_factory=set)
    #: conn_id -> (peer node index, the peer's conn_id)
    links: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: dial id -> (the address this node dials from, the address it dials)
    dials: dict[int, tuple[Service, Service]] = field(default_factory=dict)
    next_alias: int = 0


N = TypeVar("N", bound=BaseNode)


class Network(Generic[N]):
    """The event loop over ``nodes`` (see the module docstring). Subclasses implement
    the ``_core_*`` methods (calls into a node's core at :attr:`clock`),
    :meth:`_execute` (a core's action) and :meth:`_core_wakeup` / :meth:`_core_actions`.

    ``rng``: the simulation's ``random.Random``; ``latency``: the base one-way latency
    range (seconds); ``latency_matrix``: base latencies between the first nodes, given
    (``matrix[a][b]`` seconds; pairs beyond it draw from ``latency``); ``jitter``: extra
    delay per delivery in [0, jitter); ``bandwidth``: each node's uplink in bytes per
    second (None: unlimited): a node's sends leave one after the other, each taking
    ``len / bandwidth`` seconds, before their latency; ``epoch``: the unix time the run
    starts at (cores read ``epoch + t``).
    """

    def __init__(
        self,
        rng: random.Random,
        *,
        latency: tuple[float, float],
        jitter: float,
        epoch: float,
        latency_matrix: tuple[tuple[float, ...], ...] | None = None,
        bandwidth: float | None = None,
    ) -> None:
        self.rng = rng
        self._latency_range = latency
        self._latency_matrix = latency_matrix or ()
        self._jitter = jitter
        self._bandwidth = bandwidth
        self._uplink_free: dict[int, float] = {}  # node -> when its uplink is free
        #: The cores' clock (unix seconds, ``epoch`` at the start); :attr:`now` is the
        #: simulated time since the start.
        self.epoch = epoch
        self.clock = epoch
        self.events = 0
        self._heap: list[tuple[float, int, str, tuple[int, ...], bytes]] = []
        self._seq = 0
        self._trace = hashlib.sha256()
        self._latency: dict[tuple[int, int], float] = {}
        self._arrive: dict[tuple[int, int], float] = {}  # (node, conn) -> last delivery
        self._next_conn = 1
        self._wake_at: dict[int, float] = {}
        self._calls: dict[int, Callable[[], None]] = {}
        self.nodes: list[N] = []
        self._by_service: dict[Service, int] = {}

    # -- what a subclass provides ---------------------------------------------------------

    def _core_tick(self, node: N) -> None:
        raise NotImplementedError

    def _core_accepted(self, node: N, conn: int, bind: Service, remote: Service) -> bool:
        raise NotImplementedError

    def _core_connected(self, node: N, dial: int, conn: int, local: Service) -> None:
        raise NotImplementedError

    def _core_dial_failed(self, node: N, dial: int, reason: str) -> None:
        raise NotImplementedError

    def _core_received(self, node: N, conn: int, data: bytes) -> None:
        raise NotImplementedError

    def _core_closed(self, node: N, conn: int, reason: str) -> None:
        raise NotImplementedError

    def _core_wakeup(self, node: N) -> float:
        raise NotImplementedError

    def _core_actions(self, node: N) -> list[Any]:
        raise NotImplementedError

    def _execute(self, node: N, action: Any) -> None:
        raise NotImplementedError

    def _handle_other(self, kind: str, node: N, args: tuple[int, ...]) -> None:
        """An event kind of the subclass's own (pushed with :meth:`_push`)."""
        raise NotImplementedError(kind)

    # -- nodes ----------------------------------------------------------------------------

    def _register(self, node: N) -> N:
        """Add ``node`` (its index is its place); raises :class:`SimError` if one of its
        addresses is taken."""
        for svc in (node.service, *node.aliases):
            if svc in self._by_service:
                raise SimError(f"address {svc} is taken")
        self.nodes.append(node)
        for svc in (node.service, *node.aliases):
            self._by_service[svc] = node.index
        return node

    def _went_down(self, node: N) -> None:
        """Bookkeeping once ``node``'s core stopped: later events of this run are stale."""
        node.up = False
        node.generation += 1
        node.dials.clear()
        self._wake_at.pop(node.index, None)
        self._record("stop", (node.index,), 0)

    @property
    def now(self) -> float:
        """Simulated seconds since the start."""
        return self.clock - self.epoch

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
        if lat is None and key[1] < len(self._latency_matrix):
            lat = self._latency[key] = self._latency_matrix[a][b]
        if lat is None:
            low, high = self._latency_range
            lat = self._latency[key] = self.rng.uniform(low, high)
        return lat

    def _delay(self, a: int, b: int) -> float:
        return self.latency(a, b) + self.rng.random() * self._jitter

    def _schedule_wakeup(self, node: N) -> None:
        if not node.up:
            return
        at = max(self._core_wakeup(node), self.clock)
        if at == float("inf") or self._wake_at.get(node.index) == at:
            return
        self._wake_at[node.index] = at
        self._push(at, "tick", (node.index,))

    # -- carrying the cores' actions out -------------------------------------------------

    def drain(self, node: N) -> None:
        """Carry out what ``node``'s core decided (after a scenario called into it)."""
        self._drain(node)

    def _drain(self, node: N) -> None:
        while True:
            actions = self._core_actions(node)
            if not actions:
                break
            for action in actions:
                self._execute(node, action)
        self._schedule_wakeup(node)

    def _dial(self, node: N, dial_id: int, service: Service) -> None:
        """``node`` dials ``service`` (from its next alias, if it has any)."""
        i, gen = node.index, node.generation
        target = self._by_service.get(service)
        source = node.service
        if node.aliases:
            source = node.aliases[node.next_alias % len(node.aliases)]
            node.next_alias += 1
        node.dials[dial_id] = (source, service)
        if target is None or target == i:
            self._push(self.clock, "refused", (i, gen, dial_id))
        else:
            self._push(self.clock + self._delay(i, target), "syn", (i, gen, dial_id, target))

    def _departure(self, node: N, size: int) -> float:
        """When ``size`` bytes sent now have left ``node``'s uplink (now, unlimited)."""
        if self._bandwidth is None:
            return self.clock
        start = max(self.clock, self._uplink_free.get(node.index, 0.0))
        done = self._uplink_free[node.index] = start + size / self._bandwidth
        return done

    def _send(self, node: N, conn_id: int, data: bytes) -> None:
        link = node.links.get(conn_id)
        if link is not None:
            j, their_conn = link
            at = self._departure(node, len(data)) + self._delay(node.index, j)
            at = max(at, self._arrive.get(link, 0.0))
            self._arrive[link] = at
            self._push(at, "data", (j, their_conn), data)

    def _close(self, node: N, conn_id: int) -> None:
        link = node.links.pop(conn_id, None)
        if link is not None:
            j, their_conn = link
            at = max(self.clock + self._delay(node.index, j), self._arrive.get(link, 0.0))
            self._arrive.pop(link, None)
            self._push(at, "fin", (j, their_conn))

    # -- events ---------------------------------------------------------------------------

    def run_until(self, end: float, *, on_event: Callable[[Any], None] | None = None) -> None:
        """Process events until simulated time ``end`` (seconds); ``on_event(self)`` is
        called after each one."""
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
        node = self.nodes[args[0]]
        if kind == "tick":
            if self._wake_at.get(node.index) != self.clock:
                return  # superseded by a later arming
            del self._wake_at[node.index]
            if node.up:
                self._core_tick(node)
        elif kind == "data":
            if args[1] in node.links:
                self._core_received(node, args[1], data)
        elif kind == "fin":
            # Nothing more travels on this connection either way: forget both directions'
            # last delivery times, or a long run keeps one per connection it ever had.
            self._arrive.pop((node.index, args[1]), None)
            link = node.links.pop(args[1], None)
            if link is not None:
                self._arrive.pop(link, None)
                self._core_closed(node, args[1], "socket closed")
        else:
            if args[1] != node.generation or not node.up:
                self._stale(kind, args)
                return
            if kind == "refused":
                node.dials.pop(args[2], None)
                self._core_dial_failed(node, args[2], "connection refused")
            elif kind == "syn":
                self._syn(node, args[2], args[3])
                return
            elif kind == "synack":
                self._synack(node, args[2], args[3], args[4], args[5])
            else:
                self._handle_other(kind, node, args)
        self._drain(node)

    def _stale(self, kind: str, args: tuple[int, ...]) -> None:
        """An event for a dial of a node's earlier run: a connection the other side
        accepted is closed again; everything else is forgotten."""
        if kind == "synack":
            target, conn_b = args[4], args[5]
            other = self.nodes[target]
            if other.links.pop(conn_b, None) is not None:
                self._core_closed(other, conn_b, "socket closed")
                self._drain(other)

    def _syn(self, node: N, dial_id: int, target: int) -> None:
        other = self.nodes[target]
        dial = node.dials.get(dial_id)
        if dial is None:
            return  # the dial was given up meanwhile
        local, dialled = dial
        conn_a, conn_b = self._next_conn, self._next_conn + 1
        self._next_conn += 2
        back = self.clock + self._delay(node.index, target)
        if not other.up or not self._core_accepted(other, conn_b, dialled, local):
            self._push(back, "refused", (node.index, node.generation, dial_id))
            self._drain(other)
            return
        other.links[conn_b] = (node.index, conn_a)
        self._drain(other)
        self._push(back, "synack", (node.index, node.generation, dial_id, conn_a, target, conn_b))

    def _synack(self, node: N, dial_id: int, conn_a: int, target: int, conn_b: int) -> None:
        local = node.dials.pop(dial_id, (node.service, node.service))[0]
        if conn_b not in self.nodes[target].links:
            self._core_dial_failed(node, dial_id, "connection reset")
        else:
            node.links[conn_a] = (target, conn_b)
            self._core_connected(node, dial_id, conn_a, local)
