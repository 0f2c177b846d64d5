"""The Bitcoin peer: a sans-IO state machine for one connection's P2P conversation.

Fed decoded messages and the current time, :class:`BitcoinPeer` returns
:mod:`~peerkeeper.protocols.actions` (send this, disconnect, misbehaving, learned
addresses). It never reads a clock or a socket; the random source is passed in.

Behaviour follows Bitcoin Core ``src/net_processing.cpp`` (``ProcessMessage``,
``PushNodeVersion``, ``MaybeSendPing``, ``ProcessPong``, ``ProcessAddrs``, the
``GETADDR`` handler) and ``src/net.cpp`` (``InactivityCheck``):

* version handshake: outbound peers send version first; inbound peers answer the
  peer's version with theirs; both then send ``wtxidrelay`` and ``sendaddrv2``
  (only between version and verack; late ones disconnect, as Core does) and
  ``verack``. A version nonce that we sent ourselves means we connected to
  ourselves: disconnect. Peers below ``MIN_PEER_PROTO_VERSION`` are disconnected,
  and so are outbound full-relay / block-relay / addr-fetch peers without
  ``NODE_NETWORK | NODE_WITNESS`` (or the limited variant).
* messages other than version before the version are ignored; other messages
  before verack are ignored, as Core does.
* ping: the first right after the handshake, then ``PING_INTERVAL`` (2 min) after
  the last finished one; random non-zero nonce; a pong with a wrong nonce is
  ignored; no pong within ``TIMEOUT_INTERVAL`` (20 min) disconnects.
* inactivity: once ``peer_connect_timeout`` (60 s) has passed, disconnect if
  nothing was ever sent or received, if nothing was sent or received for 20 min,
  or if the handshake has not completed.
* addresses: outbound address-relay peers get one ``getaddr`` after their version;
  inbound peers' ``getaddr`` is answered once per connection; received
  ``addr``/``addrv2`` pass Core's token bucket (0.1/s, 1000 after our getaddr),
  service filter and time correction before being returned as
  :class:`~peerkeeper.protocols.actions.LearnedAddresses`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from peerkeeper.connection_types import ConnectionType
from peerkeeper.netaddr import NetAddr, Network, Service
from peerkeeper.protocols.actions import (
    Action,
    Disconnect,
    HandshakeComplete,
    LearnedAddresses,
    Misbehaving,
    Send,
)
from peerkeeper.wire.codec import DecodeError, LimitExceeded
from peerkeeper.wire.messages import (
    MAX_ADDR_TO_SEND,
    MIN_PEER_PROTO_VERSION,
    PROTOCOL_VERSION,
    Addr,
    AddrEntry,
    AddrV2,
    GetAddr,
    Message,
    Ping,
    Pong,
    SendAddrV2,
    ServiceFlags,
    Verack,
    Version,
    WtxidRelay,
)

__all__ = [
    "PING_INTERVAL",
    "TIMEOUT_INTERVAL",
    "DEFAULT_PEER_CONNECT_TIMEOUT",
    "MAX_PCT_ADDR_TO_SEND",
    "PeerConfig",
    "AddrSource",
    "BitcoinPeer",
    "has_all_desirable_service_flags",
]

#: Seconds between automatic pings (src/net_processing.cpp ``PING_INTERVAL``).
PING_INTERVAL = 120.0
#: Seconds of silence (either direction) or of an unanswered ping before disconnecting (src/net.h).
TIMEOUT_INTERVAL = 20 * 60.0
#: Seconds a new connection has to complete the handshake (src/net.h ``DEFAULT_PEER_CONNECT_TIMEOUT``).
DEFAULT_PEER_CONNECT_TIMEOUT = 60.0
#: Percentage of the address table a getaddr reply may reveal (src/net_processing.cpp).
MAX_PCT_ADDR_TO_SEND = 23
#: Addr token bucket refill, addresses per second (src/net_processing.cpp ``MAX_ADDR_RATE_PER_SECOND``).
MAX_ADDR_RATE_PER_SECOND = 0.1
#: Addr token bucket soft cap (src/net_processing.cpp ``MAX_ADDR_PROCESSING_TOKEN_BUCKET``).
MAX_ADDR_PROCESSING_TOKEN_BUCKET = float(MAX_ADDR_TO_SEND)
#: BIP339 / BIP155 negotiation needs at least this common version (src/node/protocol_version.h).
WTXID_RELAY_VERSION = 70016
#: Pings carry a nonce above this version (BIP31, src/node/protocol_version.h).
BIP0031_VERSION = 60000

_DESIRABLE = ServiceFlags.NODE_NETWORK | ServiceFlags.NODE_WITNESS
_DESIRABLE_LIMITED = ServiceFlags.NODE_NETWORK_LIMITED | ServiceFlags.NODE_WITNESS


def has_all_desirable_service_flags(services: int) -> bool:
    """True if ``services`` has NETWORK|WITNESS or NETWORK_LIMITED|WITNESS.

    Source: src/net_processing.cpp ``HasAllDesirableServiceFlags`` with the
    limited variant Core accepts near the tip (a node without a chain is always
    "near the tip").
    """
    return (services & _DESIRABLE) == _DESIRABLE or (
        services & _DESIRABLE_LIMITED
    ) == _DESIRABLE_LIMITED


_SAFE_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;-_/:?@()"
)


def sanitize_string(s: str) -> str:
    """Keep only Core's ``SAFE_CHARS_DEFAULT`` (src/util/strencodings.cpp ``SanitizeString``)."""
    return "".join(c for c in s if c in _SAFE_CHARS)


def may_have_useful_address_db(services: int) -> bool:
    """Core's ``MayHaveUsefulAddressDB``: NODE_NETWORK or NODE_NETWORK_LIMITED (src/protocol.h)."""
    return bool(services & (ServiceFlags.NODE_NETWORK | ServiceFlags.NODE_NETWORK_LIMITED))


@dataclass(frozen=True, slots=True)
class PeerConfig:
    """What we announce in version, and timeouts (seconds).

    ``services`` (our ServiceFlags), ``user_agent`` (BIP14, e.g. ``/peerkeeper:0.1.0/``),
    ``start_height`` (int), ``relay`` (the version relay flag: do we want tx
    announcements), ``protocol_version``, ``peer_connect_timeout`` (Core's
    ``-peertimeout``), ``ping_interval``, ``timeout_interval``.
    """

    services: int = 0
    user_agent: str = "/peerkeeper:0.1.0/"
    start_height: int = 0
    relay: bool = False
    protocol_version: int = PROTOCOL_VERSION
    peer_connect_timeout: float = DEFAULT_PEER_CONNECT_TIMEOUT
    ping_interval: float = PING_INTERVAL
    timeout_interval: float = TIMEOUT_INTERVAL


class AddrSource(Protocol):
    """The narrow view of the address table a peer needs to answer ``getaddr``."""

    def get_addr(self, max_addresses: int, max_pct: int, now: float) -> list[AddrEntry]:
        """Up to ``max_addresses`` entries, at most ``max_pct`` percent of the table."""
        ...


@dataclass(slots=True)
class PingState:
    """Ping bookkeeping (src/net_processing.cpp ``Peer::m_ping_*``); times in seconds."""

    nonce_sent: int = 0
    start: float = 0.0
    queued: bool = False
    last_time: float | None = None
    min_time: float | None = None


@dataclass(slots=True)
class _Their:
    """What the peer told us in its version message."""

    version: int = 0
    services: int = 0
    user_agent: str = ""
    start_height: int = -1
    relay: bool = False
    time_offset: int = 0
    addr_me: Service | None = None


class BitcoinPeer:
    """One Bitcoin P2P conversation, sans-IO.

    Construct with the connection's ``conn_type``, the peer's ``addr``
    (:class:`~peerkeeper.netaddr.Service`), our ``local_nonce`` for the version
    message, a :class:`PeerConfig`, ``now`` (seconds, the connection time), an
    ``rng`` (``random.Random``), an :class:`AddrSource` for getaddr replies and
    ``is_local_nonce(nonce) -> bool`` (true when the nonce belongs to one of our
    own outbound version messages: a self-connection).

    Drive it with :meth:`start`, :meth:`on_message`, :meth:`on_decode_error` and
    :meth:`tick`; each returns a list of actions. :meth:`next_wakeup` tells when
    :meth:`tick` next has work (for one shared timer heap). The owner updates
    :attr:`last_send` / :attr:`last_recv` when bytes actually move.
    """

    def __init__(
        self,
        *,
        conn_type: ConnectionType,
        addr: Service,
        local_nonce: int,
        config: PeerConfig,
        now: float,
        rng: random.Random,
        addr_source: AddrSource,
        is_local_nonce: Callable[[int], bool] | None = None,
    ) -> None:
        self.conn_type = conn_type
        self.addr = addr
        self.local_nonce = local_nonce
        self.config = config
        self.rng = rng
        self.addr_source = addr_source
        self._is_local_nonce = is_local_nonce
        self.connected_at = now
        self.last_send = 0.0
        self.last_recv = 0.0
        self.version_sent = False
        self.their = _Their()
        self.version_received = False
        self.successfully_connected = False
        self.common_version = config.protocol_version
        self.wants_addrv2 = False
        self.wtxid_relay = False
        self.ping = PingState()
        self.getaddr_sent = False
        self.getaddr_recvd = False
        self.addr_relay_enabled = False
        self.addr_token_bucket = 1.0
        self.addr_token_timestamp = now
        self.addr_processed = 0
        self.addr_rate_limited = 0
        self.disconnected = False

    # -- lifecycle ----------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Begin the conversation: an outbound peer sends its version now."""
        if self.conn_type.is_inbound:
            return []
        return [self._push_version(now)]

    def _push_version(self, now: float) -> Send:
        self.version_sent = True
        cfg = self.config
        msg = Version(
            version=cfg.protocol_version,
            services=cfg.services,
            timestamp=int(now),
            addr_recv_services=0,
            addr_recv=self.addr,
            addr_from_services=cfg.services,
            addr_from=Service(NetAddr(Network.IPV6, bytes(16)), 0),
            nonce=self.local_nonce,
            user_agent=cfg.user_agent,
            start_height=cfg.start_height,
            relay=cfg.relay,
        )
        return Send(msg)

    def request_ping(self) -> None:
        """Queue a ping to be sent at the next :meth:`tick` (the ``ping`` RPC)."""
        self.ping.queued = True

    # -- timers -------------------------------------------------------------------------

    def next_wakeup(self) -> float:
        """The earliest time (seconds) at which :meth:`tick` may have something to do.

        Never earlier than the first inactivity check (``connected_at +
        peer_connect_timeout``), since nothing can time out before it; ``inf`` once
        the conversation is over.
        """
        if self.disconnected:
            return float("inf")
        cfg = self.config
        first_check = self.connected_at + cfg.peer_connect_timeout + 0.001
        if not self.successfully_connected:
            return first_check
        if self.ping.queued:
            return 0.0
        idle = min(self.last_send, self.last_recv) + cfg.timeout_interval + 0.001
        wait = cfg.timeout_interval if self.ping.nonce_sent else cfg.ping_interval
        ping_due = self.ping.start + wait + 0.001
        if self.ping.nonce_sent:
            ping_due = max(ping_due, first_check)  # a ping timeout is an inactivity check
        return min(max(idle, first_check), ping_due)

    def tick(self, now: float) -> list[Action]:
        """Run the inactivity checks and send a due ping (Core ``InactivityCheck``, ``MaybeSendPing``)."""
        if self.disconnected:
            return []
        reason = self._inactivity(now)
        if reason is not None:
            return self._disconnect(reason)
        if not self.successfully_connected:
            return []
        return self._maybe_send_ping(now)

    def _inactivity(self, now: float) -> str | None:
        cfg = self.config
        if not now > self.connected_at + cfg.peer_connect_timeout:
            return None
        if not self.last_recv or not self.last_send:
            never = ""
            if not self.last_recv:
                never += ", never received from peer"
            if not self.last_send:
                never += ", never sent to peer"
            return f"socket no message in first {int(cfg.peer_connect_timeout)} seconds{never}"
        if now > self.last_send + cfg.timeout_interval:
            return f"socket sending timeout: {int(now - self.last_send)}s"
        if now > self.last_recv + cfg.timeout_interval:
            return f"socket receive timeout: {int(now - self.last_recv)}s"
        if not self.successfully_connected:
            return "version handshake timeout"
        if self.ping.nonce_sent and now > self.ping.start + cfg.timeout_interval:
            return f"ping timeout: {now - self.ping.start:.3f}s"
        return None

    def _maybe_send_ping(self, now: float) -> list[Action]:
        ping = self.ping
        if not ping.queued and not (
            ping.nonce_sent == 0 and now > ping.start + self.config.ping_interval
        ):
            return []
        nonce = 0
        while nonce == 0:
            nonce = self.rng.getrandbits(64)
        ping.queued = False
        ping.start = now
        if self.common_version > BIP0031_VERSION:
            ping.nonce_sent = nonce
            return [Send(Ping(nonce))]
        ping.nonce_sent = 0
        return [Send(Ping(None))]

    def _disconnect(self, reason: str) -> list[Action]:
        self.disconnected = True
        return [Disconnect(reason)]

    # -- input ----------------------------------------------------------------------------

    def on_decode_error(self, command: str, error: DecodeError, now: float) -> list[Action]:
        """A message of ``command`` could not be decoded.

        Core decides with the connection's state first, as ``ProcessMessage`` does
        before it deserializes: an undecodable ``version`` ends the connection (no
        handshake can follow); anything else before the handshake completes is
        ignored; an ``addr`` from a peer we do not relay addresses with is ignored;
        a short ``pong`` cancels the outstanding ping ("Short payload"). Then a
        limit Core punishes (:class:`~peerkeeper.wire.codec.LimitExceeded`) is
        misbehaviour — the owner decides what that costs (manual peers are not
        punished) — and any other malformed message is dropped.
        """
        if self.disconnected:
            return []
        self.last_recv = now
        if command == "version":
            if self.version_received:
                return []
            return self._disconnect(f"malformed version message: {error}")
        if not self.successfully_connected:
            return []
        if command in ("addr", "addrv2") and not self._setup_address_relay():
            return []
        if command == "pong":
            self.ping.nonce_sent = 0
            return []
        if isinstance(error, LimitExceeded):
            return [Misbehaving(str(error))]
        return []

    def on_message(self, msg: Message, now: float) -> list[Action]:
        """Process one decoded message; returns the actions it causes."""
        if self.disconnected:
            return []
        self.last_recv = now
        if isinstance(msg, Version):
            return self._on_version(msg, now)
        if not self.version_received:
            return []  # "non-version message before version handshake": ignored
        if isinstance(msg, Verack):
            if self.successfully_connected:
                return []  # redundant verack
            self.successfully_connected = True
            return [HandshakeComplete(), *self._maybe_send_ping(now)]
        if isinstance(msg, WtxidRelay):
            if self.successfully_connected:
                return self._disconnect("wtxidrelay received after verack")
            if self.common_version >= WTXID_RELAY_VERSION:
                self.wtxid_relay = True
            return []
        if isinstance(msg, SendAddrV2):
            if self.successfully_connected:
                return self._disconnect("sendaddrv2 received after verack")
            self.wants_addrv2 = True
            return []
        if msg.command == "feature" and self.successfully_connected:
            return self._disconnect("feature received after verack")
        if not self.successfully_connected:
            return []  # "Unsupported message prior to verack": ignored
        if isinstance(msg, Ping):
            if self.common_version > BIP0031_VERSION and msg.nonce is not None:
                return [Send(Pong(msg.nonce))]
            return []
        if isinstance(msg, Pong):
            self._on_pong(msg, now)
            return []
        if isinstance(msg, (Addr, AddrV2)):
            return self._on_addr(msg, now)
        if isinstance(msg, GetAddr):
            return self._on_getaddr(now)
        return []

    def _on_version(self, msg: Version, now: float) -> list[Action]:
        if self.version_received:
            return []  # "redundant version message"
        their = self.their
        if self.conn_type.expects_services and not has_all_desirable_service_flags(msg.services):
            return self._disconnect(
                f"peer does not offer the expected services ({msg.services:08x} offered)"
            )
        if msg.version < MIN_PEER_PROTO_VERSION:
            return self._disconnect(f"peer using obsolete version {msg.version}")
        if (
            self.conn_type.is_inbound
            and self._is_local_nonce is not None
            and self._is_local_nonce(msg.nonce)
        ):
            return self._disconnect(f"connected to self at {self.addr}, disconnecting")
        actions: list[Action] = []
        if self.conn_type.is_inbound:
            actions.append(self._push_version(now))
        self.version_received = True
        self.common_version = min(msg.version, self.config.protocol_version)
        their.version = msg.version
        their.services = msg.services
        their.user_agent = sanitize_string(msg.user_agent)
        their.start_height = msg.start_height
        their.relay = msg.relay
        their.time_offset = max(msg.timestamp, 0) - int(now)
        their.addr_me = msg.addr_recv
        if self.common_version >= WTXID_RELAY_VERSION:
            actions.append(Send(WtxidRelay()))
        if self.common_version >= 70016:
            actions.append(Send(SendAddrV2()))
        actions.append(Send(Verack()))
        if not self.conn_type.is_inbound and self._setup_address_relay():
            actions.append(Send(GetAddr()))
            self.getaddr_sent = True
            self.addr_token_bucket += MAX_ADDR_TO_SEND
        if self.conn_type is ConnectionType.FEELER:
            actions.extend(self._disconnect("feeler connection completed"))
        return actions

    def _setup_address_relay(self) -> bool:
        """Core ``SetupAddressRelay``: enabled for every type but block-relay-only."""
        if not self.conn_type.relays_addrs or self.conn_type is ConnectionType.FEELER:
            return False
        self.addr_relay_enabled = True
        return True

    def _on_pong(self, msg: Pong, now: float) -> None:
        ping = self.ping
        if not ping.nonce_sent:
            return  # "Unsolicited pong without ping"
        if msg.nonce == ping.nonce_sent:
            ping.nonce_sent = 0
            rtt = now - ping.start
            if rtt >= 0:
                ping.last_time = rtt
                ping.min_time = rtt if ping.min_time is None else min(ping.min_time, rtt)
        elif msg.nonce == 0:
            ping.nonce_sent = 0  # "Nonce zero": cancel this ping
        # else "Nonce mismatch": ignored, the ping stays outstanding

    def _on_getaddr(self, now: float) -> list[Action]:
        if not self.conn_type.is_inbound:
            return []  # Core ignores getaddr from outbound connections (anti-fingerprinting)
        self._setup_address_relay()
        if self.getaddr_recvd:
            return []  # "Ignoring repeated getaddr"
        self.getaddr_recvd = True
        entries = self.addr_source.get_addr(MAX_ADDR_TO_SEND, MAX_PCT_ADDR_TO_SEND, now)
        if not entries:
            return []
        if self.wants_addrv2:
            return [Send(AddrV2(entries))]
        return [Send(Addr([e for e in entries if e.service.addr.to_v1_bytes() is not None]))]

    def _on_addr(self, msg: Addr | AddrV2, now: float) -> list[Action]:
        if not self._setup_address_relay():
            return []  # "ignoring addr message from block-relay-only peer"
        entries = msg.entries
        # Token bucket (Core ProcessAddrs).
        if self.addr_token_bucket < MAX_ADDR_PROCESSING_TOKEN_BUCKET:
            elapsed = max(now - self.addr_token_timestamp, 0.0)
            self.addr_token_bucket = min(
                self.addr_token_bucket + elapsed * MAX_ADDR_RATE_PER_SECOND,
                MAX_ADDR_PROCESSING_TOKEN_BUCKET,
            )
        self.addr_token_timestamp = now
        shuffled = list(entries)
        self.rng.shuffle(shuffled)
        ok: list[AddrEntry] = []
        limited = 0
        for entry in shuffled:
            if self.addr_token_bucket < 1.0:
                limited += 1
                continue
            self.addr_token_bucket -= 1.0
            if not may_have_useful_address_db(
                entry.services
            ) and not has_all_desirable_service_flags(entry.services):
                continue
            if entry.time <= 100_000_000 or entry.time > now + 600:
                entry = entry._replace(time=int(now - 5 * 86400))
            ok.append(entry)
        self.addr_processed += len(ok)
        self.addr_rate_limited += limited
        if len(entries) < MAX_ADDR_TO_SEND:
            self.getaddr_sent = False
        actions: list[Action] = []
        if ok:
            actions.append(LearnedAddresses(tuple(ok)))
        if self.conn_type is ConnectionType.ADDR_FETCH and len(entries) > 1:
            actions.extend(self._disconnect("addrfetch connection completed"))
        return actions
