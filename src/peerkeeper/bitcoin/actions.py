"""Actions a sans-IO peer state machine returns to the layer that owns the socket.

A protocol object never touches a socket: fed messages and ``now``, it returns a
list of these, and ConnMan carries them out (DESIGN.md, "How data flows").
"""

from __future__ import annotations

from dataclasses import dataclass

from peerkeeper.wire.actions import Disconnect
from peerkeeper.wire.messages import AddrEntry, Message

__all__ = [
    "Action",
    "Send",
    "Disconnect",
    "Misbehaving",
    "LearnedAddresses",
    "HandshakeComplete",
    "VersionReceived",
]


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``message`` to the peer."""

    message: Message


@dataclass(frozen=True, slots=True)
class Misbehaving:
    """The peer broke a rule Core punishes with discouragement and disconnection.

    Source: src/net_processing.cpp ``Misbehaving`` / ``MaybeDiscourageAndDisconnect``
    (manual and noban peers are not punished: the owner decides).
    """

    reason: str


@dataclass(frozen=True, slots=True)
class LearnedAddresses:
    """Addresses gossiped by the peer, already filtered and time-corrected.

    ``entries``: the addresses for the address table (Core ``vAddrOk`` before its
    reachability and ban filters, which the owner applies).

    ``relay``: the subset Core's ``ProcessAddrs`` (src/net_processing.cpp) hands to
    ``RelayAddress``: a message of at most 10 addresses that is not the reply to our
    ``getaddr``, entries with a (corrected) time less than 10 minutes old and a
    routable address.  They are already marked known for the sending peer.  The owner
    drops banned/discouraged ones (Core does not relay those) and passes the rest to
    :func:`peerkeeper.bitcoin.addrrelay.relay_targets`; empty by default.
    """

    entries: tuple[AddrEntry, ...]
    relay: tuple[AddrEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class HandshakeComplete:
    """The version handshake finished (verack received): the peer is fully connected."""


@dataclass(frozen=True, slots=True)
class VersionReceived:
    """An outbound peer's ``version`` arrived (src/net_processing.cpp, VERSION handler).

    ``services``: the services it announced, which overwrite the address table's
    (Core ``AddrMan::SetServices``); ``accepted``: the version passed the checks, so
    the connection counts as a success (Core ``AddrMan::Good``, done before verack and
    for feelers too, which disconnect right after).
    """

    services: int
    accepted: bool


Action = Send | Disconnect | Misbehaving | LearnedAddresses | HandshakeComplete | VersionReceived
