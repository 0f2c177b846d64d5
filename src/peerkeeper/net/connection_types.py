"""Connection types with Bitcoin Core's names and RPC strings.

Source: src/node/connection_types.h and src/node/connection_types.cpp
(``ConnectionTypeAsString``).
"""

from __future__ import annotations

import enum

__all__ = ["ConnectionType"]


class ConnectionType(enum.Enum):
    """Why a connection exists; the value is Core's RPC string (getpeerinfo ``connection_type``)."""

    INBOUND = "inbound"
    OUTBOUND_FULL_RELAY = "outbound-full-relay"
    MANUAL = "manual"
    FEELER = "feeler"
    BLOCK_RELAY = "block-relay-only"
    ADDR_FETCH = "addr-fetch"

    @property
    def is_inbound(self) -> bool:
        """True for connections the peer opened."""
        return self is ConnectionType.INBOUND

    @property
    def expects_services(self) -> bool:
        """Core's ``ExpectServicesFromConn``: full-relay, block-relay-only and addr-fetch (src/net.h)."""
        return self in (
            ConnectionType.OUTBOUND_FULL_RELAY,
            ConnectionType.BLOCK_RELAY,
            ConnectionType.ADDR_FETCH,
        )

    @property
    def relays_addrs(self) -> bool:
        """Core's ``RelayAddrsWithConn``: every type but block-relay-only (src/net.h)."""
        return self is not ConnectionType.BLOCK_RELAY
