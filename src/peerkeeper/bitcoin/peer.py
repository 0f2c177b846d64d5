"""The Bitcoin peer: a sans-IO state machine for one connection's P2P conversation.

Fed decoded messages and the current time, :class:`BitcoinPeer` returns
:mod:`~peerkeeper.bitcoin.actions` (send this, disconnect, misbehaving, learned
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
  ``addr``/``addrv2`` pass Core's token bucket (0.1/s, 1000 after our getaddr;
  none for peers with the ``addr`` permission), service filter and time correction
  before being returned as :class:`~peerkeeper.bitcoin.actions.LearnedAddresses`,
  with the ones Core would relay in its ``relay`` field.
* address relay (``SetupAddressRelay``, ``PushAddress``, ``MaybeSendAddr``): peers
  other than block-relay-only and feelers keep a ``m_addr_known`` rolling bloom
  filter (5000, 0.001) of ``CService::GetKey()`` bytes and a queue of at most
  ``MAX_ADDR_TO_SEND`` addresses, flushed as one ``addr``/``addrv2`` message every
  exp(30 s); our own address (``local_address``) goes out alone right after the
  handshake, then with the queue every exp(24 h), clearing ``m_addr_known`` first.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from peerkeeper.bitcoin.actions import (
    Action,
    Disconnect,
    HandshakeComplete,
    LearnedAddresses,
    Misbehaving,
    Send,
    VersionReceived,
)
from peerkeeper.bitcoin.addrrelay import (
    ADDR_KNOWN_ELEMENTS,
    ADDR_KNOWN_FP_RATE,
    AVG_ADDRESS_BROADCAST_INTERVAL,
    AVG_LOCAL_ADDRESS_BROADCAST_INTERVAL,
    rand_exp_duration,
)
from peerkeeper.bitcoin.bloom import RollingBloomFilter
from peerkeeper.net.connection_types import ConnectionType
from peerkeeper.net.netaddr import NetAddr, Network, Service
from peerkeeper.wire import corelog
from peerkeeper.wire.codec import DecodeError, LimitExceeded
from peerkeeper.wire.corelog import sanitize_string
from peerkeeper.wire.messages import (
    MAX_ADDR_TO_SEND,
    MIN_PEER_PROTO_VERSION,
    PROTOCOL_VERSION,
    Addr,
    AddrEntry,
    AddrV2,
    FeeFilter,
    GetAddr,
    Inv,
    Message,
    Ping,
    Pong,
    SendAddrV2,
    ServiceFlags,
    Verack,
    Version,
    WtxidRelay,
)

log = logging.getLogger("peerkeeper.net")

#: Seconds an addr-fetch peer may stay connected (src/net_processing.cpp ``SendMessages``:
#: ``10 * AVG_ADDRESS_BROADCAST_INTERVAL``).
ADDR_FETCH_TIMEOUT = 300.0

__all__ = [
    "ADDR_FETCH_TIMEOUT",
    "PING_INTERVAL",
    "TIMEOUT_INTERVAL",
    "DEFAULT_PEER_CONNECT_TIMEOUT",
    "MAX_PCT_ADDR_TO_SEND",
    "PERMISSION_ADDR",
    "PeerConfig",
    "AddrSource",
    "BitcoinPeer",
    "COIN",
    "MAX_MONEY",
    "TimeOffsets",
    "has_all_desirable_service_flags",
    "money_range",
    "outbound_time_offsets",
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
#: Satoshis in one bitcoin (src/consensus/amount.h ``COIN``).
COIN = 100_000_000
#: No amount is larger than this, in satoshis (src/consensus/amount.h ``MAX_MONEY``).
MAX_MONEY = 21_000_000 * COIN
#: BIP339 / BIP155 negotiation needs at least this common version (src/node/protocol_version.h).
WTXID_RELAY_VERSION = 70016
#: Pings carry a nonce above this version (BIP31, src/node/protocol_version.h).
BIP0031_VERSION = 60000
#: Core ``NetPermissionFlags::Addr`` (src/net_permissions.h, bit 7): no addr rate limit
#: (``ProcessAddrs``).  Kept local to this module; the full flag set lives with the
#: permission parser.
PERMISSION_ADDR = 1 << 7
#: Seconds an address may be old and still be relayed (src/net_processing.cpp
#: ``ProcessAddrs``: ``addr.nTime > current_time - 10min``).
ADDR_RELAY_MAX_AGE = 600.0
#: Largest addr message whose addresses are relayed (``vAddr.size() <= 10``).
ADDR_RELAY_MAX_MESSAGE = 10

# Plain ints: IntFlag arithmetic costs an enum construction per test.
_DESIRABLE = int(ServiceFlags.NODE_NETWORK | ServiceFlags.NODE_WITNESS)
_DESIRABLE_LIMITED = int(ServiceFlags.NODE_NETWORK_LIMITED | ServiceFlags.NODE_WITNESS)


#: ``CInv::IsGenTxMsg`` types: MSG_TX, MSG_WTX, MSG_WITNESS_TX (src/protocol.h).
_GEN_TX_INV_TYPES = frozenset({1, 5, 0x40000001})
#: Connections whose transaction announcements Core rejects (``RejectIncomingTxs``).
_REJECT_TX_CONNS = frozenset({ConnectionType.BLOCK_RELAY, ConnectionType.FEELER})


def money_range(value: int) -> bool:
    """Core ``MoneyRange`` (src/consensus/amount.h): ``0 <= value <= MAX_MONEY`` (satoshis)."""
    return 0 <= value <= MAX_MONEY


class TimeOffsets:
    """Core ``TimeOffsets`` (src/node/timeoffsets.h / .cpp): the clock offsets (seconds,
    peer's version ``nTime`` minus our time) of the last :attr:`MAX_SIZE` outbound peers.

    :meth:`add` takes one sample (the oldest is forgotten beyond ``MAX_SIZE``);
    :meth:`median` is 0 with fewer than 5 samples, else the upper median
    (``sorted[n // 2]``, Core's "approximate median"). Never raises.
    """

    #: Samples kept (Core ``TimeOffsets::MAX_SIZE``).
    MAX_SIZE = 50
    #: Samples needed before the median is used (Core ``Median``: fewer gives 0 s).
    MIN_SAMPLES = 5

    __slots__ = ("_offsets",)

    def __init__(self, offsets: list[int] | None = None) -> None:
        self._offsets: list[int] = []
        for offset in offsets or ():
            self.add(offset)

    def __len__(self) -> int:
        return len(self._offsets)

    def add(self, offset: int) -> None:
        """Record one outbound peer's offset in seconds (Core ``TimeOffsets::Add``)."""
        if len(self._offsets) >= self.MAX_SIZE:
            del self._offsets[0]
        self._offsets.append(offset)

    def median(self) -> int:
        """The median offset in seconds, 0 below 5 samples (Core ``TimeOffsets::Median``)."""
        if len(self._offsets) < self.MIN_SAMPLES:
            return 0
        ordered = sorted(self._offsets)
        return ordered[len(ordered) // 2]


def outbound_time_offsets(peers: Iterable[BitcoinPeer]) -> TimeOffsets:
    """Core's ``PeerManagerImpl::m_outbound_time_offsets`` rebuilt from live peers.

    Every non-inbound peer whose version was accepted gives its offset (seconds), in
    the order the versions arrived, the last :attr:`TimeOffsets.MAX_SIZE` kept; the
    ``median()`` of the result is getnetworkinfo's ``timeoffset`` (src/rpc/net.cpp,
    ``PeerManager::GetTimeOffset``). Deviation: Core keeps the samples of peers that
    have since disconnected (feelers among them); only connected peers count here.
    """
    samples = sorted(
        (p.version_received_at, i, p.their.time_offset)
        for i, p in enumerate(peers)
        if p.version_received_at is not None and not p.conn_type.is_inbound
    )
    return TimeOffsets([offset for _, _, offset in samples])


def desirable_service_flags(services: int, *, near_tip: bool = True) -> int:
    """Core ``GetDesirableServiceFlags`` (src/net_processing.cpp): NETWORK_LIMITED|WITNESS
    for a peer that offers NETWORK_LIMITED while our tip is less than a day old
    (``near_tip``; a node without a chain counts as near the tip), else
    NETWORK|WITNESS."""
    if near_tip and services & ServiceFlags.NODE_NETWORK_LIMITED:
        return _DESIRABLE_LIMITED
    return _DESIRABLE


def has_all_desirable_service_flags(services: int) -> bool:
    """True if ``services`` has NETWORK|WITNESS or NETWORK_LIMITED|WITNESS.

    Source: src/net_processing.cpp ``HasAllDesirableServiceFlags`` with the
    limited variant Core accepts near the tip (a node without a chain is always
    "near the tip").
    """
    return (services & _DESIRABLE) == _DESIRABLE or (
        services & _DESIRABLE_LIMITED
    ) == _DESIRABLE_LIMITED


def may_have_useful_address_db(services: int) -> bool:
    """Core's ``MayHaveUsefulAddressDB``: NODE_NETWORK or NODE_NETWORK_LIMITED (src/protocol.h)."""
    return bool(services & (ServiceFlags.NODE_NETWORK | ServiceFlags.NODE_NETWORK_LIMITED))


@dataclass(frozen=True, slots=True)
class PeerConfig:
    """What we announce in version, and timeouts (seconds).

    ``services`` (our ServiceFlags), ``user_agent`` (BIP14, e.g. ``/peerkeeper:0.1.0/``),
    ``start_height`` (int), ``tip_time`` (see below), ``relay`` (the version relay flag: do we want tx
    announcements), ``protocol_version``, ``peer_connect_timeout`` (Core's
    ``-peertimeout``), ``ping_interval``, ``timeout_interval``.
    """

    services: int = 0
    user_agent: str = "/peerkeeper:0.1.0/"
    start_height: int = 0
    #: Our tip's block time (unix seconds), for Core's "limited peers only near the
    #: tip" rule; None: no chain of our own, always near the tip.
    tip_time: float | None = None
    relay: bool = False
    protocol_version: int = PROTOCOL_VERSION
    peer_connect_timeout: float = DEFAULT_PEER_CONNECT_TIMEOUT
    ping_interval: float = PING_INTERVAL
    timeout_interval: float = TIMEOUT_INTERVAL
    #: Core's addr token bucket (0.1 address/s). Off only in simulation studies
    #: (:mod:`peerkeeper.sim`'s eclipse scenario); Core has no such switch.
    addr_rate_limit: bool = True
    #: The share of the address book one getaddr answer may hold (Core's constant
    #: ``MAX_PCT_ADDR_TO_SEND``, 23). Raised only by ``peerkeeper lab``, whose small
    #: networks would otherwise hide nodes from a crawl; Core has no such switch.
    getaddr_max_pct: int = MAX_PCT_ADDR_TO_SEND
    #: Process received addresses as Core does (rate limit, known-address filter,
    #: AddrMan, relay). ``peerkeeper crawl`` turns it off: its node keeps no address
    #: book and the application gets every addr message whole; Core has no such switch.
    learn_addrs: bool = True


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
    (:class:`~peerkeeper.net.netaddr.Service`), our ``local_nonce`` for the version
    message, a :class:`PeerConfig`, ``now`` (seconds, the connection time), an
    ``rng`` (``random.Random``), an :class:`AddrSource` for getaddr replies and
    ``is_local_nonce(nonce) -> bool`` (true when the nonce belongs to one of our
    own outbound version messages: a self-connection).

    Address relay options (keyword, all optional):

    * ``permissions``: the peer's ``NetPermissionFlags`` bits (int); only
      :data:`PERMISSION_ADDR` is used here: its addresses skip the token bucket.
    * ``local_address``: ``() -> AddrEntry | None`` giving our address as this peer
      should see it (Core ``GetLocalAddrForPeer``: None when no routable local
      address), or None when we are not listening (Core ``fListen``): then we never
      self-announce.  Only the entry's ``service`` is used; time and services are
      restamped with ``now`` and ``config.services`` (Core ``m_our_services``).
    * ``in_ibd``: Core's ``IsInitialBlockDownload()`` gate on self-announcements.
      peerkeeper has no chain, so the default False treats the node as synced (as
      :func:`has_all_desirable_service_flags` treats it as near the tip); the
      attribute :attr:`in_ibd` may be flipped later by a chain-aware owner, who must
      then re-read :meth:`next_wakeup`.

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
        permissions: int = 0,
        local_address: Callable[[], AddrEntry | None] | None = None,
        in_ibd: bool = False,
        peer_id: int = -1,
    ) -> None:
        #: The node id the owner gave this peer (Core's ``NodeId``), for log lines.
        self.peer_id = peer_id
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
        #: When the accepted version arrived (seconds), or None: orders time samples.
        self.version_received_at: float | None = None
        #: Core ``Peer::GetTxRelay() != nullptr``: set from the version message.
        self.tx_relay = False
        #: Core ``TxRelay::m_fee_filter_received``: the peer's last valid ``feefilter``,
        #: satoshis per kvB (0 until one arrives, or without tx relay).
        self.fee_filter_received = 0
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
        self.permissions = permissions
        self.in_ibd = in_ibd
        self._local_address = local_address
        #: Core ``m_addr_known``: keys (``Service.get_key()``) of addresses the peer
        #: knows; created with address relay (None while relay is off).
        self.addr_known: RollingBloomFilter | None = None
        #: Core ``m_addrs_to_send``: at most ``MAX_ADDR_TO_SEND`` entries.
        self.addrs_to_send: list[AddrEntry] = []
        #: Core ``m_next_addr_send`` / ``m_next_local_addr_send`` (seconds; 0 = never).
        self.next_addr_send = 0.0
        self.next_local_addr_send = 0.0
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
        peer_connect_timeout``), since nothing can time out before it, except an
        addr-fetch peer's 5-minute limit; ``inf`` once the conversation is over.  With address relay, also the addr flush deadline
        while the queue is non-empty and the next self-announcement (when
        ``local_address`` is set and not ``in_ibd``).  Re-read it after
        :meth:`push_address`.
        """
        if self.disconnected:
            return float("inf")
        cfg = self.config
        first_check = self.connected_at + cfg.peer_connect_timeout + 0.001
        expiry = float("inf")
        if self.conn_type is ConnectionType.ADDR_FETCH:
            expiry = self.connected_at + ADDR_FETCH_TIMEOUT + 0.001
        if not self.successfully_connected:
            return min(first_check, expiry)
        if self.ping.queued:
            return 0.0
        idle = min(self.last_send, self.last_recv) + cfg.timeout_interval + 0.001
        wait = cfg.timeout_interval if self.ping.nonce_sent else cfg.ping_interval
        ping_due = self.ping.start + wait + 0.001
        if self.ping.nonce_sent:
            ping_due = max(ping_due, first_check)  # a ping timeout is an inactivity check
        at = min(max(idle, first_check), ping_due, expiry)
        if self.addr_relay_enabled:
            if self.addrs_to_send:
                at = min(at, self.next_addr_send + 0.001)
            if self._local_address is not None and not self.in_ibd:
                at = min(at, self.next_local_addr_send + 0.001)
        return at

    def tick(self, now: float) -> list[Action]:
        """Run the inactivity checks, send a due ping, then due addresses.

        Core ``InactivityCheck`` (src/net.cpp), then ``SendMessages``'
        ``MaybeSendPing`` and ``MaybeSendAddr`` (src/net_processing.cpp).
        """
        if self.disconnected:
            return []
        if (
            self.conn_type is ConnectionType.ADDR_FETCH
            and now - self.connected_at > ADDR_FETCH_TIMEOUT
        ):
            # Core SendMessages (src/net_processing.cpp), before anything else.
            return self._disconnect(corelog.ADDRFETCH_TIMEOUT)
        reason = self._inactivity(now)
        if reason is not None:
            return self._disconnect(reason)
        if not self.successfully_connected:
            return []
        actions = self._maybe_send_ping(now)
        if self.addr_relay_enabled:
            actions += self._maybe_send_addr(now)
        return actions

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
            return corelog.SOCKET_NO_MESSAGE % (int(cfg.peer_connect_timeout), never)
        if now > self.last_send + cfg.timeout_interval:
            return corelog.SOCKET_SEND_TIMEOUT % int(now - self.last_send)
        if now > self.last_recv + cfg.timeout_interval:
            return corelog.SOCKET_RECV_TIMEOUT % int(now - self.last_recv)
        if not self.successfully_connected:
            return corelog.VERSION_HANDSHAKE_TIMEOUT
        if self.ping.nonce_sent and now > self.ping.start + cfg.timeout_interval:
            return corelog.PING_TIMEOUT % (now - self.ping.start)  # Core's %f: 6 decimals
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

    def on_decode_error(
        self, command: str, error: DecodeError, now: float, *, size: int = 0
    ) -> list[Action]:
        """A message of ``command`` (``size`` payload bytes) could not be decoded.

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
            # Core's PONG handler: a payload shorter than the nonce cancels the ping.
            self._log_pong("Short payload", 0, size)
            self.ping.nonce_sent = 0
            return []
        if isinstance(error, LimitExceeded):
            if command == "getheaders":
                # Core's GETHEADERS handler: a locator over MAX_LOCATOR_SZ disconnects
                # without discouraging (src/net_processing.cpp).
                return self._disconnect(f"getheaders locator too large: {error}")
            return [Misbehaving(str(error))]
        return []

    def on_message(self, msg: Message, now: float) -> list[Action]:
        """Process one decoded message; returns the actions it causes.

        As Core's message handler (``ThreadMessageHandler``, src/net.cpp) runs
        ``ProcessMessages`` for one message and then ``SendMessages`` for the same
        peer, a due ping and due addresses follow the message's own answer: an
        ``addr`` whose timer a ``setmocktime`` made due goes out before the pong of
        the next ping, as Core's functional tests expect.
        """
        actions = self._process_message(msg, now)
        if self.disconnected or not self.successfully_connected:
            return actions
        actions += self._maybe_send_ping(now)
        if self.addr_relay_enabled:
            actions += self._maybe_send_addr(now)
        return actions

    def _process_message(self, msg: Message, now: float) -> list[Action]:
        if self.disconnected:
            return []
        self.last_recv = now
        if isinstance(msg, Version):
            if self.version_received:
                log.debug(corelog.REDUNDANT_VERSION, self.peer_id)
                return []
            return self._on_version(msg, now)
        if not self.version_received:
            # Core ProcessMessage (src/net_processing.cpp), word for word.
            log.debug(corelog.NON_VERSION_FIRST, msg.command, self.peer_id)
            return []
        if isinstance(msg, Verack):
            if self.successfully_connected:
                log.debug(corelog.REDUNDANT_VERACK, self.peer_id)
                return []
            self.successfully_connected = True
            return [HandshakeComplete()]
        if isinstance(msg, WtxidRelay):
            if self.successfully_connected:
                return self._disconnect(corelog.WTXIDRELAY_AFTER_VERACK)
            if self.common_version >= WTXID_RELAY_VERSION:
                self.wtxid_relay = True
            return []
        if isinstance(msg, SendAddrV2):
            if self.successfully_connected:
                return self._disconnect(corelog.SENDADDRV2_AFTER_VERACK)
            self.wants_addrv2 = True
            return []
        if msg.command == "feature" and self.successfully_connected:
            return self._disconnect("feature received after verack")
        if not self.successfully_connected:
            log.debug(corelog.UNSUPPORTED_BEFORE_VERACK, msg.command, self.peer_id)
            return []
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
        if isinstance(msg, FeeFilter):
            # Core's FEEFILTER handler: kept only when in MoneyRange, and only with tx relay.
            if money_range(msg.feerate) and self.tx_relay:
                self.fee_filter_received = msg.feerate
            return []
        if type(msg) is Inv and self.conn_type in _REJECT_TX_CONNS:
            # Core RejectIncomingTxs: block-relay-only and feeler peers never announce txs.
            for inv_type, inv_hash in msg.items:
                if inv_type in _GEN_TX_INV_TYPES:
                    return self._disconnect(
                        f"transaction ({inv_hash[::-1].hex()}) inv sent in violation of protocol"
                    )
        return []

    def _on_version(self, msg: Version, now: float) -> list[Action]:
        if self.version_received:
            return []  # "redundant version message"
        their = self.their
        outbound = not self.conn_type.is_inbound
        # Core ApproximateBestBlockDepth() < NODE_NETWORK_LIMITED_ALLOW_CONN_BLOCKS (144).
        tip = self.config.tip_time
        near_tip = tip is None or (now - tip) / 600 < 144
        wanted = desirable_service_flags(msg.services, near_tip=near_tip)
        if self.conn_type.expects_services and msg.services & wanted != wanted:
            return [
                VersionReceived(msg.services, False),
                *self._disconnect(corelog.MISSING_SERVICES % (msg.services, wanted)),
            ]
        if msg.version < MIN_PEER_PROTO_VERSION:
            rejected: list[Action] = [VersionReceived(msg.services, False)] if outbound else []
            return rejected + self._disconnect(corelog.OBSOLETE_VERSION % msg.version)
        if (
            self.conn_type.is_inbound
            and self._is_local_nonce is not None
            and self._is_local_nonce(msg.nonce)
        ):
            return self._disconnect(corelog.CONNECTED_TO_SELF % self.addr)
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
        self.version_received_at = now
        # Core: a TxRelay only for tx-relaying connection types whose peer asked for txs
        # (or may turn relay on later with a filter, when we offer NODE_BLOOM).
        self.tx_relay = self.conn_type not in _REJECT_TX_CONNS and (
            msg.relay or bool(self.config.services & ServiceFlags.NODE_BLOOM)
        )
        if self.common_version >= WTXID_RELAY_VERSION:
            actions.append(Send(WtxidRelay()))
        if self.common_version >= 70016:
            actions.append(Send(SendAddrV2()))
        actions.append(Send(Verack()))
        if not self.conn_type.is_inbound and self._setup_address_relay():
            actions.append(Send(GetAddr()))
            self.getaddr_sent = True
            self.addr_token_bucket += MAX_ADDR_TO_SEND
        if outbound:
            actions.append(VersionReceived(msg.services, True))
        if self.conn_type is ConnectionType.FEELER:
            actions.extend(self._disconnect(corelog.FEELER_COMPLETED))
        return actions

    def _setup_address_relay(self) -> bool:
        """Core ``SetupAddressRelay``: enabled for every type but block-relay-only and
        feelers; the first time, ``m_addr_known`` is created (5000 entries, 0.001)."""
        if not self.conn_type.relays_addrs or self.conn_type is ConnectionType.FEELER:
            return False
        if not self.addr_relay_enabled:
            self.addr_relay_enabled = True
            self.addr_known = RollingBloomFilter(
                ADDR_KNOWN_ELEMENTS, ADDR_KNOWN_FP_RATE, self.rng.getrandbits(32)
            )
        return True

    # -- address relay ------------------------------------------------------------------

    def is_addr_compatible(self, entry: AddrEntry) -> bool:
        """Core ``IsAddrCompatible`` (src/net_processing.cpp): the peer asked for addrv2
        (BIP155) or the address has a v1 encoding (IPv4, IPv6, internal)."""
        return self.wants_addrv2 or entry.service.addr.is_addr_v1_compatible()

    def push_address(self, entry: AddrEntry, now: float) -> None:
        """Queue ``entry`` for the next addr message to this peer (Core ``PushAddress``).

        Ignored when address relay is off for this peer (block-relay-only, feeler, or
        an inbound peer that never sent addr/addrv2/getaddr), when the address is not
        valid, already in ``m_addr_known``, or not expressible to a v1 peer
        (:meth:`is_addr_compatible`).  When the queue holds ``MAX_ADDR_TO_SEND``
        entries a random one is replaced.  The queue is flushed by :meth:`tick` once
        ``now`` passes the flush deadline (exp(30 s) apart).

        Core redraws an elapsed flush deadline on every message-handler pass even
        while the queue is empty; peerkeeper only wakes a peer with a non-empty
        queue, so an elapsed deadline is redrawn here as ``now + exp(30 s)`` when the
        first entry arrives (the same distribution: the timer is memoryless).
        ``now`` is the current time in seconds.  Re-read :meth:`next_wakeup` after.
        """
        known = self.addr_known
        if known is None:
            return
        service = entry.service
        if not service.addr.is_valid():
            return
        if known.contains(service.get_key()) or not self.is_addr_compatible(entry):
            return
        queue = self.addrs_to_send
        if not queue and self.next_addr_send != 0.0 and self.next_addr_send < now:
            self.next_addr_send = now + rand_exp_duration(AVG_ADDRESS_BROADCAST_INTERVAL, self.rng)
        if len(queue) >= MAX_ADDR_TO_SEND:
            queue[self.rng.randrange(len(queue))] = entry
        else:
            queue.append(entry)

    def _addr_message(self, entries: list[AddrEntry]) -> Send:
        return Send(AddrV2(entries) if self.wants_addrv2 else Addr(entries))

    def _maybe_send_addr(self, now: float) -> list[Action]:
        """Core ``MaybeSendAddr`` (src/net_processing.cpp); address relay is enabled."""
        actions: list[Action] = []
        if self._local_address is not None and not self.in_ibd and self.next_local_addr_send < now:
            first = self.next_local_addr_send == 0.0
            if not first and self.addr_known is not None:
                # Core resets the filter so that the self-announcement really goes out.
                self.addr_known.reset(self.rng.getrandbits(32))
            local = self._local_address()
            if local is not None:
                # Core GetLocalAddrForPeer (src/net.cpp).
                log.debug(corelog.ADVERTISING_ADDRESS, local.service, self.peer_id)
                ours = AddrEntry(int(now), self.config.services, local.service)
                if not first:
                    self.push_address(ours, now)  # later ones travel with the queue
                elif self.is_addr_compatible(ours):
                    # The first goes alone, so that a peer's small initial token
                    # bucket cannot drop it among other addresses.
                    actions.append(self._addr_message([ours]))
            self.next_local_addr_send = now + rand_exp_duration(
                AVG_LOCAL_ADDRESS_BROADCAST_INTERVAL, self.rng
            )
        if now <= self.next_addr_send:
            return actions
        self.next_addr_send = now + rand_exp_duration(AVG_ADDRESS_BROADCAST_INTERVAL, self.rng)
        queue = self.addrs_to_send
        known = self.addr_known
        if not queue or known is None:
            return actions
        fresh: list[AddrEntry] = []
        for entry in queue:
            key = entry.service.get_key()
            if known.contains(key):
                continue
            known.insert(key)
            fresh.append(entry)
        self.addrs_to_send = []  # drop the (up to 1000-slot) list, like Core's shrink_to_fit
        if fresh:
            actions.append(self._addr_message(fresh))
        return actions

    def _log_pong(self, problem: str, received: int, size: int) -> None:
        """Core's PONG log line (src/net_processing.cpp), word for word."""
        log.debug(
            corelog.PONG,
            self.peer_id,
            problem,
            self.ping.nonce_sent,
            received,
            size,
        )

    def _on_pong(self, msg: Pong, now: float) -> None:
        ping = self.ping
        if not ping.nonce_sent:
            self._log_pong("Unsolicited pong without ping", msg.nonce, 8)
            return
        if msg.nonce == ping.nonce_sent:
            ping.nonce_sent = 0
            rtt = now - ping.start
            if rtt >= 0:
                ping.last_time = rtt
                ping.min_time = rtt if ping.min_time is None else min(ping.min_time, rtt)
            else:
                self._log_pong("Timing mishap", msg.nonce, 8)
        elif msg.nonce == 0:
            self._log_pong("Nonce zero", msg.nonce, 8)
            ping.nonce_sent = 0  # cancel this ping
        else:
            # Nonce mismatches are normal when pings overlap: the ping stays outstanding.
            self._log_pong("Nonce mismatch", msg.nonce, 8)

    def _on_getaddr(self, now: float) -> list[Action]:
        """Core's ``GETADDR`` handler: the reply replaces the queue and is flushed like
        any addr message; the first flush after relay is set up happens at once."""
        if not self.conn_type.is_inbound:
            # Core ignores getaddr from outbound connections (anti-fingerprinting).
            log.debug(corelog.IGNORING_GETADDR, self.conn_type.value, self.peer_id)
            return []
        self._setup_address_relay()
        if self.getaddr_recvd:
            log.debug(corelog.IGNORING_REPEATED_GETADDR, self.peer_id)
            return []
        self.getaddr_recvd = True
        self.addrs_to_send.clear()
        max_pct = self.config.getaddr_max_pct
        for entry in self.addr_source.get_addr(MAX_ADDR_TO_SEND, max_pct, now):
            self.push_address(entry, now)
        return []

    def _on_addr(self, msg: Addr | AddrV2, now: float) -> list[Action]:
        if not self._setup_address_relay():
            return []  # "ignoring addr message from block-relay-only peer"
        entries = msg.entries
        if not self.config.learn_addrs:
            if len(entries) < MAX_ADDR_TO_SEND:
                self.getaddr_sent = False
            if self.conn_type is ConnectionType.ADDR_FETCH and len(entries) > 1:
                return self._disconnect(corelog.ADDRFETCH_COMPLETED)
            return []
        # Token bucket (Core ProcessAddrs).
        if self.addr_token_bucket < MAX_ADDR_PROCESSING_TOKEN_BUCKET:
            elapsed = max(now - self.addr_token_timestamp, 0.0)
            self.addr_token_bucket = min(
                self.addr_token_bucket + elapsed * MAX_ADDR_RATE_PER_SECOND,
                MAX_ADDR_PROCESSING_TOKEN_BUCKET,
            )
        self.addr_token_timestamp = now
        rate_limited = self.config.addr_rate_limit and not self.permissions & PERMISSION_ADDR
        known = self.addr_known
        assert known is not None  # created by _setup_address_relay
        # Core ProcessAddrs relays only small unsolicited messages of fresh, routable
        # addresses.
        may_relay = len(entries) <= ADDR_RELAY_MAX_MESSAGE and not self.getaddr_sent
        fresh_after = now - ADDR_RELAY_MAX_AGE
        relay: list[AddrEntry] = []
        shuffled = list(entries)
        self.rng.shuffle(shuffled)
        ok: list[AddrEntry] = []
        limited = 0
        for entry in shuffled:
            if self.addr_token_bucket < 1.0:
                if rate_limited:
                    limited += 1
                    continue
            else:
                self.addr_token_bucket -= 1.0
            if not may_have_useful_address_db(
                entry.services
            ) and not has_all_desirable_service_flags(entry.services):
                continue
            if entry.time <= 100_000_000 or entry.time > now + 600:
                entry = entry._replace(time=int(now - 5 * 86400))
            known.insert(entry.service.get_key())  # Core AddAddressKnown
            ok.append(entry)
            if may_relay and entry.time > fresh_after and entry.service.addr.is_routable():
                relay.append(entry)
        self.addr_processed += len(ok)
        self.addr_rate_limited += limited
        if len(entries) < MAX_ADDR_TO_SEND:
            self.getaddr_sent = False
        actions: list[Action] = []
        if ok:
            actions.append(LearnedAddresses(tuple(ok), tuple(relay)))
        if self.conn_type is ConnectionType.ADDR_FETCH and len(entries) > 1:
            actions.extend(self._disconnect(corelog.ADDRFETCH_COMPLETED))
        return actions
