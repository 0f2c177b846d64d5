"""ConnManCore: every decision of the connection manager, sans-IO, driven by ``now``.

Bitcoin Core's ``CConnman`` (src/net.cpp) without its sockets and threads, in the
nakamoto split (the state machine decides whom to dial and emits actions; the reactor
only executes them and reports back). Nothing here reads a clock, a socket or the OS
RNG: every input carries ``now`` (unix seconds) and randomness comes from the
``rng`` given at construction. :mod:`peerkeeper.shell.connman` is the asyncio
driver; the simulator drives the same class in simulated time.

Inputs (the driver calls them):

* :meth:`ConnManCore.start` / :meth:`ConnManCore.stop`;
* :meth:`accepted` (an inbound socket: admit or refuse, Core
  ``CreateNodeFromAcceptedSocket``), :meth:`connected` / :meth:`dial_failed` (the
  outcome of a :class:`Dial`), :meth:`resolved` / :meth:`seed_resolved` (the outcome
  of a :class:`Resolve`), :meth:`received`, :meth:`closed`, :meth:`writable`;
* :meth:`tick` at :meth:`next_wakeup` (peer timeouts and pings from one heap, Core's
  ``ThreadOpenConnections`` and ``ThreadOpenAddedConnections`` passes, DNS seeding,
  addr-fetch expiry, extra-peer eviction);
* the control calls the RPCs use: :meth:`add_node`, :meth:`disconnect_node`,
  :meth:`disconnect_matching`, :meth:`set_network_active`, :meth:`ping_all`,
  :meth:`send_message`.

Time: every input carries ``now``, the node's clock (unix seconds; Core's mockable
``GetTime``), which drives the rules (peer timeouts and pings, address times, bans, the
exponential feeler/extra-peer timers, the seednode and fixed-seed delays). The loops'
pacing (the 500 ms passes, the feeler's random sleep, the DNS seeder's waits, the
scheduler's 45 s check, dial back-offs) is Core's steady time (``interruptNet.sleep_for``,
``CScheduler``): inputs take it as ``steady=`` (a monotonic clock in the driver; omitted,
it is ``now``, as in the simulator), so a frozen or jumping mock time never stalls them.

Outputs: :meth:`poll_actions` returns :class:`Dial`, :class:`Send`, :class:`Close`,
:class:`PauseRead`, :class:`ResumeRead`, :class:`Resolve` in the order they were
decided.

What it decides (each rule cites Core): automatic outbound connections
(:mod:`peerkeeper.bitcoin.outbound`: anchors, 8 full-relay, 2 block-relay-only,
feelers, extra peers) one pick at a time every 500 ms; addr-fetch connections
(``-seednode``, DNS seeds that answer nothing) and their 5 min limit; DNS seeding
(:class:`~peerkeeper.bitcoin.seeds.DnsSeedSchedule`) and the fixed-seed fallback;
inbound admission in Core's order (network active, bans and discouragement with
``noban`` exempt, eviction when full, ``-inboundrelaypercent``); punishment
(``MaybeDiscourageAndDisconnect``); ``-connect``/``-addnode`` peers kept connected with
a per-target back-off (:class:`~peerkeeper.bitcoin.backoff.Backoff`); the v1 retry
after a v2 key hang-up (``V2Transport::ShouldReconnectV1``); the per-network getaddr
cache; byte counters per peer and per message type (``mapSendBytesPerMsgType``);
flow control (``fPauseSend``: a peer whose send buffer passed ``-maxsendbuffer`` is not
processed until the driver reports it :meth:`writable`; reading pauses when the
unprocessed bytes pass ``-maxreceivebuffer``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import heapq
import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from peerkeeper.bitcoin.actions import (
    Action,
    Disconnect,
    HandshakeComplete,
    LearnedAddresses,
    Misbehaving,
    VersionReceived,
)
from peerkeeper.bitcoin.actions import Send as PeerSend
from peerkeeper.bitcoin.addrman import AddrMan
from peerkeeper.bitcoin.addrrelay import relay_targets
from peerkeeper.bitcoin.app import (
    APP_ONLY_COMMANDS,
    AppSink,
    DisconnectReason,
    classify_disconnect,
    reply_keys,
)
from peerkeeper.bitcoin.backoff import BACKOFF_RESET_AFTER, Backoff
from peerkeeper.bitcoin.banman import BanMan
from peerkeeper.bitcoin.eviction import EvictionCandidate, keyed_netgroup, select_node_to_evict
from peerkeeper.bitcoin.netstats import NetStats
from peerkeeper.bitcoin.outbound import (
    DEFAULT_FULL_RELAY_INBOUND_PCT,
    DEFAULT_MAX_PEER_CONNECTIONS,
    EXTRA_PEER_CHECK_INTERVAL,
    FEELER_SLEEP_WINDOW,
    MAX_ADDNODE_CONNECTIONS,
    MAX_BLOCK_RELAY_ONLY_ANCHORS,
    ExtraPeer,
    OutboundLimits,
    OutboundPick,
    OutboundPolicy,
    select_extra_outbound_to_evict,
)
from peerkeeper.bitcoin.peer import (
    ADDR_FETCH_TIMEOUT,
    BitcoinPeer,
    PeerConfig,
    TimeOffsets,
    has_all_desirable_service_flags,
)
from peerkeeper.bitcoin.seeds import (
    ADD_NEXT_SEEDNODE,
    SEED_OUTBOUND_CONNECTION_THRESHOLD,
    DnsSeedSchedule,
    QuerySeed,
    Wait,
    dns_seed_entries,
    dns_seed_source,
    fixed_seed_entries,
    fixed_seeds_reason,
    fixed_seeds_source,
)
from peerkeeper.bitcoin.uploadtarget import UploadTarget
from peerkeeper.dispatch.dispatcher import PendingRequests
from peerkeeper.net.chains import Chain
from peerkeeper.net.connection_types import ConnectionType
from peerkeeper.net.netaddr import I2P_SAM31_PORT, AddrError, NetAddr, Network, Service, SubNet
from peerkeeper.net.netbase import SOCKS5_RECV_TIMEOUT, Proxy, ProxySettings
from peerkeeper.net.netpermissions import NetPermissionFlags, Permissions, has_flag
from peerkeeper.wire import corelog
from peerkeeper.wire.codec import DecodeError
from peerkeeper.wire.corelog import sanitize_string
from peerkeeper.wire.events import Event, EventSink
from peerkeeper.wire.messages import (
    ALL_NET_MESSAGE_TYPES,
    NET_MESSAGE_TYPE_OTHER,
    AddrEntry,
    Message,
    Pong,
    ServiceFlags,
    UnknownMessage,
    Version,
    decode_message,
)
from peerkeeper.wire.transport import Transport
from peerkeeper.wire.v1 import RawMessage, TransportError, V1Transport
from peerkeeper.wire.v2 import V2Transport

__all__ = [
    "ADDR_FETCH_TIMEOUT",
    "OPEN_CONNECTIONS_INTERVAL",
    "ADDED_CONNECTIONS_INTERVAL",
    "ConnManOptions",
    "PeerConn",
    "Dial",
    "Send",
    "Close",
    "PauseRead",
    "ResumeRead",
    "Resolve",
    "ConnAction",
    "ConnManCore",
]

log = logging.getLogger("peerkeeper.net")

#: Local address scores (src/net.h): interfaces, -bind, mapped, -externalip.
LOCAL_IF, LOCAL_BIND, LOCAL_MAPPED, LOCAL_MANUAL = 1, 2, 3, 4
#: Seconds between ``ThreadOpenConnections``' passes (src/net.cpp: 500 ms).
OPEN_CONNECTIONS_INTERVAL = 0.5
#: Seconds between ``ThreadOpenAddedConnections``' passes when nothing wakes it earlier
#: (Core waits 2 s after a try, 60 s when all are connected; peerkeeper re-checks every
#: 0.5 s and at once when a manual peer leaves or is added).
ADDED_CONNECTIONS_INTERVAL = 0.5
#: The types counted under their own names (src/net.cpp ``mapRecvBytesPerMsgType``);
#: any other under ``NET_MESSAGE_TYPE_OTHER``.
_COUNTED_TYPES = frozenset(ALL_NET_MESSAGE_TYPES)
#: getaddr replies are cached per network and local address for 21 h + U(0, 6 h)
#: (src/net.cpp ``CConnman::GetAddresses``).
ADDR_CACHE_LIFETIME = 21 * 3600.0
ADDR_CACHE_JITTER = 6 * 3600.0
#: Penalty applied to gossiped address times (src/net_processing.cpp ``ProcessAddrs``: 2 h).
ADDR_TIME_PENALTY = 2 * 3600

_INF = math.inf


@dataclass(slots=True)
class ConnManOptions:
    """ConnMan settings (Core option names in the comments; seconds and bytes).

    ``connect`` (``-connect``): only these peers, no listening unless ``listen``
    is set explicitly; ``addnode`` (``-addnode``); ``bind`` ((host, port) pairs,
    ``-bind``); ``listen`` (``-listen``); ``max_connections`` (``-maxconnections``);
    ``max_send_buffer`` / ``max_receive_buffer`` (``-maxsendbuffer`` /
    ``-maxreceivebuffer`` in bytes); ``connect_timeout`` (``-timeout``);
    ``peer`` (what we announce; handshake and ping timeouts); ``dial_map`` (see
    :class:`~peerkeeper.io.sockman.SockMan`; the driver's); ``v2transport``
    (``-v2transport``: BIP324 for inbound, with v1 detected transparently, and for
    outbound to manual peers and to peers advertising NODE_P2P_V2, retried once as v1
    when the peer hangs up).

    Connection policy: ``inbound_relay_percent`` (``-inboundrelaypercent``);
    ``automatic_outbound`` (Core ``m_use_addrman_outgoing``; off with ``-connect``);
    ``reachable`` (networks automatic connections may use, from ``-onlynet`` and the
    proxies); ``permissions`` (``-whitelist`` / ``-whitebind``); ``max_upload_target``
    (bytes per 24 h, 0 = none); ``anchors`` (block-relay-only addresses from the last
    clean shutdown); ``seednode``; ``external_ip`` (``-externalip``); ``dnsseed``,
    ``forcednsseed``, ``dns_seeds`` (host names), ``dns_nameservers`` / ``dns_port``
    (None: the system resolver); ``fixedseeds`` and ``fixed_seeds`` (from
    ``-fixedseedsfile``); ``proxies`` (:class:`~peerkeeper.io.proxy.ProxySettings`;
    I2P peers go through its SAM bridge, see :mod:`peerkeeper.shell.i2p`);
    ``i2p_accept_incoming`` and ``i2p_private_key_file`` (the driver's);
    ``accept_map`` (the driver's); ``open_connections_interval`` (seconds between the
    automatic loop's passes, Core's 500 ms); ``extra_block_relay`` (Core's periodic
    extra block-relay-only peer, which Core starts once out of initial block download:
    peerkeeper, with no chain, starts it at once). ``feelers`` and ``netgroup_diversity``
    exist for simulation studies only (:mod:`peerkeeper.sim`'s eclipse scenario switches
    each countermeasure off to show what it buys); Core has no such switches, and
    peerkeeperd always leaves them on.
    """

    chain: Chain
    connect: list[str] = field(default_factory=list)
    addnode: list[str] = field(default_factory=list)
    bind: list[tuple[str, int]] = field(default_factory=list)
    #: ``-bind=ADDR:PORT=onion`` listeners: connections accepted there are Tor inbound
    #: (Core ``onion_binds``); ``onion_binds_default``: they are Core's default
    #: 127.0.0.1:port+1 (a failure to bind it is not fatal).
    onion_binds: list[tuple[str, int]] = field(default_factory=list)
    onion_binds_default: bool = False
    listen: bool = True
    max_connections: int = DEFAULT_MAX_PEER_CONNECTIONS
    max_send_buffer: int = 1_000_000
    max_receive_buffer: int = 5_000_000
    connect_timeout: float = 5.0
    peer: PeerConfig = field(default_factory=PeerConfig)
    dial_map: Callable[[Service], Any] | None = None
    accept_map: Callable[[Service], Service] | None = None
    proxies: ProxySettings = field(default_factory=ProxySettings)
    #: ``-i2pacceptincoming`` (Core's default 1; the config turns it off with ``-listen=0``):
    #: with ``-i2psam``, one persistent I2P session accepts inbound and dials outbound.
    i2p_accept_incoming: bool = True
    #: Where that session's key is kept (``<datadir>/i2p_private_key``); None: in memory.
    i2p_private_key_file: str | None = None
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
    feelers: bool = True
    netgroup_diversity: bool = True

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


# -- actions (out) ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dial:
    """Open a connection to ``dest`` within ``timeout`` seconds, through ``proxy`` if set;
    report with :meth:`ConnManCore.connected` or :meth:`ConnManCore.dial_failed`.

    ``dest`` is the :class:`Service` or, through a name proxy, the ``"host:port"`` text;
    ``service`` is what the peer will be known as; ``conn_type`` and ``v2`` (BIP324
    first) are for the driver's logs; ``id`` names the attempt (Core ``ConnectNode``).
    """

    id: int
    service: Service
    dest: Service | str
    conn_type: ConnectionType
    proxy: Proxy | None
    timeout: float
    v2: bool


@dataclass(frozen=True, slots=True)
class Send:
    """Queue ``data`` (bytes) on connection ``conn_id``."""

    conn_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Close:
    """Close connection ``conn_id`` (Core ``CloseSocketDisconnect``); ``reason`` is for logs."""

    conn_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class PauseRead:
    """Stop reading ``conn_id`` (Core ``fPauseRecv`` / ``fPauseSend``). ``send`` is True
    when the reason is a full send buffer: the driver answers with
    :meth:`ConnManCore.writable` once that buffer is below ``-maxsendbuffer`` (at once if
    it already is)."""

    conn_id: int
    send: bool


@dataclass(frozen=True, slots=True)
class ResumeRead:
    """Read ``conn_id`` again."""

    conn_id: int


@dataclass(frozen=True, slots=True)
class Resolve:
    """Resolve ``name`` (``host[:port]``, default port ``port``); report with
    :meth:`ConnManCore.resolved` (``seed`` False: one address for a dial) or
    :meth:`ConnManCore.seed_resolved` (``seed`` True: every A/AAAA of a DNS seed).
    ``id`` names the request."""

    id: int
    name: str
    port: int
    seed: bool = False


ConnAction = Dial | Send | Close | PauseRead | ResumeRead | Resolve


# -- state --------------------------------------------------------------------------------


@dataclass(slots=True, weakref_slot=True)
class PeerConn:
    """One live connection: Core's ``CNode`` (ids, addresses, counters) plus its protocol.

    ``id`` is the node id shown in RPCs; ``conn_id`` is the driver's; ``addr_name`` is
    the string we dialled (or the peer's address for inbound); times in unix seconds.
    """

    id: int
    conn_id: int
    addr: Service
    addr_bind: Service | None
    addr_name: str
    conn_type: ConnectionType
    transport: Transport
    proto: BitcoinPeer
    connected_at: float
    bytes_sent: int = 0
    bytes_recv: int = 0
    sent_per_msg: dict[str, int] = field(default_factory=dict)
    recv_per_msg: dict[str, int] = field(default_factory=dict)
    wake_at: float = _INF
    keyed_netgroup: int = 0
    prefer_evict: bool = False
    permissions: NetPermissionFlags = NetPermissionFlags.NONE
    #: Fixed for the connection's life, kept for eviction: Core's ``m_network``
    #: (``ConnectedThroughNetwork``), ``addr.IsLocal()`` and the ``noban`` permission.
    net_class: Network = Network.IPV4
    is_local: bool = False
    noban: bool = False
    reading_paused: bool = False
    #: Bytes handed to the driver since it last reported the send buffer drained
    #: (Core ``nSendSize``); above ``-maxsendbuffer`` nothing more is processed.
    send_size: int = 0
    closed: bool = False
    #: The last eviction candidate built for this peer and what it was built from.
    evict_candidate: EvictionCandidate | None = None
    evict_sig: tuple[object, ...] = ()
    #: ``net_class.rpc_name`` and ``conn_type.value``, the keys of the per-message
    #: counters: read for every message, so computed once.
    stats_net: str = field(init=False, default="")
    stats_type: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.stats_net = self.net_class.rpc_name
        self.stats_type = self.conn_type.value

    @property
    def inbound(self) -> bool:
        """True when the peer opened the connection."""
        return self.conn_type is ConnectionType.INBOUND

    @property
    def addr_string(self) -> str:
        """How getpeerinfo's ``addr`` names the peer (src/rpc/net.cpp): the name we
        dialled for an outbound peer (Core ``m_addr_name``), the address otherwise."""
        return str(self.addr) if self.inbound else self.addr_name


@dataclass(slots=True)
class _DialCtx:
    """What to do when a dial or a resolution ends (the caller's role in Core)."""

    target: str
    conn_type: ConnectionType
    count_failure: bool
    use_v2: bool | None
    kind: str  # "manual", "automatic", "onetry", "v1retry", "addconnection"
    service: Service | None = None
    #: Told the outcome: the new peer, or None (``open_connection``'s caller).
    on_done: Callable[[PeerConn | None], None] | None = None
    #: Told why, before ``on_done(None)``, when the dial fails or is refused.
    on_failed: Callable[[str], None] | None = None


class _CachedAddrSource:
    """getaddr replies for one peer, from a cache shared per network key (the peer's
    network, our local address and, for inbound, our listening port).

    Core answers every inbound getaddr from a response cached per requestor network
    and local socket for 21-27 hours, so an attacker cannot scrape the table by
    reconnecting (src/net.cpp ``CConnman::GetAddresses``).
    """

    __slots__ = ("core", "key", "bypass")

    def __init__(self, core: ConnManCore, key: tuple[str, int, int], bypass: bool = False) -> None:
        self.core = core
        self.key = key
        self.bypass = bypass

    def get_addr(self, max_addresses: int, max_pct: int, now: float) -> list[AddrEntry]:
        if self.bypass:
            # Core: a peer with the ``addr`` permission gets a fresh answer, never the cache.
            return self.core.addrman.get_addr(max_addresses, max_pct, now)
        cache = self.core.addr_cache
        hit = cache.get(self.key)
        if hit is None or hit[1] < now:
            entries = self.core.addrman.get_addr(max_addresses, max_pct, now)
            expires = now + ADDR_CACHE_LIFETIME + self.core.rng.random() * ADDR_CACHE_JITTER
            hit = cache[self.key] = (entries, expires)
        return hit[0]


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


def _failure_class(reason: str, proxy_failed: bool) -> str:
    """A dial failure's reason as a metrics label: few values, whatever the OS says."""
    if proxy_failed:
        return "proxy"
    text = reason.lower()
    for word, label in (
        ("timed out", "timeout"),
        ("timeout", "timeout"),
        ("refused", "refused"),
        ("unreachable", "unreachable"),
        ("reset", "reset"),
    ):
        if word in text:
            return label
    return "other"


K = TypeVar("K")


def _eviction_candidate(p: PeerConn) -> EvictionCandidate:
    """The peer as Core's ``NodeEvictionCandidate``, built again only when what can change
    during a connection (its minimum ping, the services and relay flag of its version)
    did: an admission under a storm then builds one candidate, not one per peer."""
    proto = p.proto
    their = proto.their
    min_ping = proto.ping.min_time
    sig = (min_ping, their.services, their.relay)
    cand = p.evict_candidate
    if cand is None or p.evict_sig != sig:
        cand = p.evict_candidate = EvictionCandidate(
            id=p.id,
            connected=p.connected_at,
            min_ping_time=min_ping if min_ping is not None else math.inf,
            relevant_services=has_all_desirable_service_flags(their.services),
            relay_txs=their.relay,
            keyed_netgroup=p.keyed_netgroup,
            prefer_evict=p.prefer_evict,
            noban=p.noban,
            is_local=p.is_local,
            network=p.net_class,
            conn_type=p.conn_type,
        )
        p.evict_sig = sig
    return cand


def _count_ref(refs: dict[K, int], key: K, delta: int) -> None:
    """Add ``delta`` to ``refs[key]``, dropping the key at zero."""
    n = refs.get(key, 0) + delta
    if n > 0:
        refs[key] = n
    else:
        refs.pop(key, None)


class ConnManCore:
    """The connection manager's decisions (Core ``CConnman``), sans-IO.

    ``ConnManCore(options, addrman, rng=..., banman=None, transport_rng=...)``:
    ``rng`` (a seeded :class:`random.Random` in tests and the simulator) draws nonces,
    netgroup keys, feeler delays and picks; ``transport_rng`` (``n -> bytes``) draws
    BIP324 keys and garbage (the driver passes ``os.urandom``). Call :meth:`start`,
    feed events with ``now``, and carry :meth:`poll_actions` out; call :meth:`tick`
    at :meth:`next_wakeup`.
    """

    def __init__(
        self,
        options: ConnManOptions,
        addrman: AddrMan,
        *,
        rng: random.Random,
        transport_rng: Callable[[int], bytes],
        banman: BanMan | None = None,
    ) -> None:
        self.options = options
        self.addrman = addrman
        self.banman = banman
        self.rng = rng
        self._transport_rng = transport_rng
        self.peers: dict[int, PeerConn] = {}
        self._by_conn: dict[int, PeerConn] = {}
        #: Requests waiting for a reply, by (peer id, key): ("pong", nonce), ("addr",).
        self.pending = PendingRequests()
        self._next_id = 0
        self._next_req = 0
        self._local_nonces: set[int] = set()
        self.inbound_count = 0
        self._names: dict[str, int] = {}  # addr_name / address string -> live peers using it
        self._service_refs: dict[Service, int] = {}  # live peers per address:port
        self._netaddr_refs: dict[NetAddr, int] = {}  # live peers per address
        self._outbound: dict[int, PeerConn] = {}  # live non-inbound peers, by id
        #: Each live inbound peer as an eviction candidate, refreshed when its version or
        #: a pong changes what Core's SelectNodeToEvict reads.
        self._evict_cands: dict[int, EvictionCandidate] = {}
        self.addr_cache: dict[tuple[str, int, int], tuple[list[AddrEntry], float]] = {}
        self._force_v1: set[str] = set()  # targets to redial once as v1 (Core's m_reconnections)
        # Core's GetDeterministicRandomizer key for keyed netgroups (src/net.cpp).
        self.netgroup_k0 = self.rng.getrandbits(64)
        self.netgroup_k1 = self.rng.getrandbits(64)
        self.total_bytes_sent = 0
        self.total_bytes_recv = 0
        #: ``-maxuploadtarget`` accounting (Core ``RecordBytesSent`` / ``OutboundTargetReached``).
        self.upload_target = UploadTarget(options.max_upload_target)
        #: The clock offsets of the last 50 outbound peers' versions, disconnected ones
        #: included (Core ``PeerManagerImpl::m_outbound_time_offsets``).
        self.time_offsets = TimeOffsets()
        self.added_nodes: list[str] = list(options.addnode)
        self.backoff = Backoff()
        self.pending_manual: set[str] = set()  # manual targets being dialled or resolved
        self._dials: dict[int, _DialCtx] = {}
        self._resolves: dict[int, _DialCtx] = {}
        self._actions: list[ConnAction] = []
        self._heap: list[tuple[float, int]] = []
        self.stopping = False
        self.started = False
        self.listening: list[tuple[str, int]] = []
        self.onion_listening: set[tuple[str, int]] = set()
        self.network_active = options.network_active
        log.info(corelog.SET_NETWORK_ACTIVE, str(self.network_active).lower())  # Core's ctor
        self.started_at = 0.0
        self._now = 0.0
        self._steady = 0.0
        #: The automatic-outbound policy, made at :meth:`start` (after the address book loads).
        self.policy: OutboundPolicy | None = None
        self._addr_fetches: list[str] = []  # Core m_addr_fetches (a deque: front first)
        self.automatic_pending = 0  # automatic dials in flight (hold a Core semOutbound grant)
        #: Our own addresses (Core ``mapLocalHost``): never dialled.
        self.local_addresses: dict[Service, int] = {}
        self.feelers_made = 0
        self.feelers_done = 0
        #: The block-relay-only peers at :meth:`stop`, for anchors.dat (Core ``StopNodes``).
        self.anchors_at_stop: list[AddrEntry] = []
        self._fixed_seeds_added = False
        # ThreadOpenConnections state.
        self._next_open = _INF  # steady time of the loop's next step
        self._open_fetch = True  # the next step: ProcessAddrFetch (True) or a pick (False)
        self._auto_busy = False  # one automatic dial (or feeler sleep) at a time, as in Core
        self._feeler_pick: OutboundPick | None = None
        self._feeler_at = _INF
        self._seednodes: list[str] = []
        self._add_addr_fetch = False
        self._seed_node_timer = 0.0
        self._next_extra_check = _INF
        self._peers_version = 0  # bumped when a peer is added or removed
        # A pass that found nothing to do: (deadline on ``now``, by lack of candidates).
        self._idle_pending: tuple[float, bool] | None = None
        # Passes skipped until the deadline: (state key, first skipped step, candidates).
        self._idle: tuple[tuple[object, ...], float, bool] | None = None
        # ThreadOpenAddedConnections state.
        self._next_added = _INF
        # ThreadDNSAddressSeed state.
        self._seed_schedule: DnsSeedSchedule | None = None
        self._seed_wake = _INF
        self._seed_query: QuerySeed | None = None
        self._seed_request = 0
        #: Totals that outlive the peers (getnetmsgstats, metrics).
        self.stats = NetStats()
        #: Where events go (:mod:`peerkeeper.wire.events`); None: none are built.
        self.on_event: EventSink | None = None
        #: Emit the per-message events too (set by the shell when a subscriber asks).
        self.message_events = False
        #: The application layer (:mod:`peerkeeper.bitcoin.app`): told of peers that
        #: connect and go, and handed every message from a connected peer; None: off.
        self.app: AppSink | None = None

    def _event(self, name: str, **fields: Any) -> None:
        """Hand one event to :attr:`on_event` (Core's tracepoints, doc/tracing.md)."""
        sink = self.on_event
        if sink is not None:
            try:
                sink(Event(name, self._now, fields))
            except Exception:
                # Observers never change a decision: the state change goes on.
                log.exception("event sink failed on %s", name)

    def _conn_event(self, name: str, peer: PeerConn, **fields: Any) -> None:
        if self.on_event is not None:
            self._event(
                name,
                id=peer.id,
                addr=peer.addr_string,
                conn_type=peer.conn_type.value,
                network=peer.net_class.rpc_name,
                **fields,
            )

    def _at(self, now: float, steady: float | None) -> None:
        self._now = now
        self._steady = now if steady is None else steady

    # -- lifecycle ------------------------------------------------------------------------

    def start(
        self,
        now: float,
        listening: list[tuple[str, int]] | None = None,
        *,
        onion_listening: list[tuple[str, int]] | None = None,
        steady: float | None = None,
    ) -> None:
        """Begin at ``now`` with the driver's bound listeners ((host, port) pairs; the
        ``onion_listening`` ones tag their inbound peers as Tor and are not advertised):
        local addresses, the automatic policy (Core ``CConnman::Start``), the loops' first
        passes."""
        self._at(now, steady)
        self.onion_listening = set(onion_listening or [])
        steady = self._steady
        self.started = True
        self.started_at = now
        opts = self.options
        self.listening = list(listening or [])
        for host, port in self.listening:
            with contextlib.suppress(AddrError):
                self.add_local(Service.parse(host, port), LOCAL_BIND)
        for svc in opts.external_ip:
            self.add_local(svc, LOCAL_MANUAL)
        self._next_added = steady
        if opts.open_automatic:
            self.policy = OutboundPolicy(
                opts.limits,
                self.addrman,
                self.rng,
                now,
                reachable=set(opts.reachable),
                anchors=opts.anchors,
                local_services=opts.peer.services if opts.v2transport else 0,
                is_local=lambda s: s in self.local_addresses,
                added_node=self._is_added_node,
                outbound_allowed=self._outbound_allowed,
                dial_ready=lambda svc: self.backoff.ready(str(svc), self._steady),
                feelers=opts.feelers,
                netgroup_diversity=opts.netgroup_diversity,
            )
            # Core starts extra block-relay-only peers once out of IBD
            # (StartExtraBlockRelayPeers); peerkeeper has no chain and counts as synced.
            self.policy.start_extra_block_relay_peers = opts.extra_block_relay
            if opts.anchors:
                log.info(corelog.ANCHORS_TRIED, len(opts.anchors))
                for entry in opts.anchors:
                    self._event("anchor", addr=str(entry.service), action="loaded")
            self._seednodes = list(opts.seednode)
            self.rng.shuffle(self._seednodes)
            self._add_addr_fetch = len(self.addrman) == 0 and bool(self._seednodes)
            self._seed_node_timer = now
            self._next_extra_check = steady + EXTRA_PEER_CHECK_INTERVAL
            self._next_open = steady
        # Core CConnman::Start: the DNS seed thread runs whenever -dnsseed is on, with
        # -connect too (its seeds then only fill addrman or become addr-fetch targets).
        if not opts.dnsseed:
            log.info(corelog.DNS_SEEDING_DISABLED)
        elif opts.dns_seeds:
            self._seed_schedule = DnsSeedSchedule(
                opts.dns_seeds,
                self.rng,
                forcednsseed=opts.forcednsseed,
                seednode_configured=bool(opts.seednode),
            )
            self._seed_wake = steady
        self.tick(now, steady=steady)

    def stop(self, now: float, *, steady: float | None = None) -> None:
        """Keep the block-relay-only peers as anchors (Core ``StopNodes``) and close
        every connection."""
        self._at(now, steady)
        if self.policy is not None and not self.stopping:
            self.anchors_at_stop = self.anchors_to_save(now)
            for entry in self.anchors_at_stop:
                self._event("anchor", addr=str(entry.service), action="saved")
        self.stopping = True
        for peer in list(self.peers.values()):
            self._drop(peer, corelog.STOPPING_NODE, close=True, kind=DisconnectReason.SHUTDOWN)
        waiting = [*self._dials.values(), *self._resolves.values()]
        self._dials.clear()
        self._resolves.clear()
        for ctx in waiting:
            if ctx.on_failed is not None:
                ctx.on_failed("stopping")
            if ctx.on_done is not None:
                ctx.on_done(None)

    def poll_actions(self) -> list[ConnAction]:
        """Every action decided since the last call, in order (the caller executes them)."""
        actions, self._actions = self._actions, []
        return actions

    def next_wakeup(self) -> float:
        """When :meth:`tick` next has work, on the ``now`` timeline (unix seconds; ``inf``
        when never). Steady deadlines are translated by the offset seen at the last input,
        so a driver that sleeps ``next_wakeup() - now`` wakes in time for both."""
        if self.stopping:
            return _INF
        self._check_idle()
        at = min(self._next_open, self._next_added, self._seed_wake, self._feeler_at)
        at -= self._steady - self._now
        if self._heap:
            at = min(at, self._heap[0][0])
        return at

    def tick(self, now: float, *, steady: float | None = None) -> None:
        """Run everything due: peer timers (one heap, only due peers, on ``now``), then on
        ``steady`` ``ThreadOpenAddedConnections``, ``ThreadOpenConnections`` and
        ``ThreadDNSAddressSeed``. A bug in one of them is logged and the others still run
        (in Core each is its own thread)."""
        self._at(now, steady)
        if self.stopping:
            return
        self._check_idle()
        steady = self._steady
        for due, run, recover in (
            (True, self._tick_peers, None),
            (
                steady >= self._next_added,
                self._thread_open_added_connections,
                self._recover_added,
            ),
            (steady >= self._feeler_at, self._dial_feeler, self._recover_open),
            (steady >= self._next_open, self._thread_open_connections, self._recover_open),
            (steady >= self._seed_wake, self._thread_dns_address_seed, self._recover_seed),
        ):
            if not due:
                continue
            try:
                run(now)
            except Exception:
                log.exception("%s failed", run.__name__.strip("_"))
                if recover is not None:
                    recover()

    def _recover_added(self) -> None:
        """After a bug in ThreadOpenAddedConnections' pass: carry on at the next pass."""
        self._next_added = self._steady + ADDED_CONNECTIONS_INTERVAL

    def _recover_open(self) -> None:
        """After a bug in ThreadOpenConnections' step: carry on at the next pass."""
        self._auto_busy = False
        self._feeler_at = _INF
        self._next_open = self._steady + self.options.open_connections_interval

    def _recover_seed(self) -> None:
        """After a bug in DNS seeding: seeding ends (Core's thread would be gone)."""
        self._seed_schedule = None
        self._seed_wake = _INF

    def mock_forward(self, seconds: float) -> None:
        """Core ``CScheduler::MockForward``: the scheduler's tasks run ``seconds`` earlier
        (here ``EvictExtraOutboundPeers``, Core's 45 s ``CheckForStaleTipAndEvictPeers``)."""
        self._next_extra_check -= seconds

    # -- automatic outbound (Core ThreadOpenConnections) -----------------------------------

    def anchors_to_save(self, now: float) -> list[AddrEntry]:
        """The block-relay-only peers' addresses, at most 2 (Core ``GetCurrentBlockRelayOnlyConns``)."""
        return [
            AddrEntry(int(now), p.proto.their.services, p.addr)
            for p in self.peers.values()
            if p.conn_type is ConnectionType.BLOCK_RELAY
            and not p.closed
            and p.proto.successfully_connected
        ][:MAX_BLOCK_RELAY_ONLY_ANCHORS]

    def default_port(self, name: str) -> int:
        """Core ``CConnman::GetDefaultPort(const std::string&)`` (src/net.cpp): the port of
        a destination given without one: 0 for an I2P name (SAM 3.1 has no ports,
        ``I2P_SAM31_PORT``), else the chain's."""
        try:
            if NetAddr.parse(name).is_i2p():
                return I2P_SAM31_PORT
        except AddrError:
            pass
        return self.options.chain.default_port

    def _is_added_node(self, service: Service) -> bool:
        """Core ``AddedNodesContain``: is ``service`` (or its address) an ``-addnode`` entry?"""
        text = {str(service), str(service.addr)}
        for node in self.added_nodes:
            if node in text:
                return True
            try:
                if Service.parse(node, self.default_port(node)) == service:
                    return True
            except AddrError:
                continue
        return False

    def _outbound_allowed(self, addr: NetAddr) -> bool:
        return self.banman is None or self.banman.outbound_allowed(addr, self._now)

    def automatic_outbound_count(self) -> int:
        """Connections holding a Core ``semOutbound`` grant: live full-relay,
        block-relay-only, feeler and addr-fetch peers, plus automatic dials in flight."""
        return self.automatic_pending + sum(
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

    def _process_addr_fetch(self, now: float) -> None:
        """Core ``ProcessAddrFetch``: dial the first queued addr-fetch target if a slot is free."""
        if not self._addr_fetches:
            return
        target = self._addr_fetches.pop(0)
        assert self.policy is not None
        if not self.policy.grant_available(self.automatic_outbound_count()):
            return  # Core's try-grant failed: the target is dropped
        # Core ProcessAddrFetch: v2 whenever we support it (retried as v1 if refused).
        self._open(
            target,
            _DialCtx(
                target,
                ConnectionType.ADDR_FETCH,
                count_failure=False,
                use_v2=self.options.v2transport,
                kind="automatic",
            ),
            now,
        )

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
                self._drop(peer, "extra outbound peer", close=True, kind=DisconnectReason.EVICTED)
                if peer.conn_type is ConnectionType.OUTBOUND_FULL_RELAY and self.policy is not None:
                    self.policy.try_new_outbound_peer = False

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
        log.info(corelog.FIXED_SEEDS_ADDED, len(entries))

    def _thread_open_connections(self, now: float) -> None:
        """Core ``ThreadOpenConnections`` (src/net.cpp), one step at a time: its loop is
        ``ProcessAddrFetch()``, a 500 ms sleep, one automatic pick, and again. A step that
        dials (or a feeler's random sleep) holds the loop until the dial ends, as Core's
        blocking ``OpenNetworkConnection`` does."""
        while not self._auto_busy and self._steady >= self._next_open:
            if self.policy is None:
                self._next_open = _INF
                return
            if self._open_fetch:
                self._open_fetch = False
                self._fetch_step(now)
                # The sleep follows the fetch (after its dial ends, if it dialled).
                if self._auto_busy:
                    self._next_open = _INF
                else:
                    self._next_open = self._steady + self.options.open_connections_interval
                    self._enter_idle(now)
            else:
                self._open_fetch = True
                self._pick_step(now)
                self._next_open = _INF if self._auto_busy else self._steady

    # -- skipping passes that cannot act -------------------------------------------------------
    #
    # Core's loop wakes every 500 ms. A pass that finds no slot or timer wanting a peer, or
    # no AddrMan entry that could pass its filters, finds the same until the state it read
    # changes or a timer comes due: those passes are skipped (one wakeup at the deadline,
    # on the loop's 500 ms grid), and any change of that state brings the next pass back
    # to the grid point after it. Skipped passes would have had no effect.

    def _idle_key(self, candidates: bool) -> tuple[object, ...]:
        policy = self.policy
        assert policy is not None
        key: tuple[object, ...] = (
            self._peers_version,
            self.automatic_pending,
            policy.try_new_outbound_peer,
            policy.start_extra_block_relay_peers,
            len(policy.anchors),
            self.network_active,
            len(self._addr_fetches),
            self._add_addr_fetch,
            self._next_extra_check,
            self._steady - self._now,
            tuple(self.addrman.size(n) != 0 for n in policy.reachable_sorted),
        )
        if candidates:
            banman = self.banman
            key += (self.addrman.version, 0 if banman is None else banman.changes)
        return key

    def _enter_idle(self, now: float) -> None:
        pending, self._idle_pending = self._idle_pending, None
        if pending is None or self._seednodes or self._open_fetch:
            return
        if not self._fixed_seeds_added and self.options.fixedseeds:
            return  # the fixed-seed fallback is due by time alone
        deadline, candidates = pending
        offset = self._steady - now
        at = min(deadline + offset, self._next_extra_check)
        if candidates:
            if self.addrman.has_tried_collisions:
                return
            at = min(at, self.backoff.next_ready(self._steady))
            if self.banman is not None:
                at = min(at, self.banman.next_expiry(now) + offset)
        grid = self._next_open
        interval = self.options.open_connections_interval
        if at > grid:
            self._next_open = grid + math.ceil((at - grid) / interval) * interval
        self._idle = (self._idle_key(candidates), grid, candidates)

    def _check_idle(self) -> None:
        idle = self._idle
        if idle is None or self.policy is None:
            return
        key, grid, candidates = idle
        if key == self._idle_key(candidates):
            return
        self._idle = None
        if self._auto_busy or self._steady >= self._next_open:
            return
        interval = self.options.open_connections_interval
        steps = max(0, math.ceil((self._steady - grid) / interval))
        self._next_open = min(self._next_open, grid + steps * interval)

    def _fetch_step(self, now: float) -> None:
        """The loop's head: the next ``-seednode`` when due, then Core ``ProcessAddrFetch``."""
        if self._add_addr_fetch and self._seednodes:
            self._add_addr_fetch = False
            seed = self._seednodes.pop()
            self.add_addr_fetch(seed)
            # Core ThreadOpenConnections (src/net.cpp), word for word.
            if len(self.addrman) == 0:
                log.info(corelog.SEEDNODE_EMPTY_ADDRMAN, seed)
            else:
                log.info(
                    corelog.SEEDNODE_AFTER,
                    ADD_NEXT_SEEDNODE,
                    seed,
                )
        self._process_addr_fetch(now)

    def _pick_step(self, now: float) -> None:
        """After the sleep: addr-fetch expiry, the scheduler's extra-outbound check, the
        fixed-seed fallback, the seednode timer, then one pick of
        :class:`~peerkeeper.bitcoin.outbound.OutboundPolicy` if a grant is free."""
        policy = self.policy
        self._idle = None
        self._idle_pending = None
        if policy is None:
            return
        if not self.network_active:
            self._idle_pending = (_INF, False)
            return
        steady = self._steady
        if steady >= self._next_extra_check:
            self._next_extra_check = steady + EXTRA_PEER_CHECK_INTERVAL
            self._evict_extra_outbound(now)
            self.backoff.prune(steady)
        self._maybe_add_fixed_seeds(now)
        if (
            self._seednodes
            and self._count(ConnectionType.OUTBOUND_FULL_RELAY) < SEED_OUTBOUND_CONNECTION_THRESHOLD
            and now > self._seed_node_timer + ADD_NEXT_SEEDNODE
        ):
            self._seed_node_timer = now
            self._add_addr_fetch = True
        if not policy.grant_available(self.automatic_outbound_count()):
            self._idle_pending = (policy.idle_deadline(now), False)
            return
        # Only the non-inbound peers are counted, and "already connected" asks the
        # address indexes: with 10,000 inbound peers, nothing here walks them.
        pick = policy.next_connection_from(
            [(p.conn_type, p.addr) for p in self._outbound.values() if not p.closed],
            self._connected_to,
            now,
        )
        if pick is None:
            if policy.last_decision is None:
                self._idle_pending = (policy.idle_deadline(now), False)
            elif policy.no_candidate:
                self._idle_pending = (policy.idle_deadline(now), True)
            return
        if pick.decision.feeler:
            # Core sleeps U(0, FEELER_SLEEP_WINDOW) before a feeler, blocking the loop.
            self._auto_busy = True
            self._feeler_pick = pick
            self._feeler_at = steady + self.rng.uniform(0, FEELER_SLEEP_WINDOW)
            return
        self._dial_pick(pick, now)

    def _dial_feeler(self, now: float) -> None:
        pick, self._feeler_pick = self._feeler_pick, None
        self._feeler_at = _INF
        self._auto_busy = False
        self._next_open = self._steady  # the loop goes on when the feeler's dial ends
        if pick is None or not self.network_active:
            return
        log.debug(corelog.MAKING_FEELER, pick.entry.service)
        self.feelers_made += 1
        self._dial_pick(pick, now)
        if self._auto_busy:
            self._next_open = _INF

    def _dial_pick(self, pick: OutboundPick, now: float) -> None:
        self._open(
            pick.entry.service,
            _DialCtx(
                str(pick.entry.service),
                pick.decision.conn_type,
                count_failure=pick.count_failure,
                use_v2=pick.use_v2 and self.options.v2transport,
                kind="automatic",
            ),
            now,
        )

    def _count(self, conn_type: ConnectionType) -> int:
        return sum(1 for p in self.peers.values() if p.conn_type is conn_type and not p.closed)

    # -- DNS seeds (Core ThreadDNSAddressSeed) ----------------------------------------------

    def _thread_dns_address_seed(self, now: float) -> None:
        sched = self._seed_schedule
        self._seed_wake = _INF
        if sched is None or self._seed_query is not None:
            return
        while True:
            step = sched.next_step(
                self._steady,  # Core's seeder sleeps on steady time
                addrman_size=len(self.addrman),
                full_outbound_count=self._count(ConnectionType.OUTBOUND_FULL_RELAY),
                network_active=self.network_active,
            )
            for msg in step.messages:
                log.info("%s", msg)
            if isinstance(step, Wait):
                self._seed_wake = step.until
                return
            if isinstance(step, QuerySeed):
                if self.options.proxies.name_proxy is not None:
                    # Core: with a name proxy, no DNS query: the seed becomes addr-fetch.
                    self.add_addr_fetch(step.seed)
                    sched.seed_done(0)
                    continue
                self._seed_query = step
                self.stats.count("dns_seed_queries")
                self._next_req += 1
                self._seed_request = self._next_req
                self._actions.append(
                    Resolve(self._next_req, step.query_name, self.options.chain.default_port, True)
                )
                return
            self._seed_schedule = None
            return

    def seed_resolved(
        self, request_id: int, addrs: list[NetAddr], now: float, *, steady: float | None = None
    ) -> None:
        """A DNS seed's answer (every address; empty when it answered nothing or failed):
        the addresses go to addrman with the seed as source; a seed that answered
        nothing becomes an addr-fetch target (Core ``ThreadDNSAddressSeed``)."""
        self._at(now, steady)
        if request_id != self._seed_request or self.stopping:
            return
        step, self._seed_query = self._seed_query, None
        if step is None or self._seed_schedule is None:
            return
        found = 0
        if not addrs:
            log.debug("DNS seed %s answered nothing; adding it as addr-fetch", step.seed)
            self.add_addr_fetch(step.seed)
        else:
            entries = dns_seed_entries(addrs, self.options.chain.default_port, now, self.rng)
            self.addrman.add(entries, dns_seed_source(step.query_name), now=now)
            found = len(entries)
        self._seed_schedule.seed_done(found)
        self._thread_dns_address_seed(now)

    # -- manual outbound (Core ThreadOpenAddedConnections) ----------------------------------

    def manual_targets(self) -> list[str]:
        """The addresses to keep connected: ``-connect`` if given, else the added nodes."""
        return list(self.options.connect) if self.options.connect else list(self.added_nodes)

    def is_connected(self, name: str) -> bool:
        """True if a live peer was dialled as ``name`` or has ``name`` as its address string."""
        return name in self._names

    def _index(self, peer: PeerConn, delta: int) -> None:
        """Keep the per-peer indexes the loops read instead of walking every peer: names,
        addresses (with and without port: Core ``AlreadyConnectedToAddress``), and the
        non-inbound peers (the only ones ``ThreadOpenConnections`` counts)."""
        self._peers_version += 1
        for name in {peer.addr_name, str(peer.addr)}:
            n = self._names.get(name, 0) + delta
            if n > 0:
                self._names[name] = n
            else:
                self._names.pop(name, None)
        _count_ref(self._service_refs, peer.addr, delta)
        _count_ref(self._netaddr_refs, peer.addr.addr, delta)
        if not peer.inbound:
            if delta > 0:
                self._outbound[peer.id] = peer
            else:
                self._outbound.pop(peer.id, None)
        elif delta < 0:
            self._evict_cands.pop(peer.id, None)  # added by accepted(), once admitted

    def _connected_to(self, service: Service) -> bool:
        """A live peer has ``service``, or its address on any port (Core
        ``AlreadyConnectedToAddress``: ``FindNode`` by CService and by CNetAddr)."""
        return service in self._service_refs or service.addr in self._netaddr_refs

    def _thread_open_added_connections(self, now: float) -> None:
        """One pass of Core ``ThreadOpenAddedConnections``: dial every manual target that
        is neither connected nor being dialled and whose back-off is over; at most 8
        ``-addnode`` connections open or opening (Core's ``semAddnode``)."""
        self._next_added = self._steady + ADDED_CONNECTIONS_INTERVAL
        if not self.network_active:
            return
        if not self.manual_targets():
            self._next_added = _INF  # nothing to dial; add_node wakes the loop again
            return
        pending_manual = len(self.pending_manual)
        if not self.options.connect:
            pending_manual += sum(1 for t in self.added_nodes if self.is_connected(t))
        for target in self.manual_targets():
            if self.is_connected(target) or target in self.pending_manual:
                continue
            if not self.options.connect and pending_manual >= MAX_ADDNODE_CONNECTIONS:
                break
            if not self.backoff.ready(target, self._steady):
                continue
            self.pending_manual.add(target)
            pending_manual += 1
            self._open(
                target,
                _DialCtx(target, ConnectionType.MANUAL, False, None, kind="manual"),
                now,
            )

    # -- dialling (Core OpenNetworkConnection / ConnectNode) ---------------------------------

    def open_connection(
        self,
        target: str | Service,
        conn_type: ConnectionType,
        now: float,
        *,
        count_failure: bool | None = None,
        use_v2: bool | None = None,
        on_done: Callable[[PeerConn | None], None] | None = None,
        on_failed: Callable[[str], None] | None = None,
        steady: float | None = None,
    ) -> None:
        """Dial ``target`` ("host:port" or a :class:`Service`) once as ``conn_type``
        (``addnode onetry``, tests). ``count_failure`` (default: not manual) says whether
        AddrMan counts the attempt as a failure; ``use_v2`` (default: manual peers and
        peers advertising NODE_P2P_V2) chooses BIP324. Refused while the network is
        inactive or the address is connected (Core ``OpenNetworkConnection``).
        ``on_done`` is called once with the new peer, or None when refused or failed;
        before that None, ``on_failed`` is told why (the OS's or the rule's text)."""
        self._at(now, steady)
        if count_failure is None:
            count_failure = conn_type is not ConnectionType.MANUAL
        self._open(
            target,
            _DialCtx(
                str(target),
                conn_type,
                count_failure,
                use_v2,
                "onetry",
                None,
                on_done,
                on_failed,
            ),
            now,
        )

    def add_connection(
        self,
        address: str,
        conn_type: ConnectionType,
        use_v2: bool,
        now: float,
        *,
        steady: float | None = None,
        on_done: Callable[[PeerConn | None], None] | None = None,
    ) -> bool:
        """Core ``CConnman::AddConnection`` (the ``addconnection`` test RPC): open one
        outbound connection of ``conn_type`` to ``address`` if that type has room (8
        full-relay, 2 block-relay-only; addr-fetch and feelers unlimited) and a
        ``semOutbound`` grant is free; False otherwise (also for inbound and manual).
        ``on_done`` is called with the peer, or None, when the dial ends."""
        self._at(now, steady)
        limits = self.options.limits
        if conn_type is ConnectionType.OUTBOUND_FULL_RELAY:
            cap: int | None = limits.max_outbound_full_relay
        elif conn_type is ConnectionType.BLOCK_RELAY:
            cap = limits.max_outbound_block_relay
        elif conn_type in (ConnectionType.ADDR_FETCH, ConnectionType.FEELER):
            cap = None
        else:
            return False
        if cap is not None and self._count(conn_type) >= cap:
            return False
        if self.automatic_outbound_count() >= min(
            limits.max_automatic_outbound, limits.max_connections
        ):
            return False
        ctx = _DialCtx(address, conn_type, False, use_v2, "addconnection", None, on_done)
        self._open(address, ctx, now)
        return True

    def _open(self, target: str | Service, ctx: _DialCtx, now: float) -> None:
        if ctx.kind in ("automatic", "v1retry", "addconnection"):
            self.automatic_pending += 1  # Core's semOutbound grant, held until the dial ends
            if ctx.kind == "automatic":
                self._auto_busy = True
        if not self.network_active or self.stopping:
            self._dial_ended(ctx, False, now, "stopping" if self.stopping else "network not active")
            return
        if isinstance(target, Service):
            self._dial_service(target, target, ctx, now)
            return
        name_proxy = self.options.proxies.name_proxy
        if name_proxy is not None and not _is_numeric(target):
            # Core ConnectNode with a name proxy: the name goes to the proxy, never to
            # our resolver; the peer is known by an internal address made from it.
            host, port = _split_name(target, self.options.chain.default_port)
            self._dial_service(Service(NetAddr.internal(host), port), f"{host}:{port}", ctx, now)
            return
        try:
            # Core ConnectNode: Lookup, then MaybeFlipIPv6toCJDNS (src/net.cpp).
            service = Service.parse(
                target,
                self.default_port(target),
                cjdns=Network.CJDNS in self.options.reachable,
            )
        except AddrError:
            self._next_req += 1
            self._resolves[self._next_req] = ctx
            self._actions.append(Resolve(self._next_req, target, self.options.chain.default_port))
            return
        self._dial_service(service, service, ctx, now)

    def resolved(
        self,
        request_id: int,
        service: Service | None,
        error: str,
        now: float,
        *,
        steady: float | None = None,
    ) -> None:
        """The answer to a :class:`Resolve` for a dial: the first address, or None and the
        ``error`` text; the dial goes on (or ends as failed)."""
        self._at(now, steady)
        ctx = self._resolves.pop(request_id, None)
        if ctx is None:
            return
        if service is None:
            log.info("cannot connect to %s: %s", ctx.target, error)
            self._dial_ended(ctx, False, now, f"cannot resolve {ctx.target}: {error}")
            return
        if not self.network_active or self.stopping:
            self._dial_ended(ctx, False, now, "stopping" if self.stopping else "network not active")
            return
        if Network.CJDNS in self.options.reachable:
            service = Service(service.addr.maybe_flip_to_cjdns(), service.port)
        try:
            self._dial_service(service, service, ctx, now)
        except Exception as e:
            self._dial_ended(ctx, False, now, str(e))
            raise

    def _dial_service(
        self, service: Service, dest: Service | str, ctx: _DialCtx, now: float
    ) -> None:
        if self.is_connected(str(service)):
            self._dial_ended(ctx, False, now, "already connected")
            return
        if (
            ctx.conn_type is not ConnectionType.MANUAL
            and self.banman is not None
            and not self.banman.outbound_allowed(service.addr, now)
        ):
            # Core OpenNetworkConnection: never dial a banned or discouraged address on our own.
            self._dial_ended(ctx, False, now, "banned or discouraged")
            return
        proxies = self.options.proxies
        proxy = (
            proxies.name_proxy
            if isinstance(dest, str)
            else proxies.for_network(service.addr.get_network())
        )
        timeout = self.options.connect_timeout + (SOCKS5_RECV_TIMEOUT if proxy else 0.0)
        ctx.service = service
        # Core OpenNetworkConnection / ConnectNode decide the transport before dialling:
        # a target refused in v2 is redialled once in v1 (m_reconnections); v2 goes to
        # manual peers and to addresses that advertise NODE_P2P_V2.
        forced_v1 = ctx.target in self._force_v1
        self._force_v1.discard(ctx.target)
        use_v2 = ctx.use_v2
        known = self.addrman.find(service) if isinstance(dest, Service) else None
        if use_v2 is None:
            use_v2 = self.options.v2transport and (
                ctx.conn_type is ConnectionType.MANUAL
                or (known is not None and bool(known.services & ServiceFlags.NODE_P2P_V2))
            )
        ctx.use_v2 = use_v2 and self.options.v2transport and not forced_v1
        # Core ConnectNode (src/net.cpp), word for word.
        log.debug(
            corelog.TRYING_CONNECTION,
            "v2" if ctx.use_v2 else "v1",
            ctx.conn_type.value,
            dest,
            0.0 if known is None else (now - known.time) / 3600,
        )
        self._next_req += 1
        self._dials[self._next_req] = ctx
        self._actions.append(
            Dial(
                self._next_req,
                service,
                dest,
                ctx.conn_type,
                proxy,
                timeout,
                bool(ctx.use_v2),
            )
        )

    def dial_failed(
        self,
        dial_id: int,
        reason: str,
        now: float,
        *,
        proxy_failed: bool = False,
        steady: float | None = None,
    ) -> None:
        """A :class:`Dial` did not connect (``reason`` for the log; ``proxy_failed`` when
        the proxy itself failed, which is not the address's fault: Core ``ConnectNode``)."""
        self._at(now, steady)
        ctx = self._dials.pop(dial_id, None)
        if ctx is None:
            return
        assert ctx.service is not None
        log.debug("connect to %s failed: %s", ctx.target, reason)
        self.stats.count("connection_attempts")
        self.stats.count("connection_failures:" + _failure_class(reason, proxy_failed))
        if ctx.conn_type is not ConnectionType.MANUAL:
            self.backoff.failed(ctx.target, self._steady)  # manual: the manual loop's own
        if not proxy_failed:
            self.addrman.attempt(ctx.service, ctx.count_failure, now=now)
        self._dial_ended(ctx, False, now, reason)

    def connected(
        self,
        dial_id: int,
        conn_id: int,
        local: Service | None,
        now: float,
        *,
        steady: float | None = None,
        through_sam: bool = False,
    ) -> bool:
        """A :class:`Dial` connected as ``conn_id`` (``local``: our end): the peer starts
        its handshake. Returns False (and asks to close ``conn_id``) when the dial is no
        longer wanted (stopping, network off). Whatever happens, the dial's grant and
        place are released.

        ``through_sam``: the connection went through an I2P SAM session. Core's
        ``Session::Connect`` leaves ``proxy_error`` set when it succeeds, so
        ``ConnectNode`` counts no addrman attempt for a made I2P connection
        (src/i2p.cpp, src/net.cpp); every other made connection is counted."""
        self._at(now, steady)
        ctx = self._dials.pop(dial_id, None)
        if ctx is None:
            self._actions.append(Close(conn_id, "unknown dial"))
            return False
        peer: PeerConn | None = None
        try:
            peer = self._connect_peer(ctx, conn_id, local, now, count_attempt=not through_sam)
        finally:
            self._dial_ended(ctx, peer is not None, now, peer=peer)
        return peer is not None

    def _connect_peer(
        self,
        ctx: _DialCtx,
        conn_id: int,
        local: Service | None,
        now: float,
        *,
        count_attempt: bool = True,
    ) -> PeerConn | None:
        service = ctx.service
        assert service is not None
        # Core ConnectNode: a made connection is an attempt too (counted for automatic types).
        if count_attempt:
            self.addrman.attempt(service, ctx.count_failure, now=now)
        self.stats.count("connection_attempts")
        if self.stopping or not self.network_active:
            self._actions.append(Close(conn_id, corelog.NETWORK_NOT_ACTIVE))
            return None
        target = ctx.target
        use_v2 = bool(ctx.use_v2)  # decided at the dial (_dial_service)
        conn_type = ctx.conn_type
        peer = self._new_peer(
            conn_id,
            service,
            local,
            target,
            conn_type,
            now,
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
        self._conn_event(
            "net:outbound_connection", peer, existing=len(self.peers) - self.inbound_count
        )
        self._flush(peer, now)
        self._apply(peer, peer.proto.start(now), now)
        return peer

    def _dial_ended(
        self,
        ctx: _DialCtx,
        ok: bool,
        now: float,
        failure: str = "",
        peer: PeerConn | None = None,
    ) -> None:
        """Release what the dial held: an automatic one its ``semOutbound`` grant (and the
        automatic loop, which waits for it as Core's does); a manual one its place, and a
        back-off step when it failed."""
        if ctx.kind in ("automatic", "v1retry", "addconnection"):
            self.automatic_pending = max(0, self.automatic_pending - 1)
            if ctx.kind == "automatic":
                # Core's loop goes on: after a fetch's dial, the 500 ms sleep, then a pick;
                # after a pick's dial, the next fetch at once.
                self._auto_busy = False
                wait = 0.0 if self._open_fetch else self.options.open_connections_interval
                self._next_open = self._steady + wait
        elif ctx.kind == "manual":
            self.pending_manual.discard(ctx.target)
            if not ok:
                self.backoff.failed(ctx.target, self._steady)
        if not ok and ctx.on_failed is not None:
            ctx.on_failed(failure or "refused")
        if ctx.on_done is not None:
            ctx.on_done(peer)

    def _new_peer(
        self,
        conn_id: int,
        addr: Service,
        addr_bind: Service | None,
        name: str,
        conn_type: ConnectionType,
        now: float,
        *,
        v2: bool = False,
        permissions: NetPermissionFlags = NetPermissionFlags.NONE,
        inbound_onion: bool = False,
    ) -> PeerConn:
        magic = self.options.chain.magic
        # Core ConnectedThroughNetwork: an inbound peer on an onion listener is Tor.
        net_class = Network.TORV3 if inbound_onion else addr.addr.get_net_class()
        if net_class is Network.INTERNAL:
            # A name dialled through a name proxy: Core's CNode holds an empty address
            # (ConnectNode, src/net.cpp), whose class is NET_UNROUTABLE.
            net_class = Network.UNROUTABLE
        transport: Transport
        if v2:
            transport = V2Transport(
                magic, initiating=not conn_type.is_inbound, rng=self._transport_rng
            )
        else:
            transport = V1Transport(magic)
        nonce = self.rng.getrandbits(64)
        peer_id = self._next_id
        proto = BitcoinPeer(
            conn_type=conn_type,
            addr=addr,
            local_nonce=nonce,
            config=self.options.peer,
            now=now,
            rng=self.rng,
            addr_source=_CachedAddrSource(
                self,
                # Core's m_network_key (CreateNodeFromAcceptedSocket / ConnectNode): the
                # peer's network, our address, and for inbound our listening port.
                (
                    str(addr_bind.addr) if addr_bind else "",
                    addr_bind.port if addr_bind and conn_type.is_inbound else 0,
                    int(net_class),
                ),
                bypass=has_flag(permissions, NetPermissionFlags.ADDR),
            ),
            is_local_nonce=self._is_local_nonce,
            permissions=int(permissions),
            # By id, not by the peer object: a closure over the peer would make a cycle
            # (peer -> proto -> closure -> peer) that only the cyclic GC frees.
            local_address=partial(self._local_addr_for_id, peer_id) if self.listening else None,
            peer_id=peer_id,
        )
        peer = PeerConn(
            id=peer_id,
            conn_id=conn_id,
            addr=addr,
            addr_bind=addr_bind,
            addr_name=name,
            conn_type=conn_type,
            transport=transport,
            proto=proto,
            connected_at=now,
            permissions=permissions,
            net_class=net_class,
            is_local=addr.addr.is_local(),
            noban=has_flag(permissions, NetPermissionFlags.NOBAN),
        )
        peer.keyed_netgroup = keyed_netgroup(
            self.addrman.netgroupman.get_group(addr.addr), self.netgroup_k0, self.netgroup_k1
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
        # Core's CNode constructor (src/net.cpp), word for word.
        if conn_type.is_inbound:
            log.debug(corelog.ADDED_CONNECTION, peer.id)
        else:
            log.debug(corelog.ADDED_CONNECTION_TO, name, peer.id)
        return peer

    def _is_local_nonce(self, nonce: int) -> bool:
        """Core ``CheckIncomingNonce``: is this one of our outbound, not yet connected, nonces?"""
        return nonce in self._local_nonces

    # -- inbound ------------------------------------------------------------------------------

    def accepted(
        self,
        conn_id: int,
        local: Service,
        remote: Service,
        now: float,
        *,
        steady: float | None = None,
    ) -> bool:
        """Admit an inbound connection in Core's order (src/net.cpp ``CreateNodeFromAcceptedSocket``).

        Network inactive: refused. Banned: refused. Discouraged: refused when the
        inbound slots are (almost) full, else admitted and marked prefer-evict.
        Full: Core's inbound eviction (:meth:`attempt_to_evict`); refused when everyone is
        protected. Returns whether the connection was admitted (the driver closes it
        otherwise).
        """
        self._at(now, steady)
        if not self.network_active or self.stopping:
            log.debug(corelog.DROPPED_NOT_ACCEPTING, remote)
            return False
        prefer_evict = False
        permissions = self.options.permissions.inbound(remote.addr, local)
        noban = has_flag(permissions, NetPermissionFlags.NOBAN)
        if self.banman is not None:
            decision = self.banman.inbound_decision(
                remote.addr,
                now,
                noban=noban,
                inbound_count=self.inbound_count,
                max_inbound=self.options.max_inbound,
            )
            if decision in ("refuse-banned", "refuse-discouraged"):
                banned = decision == "refuse-banned"
                log.debug(corelog.DROPPED_BANNED if banned else corelog.DROPPED_DISCOURAGED, remote)
                return False
            prefer_evict = decision == "accept-prefer-evict"
        if self.inbound_count >= self.options.max_inbound and not self.attempt_to_evict():
            log.debug(corelog.DROPPED_FULL)
            return False
        peer = self._new_peer(
            conn_id,
            remote,
            local,
            str(remote),
            ConnectionType.INBOUND,
            now,
            v2=self.options.v2transport,
            permissions=permissions,
            # Core m_inbound_onion: getpeerinfo "network", eviction, the getaddr cache.
            inbound_onion=(str(local.addr), local.port) in self.onion_listening,
        )
        peer.prefer_evict = prefer_evict
        self._evict_cands[peer.id] = _eviction_candidate(peer)
        log.debug("connection from %s accepted", remote)
        self._conn_event("net:inbound_connection", peer, existing=self.inbound_count)
        return True

    def attempt_to_evict(
        self, *, tx_relay_only: bool = False, protect_peer: int | None = None
    ) -> bool:
        """Core ``AttemptToEvictConnection``: drop one inbound peer chosen by
        :func:`~peerkeeper.bitcoin.eviction.select_node_to_evict`; False when every one is
        protected.

        ``tx_relay_only`` considers only peers that relay transactions, and
        ``protect_peer`` (an id) is never chosen: Core's ``EvictTxPeerIfFull``.
        """
        # Only inbound peers can be chosen (Core's SelectNodeToEvict drops the others
        # first), so the others are not even listed.
        # The candidates are kept up to date as peers come, go, send their version or a
        # pong (_evict_cands): an admission only copies them.
        if tx_relay_only or protect_peer is not None:
            candidates = [
                c
                for c in self._evict_cands.values()
                if c.id != protect_peer and (not tx_relay_only or c.relay_txs)
            ]
        else:
            candidates = list(self._evict_cands.values())
        victim = select_node_to_evict(candidates)
        if victim is None:
            return False
        peer = self.peers[victim]
        self.stats.count("evictions")
        self._conn_event(
            "net:evicted_inbound_connection", peer, time_established=int(peer.connected_at)
        )
        log.debug(
            corelog.SELECTED_FOR_EVICTION,
            peer.conn_type.value,
            corelog.disconnect_msg(peer.id, peer.addr),
        )
        self._drop(
            peer,
            "evicted for an inbound slot",
            close=True,
            logged=True,
            kind=DisconnectReason.EVICTED,
        )
        return True

    def _log_rejected(self, peer: PeerConn, raw: RawMessage) -> None:
        """Core's "Header error" line for a framed message v1 refused (src/net.cpp)."""
        command, size = sanitize_string(raw.command), len(raw.payload)
        if raw.checksum:
            expected = hashlib.sha256(hashlib.sha256(raw.payload).digest()).digest()[:4]
            log.debug(
                corelog.WRONG_CHECKSUM, command, size, expected.hex(), raw.checksum.hex(), peer.id
            )
        else:
            log.debug(corelog.INVALID_MESSAGE_TYPE, command, size, peer.id)

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
            log.debug(corelog.TX_RELAY_EVICTION_FAILED, "version", peer.id)
            self._drop(peer, "no tx-relay slot", close=True, kind=DisconnectReason.EVICTED)

    # -- bytes in -------------------------------------------------------------------------------

    def received(
        self, conn_id: int, data: bytes, now: float, *, steady: float | None = None
    ) -> None:
        """Bytes from ``conn_id``: feed the transport and process every complete message
        (while the peer's send buffer has room)."""
        self._at(now, steady)
        peer = self._by_conn.get(conn_id)
        if peer is None or peer.closed:
            return
        n = len(data)
        peer.bytes_recv += n
        self.total_bytes_recv += n
        if n:
            peer.proto.last_recv = now  # Core ReceiveMsgBytes: any bytes, whole or not
        peer.transport.receive_data(data)
        self._process(peer, now)
        if not peer.closed:
            self._flush(peer, now)

    def writable(self, conn_id: int, now: float, *, steady: float | None = None) -> None:
        """The driver's send buffer for ``conn_id`` is below ``-maxsendbuffer`` again:
        process what the peer sent meanwhile (Core clears ``fPauseSend``)."""
        self._at(now, steady)
        peer = self._by_conn.get(conn_id)
        if peer is None or peer.closed:
            return
        peer.send_size = 0
        self._process(peer, now)
        if not peer.closed:
            self._flush(peer, now)

    def _send_paused(self, peer: PeerConn) -> bool:
        return peer.send_size > self.options.max_send_buffer

    def _process(self, peer: PeerConn, now: float) -> None:
        transport = peer.transport
        while not peer.closed:
            if self._send_paused(peer):
                self._pause_reading(peer, send=True)
                return
            try:
                raw = transport.next_message()
            except TransportError as e:
                self._drop(peer, str(e), close=True, kind=DisconnectReason.PROTOCOL)
                return
            if raw is None:
                break
            self._handle_raw(peer, raw, now)
        if not peer.closed:
            # Only complete, unprocessed messages count (Core's nProcessQueueSize): a
            # message still arriving never blocks its own completion.
            if transport.buffered - transport.partial_bytes() > self.options.max_receive_buffer:
                self._pause_reading(peer, send=False)
            elif peer.reading_paused:
                peer.reading_paused = False
                self._actions.append(ResumeRead(peer.conn_id))

    def _pause_reading(self, peer: PeerConn, *, send: bool) -> None:
        if not peer.reading_paused or send:
            peer.reading_paused = True
            self._actions.append(PauseRead(peer.conn_id, send))

    def _handle_raw(self, peer: PeerConn, raw: RawMessage, now: float) -> None:
        if raw.rejected is not None or raw.command not in _COUNTED_TYPES:
            key = NET_MESSAGE_TYPE_OTHER
        else:
            key = raw.command
        peer.recv_per_msg[key] = peer.recv_per_msg.get(key, 0) + raw.wire_size
        self.stats.message("received", peer.stats_net, peer.stats_type, key, raw.wire_size)
        if self.message_events:
            self._conn_event("net:inbound_message", peer, msg_type=key, size=len(raw.payload))
        if raw.rejected is not None:
            # Core V1Transport::GetReceivedMessage: logged and dropped, the peer stays.
            # Only hashed again when the line is written: a flood costs nothing extra.
            if log.isEnabledFor(logging.DEBUG):
                self._log_rejected(peer, raw)
            peer.proto.last_recv = now
            return
        if log.isEnabledFor(logging.DEBUG):
            # Core ProcessMessages (src/net_processing.cpp), word for word.
            log.debug(corelog.RECEIVED, sanitize_string(raw.command), len(raw.payload), peer.id)
        try:
            if raw.command in APP_ONLY_COMMANDS and (
                self.app is None or not self.app.wants(raw.command)
            ):
                # Nothing here reads a tx or a block: walking a 4 MB block of 66,665
                # tiny transactions for txids takes Python 0.19 s, so it is done only
                # for an application that asked for them.
                msg: Message = UnknownMessage(raw.command, raw.payload)
            else:
                msg = decode_message(raw.command, raw.payload)
        except DecodeError as e:
            # Core ProcessMessages' catch (src/net.cpp): an error line, the peer stays.
            log.error(
                corelog.PROCESS_MESSAGE_EXCEPTION,
                sanitize_string(raw.command),
                len(raw.payload),
                e,
                type(e).__name__,
            )
            actions = peer.proto.on_decode_error(raw.command, e, now, size=len(raw.payload))
            self._apply(peer, actions, now)
            return
        actions = peer.proto.on_message(msg, now)
        if peer.inbound and (type(msg) is Pong or type(msg) is Version):
            self._evict_cands[peer.id] = _eviction_candidate(peer)
        # The application and a waiting request see the message once the peer's state
        # machine took it, before its actions run: the addr that completes an addr-fetch
        # connection is delivered, then the disconnect.
        if len(self.pending):
            for reply_key in reply_keys(msg):
                if (peer.id, reply_key) in self.pending:
                    self.pending.resolve(peer.id, reply_key, msg)
        app = self.app
        if app is not None and peer.proto.successfully_connected:
            try:
                app.message(peer, msg, len(raw.payload))
            except Exception:
                # An application's bug never changes a connection decision.
                log.exception("application failed on %s from peer=%d", raw.command, peer.id)
        self._apply(peer, actions, now)
        if raw.command == "version" and peer.inbound and not peer.closed and peer.proto.their.relay:
            self._check_tx_relay_capacity(peer)

    def closed(self, conn_id: int, reason: str, now: float, *, steady: float | None = None) -> None:
        """The connection ended from the other side or by a socket error (``reason`` for
        the log): forget the peer; a v2 attempt it refused is retried once as v1."""
        self._at(now, steady)
        peer = self._by_conn.get(conn_id)
        if peer is not None:
            self._drop(peer, reason, close=False, kind=DisconnectReason.REMOTE_CLOSED)
            self._maybe_retry_v1(peer, now)  # after _drop's back-off bookkeeping: redial at once

    def _maybe_retry_v1(self, peer: PeerConn, now: float) -> None:
        """Core ``V2Transport::ShouldReconnectV1``: we sent our key, got nothing, and were cut off."""
        if peer.inbound or not peer.transport.should_reconnect_v1():
            return
        log.debug(corelog.RETRY_V1, peer.id)
        if peer.conn_type is ConnectionType.MANUAL:
            self._force_v1.add(peer.addr_name)
            self.backoff.reset(peer.addr_name)
            self._next_added = self._steady
        elif not self.stopping:
            # Core PerformReconnections: same type, keeping the grant, failures not counted.
            # By the name we dialled: a named addr-fetch peer goes through the name proxy again.
            self._open(
                peer.addr_name,
                _DialCtx(peer.addr_name, peer.conn_type, False, False, kind="v1retry"),
                now,
            )

    # -- actions from the peers -----------------------------------------------------------

    def _apply(self, peer: PeerConn, actions: list[Action], now: float) -> None:
        for action in actions:
            if peer.closed:
                return
            if isinstance(action, PeerSend):
                self._send(peer, action.message, now)
            elif isinstance(action, Disconnect):
                reason = action.reason
                if (
                    reason == corelog.VERSION_HANDSHAKE_TIMEOUT
                    and peer.transport.transport_type == "detecting"
                ):
                    reason = corelog.V2_HANDSHAKE_TIMEOUT  # Core's InactivityCheck wording
                self._drop(peer, reason, close=True, kind=classify_disconnect(reason))
            elif isinstance(action, Misbehaving):
                self._misbehaving(peer, action.reason)
            elif isinstance(action, LearnedAddresses):
                self._learned(peer, action, now)
            elif isinstance(action, VersionReceived):
                # Core's VERSION handler: SetServices for outbound peers, and Good once
                # the version is accepted (feelers included, block-relay-only too).
                self.addrman.set_services(peer.addr, action.services)
                if action.accepted and not peer.inbound:
                    # Core's VERSION handler: every outbound peer gives a sample.
                    self.time_offsets.add(peer.proto.their.time_offset)
                if action.accepted:
                    self.addrman.good(peer.addr, now=now)
                    self._event("addrman:good", addr=str(peer.addr))
                    if peer.conn_type is not ConnectionType.MANUAL:
                        self.backoff.reset(peer.addr_name)
            elif isinstance(action, HandshakeComplete):
                self._local_nonces.discard(peer.proto.local_nonce)
                self.stats.handshake(now - peer.connected_at)
                self._conn_event(
                    "net:handshake",
                    peer,
                    transport=peer.transport.transport_type,
                    version=peer.proto.their.version,
                    subver=peer.proto.their.user_agent,
                    seconds=round(now - peer.connected_at, 6),
                )
                # Core: info for outbound, debug for inbound (an attacker's rate).
                (log.debug if peer.inbound else log.info)(
                    corelog.NEW_PEER_CONNECTED,
                    peer.conn_type.value,
                    peer.transport.transport_type,
                    peer.proto.their.version,
                    corelog.log_peer(peer.id, peer.addr),
                    "",
                )
                if self.app is not None:
                    try:
                        self.app.peer_connected(peer)
                    except Exception:
                        log.exception("application failed on a new peer")
        self._schedule(peer)

    def _learned(self, peer: PeerConn, action: LearnedAddresses, now: float) -> None:
        """Store gossiped addresses and relay the fresh ones (Core ``ProcessAddrs``).

        Banned and discouraged addresses are neither stored nor relayed; addresses on a
        network we cannot reach are relayed but not stored; each fresh
        one goes to the 1-2 peers :func:`~peerkeeper.bitcoin.addrrelay.relay_targets` picks
        among the other address-relay peers (Core ``RelayAddress``).
        """
        banman = self.banman

        def allowed(e: AddrEntry) -> bool:
            return banman is None or banman.outbound_allowed(e.service.addr, now)

        # Core ProcessAddrs: "Do not store addresses outside our network".
        reachable_nets = self.options.reachable
        entries = [
            e
            for e in action.entries
            if allowed(e) and e.service.addr.get_network() in reachable_nets
        ]
        if entries:
            added = self.addrman.add(entries, peer.addr, ADDR_TIME_PENALTY, now=now)
            self._event("addrman:add", id=peer.id, received=len(action.entries), added=added)
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
                e, now, candidates, self.netgroup_k0, self.netgroup_k1, reachable=reachable
            ):
                target = candidates[target_id]
                target.proto.push_address(e, now)
                self._schedule(target)

    def _local_addr_for_id(self, peer_id: int) -> AddrEntry | None:
        peer = self.peers.get(peer_id)
        return None if peer is None else self.local_addr_for_peer(peer)

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
        return AddrEntry(int(self._now), self.options.peer.services, best)

    def _listen_port(self) -> int:
        return self.listening[0][1] if self.listening else self.options.chain.default_port

    def add_local(self, service: Service, score: int) -> bool:
        """Core ``AddLocal``: remember one of our routable addresses; False if unroutable."""
        if not service.addr.is_routable():
            return False
        self.local_addresses[service] = max(score, self.local_addresses.get(service, 0))
        return True

    def remove_local(self, service: Service) -> None:
        """Core ``RemoveLocal``: stop advertising ``service`` (the onion service is gone)."""
        self.local_addresses.pop(service, None)

    def set_onion_proxy(self, proxy: Proxy, *, reachable: bool) -> None:
        """Tor's control port named its SOCKS listener (Core ``get_socks_cb``): onion
        peers go through ``proxy`` from now on, and when ``reachable`` (``-onlynet``
        allows onion) the onion network is reachable for automatic connections."""
        opts = self.options
        proxies = dict(opts.proxies.proxies)
        proxies[Network.TORV3] = proxy
        opts.proxies = dataclasses.replace(opts.proxies, proxies=proxies)
        if reachable and Network.TORV3 not in opts.reachable:
            opts.reachable = opts.reachable | {Network.TORV3}
            if self.policy is not None:
                self.policy.add_reachable(Network.TORV3)

    # -- bytes out ------------------------------------------------------------------------

    def _send(self, peer: PeerConn, msg: Message, now: float) -> None:
        """Frame one message; count its own frame size under its type (Core's per-msg maps)."""
        payload = msg.encode()
        # Core PushMessage (src/net.cpp), word for word.
        log.debug(corelog.SENDING, msg.command, len(payload), peer.id)
        size = peer.transport.send(msg.command, payload)
        key = msg.command if msg.command in _COUNTED_TYPES else NET_MESSAGE_TYPE_OTHER
        peer.sent_per_msg[key] = peer.sent_per_msg.get(key, 0) + size
        self.stats.message("sent", peer.stats_net, peer.stats_type, key, size)
        if self.message_events:
            self._conn_event("net:outbound_message", peer, msg_type=key, size=len(payload))
        self._flush(peer, now)

    def _emit(self, peer: PeerConn, data: bytes, now: float) -> None:
        n = len(data)
        if not peer.bytes_sent and n and isinstance(peer.transport, V2Transport):
            log.debug(corelog.START_V2_HANDSHAKE, peer.id)  # Core V2Transport::MarkBytesSent
        self._actions.append(Send(peer.conn_id, data))
        peer.send_size += n
        peer.bytes_sent += n
        self.total_bytes_sent += n
        self.upload_target.record_bytes_sent(n, now)
        peer.proto.last_send = now

    def _flush(self, peer: PeerConn, now: float) -> None:
        """Hand the driver what the transport has ready (messages, BIP324 key, garbage);
        keep only the transport that carries the connection from now on (a BIP324
        responder that found a v1 peer gives way to its inner v1 transport)."""
        transport = peer.transport
        data = transport.data_to_send()
        if data:
            self._emit(peer, data, now)
        peer.transport = transport.settled()

    def send_message(
        self, peer_id: int, msg: Message, now: float, *, steady: float | None = None
    ) -> None:
        """Push ``msg`` to ``peer_id`` (Core ``PushMessage``); raises KeyError for an
        unknown peer."""
        self._at(now, steady)
        peer = self.peers[peer_id]
        self._send(peer, msg, now)

    def _misbehaving(self, peer: PeerConn, reason: str) -> None:
        """Core ``MaybeDiscourageAndDisconnect`` (src/net_processing.cpp).

        Manual peers are not punished; a local address is disconnected but not
        discouraged; anyone else is discouraged and disconnected.
        """
        log.debug(corelog.MISBEHAVING, peer.id, f": {reason}" if reason else "")
        self._event("net:misbehaving_connection", id=peer.id, message=reason)
        if has_flag(peer.permissions, NetPermissionFlags.NOBAN):
            log.warning(corelog.NOT_PUNISHING_NOBAN, peer.id)
            return
        if peer.conn_type is ConnectionType.MANUAL:
            log.warning(corelog.NOT_PUNISHING_MANUAL, peer.id)
            return
        if peer.addr.addr.is_local():
            onion = peer.inbound and peer.net_class is Network.TORV3
            kind = "inbound onion" if onion else "local"
            log.debug(corelog.NOT_DISCOURAGING_LOCAL, kind, peer.id)
        else:
            log.debug(corelog.DISCOURAGING, peer.id)
            if self.banman is not None:
                self.banman.discourage(peer.addr.addr)
                self.stats.count("discouragements")
                self._event("discourage", address=str(peer.addr.addr))
        self._drop(peer, f"misbehaving: {reason}", close=True, kind=DisconnectReason.MISBEHAVING)
        if not peer.addr.addr.is_local():
            # Core: DisconnectNode(pnode.addr), every connection from that address.
            self.disconnect_matching(
                peer.addr.addr, self._now, steady=self._steady, kind=DisconnectReason.MISBEHAVING
            )

    def _drop(
        self,
        peer: PeerConn,
        reason: str,
        *,
        close: bool,
        logged: bool = False,
        kind: DisconnectReason | None = None,
    ) -> None:
        if peer.closed:
            return
        now = self._now
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
            self.addrman.connected(peer.addr, now=now)
        peer.proto.disconnected = True
        if close:
            self._actions.append(Close(peer.conn_id, reason))
        if not peer.inbound and not peer.proto.successfully_connected:
            self.stats.count("connection_failures:handshake")
        self._conn_event(
            "net:closed_connection", peer, time_established=int(peer.connected_at), reason=reason
        )
        if self.app is not None:
            try:
                self.app.peer_disconnected(peer, kind or classify_disconnect(reason), reason)
            except Exception:
                log.exception("application failed on a disconnect")
        # Core: the reason, then CNode::DisconnectMsg; FinalizeNode's line after it.
        if not logged:
            log.debug(
                corelog.REASON_THEN_DISCONNECT, reason, corelog.disconnect_msg(peer.id, peer.addr)
            )
        log.debug(corelog.CLEARED_NODESTATE, peer.id)
        if peer.conn_type is ConnectionType.MANUAL and not self.stopping:
            # Octez's point back-off: a connection that lasted BACKOFF_RESET_AFTER resets
            # it; one that failed, or ended sooner (even after a handshake), backs off.
            if peer.proto.successfully_connected and now - peer.connected_at >= BACKOFF_RESET_AFTER:
                self.backoff.reset(peer.addr_name)
            else:
                self.backoff.failed(peer.addr_name, self._steady)
            self._next_added = min(self._next_added, self._steady)

    # -- timers ---------------------------------------------------------------------------

    def _schedule(self, peer: PeerConn) -> None:
        if peer.closed:
            return
        at = peer.proto.next_wakeup()
        if at < peer.wake_at:
            peer.wake_at = at
            heapq.heappush(self._heap, (at, peer.id))

    def _tick_peers(self, now: float) -> None:
        heap = self._heap
        # Take every due peer first, then tick each once: a peer whose next wakeup is
        # still <= now after its tick waits for the next tick, never spins this one.
        due: list[PeerConn] = []
        while heap and heap[0][0] <= now:
            at, peer_id = heapq.heappop(heap)
            peer = self.peers.get(peer_id)
            if peer is None or peer.wake_at != at:
                continue  # stale entry
            peer.wake_at = _INF
            due.append(peer)
        for peer in due:
            if not peer.closed:
                self._apply(peer, peer.proto.tick(now), now)
                self._flush(peer, now)

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

    def disconnect_node(
        self,
        now: float,
        address: str | None = None,
        peer_id: int | None = None,
        *,
        steady: float | None = None,
    ) -> bool:
        """Disconnect one peer by address string or id; False if none matched (Core ``DisconnectNode``)."""
        self._at(now, steady)
        peer = self.find_peer(address, peer_id)
        if peer is None:
            return False
        by = corelog.DISCONNECT_BY_ID if peer_id is not None else corelog.DISCONNECT_BY_ADDRESS
        self._drop(peer, by, close=True, kind=DisconnectReason.LOCAL_REQUEST)
        return True

    def disconnect_matching(
        self,
        target: NetAddr | SubNet,
        now: float,
        *,
        steady: float | None = None,
        kind: DisconnectReason = DisconnectReason.BANNED,
    ) -> int:
        """Disconnect every peer whose address is ``target`` or inside it; returns how many.

        Core ``CConnman::DisconnectNode(const CSubNet&)`` / ``(const CNetAddr&)``, used by setban.
        """
        self._at(now, steady)
        victims = [
            p
            for p in self.peers.values()
            if (target.match(p.addr.addr) if isinstance(target, SubNet) else p.addr.addr == target)
        ]
        by = (
            corelog.DISCONNECT_BY_SUBNET
            if isinstance(target, SubNet)
            else corelog.DISCONNECT_BY_ADDRESS
        )
        for peer in victims:
            self._drop(peer, by, close=True, kind=kind)
        return len(victims)

    def add_node(self, node: str, command: str, now: float, *, steady: float | None = None) -> None:
        """``addnode`` RPC: ``add`` / ``remove`` / ``onetry``.

        Raises ``KeyError`` for remove of an unknown node, ``ValueError`` for add of
        a known one or an unknown command (Core src/rpc/net.cpp ``addnode``).
        """
        self._at(now, steady)
        if command == "add":
            if node in self.added_nodes:
                raise ValueError("Node already added")
            self.added_nodes.append(node)
            self._next_added = min(self._next_added, self._steady)
        elif command == "remove":
            if node not in self.added_nodes:
                raise KeyError("Node could not be removed. It has not been added previously.")
            self.added_nodes.remove(node)
            self.backoff.forget(node)
            self._force_v1.discard(node)
        elif command == "onetry":
            self.open_connection(node, ConnectionType.MANUAL, now)
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
                service: Service | None = Service.parse(node, self.default_port(node))
            except AddrError:
                service = None
            out.append((node, by_addr.get(service) if service is not None else by_name.get(node)))
        return out

    def ping_all(self, now: float, *, steady: float | None = None) -> None:
        """Queue a ping to every peer (the ``ping`` RPC); sent at the next :meth:`tick`."""
        self._at(now, steady)
        for peer in self.peers.values():
            peer.proto.request_ping()
            self._schedule(peer)

    def set_network_active(self, active: bool, now: float, *, steady: float | None = None) -> None:
        """Turn all P2P activity on or off; off disconnects every peer (Core ``SetNetworkActive``)."""
        self._at(now, steady)
        log.info(corelog.SET_NETWORK_ACTIVE, str(active).lower())
        self.network_active = active
        if not active:
            for peer in list(self.peers.values()):
                self._drop(
                    peer,
                    corelog.NETWORK_NOT_ACTIVE,
                    close=True,
                    kind=DisconnectReason.NETWORK_INACTIVE,
                )
        else:
            self._next_added = min(self._next_added, self._steady)
