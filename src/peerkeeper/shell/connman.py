"""ConnMan: owns the peers, applies their actions, opens and accepts connections by Core's policy.

The connection manager of Bitcoin Core ``src/net.cpp`` (``CConnman``):

* automatic outbound connections (Core ``ThreadOpenConnections``): the decisions are
  :mod:`peerkeeper.bitcoin.outbound`'s (anchors, 8 full-relay, 2 block-relay-only, feelers,
  extra peers), this module dials one pick at a time every 500 ms; addr-fetch
  connections (``-seednode``, DNS seeds that answer nothing) and their 5 min limit;
  DNS seeding (:mod:`peerkeeper.bitcoin.seeds`) and the fixed-seed fallback; anchors saved at
  :meth:`ConnMan.stop`; proxies (:mod:`peerkeeper.io.proxy`);
* inbound connections admitted in Core's order (``CreateNodeFromAcceptedSocket``):
  network active, bans and discouragement (``noban`` exempt), then Core's eviction
  when all ``max_inbound`` slots are taken (``-maxconnections`` minus 8 + 2 + 1), and
  the ``-inboundrelaypercent`` cap on tx-relaying inbound peers;
* permissions (``-whitelist``/``-whitebind``, :mod:`peerkeeper.net.netpermissions`), the
  upload target (:mod:`peerkeeper.bitcoin.uploadtarget`), address relay and
  self-announcement (:mod:`peerkeeper.bitcoin.addrrelay`);
* ``-connect`` peers (only these; listening off by default, as in Core) and
  ``-addnode`` peers kept connected, every failure retried with a per-address
  back-off (first retry after 1 s, x1.2 per failure, capped at 60 s; reset when a
  connection completes its handshake);
* ``disconnect_node`` by id or address, ``add_node`` add / remove / onetry;
* per-peer and total byte counters, and bytes per message type in both directions
  (Core's ``mapSendBytesPerMsgType`` / ``mapRecvBytesPerMsgType``; unknown and
  rejected messages count under ``*other*``).

Time: one heap of per-peer deadlines drives every timeout and ping (no task per
peer, nothing walks every peer on a tick): each peer's sans-IO
:class:`~peerkeeper.bitcoin.peer.BitcoinPeer` says when it next has work
(``next_wakeup``), and only due peers are ticked.

Flow control: a peer whose send buffer passed ``-maxsendbuffer`` is not read
from until it drains (Core's ``fPauseSend``); the receive side is paused when the
bytes buffered for a peer pass ``-maxreceivebuffer``.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from peerkeeper.bitcoin.actions import (
    Action,
    Disconnect,
    HandshakeComplete,
    LearnedAddresses,
    Misbehaving,
    Send,
    VersionReceived,
)
from peerkeeper.bitcoin.addrman import AddrMan
from peerkeeper.bitcoin.addrrelay import relay_targets
from peerkeeper.bitcoin.banman import BanMan
from peerkeeper.bitcoin.eviction import EvictionCandidate, keyed_netgroup, select_node_to_evict
from peerkeeper.bitcoin.outbound import (
    DEFAULT_FULL_RELAY_INBOUND_PCT,
    DEFAULT_MAX_PEER_CONNECTIONS,
    EXTRA_PEER_CHECK_INTERVAL,
    FEELER_SLEEP_WINDOW,
    MAX_ADDNODE_CONNECTIONS,
    MAX_BLOCK_RELAY_ONLY_ANCHORS,
    MAX_BLOCK_RELAY_ONLY_CONNECTIONS,
    MAX_FEELER_CONNECTIONS,
    MAX_OUTBOUND_FULL_RELAY_CONNECTIONS,
    ExtraPeer,
    OutboundLimits,
    OutboundPolicy,
    select_extra_outbound_to_evict,
)
from peerkeeper.bitcoin.peer import BitcoinPeer, PeerConfig, has_all_desirable_service_flags
from peerkeeper.bitcoin.seeds import (
    ADD_NEXT_SEEDNODE,
    SEED_OUTBOUND_CONNECTION_THRESHOLD,
    fixed_seed_entries,
    fixed_seeds_reason,
    fixed_seeds_source,
)
from peerkeeper.bitcoin.uploadtarget import UploadTarget
from peerkeeper.dispatch.dispatcher import PendingRequests
from peerkeeper.io.dns import DnsSeeder
from peerkeeper.io.proxy import SOCKS5_RECV_TIMEOUT, ProxyError, ProxySettings
from peerkeeper.io.sockman import (
    DEFAULT_MAX_RECEIVE_BUFFER,
    DEFAULT_MAX_SEND_BUFFER,
    ConnectError,
    DialMap,
    SockMan,
)
from peerkeeper.net.chains import Chain
from peerkeeper.net.connection_types import ConnectionType
from peerkeeper.net.netaddr import AddrError, NetAddr, Network, Service, SubNet
from peerkeeper.net.netpermissions import NetPermissionFlags, Permissions, has_flag
from peerkeeper.wire.codec import DecodeError
from peerkeeper.wire.messages import (
    MESSAGE_TYPES,
    Addr,
    AddrEntry,
    AddrV2,
    GetAddr,
    Message,
    Ping,
    Pong,
    ServiceFlags,
    decode_message,
)
from peerkeeper.wire.v1 import RawMessage, TransportError, V1Transport
from peerkeeper.wire.v2 import V2Transport

__all__ = [
    "MAX_OUTBOUND_FULL_RELAY_CONNECTIONS",
    "MAX_BLOCK_RELAY_ONLY_CONNECTIONS",
    "MAX_FEELER_CONNECTIONS",
    "MAX_ADDNODE_CONNECTIONS",
    "DEFAULT_MAX_PEER_CONNECTIONS",
    "ConnManOptions",
    "PeerConn",
    "Backoff",
    "ConnMan",
    "resolve_service",
]

log = logging.getLogger("peerkeeper.net")

#: Seconds an addr-fetch peer may stay connected (src/net_processing.cpp ``SendMessages``:
#: ``10 * AVG_ADDRESS_BROADCAST_INTERVAL``).
ADDR_FETCH_TIMEOUT = 300.0
#: Local address scores (src/net.h): interfaces, -bind, mapped, -externalip.
LOCAL_IF, LOCAL_BIND, LOCAL_MAPPED, LOCAL_MANUAL = 1, 2, 3, 4
#: Seconds between the automatic-outbound loop's passes (src/net.cpp: 500 ms).
OPEN_CONNECTIONS_INTERVAL = 0.5
#: Core's bucket for message types it does not know (src/net.h ``NET_MESSAGE_TYPE_OTHER``).
NET_MESSAGE_TYPE_OTHER = "*other*"
#: A manual connection that lasted this long (seconds) resets its back-off (Octez's 60 s).
BACKOFF_RESET_AFTER = 60.0
#: getaddr replies are cached per network and local address for 21 h + U(0, 6 h)
#: (src/net.cpp ``CConnman::GetAddresses``).
ADDR_CACHE_LIFETIME = 21 * 3600.0
ADDR_CACHE_JITTER = 6 * 3600.0
#: Penalty applied to gossiped address times (src/net_processing.cpp ``ProcessAddrs``: 2 h).
ADDR_TIME_PENALTY = 2 * 3600


@dataclass(slots=True)
class ConnManOptions:
    """ConnMan settings (Core option names in the comments; seconds and bytes).

    ``connect`` (``-connect``): only these peers, no listening unless ``listen``
    is set explicitly; ``addnode`` (``-addnode``); ``bind`` ((host, port) pairs,
    ``-bind``); ``listen`` (``-listen``); ``max_connections`` (``-maxconnections``);
    ``max_send_buffer`` / ``max_receive_buffer`` (``-maxsendbuffer`` /
    ``-maxreceivebuffer`` in bytes); ``connect_timeout`` (``-timeout``);
    ``peer`` (what we announce; handshake and ping timeouts); ``dial_map`` (see
    :class:`~peerkeeper.io.sockman.SockMan`); ``v2transport`` (``-v2transport``: BIP324
    for inbound, with v1 detected transparently, and for outbound to manual peers and
    to peers advertising NODE_P2P_V2, retried once as v1 when the peer hangs up).

    Connection policy: ``inbound_relay_percent`` (``-inboundrelaypercent``);
    ``automatic_outbound`` (Core ``m_use_addrman_outgoing``; off with ``-connect``);
    ``reachable`` (networks automatic connections may use, from ``-onlynet`` and the
    proxies); ``permissions`` (``-whitelist`` / ``-whitebind``); ``max_upload_target``
    (bytes per 24 h, 0 = none); ``anchors`` (block-relay-only addresses from the last
    clean shutdown); ``seednode``; ``external_ip`` (``-externalip``); ``dnsseed``,
    ``forcednsseed``, ``dns_seeds`` (host names), ``dns_nameservers`` / ``dns_port``
    (None: the system resolver); ``fixedseeds`` and ``fixed_seeds`` (from
    ``-fixedseedsfile``); ``proxies`` (:class:`~peerkeeper.io.proxy.ProxySettings`);
    ``accept_map`` (see :class:`~peerkeeper.io.sockman.SockMan`);
    ``open_connections_interval`` (seconds between the automatic loop's passes, Core's
    500 ms); ``extra_block_relay`` (Core's periodic extra block-relay-only peer, which
    Core starts once out of initial block download: peerkeeper, with no chain, starts it
    at once).
    """

    chain: Chain
    connect: list[str] = field(default_factory=list)
    addnode: list[str] = field(default_factory=list)
    bind: list[tuple[str, int]] = field(default_factory=list)
    listen: bool = True
    max_connections: int = DEFAULT_MAX_PEER_CONNECTIONS
    max_send_buffer: int = DEFAULT_MAX_SEND_BUFFER
    max_receive_buffer: int = DEFAULT_MAX_RECEIVE_BUFFER
    connect_timeout: float = 5.0
    peer: PeerConfig = field(default_factory=PeerConfig)
    dial_map: DialMap | None = None
    accept_map: Callable[[Service], Service] | None = None
    proxies: ProxySettings = field(default_factory=ProxySettings)
    network_active: bool = True
    v2transport: bool = True

    inbound_relay_percent: int = DEFAULT_FULL_RELAY_INBOUND_PCT
    automatic_outbound: bool = True
    reachable: frozenset[Network] = frozenset({Network.IPV4, Network.IPV6})
    permissions: Permissions = field(default_factory=Permissions)
    max_upload_target: int = 0
    anchors: list[AddrEntry] = field(default_factory=list)
    seednode: list[str] = field(default_factory=list)
    external_ip: list[Service] = field(default_factory=list)
    dnsseed: bool = False
    forcednsseed: bool = False
    dns_seeds: list[str] = field(default_factory=list)
    dns_nameservers: list[str] | None = None
    dns_port: int = 53
    fixedseeds: bool = True
    fixed_seeds: list[Service] = field(default_factory=list)
    open_connections_interval: float = OPEN_CONNECTIONS_INTERVAL
    extra_block_relay: bool = True

    @property
    def limits(self) -> OutboundLimits:
        """Slots from ``-maxconnections`` and ``-inboundrelaypercent`` (Core ``CConnman::Init``)."""
        return OutboundLimits(self.max_connections, self.inbound_relay_percent)

    @property
    def max_inbound(self) -> int:
        """Inbound slots: ``max(0, maxconnections - (8 + 2 + 1))`` (src/net.h ``CConnman::Init``)."""
        return self.limits.max_inbound

    @property
    def open_automatic(self) -> bool:
        """Core opens automatic outbound connections unless ``-connect`` is given or
        ``-maxconnections=0`` / no outbound slots (src/init.cpp, src/net.cpp ``Start``)."""
        return (
            self.automatic_outbound and not self.connect and self.limits.max_automatic_outbound > 0
        )


@dataclass(slots=True)
class PeerConn:
    """One live connection: Core's ``CNode`` (ids, addresses, counters) plus its protocol.

    ``id`` is the node id shown in RPCs; ``conn_id`` is SockMan's; ``addr_name`` is
    the string we dialled (or the peer's address for inbound); times in seconds.
    """

    id: int
    conn_id: int
    addr: Service
    addr_bind: Service | None
    addr_name: str
    conn_type: ConnectionType
    transport: V1Transport | V2Transport
    proto: BitcoinPeer
    connected_at: float
    bytes_sent: int = 0
    bytes_recv: int = 0
    sent_per_msg: dict[str, int] = field(default_factory=dict)
    recv_per_msg: dict[str, int] = field(default_factory=dict)
    wake_at: float = float("inf")
    keyed_netgroup: int = 0
    prefer_evict: bool = False
    permissions: NetPermissionFlags = NetPermissionFlags.NONE
    #: Fixed for the connection's life, kept for eviction: Core's ``m_network``
    #: (``ConnectedThroughNetwork``), ``addr.IsLocal()`` and the ``noban`` permission.
    net_class: Network = Network.IPV4
    is_local: bool = False
    noban: bool = False
    reading_paused: bool = False
    closed: bool = False

    @property
    def inbound(self) -> bool:
        """True when the peer opened the connection."""
        return self.conn_type.is_inbound


class Backoff:
    """Per-target retry back-off: 1 s, then x1.2 per failure, capped (Octez's point back-off).

    Used for ``-addnode``/``-connect`` targets and for every automatic outbound
    failure (an address in back-off is not drawn again until its wait is over).

    ``Backoff(initial=1.0, factor=1.2, cap=60.0)``; :meth:`failed` returns the next
    allowed attempt time; :meth:`reset` after a good connection.
    """

    def __init__(self, initial: float = 1.0, factor: float = 1.2, cap: float = 60.0) -> None:
        self.initial = initial
        self.factor = factor
        self.cap = cap
        self._delay: dict[str, float] = {}
        self._next: dict[str, float] = {}

    def ready(self, key: str, now: float) -> bool:
        """True if ``key`` may be tried at ``now``."""
        return now >= self._next.get(key, 0.0)

    def failed(self, key: str, now: float) -> float:
        """Record a failure of ``key``; returns the time of the next allowed attempt."""
        delay = self._delay.get(key)
        delay = self.initial if delay is None else min(delay * self.factor, self.cap)
        self._delay[key] = delay
        self._next[key] = now + delay
        return now + delay

    def reset(self, key: str) -> None:
        """Forget ``key``'s failures."""
        self._delay.pop(key, None)
        self._next.pop(key, None)

    def forget(self, key: str) -> None:
        """Alias of :meth:`reset` for removed targets."""
        self.reset(key)

    def prune(self, now: float) -> int:
        """Forget targets whose wait ended more than ``cap`` seconds ago (their next
        failure starts over at ``initial``); returns how many were forgotten. Keeps the
        table bounded by the targets failing recently."""
        stale = [k for k, t in self._next.items() if t + self.cap < now]
        for k in stale:
            self.reset(k)
        return len(stale)


async def resolve_service(name: str, default_port: int) -> Service:
    """Turn ``"host[:port]"`` into a :class:`~peerkeeper.net.netaddr.Service`.

    Numeric forms parse directly; a host name is resolved with the event loop's
    resolver (first result). Raises ``ValueError`` when nothing resolves.
    """
    try:
        return Service.parse(name, default_port)
    except AddrError:
        pass
    host, _, port_s = name.rpartition(":")
    if not host or not port_s.isdigit():
        host, port = name, default_port
    else:
        port = int(port_s)
    host = host.strip("[]")
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise ValueError(f"cannot resolve {name!r}: {e}") from None
    for _family, _type, _proto, _canon, sockaddr in infos:
        try:
            return Service(NetAddr.parse(str(sockaddr[0])), int(sockaddr[1]))
        except AddrError:
            continue
    raise ValueError(f"cannot resolve {name!r}")


def _is_numeric(target: str) -> bool:
    try:
        Service.parse(target, 0)
    except AddrError:
        return False
    return True


def _split_name(target: str, default_port: int) -> tuple[str, int]:
    host, sep, port_s = target.rpartition(":")
    if sep and port_s.isdigit() and host:
        return host.strip("[]"), int(port_s)
    return target.strip("[]"), default_port


class _CachedAddrSource:
    """getaddr replies for one peer, from a cache shared per (local address, network).

    Core answers every inbound getaddr from a response cached per requestor network
    and local socket for 21-27 hours, so an attacker cannot scrape the table by
    reconnecting (src/net.cpp ``CConnman::GetAddresses``).
    """

    __slots__ = ("connman", "key", "bypass")

    def __init__(self, connman: ConnMan, key: tuple[str, int], bypass: bool = False) -> None:
        self.connman = connman
        self.key = key
        self.bypass = bypass

    def get_addr(self, max_addresses: int, max_pct: int, now: float) -> list[AddrEntry]:
        if self.bypass:
            # Core: a peer with the ``addr`` permission gets a fresh answer, never the cache.
            return self.connman.addrman.get_addr(max_addresses, max_pct, now)
        cache = self.connman._addr_cache
        hit = cache.get(self.key)
        if hit is None or hit[1] < now:
            entries = self.connman.addrman.get_addr(max_addresses, max_pct, now)
            expires = now + ADDR_CACHE_LIFETIME + self.connman.rng.random() * ADDR_CACHE_JITTER
            hit = cache[self.key] = (entries, expires)
        return hit[0]


class ConnMan:
    """The connection manager (first cut); implements :class:`~peerkeeper.io.sockman.SockManEvents`.

    ``ConnMan(options, addrman, clock=time.time, rng=random.Random())``. Start it
    with ``await start()`` inside a running loop and stop it with ``await stop()``.
    """

    def __init__(
        self,
        options: ConnManOptions,
        addrman: AddrMan,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        banman: BanMan | None = None,
    ) -> None:
        self.options = options
        self.addrman = addrman
        self.banman = banman
        self.clock = clock
        self.rng = rng if rng is not None else random.Random()
        self.sockman = SockMan(
            self,
            max_send_buffer=options.max_send_buffer,
            dial_map=options.dial_map,
            accept_map=options.accept_map,
        )
        self.peers: dict[int, PeerConn] = {}
        self._by_conn: dict[int, PeerConn] = {}
        #: Requests waiting for a reply, by (peer id, key): ("pong", nonce), ("addr",).
        self.pending = PendingRequests()
        self._next_id = 0
        self._local_nonces: set[int] = set()
        self.inbound_count = 0
        self._names: dict[str, int] = {}  # addr_name / address string -> live peers using it
        self._addr_cache: dict[tuple[str, int], tuple[list[AddrEntry], float]] = {}
        self._force_v1: set[str] = set()  # targets to redial once as v1 (Core's m_reconnections)
        # Core's GetDeterministicRandomizer key for keyed netgroups (src/net.cpp).
        self._netgroup_k0 = self.rng.getrandbits(64)
        self._netgroup_k1 = self.rng.getrandbits(64)
        self.total_bytes_sent = 0
        self.total_bytes_recv = 0
        #: ``-maxuploadtarget`` accounting (Core ``RecordBytesSent`` / ``OutboundTargetReached``).
        self.upload_target = UploadTarget(options.max_upload_target)
        self.added_nodes: list[str] = list(options.addnode)
        self.backoff = Backoff()
        self._pending: set[str] = set()
        self._heap: list[tuple[float, int]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = False
        self.listening: list[tuple[str, int]] = []
        self.network_active = options.network_active
        self.started_at = 0.0
        #: The automatic-outbound policy, made at :meth:`start` (after the address book loads).
        self.policy: OutboundPolicy | None = None
        self._addr_fetches: list[str] = []  # Core m_addr_fetches (a deque: front first)
        self._automatic_pending = 0  # automatic dials in flight (hold a Core semOutbound grant)
        #: Our own addresses (Core ``mapLocalHost``): never dialled.
        self.local_addresses: dict[Service, int] = {}
        self.feelers_made = 0
        self.feelers_done = 0
        #: The block-relay-only peers at :meth:`stop`, for anchors.dat (Core ``StopNodes``).
        self.anchors_at_stop: list[AddrEntry] = []
        self._fixed_seeds_added = False

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the listeners and start the loop that keeps manual peers connected.

        Raises ``OSError`` when a bind fails.
        """
        self.started_at = self.clock()
        opts = self.options
        if opts.listen:
            binds = opts.bind or [
                ("::", opts.chain.default_port),
                ("0.0.0.0", opts.chain.default_port),
            ]
            for host, port in binds:
                try:
                    self.listening.append(await self.sockman.bind_and_listen(host, port))
                except OSError as e:
                    if opts.bind:
                        raise
                    log.debug("bind %s:%d failed: %s", host, port, e)
            if not self.listening:
                raise OSError("could not bind any listening socket")
            log.info("listening on %s", ", ".join(f"{h}:{p}" for h, p in self.listening))
            for host, port in self.listening:
                with contextlib.suppress(AddrError):
                    self.add_local(Service.parse(host, port), LOCAL_BIND)
        for svc in opts.external_ip:
            self.add_local(svc, LOCAL_MANUAL)
        self._spawn(self._open_connections_loop())
        if opts.open_automatic:
            self.policy = OutboundPolicy(
                opts.limits,
                self.addrman,
                self.rng,
                self.started_at,
                reachable=set(opts.reachable),
                anchors=opts.anchors,
                local_services=opts.peer.services if opts.v2transport else 0,
                is_local=lambda s: s in self.local_addresses,
                added_node=self._is_added_node,
                outbound_allowed=self._outbound_allowed,
                dial_ready=lambda svc: self.backoff.ready(str(svc), self.clock()),
            )
            # Core starts extra block-relay-only peers once out of IBD
            # (StartExtraBlockRelayPeers); peerkeeper has no chain and counts as synced.
            self.policy.start_extra_block_relay_peers = opts.extra_block_relay
            if opts.anchors:
                log.info(
                    "%d block-relay-only anchors will be tried for connections.", len(opts.anchors)
                )
            self._spawn(self._automatic_loop())
            if opts.dnsseed and opts.dns_seeds:
                self._spawn(self._dns_seed_task())
            elif not opts.dnsseed:
                log.info("DNS seeding disabled")

    async def stop(self) -> None:
        """Close every connection and listener and cancel the background tasks.

        Before closing, the block-relay-only peers' addresses are kept in
        :attr:`anchors_at_stop` (Core ``StopNodes`` dumps them to anchors.dat).
        """
        if self.policy is not None and not self._stopping:
            self.anchors_at_stop = self.anchors_to_save()
        self._stopping = True
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for peer in list(self.peers.values()):
            self._drop(peer, "shutdown", close=True)
        await self.sockman.stop()

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- automatic outbound (Core ThreadOpenConnections) -----------------------------------

    def anchors_to_save(self) -> list[AddrEntry]:
        """The block-relay-only peers' addresses, at most 2 (Core ``GetCurrentBlockRelayOnlyConns``)."""
        now = int(self.clock())
        return [
            AddrEntry(now, p.proto.their.services, p.addr)
            for p in self.peers.values()
            if p.conn_type is ConnectionType.BLOCK_RELAY
            and not p.closed
            and p.proto.successfully_connected
        ][:MAX_BLOCK_RELAY_ONLY_ANCHORS]

    def _is_added_node(self, service: Service) -> bool:
        """Core ``AddedNodesContain``: is ``service`` (or its address) an ``-addnode`` entry?"""
        text = {str(service), str(service.addr)}
        for node in self.added_nodes:
            if node in text:
                return True
            try:
                if Service.parse(node, self.options.chain.default_port) == service:
                    return True
            except AddrError:
                continue
        return False

    def _outbound_allowed(self, addr: NetAddr) -> bool:
        return self.banman is None or self.banman.outbound_allowed(addr, self.clock())

    def automatic_outbound_count(self) -> int:
        """Connections holding a Core ``semOutbound`` grant: live full-relay,
        block-relay-only, feeler and addr-fetch peers, plus automatic dials in flight."""
        return self._automatic_pending + sum(
            1
            for p in self.peers.values()
            if not p.closed
            and p.conn_type
            in (
                ConnectionType.OUTBOUND_FULL_RELAY,
                ConnectionType.BLOCK_RELAY,
                ConnectionType.FEELER,
                ConnectionType.ADDR_FETCH,
            )
        )

    def add_addr_fetch(self, target: str) -> None:
        """Queue a one-shot addr-fetch connection (Core ``AddAddrFetch``: -seednode, DNS seeds)."""
        self._addr_fetches.append(target)

    async def _process_addr_fetch(self) -> None:
        """Core ``ProcessAddrFetch``: dial the first queued addr-fetch target if a slot is free."""
        if not self._addr_fetches:
            return
        target = self._addr_fetches.pop(0)
        assert self.policy is not None
        if not self.policy.grant_available(self.automatic_outbound_count()):
            return  # Core's try-grant failed: the target is dropped
        self._automatic_pending += 1
        try:
            # Core ProcessAddrFetch: v2 whenever we support it (retried as v1 if refused).
            await self.open_connection(
                target,
                ConnectionType.ADDR_FETCH,
                count_failure=False,
                use_v2=self.options.v2transport,
            )
        finally:
            self._automatic_pending -= 1

    def _expire_addr_fetch(self, now: float) -> None:
        """Disconnect addr-fetch peers after 5 minutes (src/net_processing.cpp ``SendMessages``)."""
        for peer in list(self.peers.values()):
            if (
                peer.conn_type is ConnectionType.ADDR_FETCH
                and not peer.closed
                and now - peer.connected_at > ADDR_FETCH_TIMEOUT
            ):
                self._drop(peer, "addrfetch connection timeout", close=True)

    def _evict_extra_outbound(self, now: float) -> None:
        """Core ``EvictExtraOutboundPeers``: drop the extra block-relay / full-relay peer."""
        peers = [
            ExtraPeer(
                id=p.id,
                conn_type=p.conn_type,
                connected=p.connected_at,
                network=p.addr.addr.get_network(),
                successfully_connected=p.proto.successfully_connected,
            )
            for p in self.peers.values()
            if not p.closed
            and p.conn_type
            in (
                ConnectionType.BLOCK_RELAY,
                ConnectionType.OUTBOUND_FULL_RELAY,
                ConnectionType.MANUAL,
            )
        ]
        for peer_id in select_extra_outbound_to_evict(peers, self.options.limits, now):
            peer = self.peers.get(peer_id)
            if peer is not None:
                self._drop(peer, "extra outbound peer", close=True)
                if peer.conn_type is ConnectionType.OUTBOUND_FULL_RELAY and self.policy is not None:
                    self.policy.try_new_outbound_peer = False

    async def _dns_seed_task(self) -> None:
        """Core ``ThreadDNSAddressSeed`` (src/net.cpp) via :class:`~peerkeeper.bitcoin.seeds.DnsSeeder`."""
        opts = self.options
        seeder = DnsSeeder(
            opts.dns_seeds,
            default_port=opts.chain.default_port,
            full_outbound_count=lambda: self._count(ConnectionType.OUTBOUND_FULL_RELAY),
            addrman_size=lambda: len(self.addrman),
            add_addresses=self._add_seed_addresses,
            add_addr_fetch=self.add_addr_fetch,
            network_active=lambda: self.network_active,
            have_name_proxy=lambda: opts.proxies.name_proxy is not None,
            forcednsseed=opts.forcednsseed,
            seednode_configured=bool(opts.seednode),
            nameservers=opts.dns_nameservers,
            nameserver_port=opts.dns_port,
            clock=self.clock,
            rng=self.rng,
        )
        try:
            await seeder.run()
        except Exception:
            log.exception("DNS seeding failed")

    def _add_seed_addresses(self, entries: list[AddrEntry], source: NetAddr) -> None:
        self.addrman.add(entries, source, now=self.clock())

    def _maybe_add_fixed_seeds(self, now: float) -> None:
        """Core's fixed-seed fallback in ``ThreadOpenConnections`` (src/net.cpp): once, when a
        reachable network has no address, after 60 s or at once without other sources."""
        opts = self.options
        if self._fixed_seeds_added or not opts.fixedseeds:
            return
        empty = {n for n in opts.reachable if self.addrman.size(n) == 0}
        reason = fixed_seeds_reason(
            now,
            self.started_at,
            fixedseeds_enabled=True,
            already_added=False,
            empty_reachable_networks=empty,
            dnsseed=opts.dnsseed,
            seednodes=bool(opts.seednode),
            addnodes=bool(self.added_nodes),
        )
        if reason is None:
            return
        log.info("%s", reason)
        entries = fixed_seed_entries(opts.fixed_seeds, empty, now, self.rng)
        self.addrman.add(entries, fixed_seeds_source(), now=now)
        self._fixed_seeds_added = True
        log.info("Added %d fixed seeds from reachable networks.", len(entries))

    async def _automatic_loop(self) -> None:
        """Core ``ThreadOpenConnections`` (src/net.cpp): one pick at a time, every 500 ms."""
        policy = self.policy
        assert policy is not None
        seednodes = list(self.options.seednode)
        self.rng.shuffle(seednodes)
        add_addr_fetch = len(self.addrman) == 0 and bool(seednodes)
        seed_node_timer = self.clock()
        next_extra_check = self.clock() + EXTRA_PEER_CHECK_INTERVAL
        while not self._stopping:
            try:
                if add_addr_fetch:
                    add_addr_fetch = False
                    seed = seednodes.pop()
                    self.add_addr_fetch(seed)
                    log.info("Adding seednode (%s) to addrfetch", seed)
                await self._process_addr_fetch()
                await asyncio.sleep(self.options.open_connections_interval)
                if not self.network_active or self._stopping:
                    continue
                now = self.clock()
                self._expire_addr_fetch(now)
                if now >= next_extra_check:
                    next_extra_check = now + EXTRA_PEER_CHECK_INTERVAL
                    self._evict_extra_outbound(now)
                    self.backoff.prune(now)
                self._maybe_add_fixed_seeds(now)
                if (
                    seednodes
                    and self._count(ConnectionType.OUTBOUND_FULL_RELAY)
                    < SEED_OUTBOUND_CONNECTION_THRESHOLD
                    and now > seed_node_timer + ADD_NEXT_SEEDNODE
                ):
                    seed_node_timer = now
                    add_addr_fetch = True
                if not policy.grant_available(self.automatic_outbound_count()):
                    continue
                pick = policy.next_connection(
                    ((p.conn_type, p.addr) for p in self.peers.values() if not p.closed), now
                )
                if pick is None:
                    continue
                conn_type = pick.decision.conn_type
                if pick.decision.feeler:
                    await asyncio.sleep(self.rng.uniform(0, FEELER_SLEEP_WINDOW))
                    log.debug("Making feeler connection to %s", pick.entry.service)
                    self.feelers_made += 1
                self._automatic_pending += 1
                try:
                    await self.open_connection(
                        pick.entry.service,
                        conn_type,
                        count_failure=pick.count_failure,
                        use_v2=pick.use_v2 and self.options.v2transport,
                    )
                finally:
                    self._automatic_pending -= 1
            except Exception:
                # A bug in one pass must not end automatic connections for good.
                log.exception("automatic outbound pass failed")
                await asyncio.sleep(self.options.open_connections_interval)

    def _count(self, conn_type: ConnectionType) -> int:
        return sum(1 for p in self.peers.values() if p.conn_type is conn_type and not p.closed)

    # -- outbound -------------------------------------------------------------------------

    def manual_targets(self) -> list[str]:
        """The addresses to keep connected: ``-connect`` if given, else the added nodes."""
        return list(self.options.connect) if self.options.connect else list(self.added_nodes)

    def is_connected(self, name: str) -> bool:
        """True if a live peer was dialled as ``name`` or has ``name`` as its address string."""
        return name in self._names

    def _index(self, peer: PeerConn, delta: int) -> None:
        for name in {peer.addr_name, str(peer.addr)}:
            n = self._names.get(name, 0) + delta
            if n > 0:
                self._names[name] = n
            else:
                self._names.pop(name, None)

    async def _open_connections_loop(self) -> None:
        while not self._stopping:
            now = self.clock()
            if self.network_active:
                pending_manual = len(self._pending)
                if not self.options.connect:
                    # Core's semAddnode: at most 8 addnode connections, open or opening.
                    pending_manual += sum(1 for t in self.added_nodes if self.is_connected(t))
                for target in self.manual_targets():
                    if self.is_connected(target) or target in self._pending:
                        continue
                    if not self.options.connect and pending_manual >= MAX_ADDNODE_CONNECTIONS:
                        break
                    if not self.backoff.ready(target, now):
                        continue
                    self._pending.add(target)
                    pending_manual += 1
                    self._spawn(self._open_manual(target))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await self._wake.wait()

    async def _open_manual(self, target: str) -> None:
        try:
            peer = await self.open_connection(target, ConnectionType.MANUAL)
            if peer is None:
                self.backoff.failed(target, self.clock())
        finally:
            self._pending.discard(target)

    async def open_connection(
        self,
        target: str | Service,
        conn_type: ConnectionType,
        *,
        count_failure: bool | None = None,
        use_v2: bool | None = None,
    ) -> PeerConn | None:
        """Dial ``target`` ("host:port" or a :class:`Service`) as ``conn_type``; returns the
        new peer or None.

        Failures are logged; they never raise. Refused while the network is
        inactive or when the address is already connected (Core
        ``OpenNetworkConnection``). ``count_failure`` (default: not manual) says
        whether AddrMan counts the attempt as a failure; ``use_v2`` (default: manual
        peers and peers advertising NODE_P2P_V2) chooses BIP324.
        """
        if not self.network_active or self._stopping:
            return None
        dest: Service | str
        name_proxy = self.options.proxies.name_proxy
        if isinstance(target, Service):
            service = dest = target
            target = str(service)
        elif name_proxy is not None and not _is_numeric(target):
            # Core ConnectNode with a name proxy: the name goes to the proxy, never to
            # our resolver; the peer is known by an internal address made from it.
            host, port = _split_name(target, self.options.chain.default_port)
            service = Service(NetAddr.internal(host), port)
            dest = f"{host}:{port}"
        else:
            try:
                service = dest = await resolve_service(target, self.options.chain.default_port)
            except ValueError as e:
                log.info("cannot connect to %s: %s", target, e)
                return None
        if self.is_connected(str(service)):
            return None
        if count_failure is None:
            count_failure = conn_type is not ConnectionType.MANUAL
        if (
            conn_type is not ConnectionType.MANUAL
            and self.banman is not None
            and not self.banman.outbound_allowed(service.addr, self.clock())
        ):
            # Core OpenNetworkConnection: never dial a banned or discouraged address on our own.
            return None
        if isinstance(dest, str):
            proxy = name_proxy
        else:
            proxy = self.options.proxies.for_network(service.addr.get_network())
        timeout = self.options.connect_timeout + (SOCKS5_RECV_TIMEOUT if proxy else 0.0)
        try:
            conn_id = await self.sockman.connect(dest, timeout, proxy=proxy)
        except ConnectError as e:
            log.debug("connect to %s failed: %s", target, e.reason)
            if conn_type is not ConnectionType.MANUAL:
                self.backoff.failed(target, self.clock())  # manual: the manual loop's own
            if not (isinstance(e, ProxyError) and e.proxy_failed):
                # Core ConnectNode: a failure of the proxy itself is not the address's fault.
                self.addrman.attempt(service, count_failure, now=self.clock())
            return None
        # Core ConnectNode: a made connection is an attempt too (counted for automatic types).
        self.addrman.attempt(service, count_failure, now=self.clock())
        if self._stopping or not self.network_active:
            self.sockman.close(conn_id)
            return None
        ends = self.sockman.endpoints(conn_id)
        forced_v1 = target in self._force_v1
        self._force_v1.discard(target)
        if use_v2 is None:
            use_v2 = self.options.v2transport
            if use_v2 and conn_type is not ConnectionType.MANUAL:
                # Core: v2 only to peers that advertise it (addr.nServices & NODE_P2P_V2).
                known = self.addrman.find(service)
                use_v2 = known is not None and bool(known.services & ServiceFlags.NODE_P2P_V2)
        use_v2 = use_v2 and self.options.v2transport and not forced_v1
        peer = self._new_peer(
            conn_id,
            service,
            ends[0] if ends else None,
            target,
            conn_type,
            v2=use_v2,
            permissions=self.options.permissions.outbound(service.addr, conn_type),
        )
        log.debug(
            "connected to %s (%s, %s), peer=%d",
            target,
            conn_type.value,
            "v2" if use_v2 else "v1",
            peer.id,
        )
        self._flush(peer)
        self._apply(peer, peer.proto.start(self.clock()))
        self.sockman.flush()
        return peer

    def _new_peer(
        self,
        conn_id: int,
        addr: Service,
        addr_bind: Service | None,
        name: str,
        conn_type: ConnectionType,
        *,
        v2: bool = False,
        permissions: NetPermissionFlags = NetPermissionFlags.NONE,
    ) -> PeerConn:
        now = self.clock()
        magic = self.options.chain.magic
        transport: V1Transport | V2Transport
        if v2:
            transport = V2Transport(magic, initiating=not conn_type.is_inbound, rng=os.urandom)
        else:
            transport = V1Transport(magic)
        nonce = self.rng.getrandbits(64)
        proto = BitcoinPeer(
            conn_type=conn_type,
            addr=addr,
            local_nonce=nonce,
            config=self.options.peer,
            now=now,
            rng=self.rng,
            addr_source=_CachedAddrSource(
                self,
                (str(addr_bind.addr) if addr_bind else "", int(addr.addr.get_net_class())),
                bypass=has_flag(permissions, NetPermissionFlags.ADDR),
            ),
            is_local_nonce=self._is_local_nonce,
            permissions=int(permissions),
            local_address=(lambda: self.local_addr_for_peer(peer)) if self.listening else None,
        )
        peer = PeerConn(
            id=self._next_id,
            conn_id=conn_id,
            addr=addr,
            addr_bind=addr_bind,
            addr_name=name,
            conn_type=conn_type,
            transport=transport,
            proto=proto,
            connected_at=now,
            permissions=permissions,
            net_class=addr.addr.get_net_class(),
            is_local=addr.addr.is_local(),
            noban=has_flag(permissions, NetPermissionFlags.NOBAN),
        )
        peer.keyed_netgroup = keyed_netgroup(
            addr.addr.netgroup(), self._netgroup_k0, self._netgroup_k1
        )
        self._next_id += 1
        self.peers[peer.id] = peer
        self._by_conn[conn_id] = peer
        if conn_type.is_inbound:
            self.inbound_count += 1
        else:
            self._local_nonces.add(nonce)
        self._index(peer, +1)
        self._schedule(peer)
        return peer

    def _is_local_nonce(self, nonce: int) -> bool:
        """Core ``CheckIncomingNonce``: is this one of our outbound, not yet connected, nonces?"""
        return nonce in self._local_nonces

    # -- SockManEvents --------------------------------------------------------------------

    def on_accepted(self, conn_id: int, me: Service, them: Service) -> bool:
        """Admit an inbound connection in Core's order (src/net.cpp ``CreateNodeFromAcceptedSocket``).

        Network inactive: refused. Banned: refused. Discouraged: refused when the
        inbound slots are (almost) full, else admitted and marked prefer-evict.
        Full: Core's inbound eviction (:meth:`attempt_to_evict`); refused when everyone is protected.
        """
        if not self.network_active or self._stopping:
            log.debug("connection from %s dropped (not accepting new connections)", them)
            return False
        prefer_evict = False
        permissions = self.options.permissions.inbound(them.addr, me)
        noban = has_flag(permissions, NetPermissionFlags.NOBAN)
        if self.banman is not None:
            decision = self.banman.inbound_decision(
                them.addr,
                self.clock(),
                noban=noban,
                inbound_count=self.inbound_count,
                max_inbound=self.options.max_inbound,
            )
            if decision in ("refuse-banned", "refuse-discouraged"):
                log.debug("connection from %s dropped (%s)", them, decision.removeprefix("refuse-"))
                return False
            prefer_evict = decision == "accept-prefer-evict"
        if self.inbound_count >= self.options.max_inbound and not self.attempt_to_evict():
            log.debug("connection from %s dropped (full)", them)
            return False
        peer = self._new_peer(
            conn_id,
            them,
            me,
            str(them),
            ConnectionType.INBOUND,
            v2=self.options.v2transport,
            permissions=permissions,
        )
        peer.prefer_evict = prefer_evict
        log.debug("connection from %s accepted, peer=%d", them, peer.id)
        return True

    def attempt_to_evict(
        self, *, tx_relay_only: bool = False, protect_peer: int | None = None
    ) -> bool:
        """Core ``AttemptToEvictConnection``: drop one inbound peer chosen by
        :func:`~peerkeeper.bitcoin.eviction.select_node_to_evict`; False when every one is protected.

        ``tx_relay_only`` considers only peers that relay transactions, and
        ``protect_peer`` (an id) is never chosen: Core's ``EvictTxPeerIfFull``.
        """
        # Only inbound peers can be chosen (Core's SelectNodeToEvict drops the others
        # first), so the others are not even listed.
        candidates = [
            EvictionCandidate(
                id=p.id,
                connected=p.connected_at,
                min_ping_time=p.proto.ping.min_time
                if p.proto.ping.min_time is not None
                else math.inf,
                relevant_services=has_all_desirable_service_flags(p.proto.their.services),
                relay_txs=p.proto.their.relay,
                keyed_netgroup=p.keyed_netgroup,
                prefer_evict=p.prefer_evict,
                noban=p.noban,
                is_local=p.is_local,
                network=p.net_class,
                conn_type=p.conn_type,
            )
            for p in self.peers.values()
            if p.conn_type is ConnectionType.INBOUND
            and not p.closed
            and p.id != protect_peer
            and (not tx_relay_only or p.proto.their.relay)
        ]
        victim = select_node_to_evict(candidates)
        if victim is None:
            return False
        peer = self.peers[victim]
        log.debug("selected peer=%d (%s) for eviction", peer.id, peer.addr)
        self._drop(peer, "evicted for an inbound slot", close=True)
        return True

    def _check_tx_relay_capacity(self, peer: PeerConn) -> None:
        """Core ``MaybeDisconnectForTxRelayCapacity`` / ``EvictTxPeerIfFull`` (src/net.cpp,
        src/net_processing.cpp), after an inbound peer's version asked for transactions.

        Over ``-inboundrelaypercent`` of the inbound slots relaying transactions, one
        tx-relaying inbound peer (never this one) is evicted; when all are protected,
        this peer is disconnected instead.
        """
        tx_inbound = sum(
            1 for p in self.peers.values() if p.inbound and not p.closed and p.proto.their.relay
        )
        if tx_inbound <= self.options.limits.max_inbound_full_relay:
            return
        if not self.attempt_to_evict(tx_relay_only=True, protect_peer=peer.id):
            log.debug(
                "failed to find a tx-relaying eviction candidate - connection dropped after "
                "version message, peer=%d",
                peer.id,
            )
            self._drop(peer, "no tx-relay slot", close=True)

    def on_data(self, conn_id: int, data: bytes) -> None:
        """Feed bytes to the peer's transport and process every complete message."""
        peer = self._by_conn.get(conn_id)
        if peer is None or peer.closed:
            return
        n = len(data)
        peer.bytes_recv += n
        self.total_bytes_recv += n
        peer.transport.receive_data(data)
        self._process(peer)
        if not peer.closed:
            self._flush(peer)

    def _process(self, peer: PeerConn) -> None:
        transport = peer.transport
        sockman = self.sockman
        while not peer.closed:
            if sockman.send_paused(peer.conn_id):
                self._pause_reading(peer)
                return
            try:
                raw = transport.next_message()
            except TransportError as e:
                self._drop(peer, str(e), close=True)
                return
            if raw is None:
                break
            self._handle_raw(peer, raw)
        if not peer.closed:
            # Only complete, unprocessed messages count (Core's nProcessQueueSize): a
            # message still arriving never blocks its own completion.
            if transport.buffered - transport.partial_bytes() > self.options.max_receive_buffer:
                self._pause_reading(peer)
            elif peer.reading_paused:
                peer.reading_paused = False
                sockman.resume_receiving(peer.conn_id)

    def _pause_reading(self, peer: PeerConn) -> None:
        if not peer.reading_paused:
            peer.reading_paused = True
            self.sockman.pause_receiving(peer.conn_id)

    def _handle_raw(self, peer: PeerConn, raw: RawMessage) -> None:
        now = self.clock()
        if raw.rejected is not None or raw.command not in MESSAGE_TYPES:
            key = NET_MESSAGE_TYPE_OTHER
        else:
            key = raw.command
        peer.recv_per_msg[key] = peer.recv_per_msg.get(key, 0) + raw.wire_size
        if raw.rejected is not None:
            log.debug(
                "dropped message (%s, %s, %d bytes) from peer=%d",
                raw.rejected,
                raw.command,
                raw.wire_size,
                peer.id,
            )
            peer.proto.last_recv = now
            return
        try:
            msg = decode_message(raw.command, raw.payload)
        except DecodeError as e:
            log.debug(
                "malformed %s (%d bytes) from peer=%d: %s",
                raw.command,
                len(raw.payload),
                peer.id,
                e,
            )
            self._apply(peer, peer.proto.on_decode_error(raw.command, e, now))
            return
        self._apply(peer, peer.proto.on_message(msg, now))
        if isinstance(msg, Pong | Addr | AddrV2):
            wanted = ("pong", msg.nonce) if isinstance(msg, Pong) else ("addr",)
            if (peer.id, wanted) in self.pending:
                self.pending.resolve(peer.id, wanted, msg)
        if raw.command == "version" and peer.inbound and not peer.closed and peer.proto.their.relay:
            self._check_tx_relay_capacity(peer)

    def on_eof(self, conn_id: int) -> None:
        """The peer closed: forget it (a v2 attempt it refused is retried once as v1)."""
        peer = self._by_conn.get(conn_id)
        if peer is not None:
            self._drop(peer, "socket closed", close=False)
            self._maybe_retry_v1(peer)  # after _drop's back-off bookkeeping: redial at once

    def _maybe_retry_v1(self, peer: PeerConn) -> None:
        """Core ``V2Transport::ShouldReconnectV1``: we sent our key, got nothing, and were cut off."""
        if peer.inbound or not peer.transport.should_reconnect_v1():
            return
        log.debug("retrying with v1 transport protocol for peer=%d (%s)", peer.id, peer.addr_name)
        if peer.conn_type is ConnectionType.MANUAL:
            self._force_v1.add(peer.addr_name)
            self.backoff.reset(peer.addr_name)
        elif not self._stopping:
            # Core PerformReconnections: same type, keeping the grant, failures not counted.
            self._automatic_pending += 1
            self._spawn(self._reconnect_v1(peer))

    async def _reconnect_v1(self, peer: PeerConn) -> None:
        try:
            # By the name we dialled: a named addr-fetch peer goes through the name proxy again.
            await self.open_connection(
                peer.addr_name, peer.conn_type, count_failure=False, use_v2=False
            )
        finally:
            self._automatic_pending -= 1

    def on_error(self, conn_id: int, exc: Exception) -> None:
        """A socket error: forget the peer (a refused v2 attempt is retried once as v1)."""
        peer = self._by_conn.get(conn_id)
        if peer is not None:
            self._drop(peer, f"socket error: {exc}", close=False)
            self._maybe_retry_v1(peer)

    def on_writable(self, conn_id: int) -> None:
        """The send buffer drained: resume processing what the peer sent meanwhile."""
        peer = self._by_conn.get(conn_id)
        if peer is not None and not peer.closed:
            self._process(peer)
            if not peer.closed:
                self._flush(peer)

    def on_io_loop_completed(self) -> None:
        """Nothing per batch yet: sends are flushed by SockMan right after this."""

    # -- actions --------------------------------------------------------------------------

    def _apply(self, peer: PeerConn, actions: list[Action]) -> None:
        for action in actions:
            if peer.closed:
                return
            if isinstance(action, Send):
                self._send(peer, action)
            elif isinstance(action, Disconnect):
                reason = action.reason
                if (
                    reason == "version handshake timeout"
                    and peer.transport.transport_type == "detecting"
                ):
                    reason = "V2 handshake timeout"  # Core's InactivityCheck wording
                self._drop(peer, reason, close=True)
            elif isinstance(action, Misbehaving):
                self._misbehaving(peer, action.reason)
            elif isinstance(action, LearnedAddresses):
                self._learned(peer, action)
            elif isinstance(action, VersionReceived):
                # Core's VERSION handler: SetServices for outbound peers, and Good once
                # the version is accepted (feelers included, block-relay-only too).
                self.addrman.set_services(peer.addr, action.services)
                if action.accepted:
                    self.addrman.good(peer.addr, now=self.clock())
                    if peer.conn_type is not ConnectionType.MANUAL:
                        self.backoff.reset(peer.addr_name)
            elif isinstance(action, HandshakeComplete):
                self._local_nonces.discard(peer.proto.local_nonce)
                if not peer.inbound:
                    log.info(
                        "New %s peer connected: version: %d, peer=%d, peeraddr=%s",
                        peer.conn_type.value,
                        peer.proto.their.version,
                        peer.id,
                        peer.addr,
                    )
        self._schedule(peer)

    def _learned(self, peer: PeerConn, action: LearnedAddresses) -> None:
        """Store gossiped addresses and relay the fresh ones (Core ``ProcessAddrs``).

        Banned and discouraged addresses are neither stored nor relayed; each fresh
        one goes to the 1-2 peers :func:`~peerkeeper.bitcoin.addrrelay.relay_targets` picks
        among the other address-relay peers (Core ``RelayAddress``).
        """
        now = self.clock()
        banman = self.banman

        def allowed(e: AddrEntry) -> bool:
            return banman is None or banman.outbound_allowed(e.service.addr, now)

        entries = [e for e in action.entries if allowed(e)]
        if entries:
            self.addrman.add(entries, peer.addr, ADDR_TIME_PENALTY, now=now)
        for e in action.relay:
            if not allowed(e):
                continue
            candidates = {
                p.id: p
                for p in self.peers.values()
                if p.id != peer.id
                and not p.closed
                and p.proto.addr_relay_enabled
                and p.proto.is_addr_compatible(e)
            }
            reachable = e.service.addr.get_network() in self.options.reachable
            for target_id in relay_targets(
                e, now, candidates, self._netgroup_k0, self._netgroup_k1, reachable=reachable
            ):
                target = candidates[target_id]
                target.proto.push_address(e, now)
                self._schedule(target)

    def local_addr_for_peer(self, peer: PeerConn) -> AddrEntry | None:
        """Our address as we announce it to ``peer``, or None (Core ``GetLocalAddrForPeer``).

        Our best local address (``-externalip``, routable binds) on the listening
        port; sometimes (always when we have none, else 1 in 2, 1 in 8 above
        ``LOCAL_MANUAL``) the address the peer says it sees us at — for an outbound
        peer only its IP, keeping our port. Unroutable results are not announced.
        """
        best: Service | None = None
        best_score = -1
        for svc, score in self.local_addresses.items():
            if score > best_score:
                best, best_score = svc, score
        seen = peer.proto.their.addr_me
        if (
            seen is not None
            and seen.addr.is_routable()
            and (best is None or self.rng.getrandbits(3 if best_score > LOCAL_MANUAL else 1) == 0)
        ):
            port = best.port if best is not None else self._listen_port()
            best = seen if peer.inbound else Service(seen.addr, port)
        if best is None or not best.addr.is_routable():
            return None
        return AddrEntry(int(self.clock()), self.options.peer.services, best)

    def _listen_port(self) -> int:
        return self.listening[0][1] if self.listening else self.options.chain.default_port

    def add_local(self, service: Service, score: int) -> bool:
        """Core ``AddLocal``: remember one of our routable addresses; False if unroutable."""
        if not service.addr.is_routable():
            return False
        self.local_addresses[service] = max(score, self.local_addresses.get(service, 0))
        return True

    def _send(self, peer: PeerConn, action: Send) -> None:
        """Frame one message; count its own frame size under its type (Core's per-msg maps)."""
        msg = action.message
        transport = peer.transport
        payload = msg.encode()
        data = transport.send_raw(msg.command, payload)
        if isinstance(transport, V2Transport):
            size = transport.packet_size(msg.command, len(payload))
        else:
            size = len(data)
        key = msg.command if msg.command in MESSAGE_TYPES else NET_MESSAGE_TYPE_OTHER
        peer.sent_per_msg[key] = peer.sent_per_msg.get(key, 0) + size
        if data and self.sockman.send(peer.conn_id, data):
            peer.bytes_sent += len(data)
            self.total_bytes_sent += len(data)
            self.upload_target.record_bytes_sent(len(data), self.clock())
            peer.proto.last_send = self.clock()
        self._flush(peer)

    def _flush(self, peer: PeerConn) -> None:
        """Send what the transport produced by itself (BIP324 key, garbage, queued packets).

        A BIP324 responder whose peer turned out to be v1 is swapped for its inner
        v1 transport here, once it has nothing pending.
        """
        transport = peer.transport
        data = transport.data_to_send()
        if data and self.sockman.send(peer.conn_id, data):
            n = len(data)
            peer.bytes_sent += n
            self.total_bytes_sent += n
            self.upload_target.record_bytes_sent(n, self.clock())
            peer.proto.last_send = self.clock()
        if isinstance(transport, V2Transport):
            inner = transport.detected_v1()
            if inner is not None:
                peer.transport = inner

    def _misbehaving(self, peer: PeerConn, reason: str) -> None:
        """Core ``MaybeDiscourageAndDisconnect`` (src/net_processing.cpp).

        Manual peers are not punished; a local address is disconnected but not
        discouraged; anyone else is discouraged and disconnected.
        """
        if has_flag(peer.permissions, NetPermissionFlags.NOBAN):
            log.warning("Warning: not punishing noban peer %d! (%s)", peer.id, reason)
            return
        if peer.conn_type is ConnectionType.MANUAL:
            log.warning("Warning: not punishing manually connected peer=%d (%s)", peer.id, reason)
            return
        if peer.addr.addr.is_local():
            log.warning(
                "Warning: disconnecting but not discouraging local peer=%d (%s)", peer.id, reason
            )
        else:
            log.info("Disconnecting and discouraging peer=%d (%s)", peer.id, reason)
            if self.banman is not None:
                self.banman.discourage(peer.addr.addr)
        self._drop(peer, f"misbehaving: {reason}", close=True)
        if not peer.addr.addr.is_local():
            self.disconnect_matching(
                peer.addr.addr
            )  # Core: DisconnectNode(pnode.addr), every connection

    def _drop(self, peer: PeerConn, reason: str, *, close: bool) -> None:
        if peer.closed:
            return
        peer.closed = True
        self.pending.cancel_peer(peer.id, reason)
        self.peers.pop(peer.id, None)
        self._by_conn.pop(peer.conn_id, None)
        self._local_nonces.discard(peer.proto.local_nonce)
        self._index(peer, -1)
        if peer.conn_type is ConnectionType.FEELER:
            self.feelers_done += 1
        if peer.inbound:
            self.inbound_count -= 1
        elif peer.proto.successfully_connected and peer.conn_type is not ConnectionType.BLOCK_RELAY:
            # Core FinalizeNode: Connected() updates nTime, never for block-relay-only peers.
            self.addrman.connected(peer.addr, now=self.clock())
        peer.proto.disconnected = True
        if close:
            self.sockman.close(peer.conn_id)
        log.debug("disconnecting peer=%d (%s): %s", peer.id, peer.addr, reason)
        if peer.conn_type is ConnectionType.MANUAL and not self._stopping:
            # Octez's point back-off: a connection that lasted BACKOFF_RESET_AFTER resets
            # it; one that failed, or ended sooner (even after a handshake), backs off.
            now = self.clock()
            if peer.proto.successfully_connected and now - peer.connected_at >= BACKOFF_RESET_AFTER:
                self.backoff.reset(peer.addr_name)
            else:
                self.backoff.failed(peer.addr_name, now)
        self._wake.set()

    # -- timers ---------------------------------------------------------------------------

    def _schedule(self, peer: PeerConn) -> None:
        if peer.closed:
            return
        at = peer.proto.next_wakeup()
        if at < peer.wake_at:
            peer.wake_at = at
            heapq.heappush(self._heap, (at, peer.id))
            if at < self._timer_at:
                self._arm(at)

    def _arm(self, at: float) -> None:
        if self._stopping:
            return
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        delay = max(0.0, at - self.clock())
        self._timer_at = at
        self._timer = loop.call_at(loop.time() + delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = float("inf")
        now = self.clock()
        heap = self._heap
        # Take every due peer first, then tick each once: a peer whose next wakeup is
        # still <= now after its tick waits for the next timer, never spins this one.
        due: list[PeerConn] = []
        while heap and heap[0][0] <= now:
            at, peer_id = heapq.heappop(heap)
            peer = self.peers.get(peer_id)
            if peer is None or peer.wake_at != at:
                continue  # stale entry
            peer.wake_at = float("inf")
            due.append(peer)
        for peer in due:
            if not peer.closed:
                self._apply(peer, peer.proto.tick(now))
        if heap:
            self._arm(heap[0][0])
        self.sockman.flush()

    # -- control (RPC) ----------------------------------------------------------------------

    def find_peer(self, address: str | None = None, peer_id: int | None = None) -> PeerConn | None:
        """The peer with ``peer_id``, or whose ``addr_name`` or address string is ``address``."""
        if peer_id is not None:
            return self.peers.get(peer_id)
        if address is None or not self.is_connected(address):
            return None
        for peer in self.peers.values():
            if address in (peer.addr_name, str(peer.addr)):
                return peer
        return None

    def disconnect_node(self, address: str | None = None, peer_id: int | None = None) -> bool:
        """Disconnect one peer by address string or id; False if none matched (Core ``DisconnectNode``)."""
        peer = self.find_peer(address, peer_id)
        if peer is None:
            return False
        self._drop(peer, "disconnectnode", close=True)
        self.sockman.flush()
        return True

    def disconnect_matching(self, target: NetAddr | SubNet) -> int:
        """Disconnect every peer whose address is ``target`` or inside it; returns how many.

        Core ``CConnman::DisconnectNode(const CSubNet&)`` / ``(const CNetAddr&)``, used by setban.
        """
        victims = [
            p
            for p in self.peers.values()
            if (target.match(p.addr.addr) if isinstance(target, SubNet) else p.addr.addr == target)
        ]
        for peer in victims:
            self._drop(peer, "banned", close=True)
        if victims:
            self.sockman.flush()
        return len(victims)

    def add_node(self, node: str, command: str) -> None:
        """``addnode`` RPC: ``add`` / ``remove`` / ``onetry``.

        Raises ``KeyError`` for remove of an unknown node, ``ValueError`` for add of
        a known one or an unknown command (Core src/rpc/net.cpp ``addnode``).
        """
        if command == "add":
            if node in self.added_nodes:
                raise ValueError("Node already added")
            self.added_nodes.append(node)
            self._wake.set()
        elif command == "remove":
            if node not in self.added_nodes:
                raise KeyError("Node could not be removed. It has not been added previously.")
            self.added_nodes.remove(node)
            self.backoff.forget(node)
            self._force_v1.discard(node)
        elif command == "onetry":
            self._spawn(self._onetry(node))
        else:
            raise ValueError(f"unknown addnode command {command!r}")

    def get_added_node_info(self) -> list[tuple[str, PeerConn | None]]:
        """Each ``-addnode`` / ``addnode add`` entry with the live peer it matches, or None
        (Core ``CConnman::GetAddedNodeInfo``: an IP:port entry matches a peer's address,
        a name matches the name a peer was dialled with)."""
        by_addr: dict[Service, PeerConn] = {}
        by_name: dict[str, PeerConn] = {}
        for p in self.peers.values():
            if p.closed:
                continue
            by_addr[p.addr] = p
            by_name[p.addr_name] = p
        out: list[tuple[str, PeerConn | None]] = []
        for node in self.added_nodes:
            try:
                service: Service | None = Service.parse(node, self.options.chain.default_port)
            except AddrError:
                service = None
            out.append((node, by_addr.get(service) if service is not None else by_name.get(node)))
        return out

    async def _onetry(self, node: str) -> None:
        await self.open_connection(node, ConnectionType.MANUAL)

    async def _request(
        self, peer_id: int, message: Message, key: tuple[object, ...], timeout: float
    ) -> Any:
        """Send ``message`` to ``peer_id`` and wait for the reply matched by ``key`` in
        :attr:`pending` (the dispatch layer's table). Raises KeyError for an unknown
        peer, :class:`~peerkeeper.shell.dispatch.RequestFailed` (``timeout``, or why the
        peer was dropped)."""
        from peerkeeper.shell.dispatch import RequestFailed

        peer = self.peers[peer_id]
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def on_done(reason: str | None) -> None:
            if reason is not None and not fut.done():
                fut.set_exception(RequestFailed(reason))

        def on_reply(msg: Any) -> None:
            if not fut.done():
                fut.set_result(msg)

        self.pending.add(
            peer_id,
            key,
            now=self.clock(),
            timeout=timeout,
            on_reply=on_reply,
            on_done=on_done,
        )
        self._send(peer, Send(message))
        try:
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError:
            raise RequestFailed("timeout") from None
        finally:
            fut.cancel()  # nobody reads it any more: on_done must not leave an exception in it
            self.pending.cancel(peer_id, key, "cancelled")

    async def request_pong(self, peer_id: int, timeout: float = 60.0) -> float:
        """Ping ``peer_id`` with a fresh nonce; the round trip in seconds once its pong
        (matched by nonce) arrives. Core's own ping schedule is not disturbed (a pong
        with another nonce is ignored by it, src/net_processing.cpp ``PONG``)."""
        nonce = self.rng.getrandbits(64) or 1
        start = self.clock()
        await self._request(peer_id, Ping(nonce), ("pong", nonce), timeout)
        return self.clock() - start

    async def request_addr(self, peer_id: int, timeout: float = 60.0) -> list[AddrEntry]:
        """Send ``getaddr`` and return the next ``addr``/``addrv2`` from ``peer_id``'s
        entries (it is also processed as usual). Core answers ``getaddr`` once per
        connection, and only on connections it received."""
        msg = await self._request(peer_id, GetAddr(), ("addr",), timeout)
        return list(msg.entries)

    def ping_all(self) -> None:
        """Queue a ping to every peer (the ``ping`` RPC)."""
        for peer in self.peers.values():
            peer.proto.request_ping()
            self._schedule(peer)

    def set_network_active(self, active: bool) -> None:
        """Turn all P2P activity on or off; off disconnects every peer (Core ``SetNetworkActive``)."""
        self.network_active = active
        if not active:
            for peer in list(self.peers.values()):
                self._drop(peer, "network disabled", close=True)
        self._wake.set()
