"""A discrete-event network of real ConnManCores in simulated time (issue 14, first part).

Every node is peerkeeper's own :class:`~peerkeeper.bitcoin.connman.ConnManCore` with its
:class:`~peerkeeper.bitcoin.addrman.AddrMan` and :class:`~peerkeeper.bitcoin.banman.BanMan`:
no rule is re-implemented here. The simulation only carries the cores' actions out:

* one event heap ordered by (time, sequence): the cores' wakeups, dial outcomes, byte
  deliveries and closes;
* a link carries bytes one way with the pair's latency (a base per pair, drawn once,
  plus jitter per delivery) and keeps TCP's order: a later send never arrives earlier;
* a dial reaches its target after one latency and is accepted or refused by the target's
  own core (inbound slots, bans); an unknown or stopped target refuses;
* DNS seeds answer with the seed nodes' addresses;
* each node has a routable virtual address: ``netgroups`` /16s hold the nodes in turn.

Deterministic: everything random comes from ``random.Random`` instances derived from
``seed``, and every event is folded into a SHA-256 (:attr:`Simulation.trace_sha256`), so
two runs with the same seed and parameters give the same hash.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

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
from peerkeeper.net.chains import CHAINS, Chain
from peerkeeper.net.connection_types import ConnectionType
from peerkeeper.net.netaddr import NetAddr, Service
from peerkeeper.wire.messages import ServiceFlags

__all__ = ["SimConfig", "SimError", "SimNode", "Simulation", "virtual_address"]

#: What simulated nodes announce: a full node (Core's NODE_NETWORK | NODE_WITNESS).
SIM_SERVICES = int(ServiceFlags.NODE_NETWORK | ServiceFlags.NODE_WITNESS)
#: First octets of the virtual /16s: public unicast space, none of Core's special ranges.
_FIRST_OCTETS = [o for o in range(11, 224) if o not in (100, 127, 169, 172, 192, 198, 203)]


class SimError(ValueError):
    """A simulation parameter out of range; raised before anything runs."""


def virtual_address(index: int, netgroups: int, port: int) -> Service:
    """Node ``index``'s address: ``netgroups`` /16 groups take the nodes in turn, and a
    node's host part is its rank within its group (``A.B.x.y``)."""
    group, rank = index % netgroups, index // netgroups
    first, second = _FIRST_OCTETS[group // 256], group % 256
    return Service(NetAddr.parse(f"{first}.{second}.{rank // 254}.{rank % 254 + 1}"), port)


@dataclass(frozen=True)
class SimConfig:
    """The network to build.

    Args:
        nodes: how many nodes (>= 2).
        seed: the random seed; the same seed gives the same run.
        netgroups: how many /16 groups the nodes are spread over (1 .. nodes; default
            one per node, at most 50,000).
        seeds: how many of the nodes are DNS seeds' answers (the first ``seeds`` nodes).
        latency: base one-way latency range, seconds (each pair draws one value).
        jitter: extra delay per delivery, uniform in [0, jitter) seconds.
        max_connections: each node's ``-maxconnections``.

    Raises :class:`SimError` for a value out of range.
    """

    nodes: int
    seed: int = 0
    netgroups: int | None = None
    seeds: int = 5
    latency: tuple[float, float] = (0.01, 0.15)
    jitter: float = 0.005
    max_connections: int = 125

    def __post_init__(self) -> None:
        if self.nodes < 2:
            raise SimError(f"nodes must be at least 2, not {self.nodes}")
        groups = self.groups
        if not 1 <= groups <= self.nodes:
            raise SimError(f"netgroups must be in 1..nodes ({self.nodes}), not {groups}")
        if groups > 256 * len(_FIRST_OCTETS) or self.nodes // groups >= 254 * 256:
            raise SimError("too many nodes or netgroups for the virtual address space")
        if not 1 <= self.seeds <= self.nodes:
            raise SimError(f"seeds must be in 1..nodes ({self.nodes}), not {self.seeds}")
        low, high = self.latency
        if not 0 <= low <= high or self.jitter < 0:
            raise SimError(f"latency {self.latency} and jitter {self.jitter} must be >= 0")
        if self.max_connections < 11:
            raise SimError("max_connections must leave room for 11 outbound peers")

    @property
    def groups(self) -> int:
        return self.nodes if self.netgroups is None else self.netgroups


@dataclass
class SimNode:
    """One simulated node: its address, its core, and whether it is running."""

    index: int
    service: Service
    core: ConnManCore
    up: bool = True
    #: conn_id -> (peer node index, the peer's conn_id)
    links: dict[int, tuple[int, int]] = field(default_factory=dict)

    def outbound(self, conn_type: ConnectionType) -> int:
        """Live, handshaken outbound peers of ``conn_type``."""
        return sum(
            1
            for p in self.core.peers.values()
            if p.conn_type is conn_type and p.proto.successfully_connected and not p.closed
        )


class Simulation:
    """A network of ``config.nodes`` real cores (see the module docstring).

    ``Simulation(SimConfig(nodes=100, seed=7))``, then :meth:`run_until` (seconds of
    simulated time from 0). Attributes: ``nodes`` (list of :class:`SimNode`), ``now``,
    ``events`` (how many were processed), :attr:`trace_sha256`.
    """

    def __init__(self, config: SimConfig, *, chain: Chain | None = None) -> None:
        self.config = config
        self.chain = chain or CHAINS["regtest"]
        self.rng = random.Random(config.seed)
        self.now = 0.0
        self.events = 0
        self._heap: list[tuple[float, int, str, tuple[int, ...], bytes]] = []
        self._seq = 0
        self._trace = hashlib.sha256()
        self._latency: dict[tuple[int, int], float] = {}
        self._arrive: dict[tuple[int, int], float] = {}  # (node, conn) -> last delivery
        self._next_conn = 1
        self._wake_at: dict[int, float] = {}
        self._answers: dict[tuple[int, int], list[NetAddr]] = {}
        self.nodes: list[SimNode] = []
        port = self.chain.default_port
        self._by_service: dict[Service, int] = {}
        for i in range(config.nodes):
            svc = virtual_address(i, config.groups, port)
            node = SimNode(i, svc, self._make_core(i))
            self.nodes.append(node)
            self._by_service[svc] = i
        self.seed_services = [n.service for n in self.nodes[: config.seeds]]
        for node in self.nodes:
            node.core.start(self.now, [(str(node.service.addr), port)], steady=self.now)
            self._drain(node)

    def _make_core(self, i: int) -> ConnManCore:
        cfg = self.config
        opts = ConnManOptions(
            chain=self.chain,
            listen=True,
            max_connections=cfg.max_connections,
            peer=PeerConfig(services=SIM_SERVICES),
            v2transport=False,
            dnsseed=True,
            dns_seeds=["seed.sim."],
            fixedseeds=False,
        )
        base = self.rng.getrandbits(64)
        return ConnManCore(
            opts,
            AddrMan(random.Random(base)),
            rng=random.Random(base + 1),
            transport_rng=random.Random(base + 2).randbytes,
            banman=BanMan(base & 0xFFFFFFFF),
        )

    # -- the trace ------------------------------------------------------------------------

    @property
    def trace_sha256(self) -> str:
        """SHA-256 (hex) of every event processed so far, in order."""
        return self._trace.hexdigest()

    def _record(self, kind: str, args: tuple[int, ...], size: int) -> None:
        self._trace.update(f"{self.now:.6f} {kind} {args} {size}\n".encode())

    # -- scheduling ---------------------------------------------------------------------

    def _push(self, at: float, kind: str, args: tuple[int, ...], data: bytes = b"") -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, kind, args, data))

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
        at = max(node.core.next_wakeup(), self.now)
        if at == float("inf") or self._wake_at.get(node.index) == at:
            return
        self._wake_at[node.index] = at
        self._push(at, "tick", (node.index,))

    # -- carrying the cores' actions out -------------------------------------------------

    def _drain(self, node: SimNode) -> None:
        """Execute every action ``node``'s core decided, then re-arm its wakeup."""
        core = node.core
        while True:
            actions = core.poll_actions()
            if not actions:
                break
            for action in actions:
                self._execute(node, action)
        self._schedule_wakeup(node)

    def _execute(self, node: SimNode, action: object) -> None:
        i = node.index
        if isinstance(action, Dial):
            target = self._by_service.get(action.service)
            if target is None or target == i:
                self._push(self.now, "refused", (i, action.id))
            else:
                self._push(self.now + self._delay(i, target), "syn", (i, action.id, target))
        elif isinstance(action, Send):
            link = node.links.get(action.conn_id)
            if link is not None:
                j, their_conn = link
                at = max(self.now + self._delay(i, j), self._arrive.get((j, their_conn), 0.0))
                self._arrive[(j, their_conn)] = at
                self._push(at, "data", (j, their_conn), action.data)
        elif isinstance(action, Close):
            link = node.links.pop(action.conn_id, None)
            if link is not None:
                j, their_conn = link
                at = max(self.now + self._delay(i, j), self._arrive.get((j, their_conn), 0.0))
                self._push(at, "fin", (j, their_conn))
        elif isinstance(action, Resolve):
            answer = [s.addr for s in self.seed_services] if action.seed else []
            self._push(self.now, "resolved", (i, action.id, int(action.seed)), b"")
            self._answers[(i, action.id)] = answer
        elif isinstance(action, PauseRead | ResumeRead):
            pass  # links have no buffers to fill; the core still pauses its own processing

    # -- events ---------------------------------------------------------------------------

    def run_until(
        self, end: float, *, on_event: Callable[[Simulation], None] | None = None
    ) -> None:
        """Process events until simulated time ``end`` (seconds); ``on_event`` is called
        after each one (for time series)."""
        heap = self._heap
        while heap and heap[0][0] <= end:
            at, _, kind, args, data = heapq.heappop(heap)
            self.now = at
            self.events += 1
            self._record(kind, args, len(data))
            self._handle(kind, args, data)
            if on_event is not None:
                on_event(self)
        self.now = max(self.now, end)

    def _handle(self, kind: str, args: tuple[int, ...], data: bytes) -> None:
        now = self.now
        node = self.nodes[args[0]]
        core = node.core
        if kind == "tick":
            if self._wake_at.get(node.index) != now:
                return  # superseded by a later arming
            del self._wake_at[node.index]
            if node.up:
                core.tick(now, steady=now)
        elif kind == "refused":
            core.dial_failed(args[1], "connection refused", now, steady=now)
        elif kind == "syn":
            dial_id, target = args[1], args[2]
            other = self.nodes[target]
            conn_a, conn_b = self._next_conn, self._next_conn + 1
            self._next_conn += 2
            if not other.up or not other.core.accepted(
                conn_b, other.service, node.service, now, steady=now
            ):
                self._push(now + self._delay(node.index, target), "refused", (node.index, dial_id))
                self._drain(other)
                return
            other.links[conn_b] = (node.index, conn_a)
            self._drain(other)
            self._push(
                now + self._delay(node.index, target),
                "synack",
                (node.index, dial_id, conn_a, target, conn_b),
            )
            return
        elif kind == "synack":
            dial_id, conn_a, target, conn_b = args[1], args[2], args[3], args[4]
            if conn_b not in self.nodes[target].links:
                core.dial_failed(dial_id, "connection reset", now, steady=now)  # closed meanwhile
            else:
                node.links[conn_a] = (target, conn_b)
                core.connected(dial_id, conn_a, node.service, now, steady=now)
        elif kind == "data":
            if args[1] in node.links:
                core.received(args[1], data, now, steady=now)
        elif kind == "fin":
            if node.links.pop(args[1], None) is not None:
                core.closed(args[1], "socket closed", now, steady=now)
        elif kind == "resolved":
            answer = self._answers.pop((node.index, args[1]), [])
            if args[2]:
                core.seed_resolved(args[1], answer, now, steady=now)
            else:
                core.resolved(args[1], None, "no such name in the simulation", now, steady=now)
        self._drain(node)
