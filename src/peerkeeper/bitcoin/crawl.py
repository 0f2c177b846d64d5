"""A network crawler's decisions: whom to visit next, how long to wait, what to record.

Pure. The crawl is bitnodes' (github.com/ayeowch/bitnodes, crawl.py) and virtu's
p2p-crawler's: from seed addresses, visit every address once, breadth first; a visit
connects, completes the version handshake, sends ``getaddr``, collects the
``addr``/``addrv2`` answers, records the node, and disconnects; every new address
learned joins the back of the queue. :class:`CrawlFrontier` is the queue and the
records; :class:`CrawlTimeouts` the per-network limits (virtu's defaults);
:func:`summarize` the run's snapshot. The asyncio driver is
:mod:`peerkeeper.shell.crawler`.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from peerkeeper.dispatch.tokenbucket import TokenBucket
from peerkeeper.net.netaddr import Network, Service
from peerkeeper.wire.messages import services_names

__all__ = [
    "CrawlFrontier",
    "CrawlTimeouts",
    "NodeRecord",
    "RECORD_FIELDS",
    "summarize",
    "timeouts_for",
]


@dataclass(frozen=True, slots=True)
class CrawlTimeouts:
    """Seconds a visit may take: ``connect`` (TCP, or through the proxy), ``message``
    (the version handshake), ``getaddr`` (from the handshake until the answers stop)."""

    connect: float
    message: float
    getaddr: float


#: virtu's p2p-crawler defaults: IP networks 3/5/30 s, Tor (and I2P, CJDNS through
#: their proxies) 30/60/120 s.
IP_TIMEOUTS = CrawlTimeouts(3.0, 5.0, 30.0)
OVERLAY_TIMEOUTS = CrawlTimeouts(30.0, 60.0, 120.0)


def timeouts_for(network: Network) -> CrawlTimeouts:
    """The limits for an address on ``network`` (IPv4/IPv6: :data:`IP_TIMEOUTS`)."""
    return IP_TIMEOUTS if network in (Network.IPV4, Network.IPV6) else OVERLAY_TIMEOUTS


@dataclass(slots=True)
class NodeRecord:
    """What one visit found. ``reachable`` is False with ``failure`` (why) when the
    handshake did not complete; the rest comes from the peer's ``version`` message.
    ``latency_ms``: connect to handshake complete; ``transport``: ``"v1"``/``"v2"``;
    ``addrs_returned``: addresses in its ``addr``/``addrv2`` answers."""

    address: str
    network: str
    reachable: bool = False
    failure: str | None = None
    version: int | None = None
    services: int | None = None
    user_agent: str | None = None
    start_height: int | None = None
    relay: bool | None = None
    latency_ms: float | None = None
    transport: str | None = None
    addrs_returned: int = 0
    crawled_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON object (``services`` also as Core's names)."""
        out = asdict(self)
        if self.services is not None:
            out["services_names"] = services_names(self.services)
        return out


#: The record's fields, in order (the CSV header and the database columns).
RECORD_FIELDS: tuple[str, ...] = tuple(NodeRecord.__dataclass_fields__)


@dataclass(slots=True)
class CrawlFrontier:
    """The crawl's queue and records (breadth first, each address visited once).

    ``reachable``: the networks we can dial (others are recorded as failures without a
    dial, "network not reachable"); ``rate``: visits started per second at most (0:
    unlimited, burst ``max(1, rate)``); ``max_addrs_per_node``: new addresses kept from
    one node's answers (a lying peer's flood cannot fill the queue).
    """

    reachable: frozenset[Network]
    rate: float = 0.0
    max_addrs_per_node: int = 2500
    known: set[str] = field(default_factory=set)
    queue: collections.deque[Service] = field(default_factory=collections.deque)
    records: dict[str, NodeRecord] = field(default_factory=dict)
    in_flight: set[str] = field(default_factory=set)
    edges: list[tuple[str, str]] = field(default_factory=list)
    keep_edges: bool = False
    _bucket: TokenBucket | None = None

    def start(self, now: float) -> None:
        """Arm the rate limit at ``now``."""
        if self.rate > 0:
            self._bucket = TokenBucket(self.rate, max(1.0, self.rate), now)

    def add(self, services: Iterable[Service], source: str | None = None) -> int:
        """Queue every address not seen before; returns how many were new."""
        new = 0
        for svc in services:
            key = str(svc)
            if self.keep_edges and source is not None:
                self.edges.append((source, key))
            if key in self.known:
                continue
            self.known.add(key)
            self.queue.append(svc)
            new += 1
        return new

    def resume(self, done: Iterable[NodeRecord], pending: Iterable[Service]) -> None:
        """Continue an interrupted crawl: ``done`` records stay, ``pending`` is queued again."""
        for rec in done:
            self.known.add(rec.address)
            self.records[rec.address] = rec
        self.add(pending)

    def next_visit(self, now: float) -> Service | tuple[Service, NodeRecord] | None:
        """The next address to visit, or None (queue empty, or the rate limit says wait:
        see :meth:`wait`). An address on an unreachable network comes back with its
        finished failure record instead (nothing to dial)."""
        if not self.queue:
            return None
        if self._bucket is not None and not self._bucket.try_take(1.0, now):
            return None
        svc = self.queue.popleft()
        network = svc.addr.get_network()
        if network not in self.reachable:
            rec = NodeRecord(
                str(svc), network.rpc_name, failure="network not reachable", crawled_at=now
            )
            self.records[rec.address] = rec
            return svc, rec
        self.in_flight.add(str(svc))
        return svc

    def wait(self, now: float) -> float:
        """Seconds until the rate limit allows the next visit (0: now)."""
        if self._bucket is None or not self.queue:
            return 0.0
        return max(0.0, self._bucket.when_available(1.0, now) - now)

    def finish(self, record: NodeRecord) -> None:
        """A visit ended: keep its record."""
        self.in_flight.discard(record.address)
        self.records[record.address] = record

    @property
    def done(self) -> bool:
        """Nothing queued and nothing in flight."""
        return not self.queue and not self.in_flight

    def pending(self) -> list[Service]:
        """What a resumed crawl must still visit: the queue and the visits in flight."""
        flying = [Service.parse(a, 0) for a in sorted(self.in_flight)]
        return [*flying, *self.queue]


def summarize(records: Iterable[NodeRecord]) -> dict[str, Any]:
    """The run's snapshot (bitnodes' export): totals, reachable nodes per network, and
    the reachable nodes' user agents, protocol versions and service bits, most common
    first."""
    recs = list(records)
    reachable = [r for r in recs if r.reachable]
    per_net = collections.Counter(r.network for r in reachable)
    agents = collections.Counter(r.user_agent or "" for r in reachable)
    versions = collections.Counter(r.version for r in reachable)
    services = collections.Counter(f"{r.services or 0:016x}" for r in reachable)
    failures = collections.Counter(r.failure for r in recs if not r.reachable)
    return {
        "visited": len(recs),
        "reachable": len(reachable),
        "reachable_per_network": dict(per_net.most_common()),
        "user_agents": dict(agents.most_common()),
        "versions": {str(k): v for k, v in versions.most_common()},
        "services": dict(services.most_common()),
        "failures": {str(k): v for k, v in failures.most_common()},
        "transports": dict(collections.Counter(r.transport for r in reachable).most_common()),
    }
