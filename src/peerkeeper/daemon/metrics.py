"""Prometheus metrics of a running Bitcoin node (prometheus-client), for ``/metrics``.

One :class:`NodeCollector` reads the node's state when scraped: nothing is counted on
the hot path beyond what the core keeps anyway (:class:`~peerkeeper.bitcoin.netstats.NetStats`
and the connection tables), so an unscraped node pays nothing. Names follow Prometheus'
conventions: ``peerkeeper_`` prefix, base units (seconds, bytes), ``_total`` on counters.

Each node has its own registry (:func:`registry_for`), so two nodes in one process (the
tests, the simulator's daemons) never share series.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from peerkeeper.bitcoin.netstats import HANDSHAKE_BUCKETS
from peerkeeper.shell.nativenode import NativeNode

if TYPE_CHECKING:
    from peerkeeper.daemon.node import Node

__all__ = ["CONTENT_TYPE", "NativeCollector", "NodeCollector", "registry_for", "render"]

#: The text exposition format's content type (version 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class NodeCollector(Collector):
    """Collects a :class:`~peerkeeper.daemon.node.Node`'s metrics at scrape time.

    Series (labels in brackets):

    * ``peerkeeper_peers`` [direction, network, connection_type, transport]
    * ``peerkeeper_{sent,received}_bytes_total``, ``peerkeeper_messages_{sent,received}_total``
      [network, connection_type, msg_type]: every message since start, peers gone included
    * ``peerkeeper_handshake_duration_seconds`` (histogram): connect to verack
    * ``peerkeeper_connection_attempts_total``; ``peerkeeper_connection_failures_total`` [reason]
    * ``peerkeeper_evictions_total``, ``peerkeeper_discouragements_total``, ``peerkeeper_bans_total``,
      ``peerkeeper_dns_seed_queries_total``
    * ``peerkeeper_addrman_entries`` [table, network], ``peerkeeper_addrman_terrible_entries``
    * ``peerkeeper_banned`` (current ban entries), ``peerkeeper_pending_requests``
      (the dispatch layer's table: pings and getaddrs awaiting a reply)
    * ``peerkeeper_events_published_total``, ``peerkeeper_event_subscribers``,
      ``peerkeeper_event_subscribers_dropped_total``
    * ``peerkeeper_network_bytes_{sent,received}_total`` (Core's getnettotals)
    """

    def __init__(self, node: Node) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        node = self.node
        core = node.connman.core
        now = node.clock()
        peers = GaugeMetricFamily(
            "peerkeeper_peers",
            "Connected peers",
            labels=["direction", "network", "connection_type", "transport"],
        )
        counts: Counter[tuple[str, str, str, str]] = Counter()
        for p in core.peers.values():
            direction = "inbound" if p.inbound else "outbound"
            counts[
                (direction, p.net_class.rpc_name, p.conn_type.value, p.transport.transport_type)
            ] += 1
        for labels, n in sorted(counts.items()):
            peers.add_metric(list(labels), n)
        yield peers

        stats = core.stats
        msg_labels = ["network", "connection_type", "msg_type"]
        families = {
            (direction, 0): CounterMetricFamily(
                f"peerkeeper_messages_{direction}", f"Messages {direction}", labels=msg_labels
            )
            for direction in ("sent", "received")
        } | {
            (direction, 1): CounterMetricFamily(
                f"peerkeeper_{direction}_bytes",
                f"Bytes of messages {direction}, headers included",
                labels=msg_labels,
            )
            for direction in ("sent", "received")
        }
        for (direction, network, conn_type, msg_type), (count, size) in sorted(
            stats.messages.items()
        ):
            families[(direction, 0)].add_metric([network, conn_type, msg_type], count)
            families[(direction, 1)].add_metric([network, conn_type, msg_type], size)
        yield from families.values()

        buckets: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip(HANDSHAKE_BUCKETS, stats.handshake_counts, strict=False):
            running += n
            buckets.append((repr(bound), running))
        buckets.append(("+Inf", running + stats.handshake_counts[-1]))
        yield HistogramMetricFamily(
            "peerkeeper_handshake_duration_seconds",
            "Time from connection to verack",
            buckets=buckets,
            sum_value=stats.handshake_sum,
        )

        c = stats.counters
        yield _counter(
            "peerkeeper_connection_attempts",
            "Outbound connection attempts",
            c["connection_attempts"],
        )
        failures = CounterMetricFamily(
            "peerkeeper_connection_failures", "Failed outbound connections", labels=["reason"]
        )
        for key, n in sorted(c.items()):
            if key.startswith("connection_failures:"):
                failures.add_metric([key.split(":", 1)[1]], n)
        yield failures
        yield _counter("peerkeeper_evictions", "Inbound peers evicted for a slot", c["evictions"])
        yield _counter("peerkeeper_discouragements", "Peers discouraged", c["discouragements"])
        yield _counter("peerkeeper_bans", "Bans set (setban)", c["bans"])
        yield _counter("peerkeeper_dns_seed_queries", "DNS seed queries", c["dns_seed_queries"])
        yield _counter("peerkeeper_network_bytes_sent", "All bytes sent", core.total_bytes_sent)
        yield _counter(
            "peerkeeper_network_bytes_received", "All bytes received", core.total_bytes_recv
        )

        entries = GaugeMetricFamily(
            "peerkeeper_addrman_entries", "Address manager entries", labels=["table", "network"]
        )
        for network, row in sorted(node.addrman.info().items()):
            if network == "all_networks":
                continue
            entries.add_metric(["new", network], row["new"])
            entries.add_metric(["tried", network], row["tried"])
        yield entries
        terrible = sum(1 for info in node.addrman.infos() if info.is_terrible(now))
        yield GaugeMetricFamily(
            "peerkeeper_addrman_terrible_entries",
            "Entries addrman would drop (Core IsTerrible)",
            value=terrible,
        )
        yield GaugeMetricFamily(
            "peerkeeper_banned", "Current ban entries", value=len(node.banman.list_banned(now))
        )
        yield GaugeMetricFamily(
            "peerkeeper_pending_requests",
            "Requests awaiting a reply (dispatch layer)",
            value=len(core.pending),
        )
        hub = node.event_hub
        yield _counter("peerkeeper_events_published", "Events published", hub.published)
        yield GaugeMetricFamily(
            "peerkeeper_event_subscribers", "Event stream subscribers", value=hub.subscribers
        )
        yield _counter(
            "peerkeeper_event_subscribers_dropped",
            "Event subscribers dropped for reading too slowly",
            hub.slow_dropped,
        )


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def registry_for(node: Node | NativeNode) -> CollectorRegistry:
    """A registry of its own holding the collector for ``node`` (Bitcoin or native)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        NativeCollector(node) if isinstance(node, NativeNode) else NodeCollector(node)
    )
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition of ``registry`` (what ``/metrics`` answers)."""
    return generate_latest(registry)


class NativeCollector(Collector):
    """Collects a :class:`~peerkeeper.shell.nativenode.NativeNode`'s metrics (Octez's
    pool, seed 003; the dispatch layer, seed 004) at scrape time.

    * ``peerkeeper_pool_points`` [state], ``peerkeeper_pool_peers`` [state]: known points
      and peer ids by Octez state (requested, accepted, running, disconnected);
    * ``peerkeeper_pool_ip_greylist_fill_ratio``, ``peerkeeper_pool_greylisted_peers``;
    * ``peerkeeper_pool_swaps_total``;
    * ``peerkeeper_dispatch_pending_requests``, ``peerkeeper_dispatch_queued_bytes``
      (waiting to leave, all peers), ``peerkeeper_dispatch_credit_stalled_conversations``
      (conversations with bytes waiting for the receiver's credit),
      ``peerkeeper_dispatch_messages_{sent,received}_total``.
    """

    def __init__(self, node: NativeNode) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        core = self.node.core
        if core is None:  # not started
            return
        pool = core.pool
        points = GaugeMetricFamily("peerkeeper_pool_points", "Known points", labels=["state"])
        for state, n in sorted(Counter(p.state.value for p in pool.known_points.values()).items()):
            points.add_metric([state], n)
        yield points
        peers = GaugeMetricFamily("peerkeeper_pool_peers", "Known peer ids", labels=["state"])
        for state, n in sorted(
            Counter(p.state.value for p in pool.known_peer_ids.values()).items()
        ):
            peers.add_metric([state], n)
        yield peers
        yield GaugeMetricFamily(
            "peerkeeper_pool_ip_greylist_fill_ratio",
            "Fill of the IP greylist's counting Bloom filter",
            value=pool.ip_greylist.fill_ratio(),
        )
        yield GaugeMetricFamily(
            "peerkeeper_pool_greylisted_peers",
            "Peer ids in the greylist",
            value=len(pool.peer_greylist),
        )
        yield _counter("peerkeeper_pool_swaps", "Swaps carried out", core.swaps)
        dispatcher = self.node.dispatcher
        if dispatcher is not None:
            yield GaugeMetricFamily(
                "peerkeeper_dispatch_pending_requests",
                "Requests awaiting a reply",
                value=len(dispatcher.pending),
            )
            yield GaugeMetricFamily(
                "peerkeeper_dispatch_queued_bytes",
                "Bytes queued to send, all peers",
                value=sum(dispatcher.queued_bytes(p) for p in list(dispatcher._queues)),
            )
            yield GaugeMetricFamily(
                "peerkeeper_dispatch_credit_stalled_conversations",
                "Conversations with bytes waiting for the receiver's credit",
                value=sum(1 for c in dispatcher.conversations.values() if c.waiting_bytes),
            )
            yield _counter(
                "peerkeeper_dispatch_messages_sent", "Messages sent", dispatcher.stats.sent
            )
            yield _counter(
                "peerkeeper_dispatch_messages_received",
                "Messages received",
                dispatcher.stats.received,
            )
