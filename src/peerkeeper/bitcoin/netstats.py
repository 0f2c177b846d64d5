"""The node's network statistics that outlive its peers.

Core keeps per-message byte counts per peer only (``mapSendBytesPerMsgType``,
``mapRecvBytesPerMsgType``, gone with the peer); Core PR #29418 ("getnetmsgstats")
proposes totals kept for the node's lifetime, keyed by direction, network, connection
type and message type, each a message count and a byte count (bytes on the wire: header
included, as Core's per-peer maps). :class:`NetStats` keeps those, and the counters the
metrics need (connection attempts and failures by reason, evictions, discouragements,
bans, DNS seed queries) and a histogram of handshake durations. Counting is a dict
update per message; nothing here grows with the number of peers.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable
from typing import Any

__all__ = ["AGGREGATE_KEYS", "HANDSHAKE_BUCKETS", "NetStats"]

#: getnetmsgstats' aggregation dimensions, in nesting order (Core PR #29418).
AGGREGATE_KEYS = ("direction", "network", "connection_type", "message_type")
#: Histogram bounds for handshake durations (seconds): connect to verack.
HANDSHAKE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class NetStats:
    """Totals since the node started (see the module docstring).

    :ivar messages: ``(direction, network, connection_type, message_type)`` ->
        ``[count, bytes]``; direction is ``"sent"`` or ``"received"``, network Core's
        RPC name (``ipv4``, ``onion``...), connection type Core's (``inbound``,
        ``outbound-full-relay``...), message type Core's or ``*other*``.
    :ivar counters: named counts: ``connection_attempts``,
        ``connection_failures:<reason>``, ``evictions``, ``discouragements``, ``bans``,
        ``dns_seed_queries``, ``handshakes``.
    :ivar handshake_counts: one count per :data:`HANDSHAKE_BUCKETS` bound (not cumulative)
        plus one for longer ones; ``handshake_sum`` their total seconds.
    """

    __slots__ = ("counters", "handshake_counts", "handshake_sum", "messages")

    def __init__(self) -> None:
        self.messages: dict[tuple[str, str, str, str], list[int]] = {}
        self.counters: Counter[str] = Counter()
        self.handshake_counts = [0] * (len(HANDSHAKE_BUCKETS) + 1)
        self.handshake_sum = 0.0

    def message(
        self, direction: str, network: str, conn_type: str, msg_type: str, size: int
    ) -> None:
        """Count one message of ``size`` bytes (on the wire)."""
        key = (direction, network, conn_type, msg_type)
        entry = self.messages.get(key)
        if entry is None:
            self.messages[key] = [1, size]
        else:
            entry[0] += 1
            entry[1] += size

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``name``."""
        self.counters[name] += n

    def handshake(self, seconds: float) -> None:
        """Record one completed handshake that took ``seconds``."""
        self.handshake_counts[bisect.bisect_left(HANDSHAKE_BUCKETS, seconds)] += 1
        self.handshake_sum += seconds
        self.counters["handshakes"] += 1

    def aggregate(self, aggregate_by: Iterable[str] = ()) -> dict[str, Any]:
        """Core PR #29418 ``getnetmsgstats``: nested objects direction -> network ->
        connection type -> message type -> ``{"bytes", "count"}`` (the PR's key order); each
        dimension named in ``aggregate_by`` is summed over and left out of the nesting
        (no "totals" key). With all four, the result is ``{"bytes", "count"}`` of
        everything.

        :raises ValueError: an unknown or repeated dimension name.
        """
        by = list(aggregate_by)
        for name in by:
            if name not in AGGREGATE_KEYS:
                raise ValueError(f"Unknown aggregate_by value: {name}")
        if len(set(by)) != len(by):
            raise ValueError("aggregate_by values must be unique")
        keep = [i for i, name in enumerate(AGGREGATE_KEYS) if name not in by]
        result: dict[str, Any] = {}
        for key, (count, size) in sorted(self.messages.items()):
            node = result
            for i in keep:
                node = node.setdefault(key[i], {})
            node["bytes"] = node.get("bytes", 0) + size
            node["count"] = node.get("count", 0) + count
        if not keep and not result:
            result = {"bytes": 0, "count": 0}
        return result
