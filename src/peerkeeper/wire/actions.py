"""The action every protocol's peer state machine shares: close this connection (sans-IO).

Bitcoin Core marks a ``CNode`` with ``fDisconnect`` and says why in the log
(src/net.h, ``DisconnectMsg`` in src/net_processing.cpp); Octez's pool closes a
connection with a reason too. Both of peerkeeper's peers (:mod:`peerkeeper.bitcoin.peer`,
:mod:`peerkeeper.native.peer`) return this; the owner closes the socket.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Disconnect"]


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close the connection; ``reason`` (text) is logged (Core's ``DisconnectMsg``)."""

    reason: str
