"""A first, simple address table: what peers gossip, bounded, with Core-like getaddr.

This is the narrow interface the peer layer and the RPCs use (``add``,
``get_addr``, ``size``, ``entries``); Bitcoin Core's bucketed AddrMan
(src/addrman.cpp) will replace it behind the same methods. Pure: time and
randomness are passed in.

Rules kept from Core: only routable addresses are stored
(src/addrman.cpp ``AddSingle`` refuses ``!IsRoutable()``); an entry's time is
only moved forward, and services are OR-ed in (``AddSingle``); a ``getaddr``
reply holds at most ``max_addresses`` entries and ``max_pct`` percent of the
table, shuffled, skipping "terrible" entries older than the 30-day horizon
(``GetAddr_`` / ``IsTerrible``). The table holds at most ``capacity`` entries
(Core's tables hold 81,920); when full, a random entry is replaced.
"""

from __future__ import annotations

import random

from peerkeeper.netaddr import Network, Service
from peerkeeper.wire.messages import AddrEntry

__all__ = ["AddressTable", "ADDRMAN_HORIZON"]

#: Entries not seen for this many seconds are not handed out (src/addrman.h ``ADDRMAN_HORIZON``).
ADDRMAN_HORIZON = 30 * 86400


class AddressTable:
    """Known addresses keyed by :class:`~peerkeeper.netaddr.Service`.

    ``AddressTable(rng, capacity=81920)``. Each entry is an
    :class:`~peerkeeper.wire.messages.AddrEntry` (time, services, service) plus
    its source address.
    """

    def __init__(self, rng: random.Random, capacity: int = 1024 * 64 + 256 * 64) -> None:
        self.rng = rng
        self.capacity = capacity
        self._entries: dict[Service, AddrEntry] = {}
        self._sources: dict[Service, Service | None] = {}
        self._keys: list[Service] = []
        self._index: dict[Service, int] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def size(self, network: Network | None = None) -> int:
        """Number of entries, optionally only those on ``network``."""
        if network is None:
            return len(self._entries)
        return sum(1 for s in self._entries if s.addr.get_net_class() == network)

    def entries(self) -> list[AddrEntry]:
        """All entries (a copy)."""
        return list(self._entries.values())

    def source_of(self, service: Service) -> Service | None:
        """The peer that told us about ``service`` (None when added locally)."""
        return self._sources.get(service)

    def add(
        self,
        entries: list[AddrEntry] | tuple[AddrEntry, ...],
        source: Service | None,
        time_penalty: float = 0.0,
    ) -> int:
        """Store gossiped entries; returns how many were new.

        Unroutable addresses are refused. ``time_penalty`` (seconds, Core uses
        2 h for gossip) is subtracted from each entry's time, as in
        ``AddrMan::Add``, unless the entry is its own source.
        """
        added = 0
        for entry in entries:
            service = entry.service
            if not service.addr.is_routable():
                continue
            penalty = 0 if source is not None and source.addr == service.addr else int(time_penalty)
            time = max(0, entry.time - penalty)
            old = self._entries.get(service)
            if old is not None:
                self._entries[service] = AddrEntry(
                    max(old.time, time), old.services | entry.services, service
                )
                continue
            if len(self._keys) >= self.capacity:
                self._remove(self._keys[self.rng.randrange(len(self._keys))])
            self._entries[service] = AddrEntry(time, entry.services, service)
            self._sources[service] = source
            self._index[service] = len(self._keys)
            self._keys.append(service)
            added += 1
        return added

    def _remove(self, service: Service) -> None:
        i = self._index.pop(service)
        last = self._keys.pop()
        if last != service:
            self._keys[i] = last
            self._index[last] = i
        del self._entries[service]
        del self._sources[service]

    def get_addr(
        self, max_addresses: int, max_pct: int, now: float, network: Network | None = None
    ) -> list[AddrEntry]:
        """A random sample for a getaddr reply or ``getnodeaddresses``.

        At most ``max_addresses`` (0 = no count limit) and at most ``max_pct``
        percent of the table (0 = no percentage limit); entries not seen within
        the horizon are skipped; ``network`` restricts to one network.
        Source: src/addrman.cpp ``AddrManImpl::GetAddr_``.
        """
        n = len(self._keys)
        limit = n
        if max_pct:
            limit = max_pct * n // 100
        if max_addresses:
            limit = min(limit, max_addresses)
        # Partial Fisher-Yates over a copy of the keys: cost grows with the reply,
        # not the table (Core's GetAddr_ walks vRandom the same way).
        keys = self._keys[:]  # a C-level copy; the Python-level work below is O(reply)
        rng = self.rng
        out: list[AddrEntry] = []
        for i in range(n):
            if len(out) >= limit:
                break
            j = rng.randrange(i, n)
            keys[i], keys[j] = keys[j], keys[i]
            entry = self._entries[keys[i]]
            if network is not None and entry.service.addr.get_net_class() != network:
                continue
            if entry.time < now - ADDRMAN_HORIZON or entry.time > now + 600:
                continue
            out.append(entry)
        return out
