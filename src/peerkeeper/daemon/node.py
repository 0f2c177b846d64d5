"""Node: builds the layers from a :class:`~peerkeeper.daemon.config.Config` and runs them.

``async with Node(config) as node:`` starts the connection manager (listeners,
manual peers) and, unless ``server`` is off, the JSON-RPC server with Core's
cookie authentication; leaving the block stops both. :meth:`Node.wait_stopped`
returns when the ``stop`` RPC (or :meth:`Node.request_stop`) asks the node to end.

The RPC methods keep Bitcoin Core's names and result fields (src/rpc/net.cpp,
src/rpc/server.cpp): getpeerinfo, getnetworkinfo, getconnectioncount,
getnettotals, getnodeaddresses, addnode, disconnectnode, ping, setnetworkactive,
uptime, stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import logging
import os
import random
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from peerkeeper import __version__
from peerkeeper.bitcoin.addrman import AddrMan, AddrManFormatError
from peerkeeper.bitcoin.banman import BanlistError, BanMan
from peerkeeper.bitcoin.connman import LOCAL_MANUAL
from peerkeeper.bitcoin.headerchain import GENESIS_HEADERS, HeaderChain, HeaderError
from peerkeeper.bitcoin.outbound import MAX_BLOCK_RELAY_ONLY_ANCHORS
from peerkeeper.bitcoin.peer import COIN, PeerConfig
from peerkeeper.bitcoin.seeds import DNS_SEEDS
from peerkeeper.bitcoin.uploadtarget import parse_upload_target
from peerkeeper.daemon.chainless import chainless_rpc_methods
from peerkeeper.daemon.config import Config, ConfigError
from peerkeeper.daemon.debuglog import LogSetupError, logging_rpc
from peerkeeper.daemon.rpc import (
    RPC_CLIENT_INVALID_IP_OR_SUBNET,
    RPC_CLIENT_NODE_ALREADY_ADDED,
    RPC_CLIENT_NODE_CAPACITY_REACHED,
    RPC_CLIENT_NODE_NOT_ADDED,
    RPC_CLIENT_NODE_NOT_CONNECTED,
    RPC_INVALID_PARAMETER,
    RPC_INVALID_PARAMS,
    RPC_MISC_ERROR,
    RPC_TYPE_ERROR,
    RpcError,
    RpcServer,
    delete_cookie,
    rpc_param,
    write_cookie,
)
from peerkeeper.daemon.rpchelp import help_listing, help_text
from peerkeeper.daemon.web import WebServer
from peerkeeper.io.addrdb import (
    append_header,
    load_asmap,
    load_fixed_seeds,
    read_block_headers,
    write_banlist_json,
)
from peerkeeper.io.dialmap import dialmap_function, load_dialmap
from peerkeeper.io.dns import lookup_host
from peerkeeper.io.store import (
    DatadirLock,
    Store,
    addrman_from_snapshot,
    load_bans,
    lock_datadir,
    save_anchors,
    snapshot_addrman,
    take_anchors,
)
from peerkeeper.net.connection_types import ConnectionType
from peerkeeper.net.i2p import PRIVATE_KEY_FILE as I2P_PRIVATE_KEY_FILE
from peerkeeper.net.netaddr import AddrError, NetAddr, Network, Service, SubNet, parse_network
from peerkeeper.net.netbase import Proxy
from peerkeeper.net.netpermissions import (
    NetPermissionFlags,
    Permissions,
    has_flag,
    to_strings,
)
from peerkeeper.net.torcontrol import DEFAULT_TOR_SOCKS_PORT, TorControlCore
from peerkeeper.shell.clock import MockableClock
from peerkeeper.shell.connman import ConnMan, ConnManOptions, PeerConn
from peerkeeper.shell.events import EventHub, EventLog, Subscription
from peerkeeper.shell.peerapi import Peer, PeerApi
from peerkeeper.shell.torcontroller import TorController, load_private_key, read_cookie
from peerkeeper.wire import corelog
from peerkeeper.wire.events import Event, EventFilter
from peerkeeper.wire.messages import (
    PROTOCOL_VERSION,
    AddrEntry,
    BlockHeader,
    GetData,
    GetHeaders,
    Headers,
    NotFound,
    ServiceFlags,
    services_names,
)

__all__ = ["Node", "USER_AGENT", "CLIENT_VERSION"]

log = logging.getLogger("peerkeeper.node")

_HEADER = struct.Struct("<i32s32sIII")
#: Core ``CInv::IsGenTxMsg``: MSG_TX, MSG_WTX, MSG_WITNESS_TX (src/protocol.h).
_TX_INV_TYPES = frozenset({1, 5, 0x40000001})

#: BIP14 user agent we announce.
USER_AGENT = f"/peerkeeper:{__version__}/"
#: getnetworkinfo ``version``: major*10000 + minor*100 + patch, as Core's CLIENT_VERSION.
CLIENT_VERSION = int("".join(f"{int(p):02d}" for p in __version__.split(".")))

#: Core's ban file (src/addrdb.cpp ``CBanDB``: ``<chain datadir>/banlist.json``),
#: written beside the store at every ban dump.
BANLIST_FILE = "banlist.json"
#: Seconds between dumps of the address book and bans (src/net.cpp ``DUMP_PEERS_INTERVAL``,
#: src/banman.h ``DUMP_BANS_INTERVAL``).
DUMP_INTERVAL = 15 * 60.0

_RPC_NETWORKS = (Network.IPV4, Network.IPV6, Network.TORV3, Network.I2P, Network.CJDNS)
_NETWORK_BY_NAME = {n.rpc_name: n for n in _RPC_NETWORKS}


class Node(PeerApi):
    """A running peerkeeper node: ConnMan + address table (+ RPC server when asked).

    ``Node(config, clock=time.time, rng=None)``. Attributes after start:
    ``connman``, ``addrman``, ``rpc`` (None when ``server`` is off), ``rpc_port``.
    The application API (peer events, message handlers, sending, requests) is
    :class:`~peerkeeper.shell.peerapi.PeerApi`'s. ``Config()``'s defaults are a
    library's: no RPC server, no listening socket, state in memory.
    """

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        config.validate()
        self.config = config
        #: Our user agent (Core's strSubVersion): ``/peerkeeper:VERSION(uacomments)/``.
        self.subversion = config.subversion("peerkeeper", __version__)
        #: The node's one time base (Core's mockable GetTime), given to everything it owns.
        self.clock = MockableClock(clock)
        self._next_dump = float("inf")
        self._scheduler_wake = asyncio.Event()
        self.rng = rng if rng is not None else random.SystemRandom()
        chain = config.chain_params
        #: What we advertise: the configured bits, plus NODE_P2P_V2 with -v2transport (Core init.cpp).
        self.local_services = config.services | (
            int(ServiceFlags.NODE_P2P_V2) if config.v2transport else 0
        )
        self.asmap = load_asmap(config.asmap) if config.asmap is not None else None
        self.addrman = AddrMan(
            random.Random(self.rng.getrandbits(64)),
            asmap=self.asmap,
            deterministic="addrman" in config.test,  # Core -test=addrman
        )
        self.banman = BanMan(self.rng.getrandbits(32), default_ban_time=config.bantime)
        self.store = Store(None if config.in_memory else config.chain_datadir)
        #: The chain of block headers the chain RPCs describe (genesis until start).
        self.headers: HeaderChain | None = (
            HeaderChain(GENESIS_HEADERS[config.chain]) if config.chain in GENESIS_HEADERS else None
        )
        self._dump_task: asyncio.Task[None] | None = None
        self._dump_lock = asyncio.Lock()
        self._lock: DatadirLock | None = None
        # Core CConnman::InitBinds: -whitebind, -bind, -bind=...=onion; on any address
        # (0.0.0.0 and ::) when neither -bind nor -whitebind is given.
        regular, onion, white, default_onion = config.binds()
        binds = [(str(s.addr), s.port) for s in (*white, *regular)]
        if not binds and not (onion and not default_onion):
            binds = [("::", config.p2p_port), ("0.0.0.0", config.p2p_port)]
        onion_binds = [(str(s.addr), s.port) for s in onion]
        #: Where the onion service's port leads (Core's onion_service_target,
        #: src/init.cpp): the first onion bind, else the first -bind, else
        #: 127.0.0.1:port+1 (which config.binds() gives when neither is set).
        self.onion_target: Service | None = onion[0] if onion else regular[0] if regular else None
        self.tor: TorController | None = None
        self._onion_service: Service | None = None
        try:
            # Core resolves proxies given by name once, here (src/init.cpp).
            proxies, reachable = config.proxy_settings(lookup=lookup_host)
            fixed_seeds = (
                load_fixed_seeds(config.fixedseedsfile, config.chain_params.default_port)
                if config.fixedseedsfile is not None
                else []
            )
            external = [Service.parse(e, config.p2p_port) for e in config.externalip]
            dial_map = (
                dialmap_function(load_dialmap(config.dialmap))
                if config.dialmap is not None
                else None
            )
        except (ValueError, OSError, AddrError) as e:
            raise ConfigError(str(e)) from None
        nameservers: list[str] | None = None
        dns_port = 53
        if config.dnsserver:
            nameservers = []
            for server in config.dnsserver:
                svc = Service.parse(server, 53)
                nameservers.append(str(svc.addr))
                dns_port = svc.port
        self.proxies = proxies
        self.reachable = reachable
        self.connman = ConnMan(
            ConnManOptions(
                chain=chain,
                connect=config.specified_outgoing,
                addnode=list(config.addnode),
                automatic_outbound=config.use_addrman_outgoing,
                inbound_relay_percent=config.inboundrelaypercent,
                seednode=[] if config.connect else list(config.seednode),
                permissions=Permissions.from_options(
                    whitelist=config.whitelist,
                    whitebind=config.whitebind,
                    whitelistrelay=config.whitelistrelay,
                    whitelistforcerelay=config.whitelistforcerelay,
                    cjdns=config.cjdnsreachable,
                ),
                max_upload_target=parse_upload_target(config.maxuploadtarget),
                proxies=proxies,
                i2p_accept_incoming=config.i2p_accept_incoming,
                i2p_private_key_file=(
                    None if config.in_memory else str(config.chain_datadir / I2P_PRIVATE_KEY_FILE)
                ),
                reachable=frozenset(
                    n for n in reachable if n not in (Network.UNROUTABLE, Network.INTERNAL)
                ),
                external_ip=external,
                dnsseed=config.dns_seeding,
                forcednsseed=config.forcednsseed,
                dns_seeds=list(DNS_SEEDS.get(config.chain, ())),
                dns_nameservers=nameservers,
                dns_port=dns_port,
                fixedseeds=config.fixedseeds,
                fixed_seeds=fixed_seeds,
                bind=binds,
                onion_binds=onion_binds,
                onion_binds_default=default_onion,
                listen=config.listening,
                max_connections=config.maxconnections,
                max_send_buffer=config.maxsendbuffer * 1000,
                max_receive_buffer=config.maxreceivebuffer * 1000,
                connect_timeout=config.timeout / 1000,
                v2transport=config.v2transport,
                peer=PeerConfig(
                    services=self.local_services,
                    user_agent=self.subversion,
                    peer_connect_timeout=float(config.peertimeout),
                ),
                network_active=config.networkactive,
                dial_map=dial_map,
            ),
            self.addrman,
            clock=self.clock,
            rng=random.Random(self.rng.getrandbits(64)),
            banman=self.banman,
        )
        self.rpc: RpcServer | None = None
        #: The ``-web`` server (metrics, events, dashboard); None when off.
        self.web: WebServer | None = None
        #: The event stream's fan-out (:meth:`events`, ``-eventlog``, ``/events``).
        self.event_hub = EventHub(on_change=self._events_changed)
        self._eventlog: EventLog | None = None
        self._stop_event = asyncio.Event()
        self.started_at = 0.0
        self._init_app()
        self.on(GetHeaders, self._on_getheaders)
        self.on(GetData, self._on_getdata)

    # -- serving headers ------------------------------------------------------------------

    def _on_getheaders(self, peer: Peer, msg: GetHeaders) -> None:
        """Answer ``getheaders`` from our header chain (Core's ``GETHEADERS`` handler,
        src/net_processing.cpp): at most 2,000 headers after the locator's fork point.

        Core serves no headers while its chain has less work than the chain's
        ``nMinimumChainWork`` (unless the peer has the ``download`` permission) and
        sends an empty ``headers`` instead. That minimum is 0 on regtest; on the public
        chains peerkeeper never holds enough headers, so it always answers empty there.
        """
        conn = self.connman.peers.get(peer.id)
        if self.headers is None or conn is None or conn.closed:
            return
        if self.config.chain != "regtest" and not has_flag(
            conn.permissions, NetPermissionFlags.DOWNLOAD
        ):
            log.debug(corelog.GETHEADERS_TOO_LITTLE_WORK, peer.id)
            self.connman.send_message(peer.id, Headers([]))
            return
        if not msg.locator and self.headers.height_of(msg.hash_stop[::-1].hex()) is None:
            return  # Core: a null locator asks for hash_stop alone; unknown, no answer
        raws = self.headers.headers_after(msg.locator, msg.hash_stop)
        headers = [BlockHeader(*_HEADER.unpack(raw)) for raw in raws]
        self.connman.send_message(peer.id, Headers(headers))

    def _on_getdata(self, peer: Peer, msg: GetData) -> None:
        """Core's ``ProcessGetData`` (src/net_processing.cpp) with an empty mempool: every
        transaction asked for is ``notfound``, for peers with transaction relay (not
        block-relay-only, and relay asked for in their version); blocks are not kept."""
        if type(msg) is not GetData:
            return  # NotFound shares the class
        conn = self.connman.peers.get(peer.id)
        if conn is None or conn.closed or conn.conn_type is ConnectionType.BLOCK_RELAY:
            return
        if not conn.proto.their.relay:
            return
        missing = [item for item in msg.items if item[0] in _TX_INV_TYPES]
        if missing:
            self.connman.send_message(peer.id, NotFound(missing))

    # -- events -------------------------------------------------------------------------------

    def events(self, spec: str | EventFilter = "*", *, maxlen: int = 10_000) -> Subscription:
        """Subscribe to the node's events: ``async for ev in node.events("net:*"):``.

        Names and fields are Core's tracepoints (doc/tracing.md), see
        :mod:`peerkeeper.wire.events`; ``ev.to_json()`` gives the JSON object.

        :param spec: an :class:`~peerkeeper.wire.events.EventFilter` or its text
            (``"*"``: everything but the per-message events, which must be named).
        :param maxlen: queue bound; a reader that falls further behind is dropped and
            its iterator raises :class:`~peerkeeper.shell.events.SubscriberTooSlow`.
        :raises ValueError: a malformed filter.
        """
        return self.event_hub.subscribe(spec, maxlen=maxlen)

    def _events_changed(self, wants_messages: bool) -> None:
        core = self.connman.core
        core.on_event = self._publish if self.event_hub.listening else None
        core.message_events = wants_messages

    def _publish(self, event: Event) -> None:
        self.event_hub.publish(event)

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def datadir(self) -> Path:
        """This chain's data directory; :class:`ConfigError` for an in-memory node."""
        return self.config.chain_datadir

    def _keep_header(self, raw: bytes) -> None:
        if not self.config.in_memory:
            append_header(self.config.chain_datadir, raw)
        self._announce_height()

    def _announce_height(self) -> None:
        """Our version message's start height is the header chain's height (Core
        ``m_best_height``, sent as ``nStartingHeight`` by PushNodeVersion). On regtest,
        where the header chain is the node's own, its tip time also decides whether
        pruned (NETWORK_LIMITED) outbound peers are wanted (Core
        ``GetDesirableServiceFlags``); elsewhere peerkeeper follows no chain and counts
        as near the tip."""
        if self.headers is not None:
            opts = self.connman.core.options
            tip_time = None
            if self.config.chain == "regtest":
                tip_time = float(self.headers.time_at(self.headers.height))
            opts.peer = dataclasses.replace(
                opts.peer, start_height=self.headers.height, tip_time=tip_time
            )

    def _load_headers(self) -> None:
        """The header chain: genesis, Core's block files in the datadir (a copied chain),
        and the headers kept here; a header that does not extend the chain ends it."""
        genesis = GENESIS_HEADERS.get(self.config.chain)
        if genesis is None or self.config.in_memory:
            return
        chain = HeaderChain(genesis)
        magic = self.config.chain_params.magic
        # Core's block files are read on regtest only: there a copied chain is a test
        # fixture (the functional framework's cache); elsewhere it could be hundreds of GB.
        regtest = self.config.chain == "regtest"
        for raw in read_block_headers(self.config.chain_datadir, magic, core_blocks=regtest):
            if raw == genesis:
                continue  # Core's block files start with the genesis block
            try:
                chain.add(raw)
            except HeaderError as e:
                log.warning("block headers: stopped at height %d (%s)", chain.height + 1, e)
                break
        self.headers = chain

    async def start(self) -> None:
        """Lock the data directory, load the store, start ConnMan and the RPC server.

        Raises ``OSError`` on bind failure and :class:`DatadirLockedError` when
        another node (or an import/export command) holds the data directory.
        """
        self.started_at = self.clock()
        if not self.config.in_memory:
            self.datadir.mkdir(parents=True, exist_ok=True)
            self._lock = lock_datadir(self.datadir)
        await asyncio.to_thread(self.store.open)
        await asyncio.to_thread(self._load_headers)
        self._announce_height()
        await self.load()
        if self.config.eventlog is not None:
            self._eventlog = EventLog(self.config.eventlog)
            self.event_hub.add_sink(self._eventlog.filter, self._eventlog)
        await self.connman.start()
        if self.config.listen_onion and self.config.listening and self.onion_target is not None:
            self._start_tor(self.onion_target)
        self._next_dump = asyncio.get_running_loop().time() + DUMP_INTERVAL
        self._dump_task = asyncio.get_running_loop().create_task(self._dump_loop())
        if self.config.rpc_server:
            credentials = [] if self.config.in_memory else [write_cookie(self.datadir)]
            if self.config.rpcuser and self.config.rpcpassword:
                credentials.append((self.config.rpcuser, self.config.rpcpassword))
            self.rpc = RpcServer(
                self.rpc_methods(),
                host=self.config.rpcbind,
                port=self.config.rpc_port,
                credentials=credentials,
                idle_timeout=float(self.config.rpcservertimeout),
                threads=self.config.rpcthreads,  # Core clamps both to at least 1
                work_queue=self.config.rpcworkqueue,
            )
            try:
                await self.rpc.start()
            except OSError as e:
                host, port = self.config.rpcbind, self.config.rpc_port
                if e.errno == errno.EADDRINUSE:
                    raise OSError(
                        f"RPC port {port} on {host} is in use (another node running?): "
                        "choose another with --rpcport"
                    ) from None
                raise OSError(
                    f"cannot listen for RPC on {host}:{port} ({e.strerror or e}): choose "
                    "another with --rpcport or --rpcbind"
                ) from None
            log.info("RPC listening on %s:%d", self.config.rpcbind, self.rpc.port)
        endpoint = self.config.web_endpoint()
        if endpoint is not None:
            web = WebServer(self, *endpoint)
            try:
                await web.start()
                self.web = web
            except OSError as e:
                # Observability is not the node's job: it runs on without it.
                if e.errno == errno.EADDRINUSE:
                    log.error(
                        "web port %d on %s is in use: choose another with --web; running "
                        "without -web",
                        endpoint[1],
                        endpoint[0],
                    )
                else:
                    log.error("%s; running without -web", e)

    async def stop(self) -> None:
        """Stop the RPC server and ConnMan, dump what changed, close the store, remove the cookie.

        Every step runs even when an earlier one fails; a dump in flight is never
        cut short (its write finishes on the store thread before the final one).
        """
        try:
            if self._dump_task is not None:
                self._dump_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._dump_task
                self._dump_task = None
            if self.web is not None:
                try:
                    await self.web.stop()
                except Exception:
                    log.exception("stopping -web")  # the rest of the shutdown goes on
                finally:
                    self.web = None
            if self.rpc is not None:
                try:
                    await self.rpc.stop()
                finally:
                    if not self.config.in_memory:
                        delete_cookie(self.datadir)
                    self.rpc = None
            if self.tor is not None:
                await self.tor.stop()
                self.tor = None
            await self.connman.stop()
            await self._stop_app()
        finally:
            try:
                if self.store._executor is not None:
                    try:
                        if self.connman.policy is not None:
                            anchors = self.connman.anchors_at_stop
                            await self.store.call(lambda c: save_anchors(c, anchors))
                            log.info("%d block-relay-only anchors saved", len(anchors))
                        await self.dump()
                    finally:
                        await asyncio.to_thread(self.store.close)
            finally:
                if self._lock is not None:
                    self._lock.close()
                    self._lock = None
                if self._eventlog is not None:
                    self.event_hub.remove_sink(self._eventlog)
                    self._eventlog.close()
                    self._eventlog = None

    # -- Tor control (Core StartTorControl, src/torcontrol.cpp) ------------------------------

    def _start_tor(self, target: Service) -> None:
        key_dir = None if self.config.in_memory else self.datadir
        core = TorControlCore(
            str(target),  # Core m_target.ToStringAddrPort()
            self.config.chain_params.default_port,
            password=self.config.torpassword,
            private_key=load_private_key(key_dir),
            onion_proxy_set=bool(self.config.onion),
            read_cookie=read_cookie,
            rng=os.urandom,
        )
        self.tor = TorController(
            self.config.torcontrol,
            core,
            key_dir=key_dir,
            on_service=self._on_onion_service,
            on_proxy=self._on_onion_proxy,
        )
        self.tor.start()

    def _on_onion_service(self, service: Service | None) -> None:
        """Core ``AddLocal(service, LOCAL_MANUAL)`` / ``RemoveLocal``."""
        core = self.connman.core
        if self._onion_service is not None:
            core.remove_local(self._onion_service)
        self._onion_service = service
        if service is not None:
            core.add_local(service, LOCAL_MANUAL)

    def _on_onion_proxy(self, location: str) -> None:
        """Core ``get_socks_cb``: Tor's SOCKS port becomes the onion proxy, with stream
        isolation, and onion is reachable unless ``-onlynet`` leaves it out."""
        try:
            svc = Service.parse(location, DEFAULT_TOR_SOCKS_PORT)
        except (AddrError, ValueError):
            svc = Service.parse("127.0.0.1", DEFAULT_TOR_SOCKS_PORT)
        proxy = Proxy(str(svc.addr), svc.port, randomize_credentials=True)
        allowed = not self.config.onlynet or any(
            parse_network(n) is Network.TORV3 for n in self.config.onlynet
        )
        self.connman.core.set_onion_proxy(proxy, reachable=allowed)
        self.proxies = self.connman.core.options.proxies
        if allowed:
            self.reachable = set(self.reachable) | {Network.TORV3}

    # -- persistence --------------------------------------------------------------------------

    async def load(self) -> None:
        """Load the address book and the bans from the store.

        A stored book the loader cannot use is copied aside
        (``peerkeeper.sqlite.badbook-<time>``) before the node starts with an empty
        one, so nothing stored is ever lost by being overwritten.
        """
        snap = await self.store.call(self.store.read_book)
        if snap is not None:
            try:
                self.addrman = addrman_from_snapshot(
                    snap,
                    random.Random(self.rng.getrandbits(64)),
                    asmap=self.asmap,
                )
                log.info("loaded %d addresses from %s", len(self.addrman), self.store.path)
            except AddrManFormatError as e:
                copy = await self.store.call(lambda c: self.store.backup_copy(c, "badbook"))
                log.warning(
                    "stored address book unusable (%s): copied to %s, starting with an empty one",
                    e,
                    copy,
                )
            self.connman.addrman = self.addrman
        if self.connman.options.open_automatic:
            # Core ``CConnman::Start``: anchors.dat is read, then deleted, only when
            # automatic outbound connections are used.
            anchors = await self.store.call(take_anchors)
            self.connman.options.anchors = anchors[:MAX_BLOCK_RELAY_ONLY_ANCHORS]
            if anchors:
                log.info("%d anchor addresses loaded", len(anchors))
        obj = await self.store.call(load_bans)
        try:
            self.banman.load_json(obj, self.clock(), source=str(self.store.path))
        except BanlistError as e:
            log.warning("ignoring stored bans: %s", e)
        if not self.config.in_memory and not (self.config.chain_datadir / BANLIST_FILE).exists():
            # Core BanMan's constructor when banlist.json cannot be read (src/banman.cpp).
            log.info(corelog.RECREATING_BANLIST)
            self.banman.mark_dirty()
            await self.dump(addrbook=False)

    async def dump(self, *, addrbook: bool = True) -> None:
        """Write what changed since the last dump, in one transaction.

        The address book is snapshotted on the loop, then only the rows that differ
        from what the database holds are written (src/net.cpp ``DumpAddresses`` every
        ``DUMP_PEERS_INTERVAL``, here incremental); the bans when they changed
        (src/banman.cpp ``DumpBanlist``). ``addrbook=False`` writes only the bans
        (after setban, as Core does). Dumps are serialized; the write is shielded
        from cancellation, and bans are marked dirty again if it fails.
        """
        async with self._dump_lock:
            snap = snapshot_addrman(self.addrman) if addrbook else None
            bans = self.banman.dump_if_dirty(self.clock())
            rows = (
                None
                if bans is None
                else [(str(s), e.create_time, e.ban_until) for s, e in bans.items()]
            )
            if snap is None and rows is None:
                return

            def work(c: Any) -> int:
                n = self.store.write_dump(c, snap, rows)
                if bans is not None and not self.config.in_memory:
                    # Core's CBanDB file beside the store, for tools that read it.
                    write_banlist_json(self.config.chain_datadir / BANLIST_FILE, bans)
                return n

            write = asyncio.ensure_future(self.store.call(work))

            def done(fut: asyncio.Future[int]) -> None:
                if rows is not None and (fut.cancelled() or fut.exception() is not None):
                    self.banman.mark_dirty()

            write.add_done_callback(done)
            await asyncio.shield(write)

    async def _dump_loop(self) -> None:
        """Core's scheduler task ``DumpAddresses`` every ``DUMP_PEERS_INTERVAL`` (steady
        time: ``mockscheduler`` moves it forward, ``setmocktime`` does not)."""
        loop = asyncio.get_running_loop()
        while True:
            self._scheduler_wake.clear()
            delay = self._next_dump - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._scheduler_wake.wait()
                continue
            self._next_dump = loop.time() + DUMP_INTERVAL
            try:
                await self.dump()
            except Exception:
                log.exception("periodic dump failed")

    def mock_forward(self, seconds: float) -> None:
        """Core ``CScheduler::MockForward``: every scheduled task runs ``seconds`` earlier
        (the address dump, ConnMan's extra-outbound check)."""
        self._next_dump -= seconds
        self._scheduler_wake.set()
        self.connman.core.mock_forward(seconds)
        self.connman.wake()

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def request_stop(self) -> None:
        """Ask :meth:`wait_stopped` to return."""
        self._stop_event.set()

    async def wait_stopped(self) -> None:
        """Wait until a stop is requested."""
        await self._stop_event.wait()

    @property
    def rpc_port(self) -> int:
        """The RPC server's bound port."""
        return self.rpc.port if self.rpc is not None else self.config.rpc_port

    # -- RPC ----------------------------------------------------------------------------------

    def rpc_methods(self) -> dict[str, Any]:
        """Method name -> async handler, Core's names; the chain and mempool methods of a
        node without either answer for genesis only (:mod:`peerkeeper.daemon.chainless`)."""
        return chainless_rpc_methods(
            self.config.chain, self.headers, self.clock, self._keep_header
        ) | {
            "getpeerinfo": self._getpeerinfo,
            "getaddednodeinfo": self._getaddednodeinfo,
            "getnetworkinfo": self._getnetworkinfo,
            "getconnectioncount": self._getconnectioncount,
            "getnettotals": self._getnettotals,
            "getnodeaddresses": self._getnodeaddresses,
            "addnode": self._addnode,
            "addconnection": self._addconnection,
            "disconnectnode": self._disconnectnode,
            "ping": self._ping,
            "setnetworkactive": self._setnetworkactive,
            "uptime": self._uptime,
            "setmocktime": self._setmocktime,
            "mockscheduler": self._mockscheduler,
            "stop": self._stop,
            "setban": self._setban,
            "getaddrmaninfo": self._getaddrmaninfo,
            "getrawaddrman": self._getrawaddrman,
            "addpeeraddress": self._addpeeraddress,
            "listbanned": self._listbanned,
            "clearbanned": self._clearbanned,
            "help": self._help,
            "logging": self._logging,
            "getrpcinfo": self._getrpcinfo,
            "getnetmsgstats": self._getnetmsgstats,
        }

    async def _getnetmsgstats(self, params: list[Any] | dict[str, Any]) -> dict[str, Any]:
        """``getnetmsgstats ( ["aggregate_by",...] )`` (Bitcoin Core PR #29418): messages
        and bytes sent and received since start, peers gone included, nested by direction,
        network, connection type and message type; each dimension named in
        ``aggregate_by`` is summed over."""
        aggregate_by = rpc_param(params, 0, "aggregate_by") or []
        if not isinstance(aggregate_by, list) or not all(isinstance(a, str) for a in aggregate_by):
            raise RpcError(RPC_TYPE_ERROR, "aggregate_by must be an array of strings")
        try:
            return self.connman.core.stats.aggregate(aggregate_by)
        except ValueError as e:
            raise RpcError(RPC_INVALID_PARAMETER, str(e)) from None

    async def _help(self, params: list[Any] | dict[str, Any]) -> str:
        """Core ``help [command]`` (src/rpc/server.cpp ``CRPCTable::help``): the methods
        by category with their synopses; for one, its arguments, result fields and
        examples (src/rpc/util.cpp ``RPCHelpMan::ToString``), as Core prints them."""
        command = rpc_param(params, 0, "command")
        names = sorted(self.rpc_methods())
        if command is None:
            return help_listing(names)
        if not isinstance(command, str):
            raise RpcError(RPC_TYPE_ERROR, "command must be a string")
        return help_text(command, cli="peerkeeper rpc", names=names)

    async def _logging(self, params: list[Any] | dict[str, Any]) -> dict[str, bool]:
        """Core ``logging ( ["include",...] ["exclude",...] )``: debug categories on/off."""
        include = rpc_param(params, 0, "include") or []
        exclude = rpc_param(params, 1, "exclude") or []
        if not isinstance(include, list) or not isinstance(exclude, list):
            raise RpcError(RPC_TYPE_ERROR, "Expected type array")
        try:
            return logging_rpc([str(c) for c in include], [str(c) for c in exclude])
        except LogSetupError as e:
            raise RpcError(RPC_INVALID_PARAMETER, str(e)) from None

    async def _getrpcinfo(self, params: list[Any] | dict[str, Any]) -> dict[str, Any]:
        """Core ``getrpcinfo`` (src/rpc/server.cpp): this call, and the log file."""
        return {
            "active_commands": [{"method": "getrpcinfo", "duration": 0}],
            "logpath": "" if self.config.in_memory else str(self.datadir / "debug.log"),
        }

    def peer_info(self, peer: PeerConn) -> dict[str, Any]:
        """One getpeerinfo entry (src/rpc/net.cpp ``getpeerinfo``)."""
        proto = peer.proto
        their = proto.their
        info: dict[str, Any] = {
            "id": peer.id,
            "addr": peer.addr_string,
        }
        if peer.addr_bind is not None:
            info["addrbind"] = str(peer.addr_bind)
        if their.addr_me is not None and their.addr_me.addr.is_valid():
            info["addrlocal"] = str(their.addr_me)
        info["network"] = peer.net_class.rpc_name
        mapped_as = self.addrman.netgroupman.get_mapped_as(peer.addr.addr)
        if mapped_as:
            info["mapped_as"] = mapped_as  # Core: only with -asmap, when the AS is known
        info.update(
            {
                "services": f"{their.services:016x}",
                "servicesnames": services_names(their.services),
                "relaytxes": their.relay,
                "lastsend": int(proto.last_send),
                "lastrecv": int(proto.last_recv),
                "last_transaction": 0,
                "last_block": 0,
                "bytessent": peer.bytes_sent,
                "bytesrecv": peer.bytes_recv,
                "conntime": int(peer.connected_at),
                "timeoffset": their.time_offset,
            }
        )
        if proto.ping.last_time is not None:
            info["pingtime"] = round(proto.ping.last_time, 6)
        if proto.ping.min_time is not None:
            info["minping"] = round(proto.ping.min_time, 6)
        if proto.ping.nonce_sent:
            info["pingwait"] = round(self.clock() - proto.ping.start, 6)
        info.update(
            {
                "version": their.version,
                "subver": their.user_agent,
                "inbound": peer.inbound,
                "bip152_hb_to": False,
                "bip152_hb_from": False,
                "startingheight": their.start_height,
                "presynced_headers": -1,
                "synced_headers": -1,
                "synced_blocks": -1,
                "inflight": [],
                "addr_relay_enabled": proto.addr_relay_enabled,
                "addr_processed": proto.addr_processed,
                "addr_rate_limited": proto.addr_rate_limited,
                "permissions": to_strings(peer.permissions),
                "minfeefilter": proto.fee_filter_received / COIN,
                "bytessent_per_msg": dict(sorted(peer.sent_per_msg.items())),
                "bytesrecv_per_msg": dict(sorted(peer.recv_per_msg.items())),
                "connection_type": peer.conn_type.value,
                "transport_protocol_type": peer.transport.transport_type,
                "session_id": (peer.transport.session_id or b"").hex(),
            }
        )
        return info

    async def _getpeerinfo(self, params: list[Any] | dict[str, Any]) -> list[dict[str, Any]]:
        return [self.peer_info(p) for p in sorted(self.connman.peers.values(), key=lambda p: p.id)]

    async def _getconnectioncount(self, params: list[Any] | dict[str, Any]) -> int:
        return len(self.connman.peers)

    async def _getnetworkinfo(self, params: list[Any] | dict[str, Any]) -> dict[str, Any]:
        peers = self.connman.peers.values()
        n_in = sum(1 for p in peers if p.inbound)
        services = self.local_services
        return {
            "version": CLIENT_VERSION,
            "subversion": self.subversion,
            "protocolversion": PROTOCOL_VERSION,
            "localservices": f"{services:016x}",
            "localservicesnames": services_names(services),
            "localrelay": False,
            "timeoffset": self.connman.core.time_offsets.median(),
            "networkactive": self.connman.network_active,
            "connections": len(self.connman.peers),
            "connections_in": n_in,
            "connections_out": len(self.connman.peers) - n_in,
            "networks": [self._network_info(net) for net in _RPC_NETWORKS],
            "relayfee": 0.00001,
            "incrementalfee": 0.00001,
            "localaddresses": [
                {"address": str(svc.addr), "port": svc.port, "score": score}
                for svc, score in self.connman.local_addresses.items()
            ],
            "warnings": [],
        }

    def _network_info(self, net: Network) -> dict[str, Any]:
        """One ``getnetworkinfo`` ``networks`` entry (Core ``GetNetworksInfo``, src/rpc/net.cpp)."""
        proxy = self.proxies.for_network(net)
        reachable = net in self.reachable
        return {
            "name": net.rpc_name,
            "limited": not reachable,
            "reachable": reachable,
            "proxy": str(proxy) if proxy is not None else "",
            "proxy_randomize_credentials": proxy.randomize_credentials
            if proxy is not None
            else False,
        }

    async def _getnettotals(self, params: list[Any] | dict[str, Any]) -> dict[str, Any]:
        return {
            "totalbytesrecv": self.connman.total_bytes_recv,
            "totalbytessent": self.connman.total_bytes_sent,
            "timemillis": int(self.clock() * 1000),
            "uploadtarget": self.connman.upload_target.rpc(self.clock()),
        }

    async def _getnodeaddresses(self, params: list[Any] | dict[str, Any]) -> list[dict[str, Any]]:
        count = rpc_param(params, 0, "count", 1)
        network_name = rpc_param(params, 1, "network")
        if not isinstance(count, int) or count < 0:
            raise RpcError(RPC_INVALID_PARAMETER, "Address count out of range")
        network = None
        if network_name is not None:
            network = _NETWORK_BY_NAME.get(network_name)
            if network is None:
                raise RpcError(RPC_INVALID_PARAMETER, f"Network not recognized: {network_name}")
        entries = self.addrman.get_addr(count, 0, self.clock(), network)
        return [
            {
                "time": e.time,
                "services": e.services,
                "address": str(e.service.addr),
                "port": e.service.port,
                "network": e.service.addr.get_net_class().rpc_name,
            }
            for e in entries
        ]

    async def _addnode(self, params: list[Any] | dict[str, Any]) -> None:
        node = rpc_param(params, 0, "node")
        command = rpc_param(params, 1, "command")
        if not isinstance(node, str) or command not in ("add", "remove", "onetry"):
            raise RpcError(
                RPC_INVALID_PARAMS, 'addnode "node" "command" (command: add|remove|onetry)'
            )
        if command == "onetry":
            # Core's OpenNetworkConnection runs in the RPC thread: the answer comes once
            # the attempt ended (connected, or failed and logged).
            await self.connman.open_connection(node, ConnectionType.MANUAL)
            return
        try:
            self.connman.add_node(node, command)
        except ValueError as e:
            raise RpcError(RPC_CLIENT_NODE_ALREADY_ADDED, "Error: Node already added") from e
        except KeyError as e:
            raise RpcError(
                RPC_CLIENT_NODE_NOT_ADDED,
                "Error: Node could not be removed. It has not been added previously.",
            ) from e

    async def _getaddednodeinfo(self, params: list[Any] | dict[str, Any]) -> list[dict[str, Any]]:
        """Core ``getaddednodeinfo ( "node" )`` (src/rpc/net.cpp)."""
        infos = self.connman.core.get_added_node_info()
        node = rpc_param(params, 0, "node")
        if node is not None:
            infos = [i for i in infos if i[0] == node][:1]
            if not infos:
                raise RpcError(RPC_CLIENT_NODE_NOT_ADDED, "Error: Node has not been added.")
        return [
            {
                "addednode": name,
                "connected": peer is not None,
                "addresses": []
                if peer is None
                else [
                    {
                        "address": str(peer.addr),
                        "connected": "inbound" if peer.inbound else "outbound",
                    }
                ],
            }
            for name, peer in infos
        ]

    async def _disconnectnode(self, params: list[Any] | dict[str, Any]) -> None:
        address = rpc_param(params, 0, "address")
        nodeid = rpc_param(params, 1, "nodeid")
        if address == "":
            address = None
        if (address is None) == (nodeid is None):
            raise RpcError(RPC_INVALID_PARAMS, "Only one of address and nodeid should be provided.")
        if nodeid is not None and not isinstance(nodeid, int):
            raise RpcError(RPC_INVALID_PARAMS, "nodeid must be a number")
        if not self.connman.disconnect_node(address=address, peer_id=nodeid):
            raise RpcError(RPC_CLIENT_NODE_NOT_CONNECTED, "Node not found in connected nodes")

    async def _ping(self, params: list[Any] | dict[str, Any]) -> None:
        self.connman.ping_all()

    async def _setnetworkactive(self, params: list[Any] | dict[str, Any]) -> bool:
        state = rpc_param(params, 0, "state")
        if not isinstance(state, bool):
            raise RpcError(RPC_INVALID_PARAMS, "state must be a boolean")
        self.connman.set_network_active(state)
        return self.connman.network_active

    async def _setban(self, params: list[Any] | dict[str, Any]) -> None:
        """Core ``setban`` (src/rpc/net.cpp): ban or unban an address or subnet."""
        subnet_arg = rpc_param(params, 0, "subnet")
        command = rpc_param(params, 1, "command")
        bantime = rpc_param(params, 2, "bantime", 0) or 0
        absolute = bool(rpc_param(params, 3, "absolute", False))
        if command not in ("add", "remove") or not isinstance(subnet_arg, str):
            raise RpcError(RPC_INVALID_PARAMS, 'setban "subnet" "add|remove" ( bantime absolute )')
        target: NetAddr | SubNet
        try:
            target = SubNet.parse(subnet_arg) if "/" in subnet_arg else NetAddr.parse(subnet_arg)
        except AddrError:
            raise RpcError(RPC_CLIENT_INVALID_IP_OR_SUBNET, "Error: Invalid IP/Subnet") from None
        if not target.is_valid():
            raise RpcError(RPC_CLIENT_INVALID_IP_OR_SUBNET, "Error: Invalid IP/Subnet")
        now = self.clock()
        if command == "add":
            if self.banman.is_banned(target, now):
                raise RpcError(RPC_CLIENT_NODE_ALREADY_ADDED, "Error: IP/Subnet already banned")
            if not isinstance(bantime, int) or not -(2**63) <= bantime < 2**63:
                raise RpcError(RPC_INVALID_PARAMS, "JSON integer out of range")
            if absolute and bantime < now:
                raise RpcError(RPC_INVALID_PARAMETER, "Error: Absolute timestamp is in the past")
            self.banman.ban(target, now, bantime, absolute)
            self.connman.core.stats.count("bans")
            if self.event_hub.listening:
                banned = [b for b in self.banman.list_banned(now) if b["address"] == str(target)]
                until = banned[0]["banned_until"] if banned else None
                self.event_hub.publish(
                    Event("ban", now, {"address": str(target), "banned_until": until})
                )
            self.connman.disconnect_matching(target)
        elif not self.banman.unban(target):
            raise RpcError(
                RPC_CLIENT_INVALID_IP_OR_SUBNET,
                "Error: Unban failed. Requested address/subnet was not previously manually banned.",
            )
        await self.dump(addrbook=False)  # Core dumps the banlist after every change

    async def _getaddrmaninfo(
        self, params: list[Any] | dict[str, Any]
    ) -> dict[str, dict[str, int]]:
        return self.addrman.info()

    async def _getrawaddrman(self, params: list[Any] | dict[str, Any]) -> dict[str, Any]:
        return self.addrman.raw_entries()

    async def _addpeeraddress(self, params: list[Any] | dict[str, Any]) -> dict[str, Any]:
        """Core ``addpeeraddress`` (src/rpc/net.cpp): add with NETWORK|WITNESS, time now, source itself."""
        address = rpc_param(params, 0, "address")
        port = rpc_param(params, 1, "port")
        tried = bool(rpc_param(params, 2, "tried", False))
        if not isinstance(address, str) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise RpcError(RPC_INVALID_PARAMS, 'addpeeraddress "address" port ( tried )')
        try:
            net_addr = NetAddr.parse(address)
        except AddrError:
            return {"success": False}
        now = self.clock()
        service = Service(net_addr, port)
        entry = AddrEntry(
            int(now), int(ServiceFlags.NODE_NETWORK | ServiceFlags.NODE_WITNESS), service
        )
        if not self.addrman.add([entry], service, 0, now=now):
            return {"success": False, "error": "failed-adding-to-new"}
        if tried and not self.addrman.good(service, now=now):
            return {"success": False, "error": "failed-adding-to-tried"}
        return {"success": True}

    async def _listbanned(self, params: list[Any] | dict[str, Any]) -> list[dict[str, Any]]:
        return self.banman.list_banned(self.clock())

    async def _clearbanned(self, params: list[Any] | dict[str, Any]) -> None:
        self.banman.clear_banned()
        await self.dump(addrbook=False)

    def _require_mockable(self, method: str) -> None:
        if self.config.chain_params.name != "regtest":
            raise RpcError(
                RPC_MISC_ERROR, f"{method} is for regression testing (-regtest mode) only"
            )

    async def _addconnection(self, params: list[Any] | dict[str, Any]) -> dict[str, str]:
        """Core ``addconnection`` (src/rpc/net.cpp, test-only, regtest): open one outbound
        connection of the given type (``CConnman::AddConnection``)."""
        if self.config.chain != "regtest":
            raise RpcError(
                RPC_MISC_ERROR, "addconnection is for regression testing (-regtest mode) only."
            )
        address = rpc_param(params, 0, "address")
        type_name = rpc_param(params, 1, "connection_type")
        use_v2 = rpc_param(params, 2, "v2transport")
        if not isinstance(address, str) or not isinstance(type_name, str):
            raise RpcError(RPC_TYPE_ERROR, "address and connection_type must be strings")
        if not isinstance(use_v2, bool):
            raise RpcError(RPC_TYPE_ERROR, "v2transport must be a boolean")
        types = {
            "outbound-full-relay": ConnectionType.OUTBOUND_FULL_RELAY,
            "block-relay-only": ConnectionType.BLOCK_RELAY,
            "addr-fetch": ConnectionType.ADDR_FETCH,
            "feeler": ConnectionType.FEELER,
        }
        conn_type = types.get(type_name.strip())
        if conn_type is None:
            raise RpcError(
                RPC_INVALID_PARAMETER,
                'addconnection "address" "connection_type" v2transport',
            )
        if use_v2 and not self.config.v2transport:
            raise RpcError(
                RPC_INVALID_PARAMETER,
                "Error: Adding v2transport connections requires -v2transport init flag to be set.",
            )
        if not await self.connman.add_connection(address, conn_type, use_v2):
            raise RpcError(
                RPC_CLIENT_NODE_CAPACITY_REACHED,
                "Error: Already at capacity for specified connection type.",
            )
        return {"address": address, "connection_type": type_name.strip()}

    async def _setmocktime(self, params: list[Any] | dict[str, Any]) -> None:
        """Core ``setmocktime`` (src/rpc/node.cpp): every timer of the node follows the
        given unix time from now on (0: the real clock again). Regtest only."""
        self._require_mockable("setmocktime")
        t = rpc_param(params, 0, "timestamp")
        if not isinstance(t, int) or isinstance(t, bool):
            raise RpcError(RPC_TYPE_ERROR, "Expected type number for timestamp")
        try:
            self.clock.set_mocktime(t)
        except ValueError as e:
            raise RpcError(RPC_INVALID_PARAMETER, str(e)) from None
        self.connman.wake()

    async def _mockscheduler(self, params: list[Any] | dict[str, Any]) -> None:
        """Core ``mockscheduler`` (src/rpc/node.cpp): run the scheduled tasks
        ``delta_time`` seconds (1..3600) earlier. Regtest only."""
        self._require_mockable("mockscheduler")
        delta = rpc_param(params, 0, "delta_time")
        if not isinstance(delta, int) or isinstance(delta, bool):
            raise RpcError(RPC_TYPE_ERROR, "Expected type number for delta_time")
        if delta <= 0 or delta > 3600:
            raise RpcError(RPC_MISC_ERROR, "delta_time must be between 1 and 3600 seconds (1 hr)")
        self.mock_forward(delta)

    async def _uptime(self, params: list[Any] | dict[str, Any]) -> int:
        return int(self.clock() - self.started_at)

    async def _stop(self, params: list[Any] | dict[str, Any]) -> str:
        asyncio.get_running_loop().call_later(0.05, self.request_stop)
        return "peerkeeper stopping"
