"""NativeNode: the native protocol's asyncio shell over SockMan, PeerPool and maintenance.

Wires :class:`~peerkeeper.io.sockman.SockMan` (sockets), :class:`~peerkeeper.protocols.
native.NativePeer` (one sans-IO state machine per connection), :class:`~peerkeeper.native.pool.
PeerPool` (points, peer ids, greylists, trusted points) and :mod:`peerkeeper.native.maintenance`
(Octez's connection counts), the way Octez's ``P2p`` wires its connect handler,
maintenance worker and answerer (tezos/tezos-mirror ``src/lib_p2p/p2p.ml``,
``p2p_connect_handler.ml``, ``p2p_maintenance.ml``, ``p2p_protocol.ml``).

Files under ``datadir``: ``identity.json`` (created on first start, mode 0600),
``peers.json`` (Octez's peers file, written atomically at stop and by
:meth:`NativeNode.save_peers`) and ``peerkeeper.sqlite`` (points and peers, the
canonical copy; written by the store's single thread).

Connection rules (Octez ``p2p_connect_handler.ml``): an incoming socket from a banned or
greylisted address, or beyond ``max_incoming_connections`` pending handshakes, is closed
at once; dials and handshakes have ``connection_timeout`` / ``authentication_timeout``;
authentication failures and undecodable messages greylist the address (and the peer id
once known); a nack carries up to 50 known points (none in private mode), which the
receiver registers (medium ``nack``) unless it is private.

Time: every timer of the node runs on its one ``clock`` (as the Bitcoin driver,
:mod:`peerkeeper.shell.connman`): the connections' timers (a heap over each
:class:`NativePeer`'s ``next_wakeup``), housekeeping (greylist countdowns, saves) and the
maintenance worker's waits and trusted back-offs
(:class:`~peerkeeper.native.maintenance.MaintenanceSchedule`) share one asyncio timer
armed at :meth:`NativeNode.next_wakeup`; :meth:`NativeNode.wake` re-arms it at once
after the clock jumped. Only the socket-level dial timeout (SockMan's) is real time.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peerkeeper.dispatch.dispatcher import CodecRegistry, Dispatcher
from peerkeeper.io.addrdb import atomic_write, load_or_create_identity
from peerkeeper.io.sockman import ConnectError, DialMap, SockMan
from peerkeeper.io.store import Store, load_native_pool, save_native_pool
from peerkeeper.native.identity import (
    DEFAULT_POW_DIFFICULTY,
    Identity,
    PeerId,
)
from peerkeeper.native.maintenance import (
    MaintenanceConfig,
    MaintenanceSchedule,
    bounds,
    decide,
    decide_swap_ack,
    decide_swap_proposal,
    decide_swap_request,
    listening_point,
)
from peerkeeper.native.messages import (
    Advertise,
    Bootstrap,
    Envelope,
    NackReason,
    NativeMessage,
    SwapAck,
    SwapRequest,
)
from peerkeeper.native.peer import (
    Authenticated,
    Disconnect,
    Established,
    Greylist,
    NativeAction,
    NativePeer,
    Received,
    Rejected,
)
from peerkeeper.native.pool import PeerPool, PoolConfig, PoolEvent
from peerkeeper.native.poolstate import PeerInfo, PointState
from peerkeeper.net.netaddr import Service
from peerkeeper.shell.dispatch import AsyncDispatcher
from peerkeeper.shell.poolevents import PoolEventHub

__all__ = ["DEFAULT_NATIVE_PORT", "NativeConfig", "NativeNode"]

log = logging.getLogger("peerkeeper.native")

#: Our default listening port for the native protocol (Octez uses 9732; we keep it).
DEFAULT_NATIVE_PORT = 9732
#: Seconds (of the node's clock) between saves of the pool to the store.
SAVE_INTERVAL = 900.0
#: Seconds between two answers to one peer's ``bootstrap`` (more are ignored).
BOOTSTRAP_INTERVAL = 5.0
#: Shortest interval (seconds of the node's clock) between two housekeeping runs
#: (greylist countdowns, saves), so a failing save or a zero interval never spins.
HOUSEKEEPING_INTERVAL = 1.0


@dataclass
class NativeConfig:
    """A native node's settings (seconds, counts; see :class:`PoolConfig` and
    :class:`MaintenanceConfig` for Octez's defaults).

    ``binds``: ``(host, port)`` to listen on (port 0 picks one); ``advertised_port``:
    the listening port sent in ``identity`` (default: the first bound port, 0 when not
    listening). ``pow_difficulty``: bits of proof of work our identity carries and a
    remote's must carry. ``dial_map`` / ``accept_map``: as SockMan's (tests give nodes
    virtual addresses). ``maintenance``: False disables the maintenance worker (Octez
    ``maintenance_idle_time = None``). ``dispatch_peer_rate`` / ``dispatch_upload_rate``:
    the dispatch layer's per-peer and global send rates for non-replies, in bytes per
    second (default unlimited).
    """

    datadir: Path
    binds: list[tuple[str, int]] = field(default_factory=lambda: [("127.0.0.1", 0)])
    advertised_port: int | None = None
    pool: PoolConfig = field(default_factory=PoolConfig)
    limits: MaintenanceConfig = field(default_factory=MaintenanceConfig)
    pow_difficulty: float = DEFAULT_POW_DIFFICULTY
    maintenance: bool = True
    dial_map: DialMap | None = None
    accept_map: Callable[[Service], Service] | None = None
    bootstrap_points: list[Service] = field(default_factory=list)
    dispatch_peer_rate: float = math.inf
    dispatch_upload_rate: float = math.inf


class _Conn:
    """Shell bookkeeping of one connection (the pool's opaque ``conn``)."""

    __slots__ = (
        "conn_id",
        "peer",
        "point",
        "socket_addr",
        "inbound",
        "wake_at",
        "done",
        "swap_proposed",
        "closing",
        "dial_task",
        "paused",
        "last_bootstrap",
    )

    def __init__(self, point: Service, socket_addr: Service, inbound: bool) -> None:
        self.conn_id: int | None = None
        self.peer: NativePeer | None = None
        self.point = point
        self.socket_addr = socket_addr
        self.inbound = inbound
        #: When this connection's entry in the node's timer heap is due (inf: none).
        self.wake_at = float("inf")
        self.done: asyncio.Future[PeerId | None] = asyncio.get_running_loop().create_future()
        self.swap_proposed: PeerId | None = None
        self.closing = False
        self.dial_task: asyncio.Task[Any] | None = None
        self.paused = False
        self.last_bootstrap = float("-inf")


class NativeNode:
    """A node speaking the native protocol (see the module docstring).

    ``NativeNode(config, *, identity=None, clock=time.time, rng=None)``. ``clock() ->
    float`` (seconds) is the one clock of everything the node owns (pool, peers'
    timers, dispatcher, gossip, the times saved in the store); ``rng`` (a
    ``random.Random``; default ``random.SystemRandom()``) is its one source of
    randomness: pool draws, swaps, ping nonces and the BIP324 key material of every
    connection, so a seeded ``random.Random`` belongs in tests and simulations only.
    ``async with``
    or :meth:`start` / :meth:`stop`. Library API: :meth:`connect`, :meth:`disconnect`,
    the dispatch layer (``node.codecs`` to register message types, ``node.dispatcher.on``
    for handlers, ``await node.dispatch.request(...)``), or raw :meth:`send_envelope` /
    ``on_envelope(peer_id, payload)`` (setting it takes envelopes from the dispatcher), :attr:`events`
    (:class:`~peerkeeper.shell.poolevents.PoolEventHub`: ``events.stream()``,
    ``await events.wait("new_connection")``), :meth:`maintain`, :meth:`propose_swap`,
    :meth:`save_peers`, and the pool itself (:attr:`pool`). Every timer follows
    ``clock``; after moving a simulated clock (or a jump of the real one), call
    :meth:`wake` to run what is due.
    """

    def __init__(
        self,
        config: NativeConfig,
        *,
        identity: Identity | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.rng: random.Random = rng if rng is not None else random.SystemRandom()
        self._identity = identity
        self.pool: PeerPool | None = None
        self.events: PoolEventHub | None = None
        self.sockman: SockMan | None = None
        self.store: Store | None = None
        self.on_envelope: Callable[[PeerId, bytes], None] | None = None
        self.codecs: CodecRegistry | None = None
        self.dispatcher: Dispatcher | None = None
        self.dispatch: AsyncDispatcher | None = None
        self.listening: list[tuple[str, int]] = []
        self._conns: dict[int, _Conn] = {}
        self._pending: set[_Conn] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        # One timer for every connection's NativePeer timers: a heap of (wake_at,
        # conn id), entries whose time is not the connection's wake_at are stale.
        self._heap: list[tuple[float, int]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        # The maintenance worker's deadlines and housekeeping's, on the same timer.
        self._maint = MaintenanceSchedule(config.limits)
        self._housekeeping_at = float("inf")
        self._save_task: asyncio.Task[Any] | None = None
        self._last_swap = float("-inf")
        self._last_swap_proposal = float("-inf")
        self._last_save = 0.0
        self._stopping = False
        self.greylisted_dials = 0

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def identity(self) -> Identity:
        """Our identity (loaded or created at :meth:`start`)."""
        if self._identity is None:
            raise RuntimeError("node not started")
        return self._identity

    @property
    def peer_id(self) -> PeerId:
        """Our peer id."""
        return self.identity.peer_id

    def _pool(self) -> PeerPool:
        if self.pool is None:
            raise RuntimeError("node not started")
        return self.pool

    async def __aenter__(self) -> NativeNode:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Load or create the identity, restore the pool, listen, start the workers.

        Raises :class:`~peerkeeper.native.identity.IdentityError` for a bad identity file,
        OSError when a bind fails.
        """
        cfg = self.config
        cfg.datadir.mkdir(parents=True, exist_ok=True)
        if self._identity is None:
            self._identity = await asyncio.to_thread(
                load_or_create_identity, cfg.datadir / "identity.json", cfg.pow_difficulty
            )
        now = self.clock()
        self.pool = PeerPool(
            cfg.pool, my_peer_id=self.peer_id, now=now, rng=self.rng, close=self._close_conn
        )
        self.events = PoolEventHub(self.pool)
        self.store = Store(cfg.datadir)
        await asyncio.to_thread(self.store.open)
        await self._restore(now)
        for point in cfg.bootstrap_points:
            self.pool.register_point(point, now)
        # The dispatch layer (seed 004) owns the envelopes unless on_envelope is replaced.
        self.codecs = CodecRegistry()
        self.dispatcher = Dispatcher(
            self.codecs,
            now=self.clock(),
            peer_rate=cfg.dispatch_peer_rate,
            upload_rate=cfg.dispatch_upload_rate,
        )
        self.dispatch = AsyncDispatcher.for_native(self, self.dispatcher)
        self.sockman = SockMan(self, dial_map=cfg.dial_map, accept_map=cfg.accept_map)
        for host, port in cfg.binds:
            self.listening.append(await self.sockman.bind_and_listen(host, port))
        log.info("native node %s listening on %s", self.peer_id, self.listening)
        self._housekeeping_at = self._next_housekeeping(self.clock())
        self._rearm()
        if cfg.maintenance:
            self._spawn(self._maintenance())

    async def _restore(self, now: float) -> None:
        pool = self._pool()
        assert self.store is not None
        saved = await self.store.call(load_native_pool)
        try:
            if saved is not None:
                pool.load_points_document(saved[0], now)
                pool.load_peers_document(saved[1], now)
            elif self.peers_file.exists():
                text = await asyncio.to_thread(self.peers_file.read_text)
                pool.load_peers_document(json.loads(text), now)
        except ValueError as e:
            log.warning("ignoring saved pool state: %s", e)

    @property
    def peers_file(self) -> Path:
        """The Octez-shaped peers file (``PoolConfig.peers_file``, else datadir/peers.json)."""
        name = self.config.pool.peers_file
        return Path(name) if name is not None else self.config.datadir / "peers.json"

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("native task failed", exc_info=task.exception())

    async def save_peers(self) -> None:
        """Write the pool to the store and the peers file (temp file + rename)."""
        pool = self._pool()
        points, peers = pool.points_document(), pool.peers_document()
        if self.store is not None:
            await self.store.call(lambda c: save_native_pool(c, points, peers))
        data = json.dumps(peers, indent=1).encode()
        await asyncio.to_thread(atomic_write, self.peers_file, data)
        self._last_save = self.clock()

    async def tear_down_connections(self, reason: str = "tear down") -> None:
        """Close every connection and wait until they are gone (Octez)."""
        pool = self._pool()
        waits = [c.done for c in list(self._conns.values()) + list(self._pending)]
        pool.tear_down_connections(reason)
        for conn in list(self._conns.values()):  # handshakes the pool has not seen yet
            self._close_conn(conn, reason)
        for conn in list(self._pending):
            if conn.dial_task is not None:
                conn.dial_task.cancel()
        if waits:
            await asyncio.wait(waits, timeout=5.0)

    async def destroy(self) -> None:
        """Octez ``destroy``: the same as :meth:`stop`."""
        await self.stop()

    async def stop(self) -> None:
        """Destroy: stop the workers, tear down connections, save, close (Octez ``destroy``)."""
        if self._stopping:
            return
        self._stopping = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            if task is not self._save_task:  # a save under way ends before the last one
                task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.sockman is not None:
            self.sockman.stop_listening()
        if self.pool is not None:
            await self.tear_down_connections("shutdown")
            try:
                await self.save_peers()
            except Exception as e:  # noqa: BLE001 - the store may fail in any way; stop goes on
                log.error("could not save the pool: %s", e)
        if self.dispatch is not None:
            self.dispatch.close()
        if self.events is not None:
            self.events.close()
        if self.store is not None:
            self.store.close()
            self.store = None

    # -- public API --------------------------------------------------------------------

    def maintain(self) -> None:
        """Wake the maintenance worker now (Octez ``P2p_maintenance.maintain``)."""
        self._wake.set()

    def next_wakeup(self) -> float:
        """When (seconds of the node's clock) the node's one timer is next due: the
        earliest of the connections' timers, housekeeping and the maintenance worker's
        deadlines (``inf``: none)."""
        at = min(self._housekeeping_at, self._maint.next_wakeup())
        if self._heap:
            at = min(at, self._heap[0][0])
        return at

    def wake(self) -> None:
        """Run the node's due timers now and re-arm (after the clock jumped, or a test
        moved a simulated clock); like ConnMan's ``wake``."""
        if self.pool is not None and not self._stopping:
            self._arm(self.clock())
            if self.dispatch is not None:
                self.dispatch.wake()

    def running(self) -> list[PeerInfo]:
        """Peers with a running connection."""
        return self._pool().running_peers()

    def _conn_of(self, peer_id: PeerId) -> _Conn | None:
        info = self._pool().connected_peer_ids().get(peer_id)
        return info.conn if info is not None and isinstance(info.conn, _Conn) else None

    def send(self, peer_id: PeerId, message: NativeMessage) -> bool:
        """Send ``message`` to a running peer; False if it is not connected."""
        conn = self._conn_of(peer_id)
        if conn is None or conn.peer is None or conn.peer.state != "running":
            return False
        conn.peer.send(message)
        self._flush(conn)
        return True

    def send_envelope(self, peer_id: PeerId, payload: bytes) -> bool:
        """Send application bytes (an ``envelope``) to ``peer_id``; False if not connected."""
        return self.send(peer_id, Envelope(payload))

    def disconnect(self, peer_id: PeerId, reason: str = "requested") -> bool:
        """Close the connection to ``peer_id``; False if there is none."""
        conn = self._conn_of(peer_id)
        if conn is None:
            return False
        self._close_conn(conn, reason)
        return True

    async def connect(self, point: Service) -> PeerId | None:
        """Dial ``point`` and run the handshake; the remote's peer id once running, else
        ``None`` (refused by the pool, dial failed, nacked, timed out)."""
        pool = self._pool()
        now = self.clock()
        refusal = pool.may_dial(point, now)
        if refusal is not None:
            log.debug("not dialling %s: %s", point, refusal)
            if refusal == "banned":
                self.greylisted_dials += 1
            return None
        conn = _Conn(point, point, inbound=False)
        self._pending.add(conn)
        pool.dial_started(point, now, conn)
        sockman = self.sockman
        assert sockman is not None
        timeout = self.config.limits.connection_timeout

        async def dial_and_attach() -> None:
            conn_id = await sockman.connect(point, timeout=timeout)
            # Attach in this same step: SockMan delivers bytes that arrived during the
            # dial right after connect() returns, and they must find the connection.
            self._pending.discard(conn)
            if conn.closing:
                sockman.close(conn_id)
                raise ConnectError(point, "closed while dialling")
            self._attach(conn, conn_id)

        # The dial runs in its own task, so a tear-down cancels the dial, not the caller.
        dial = asyncio.ensure_future(dial_and_attach())
        conn.dial_task = dial
        try:
            await dial
        except (ConnectError, OSError) as e:
            self._pending.discard(conn)
            pool.dial_failed(point, self.clock(), f"dial failed: {e}")
            self._retry_trusted(point)
            if not conn.done.done():
                conn.done.set_result(None)
            return None
        except asyncio.CancelledError:
            self._pending.discard(conn)
            pool.dial_failed(point, self.clock(), "cancelled")
            if not conn.done.done():
                conn.done.set_result(None)
            caller = asyncio.current_task()
            if caller is not None and not caller.cancelling():
                return None  # only the dial was cancelled (tear-down)
            raise
        finally:
            conn.dial_task = None
        return await asyncio.shield(conn.done)

    def _new_peer(self, inbound: bool) -> NativePeer:
        cfg = self.config
        port = cfg.advertised_port
        if port is None:
            port = self.listening[0][1] if self.listening else 0
        return NativePeer(
            self.identity,
            inbound=inbound,
            listen_port=port,
            private=cfg.pool.private_mode,
            difficulty=cfg.pow_difficulty,
            rng=self.rng,
            now=self.clock(),
            authentication_timeout=cfg.limits.authentication_timeout,
        )

    def _attach(self, conn: _Conn, conn_id: int) -> None:
        conn.conn_id = conn_id
        conn.peer = self._new_peer(conn.inbound)
        self._conns[conn_id] = conn
        self._flush(conn)

    # -- SockManEvents -------------------------------------------------------------------

    def on_accepted(self, conn_id: int, me: Service, them: Service) -> bool:
        """Octez ``accept``: refuse banned/greylisted addresses and too many handshakes."""
        pool = self._pool()
        if self._stopping or not pool.may_accept_socket(them.addr):
            return False
        handshaking = sum(
            1
            for c in self._conns.values()
            if c.inbound and c.peer is not None and c.peer.state not in ("running", "closed")
        )
        if handshaking >= self.config.limits.max_incoming_connections:
            return False
        conn = _Conn(them, them, inbound=True)
        self._attach(conn, conn_id)
        return True

    def on_data(self, conn_id: int, data: bytes) -> None:
        """Feed the connection's state machine and apply its actions."""
        conn = self._conns.get(conn_id)
        if conn is None or conn.peer is None or conn.closing:
            return
        actions = conn.peer.receive_data(data, self.clock())
        for action in actions:
            if conn.closing:
                break
            self._apply(conn, action)
        self._flush(conn)
        sockman = self.sockman
        if not conn.closing and sockman is not None and sockman.send_paused(conn_id):
            # A peer that does not read what it asks for is not read either (Core's
            # fPauseSend): our buffer for it stays near -maxsendbuffer.
            conn.paused = True
            sockman.pause_receiving(conn_id)

    def on_eof(self, conn_id: int) -> None:
        """The remote closed."""
        self._gone(conn_id, "closed by peer")

    def on_error(self, conn_id: int, exc: Exception) -> None:
        """A socket error ended the connection."""
        self._gone(conn_id, f"socket error: {exc}")

    def on_writable(self, conn_id: int) -> None:
        """The peer read what we queued: read from it again (Core clears ``fPauseSend``)."""
        conn = self._conns.get(conn_id)
        if conn is not None and conn.paused and self.sockman is not None:
            conn.paused = False
            self.sockman.resume_receiving(conn_id)

    def on_io_loop_completed(self) -> None:
        """Nothing to do per batch."""

    # -- connection handling ---------------------------------------------------------------

    def _flush(self, conn: _Conn) -> None:
        """Write what the peer queued and re-read its next wakeup (call after every
        call into a NativePeer)."""
        if conn.peer is None or conn.conn_id is None or self.sockman is None:
            return
        data = conn.peer.data_to_send()
        if data:
            self.sockman.send(conn.conn_id, data)
        self._schedule(conn)

    # -- timers (one heap for every connection, like ConnMan's) ---------------------------

    def _schedule(self, conn: _Conn) -> None:
        if conn.closing or conn.peer is None or conn.conn_id is None:
            return
        at = conn.peer.next_wakeup()
        if at == conn.wake_at:
            return
        # A changed wakeup gets a new entry; the old one is stale (its time is no longer
        # the connection's wake_at), so only connections that are due get ticked.
        conn.wake_at = at
        if at == float("inf"):
            return
        heap = self._heap
        if len(heap) > 2 * len(self._conns) + 64:  # drop stale entries now and then
            heap[:] = [(c.wake_at, i) for i, c in self._conns.items() if c.wake_at < float("inf")]
            heapq.heapify(heap)
        else:
            heapq.heappush(heap, (at, conn.conn_id))
        if at < self._timer_at:
            self._arm(at)

    def _arm(self, at: float) -> None:
        """Arm the one timer ``at`` (node clock): after ``at - clock()`` loop seconds."""
        if self._stopping:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = at
        if at == float("inf"):
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(loop.time() + max(0.0, at - self.clock()), self._on_timer)

    def _rearm(self) -> None:
        """Arm the timer at :meth:`next_wakeup` if that is earlier than it is armed."""
        at = self.next_wakeup()
        if at < self._timer_at:
            self._arm(at)

    def _on_timer(self) -> None:
        """Tick every connection whose wakeup is due, once each; run housekeeping and
        wake the maintenance worker when theirs are due; then re-arm."""
        self._timer = None
        self._timer_at = float("inf")
        now = self.clock()
        heap = self._heap
        due: list[_Conn] = []
        while heap and heap[0][0] <= now:
            at, conn_id = heapq.heappop(heap)
            conn = self._conns.get(conn_id)
            if conn is None or conn.wake_at != at:
                continue  # stale entry
            conn.wake_at = float("inf")
            due.append(conn)
        for conn in due:
            if conn.closing or conn.peer is None:
                continue
            for action in conn.peer.tick(now):
                if conn.closing:
                    break
                self._apply(conn, action)
            self._flush(conn)
        if now >= self._housekeeping_at:
            self._housekeeping(now)
        if self._maint.due(now):
            self._wake.set()
        self._rearm()  # also when the loop fired before the clock got there

    def _close_conn(self, handle: object, reason: str) -> None:
        """Close a connection (the pool's ``close``); its end is handled in ``_gone``."""
        if not isinstance(handle, _Conn) or handle.closing:
            return
        handle.closing = True
        log.debug("closing %s: %s", handle.point, reason)
        if handle.conn_id is None:
            if handle.dial_task is not None:
                handle.dial_task.cancel()
            return
        self._flush(handle)
        assert self.sockman is not None
        self.sockman.close(handle.conn_id)
        self._gone(handle.conn_id, reason)

    def _gone(self, conn_id: int, reason: str) -> None:
        conn = self._conns.pop(conn_id, None)
        if conn is None:
            return
        conn.closing = True
        pool = self._pool()
        now = self.clock()
        peer = conn.peer
        peer_id = peer.peer_id if peer is not None else None
        was_running = peer is not None and peer.state == "running"
        connected = pool.connected_peer_ids()
        point_info = pool.connected_points.get(conn.point)
        if peer_id is not None and peer_id in connected and connected[peer_id].conn is conn:
            pool.connection_ended(conn.point, peer_id, now, reason=reason)
        elif point_info is not None and point_info.conn is conn:
            pool.dial_failed(conn.point, now, reason)  # ended before both acked
        if not conn.done.done():
            conn.done.set_result(None)
        self._retry_trusted(conn.point)
        if was_running and pool.active_connections() < self.config.limits.min_connections:
            assert self.events is not None
            self.events.fire("too_few_connections", PoolEvent("too_few_connections", now))
            self._wake.set()

    def _retry_trusted(self, point: Service) -> None:
        """Wake maintenance when a trusted point's back-off ends (node clock), so it is
        redialled (:meth:`MaintenanceSchedule.retry`)."""
        info = self._pool().known_points.get(point)
        if self._stopping or info is None or not info.trusted or info.reconnection_end is None:
            return
        self._maint.retry(info.reconnection_end)
        self._rearm()

    def _apply(self, conn: _Conn, action: NativeAction) -> None:
        pool = self._pool()
        now = self.clock()
        peer = conn.peer
        assert peer is not None
        if isinstance(action, Authenticated):
            self._authenticated(conn, action)
        elif isinstance(action, Established):
            pool.established(action.peer_id, now)
            if not conn.done.done():
                conn.done.set_result(action.peer_id)
            if pool.active_connections() > self.config.limits.max_connections:
                assert self.events is not None
                self.events.fire("too_many_connections", PoolEvent("too_many_connections", now))
                self._wake.set()
        elif isinstance(action, Rejected):
            log.debug("%s nacked us: %s", conn.point, action.reason)
            if not self.config.pool.private_mode and action.points:
                pool.register_list_of_new_points(
                    action.points, now, medium="nack", source=peer.peer_id
                )
            if peer.peer_id is not None and peer.peer_id in pool.connected_peer_ids():
                pool.connection_ended(conn.point, peer.peer_id, now, reason="nacked", rejected=True)
            self._close_conn(conn, f"nack {action.reason}")
        elif isinstance(action, Greylist):
            log.info("greylisting %s (%s): %s", conn.socket_addr, peer.peer_id, action.reason)
            if peer.peer_id is not None:
                pool.greylist_peer(peer.peer_id, now, reason=action.reason)
            pool.greylist_addr(conn.socket_addr.addr, now, reason=action.reason)
            self._close_conn(conn, action.reason)
        elif isinstance(action, Disconnect):
            self._close_conn(conn, action.reason)
        elif isinstance(action, Received):
            self._received(conn, action.message)

    def _authenticated(self, conn: _Conn, auth: Authenticated) -> None:
        pool = self._pool()
        now = self.clock()
        peer = conn.peer
        assert peer is not None
        if conn.inbound:
            point = conn.socket_addr
            if auth.listen_port:
                point = Service(conn.socket_addr.addr, auth.listen_port)
            conn.point = point
        reason = pool.authenticated(
            conn,
            conn.point,
            auth.peer_id,
            now,
            incoming=conn.inbound,
            listen_port=auth.listen_port,
            private=auth.private,
            max_connections=self.config.limits.max_connections,
        )
        if reason is None:
            for action in peer.accept(now):
                self._apply(conn, action)
            return
        points: tuple[Service, ...] = ()
        if not self.config.pool.private_mode and reason is not NackReason.MYSELF:
            points = tuple(pool.list_known_points(ignore_private=True))
        log.debug("nacking %s (%s): %s", conn.point, auth.peer_id, reason.name)
        peer.reject(reason, points)
        if not conn.inbound:
            info = pool.known_points.get(conn.point)
            if info is not None and info.state is not PointState.DISCONNECTED:
                pool.connection_ended(conn.point, None, now, reason=reason.name, rejected=True)
        self._close_conn(conn, f"rejected: {reason.name}")

    def _received(self, conn: _Conn, message: NativeMessage) -> None:
        pool = self._pool()
        now = self.clock()
        peer = conn.peer
        assert peer is not None and peer.peer_id is not None
        private = self.config.pool.private_mode
        if isinstance(message, Envelope):
            if self.on_envelope is not None:
                try:
                    self.on_envelope(peer.peer_id, message.payload)
                except Exception:
                    log.exception("envelope handler failed")
        elif isinstance(message, Bootstrap):
            if not private and now - conn.last_bootstrap >= BOOTSTRAP_INTERVAL:
                conn.last_bootstrap = now  # more often: ignored (an advertise is 50 points)
                peer.send(Advertise(tuple(pool.list_known_points(ignore_private=True))))
        elif isinstance(message, Advertise):
            if not private:
                pool.register_list_of_new_points(
                    message.points, now, medium="advertise", source=peer.peer_id
                )
        elif isinstance(message, SwapRequest):
            self._swap_request(conn, message)
        elif isinstance(message, SwapAck):
            self._swap_ack(conn, message)

    # -- swaps (Octez p2p_protocol.ml; the policy is native.maintenance.decide_swap_*) -------

    def propose_swap(self) -> bool:
        """Send one ``swaprequest`` (Octez ``send_swap_request``): to a random running,
        non-private peer R, naming another random connected peer P that listens.
        Returns False when :func:`~peerkeeper.native.maintenance.decide_swap_proposal`
        says no (private mode, a proposal within ``swap_linger``, fewer than two peers)."""
        now = self.clock()
        proposal = decide_swap_proposal(
            self._pool(),
            self.config.limits,
            now,
            last_proposal=self._last_swap_proposal,
            rng=self.rng,
        )
        if proposal is None:
            return False
        conn = proposal.recipient.conn
        if not isinstance(conn, _Conn) or conn.peer is None:
            return False
        conn.swap_proposed = proposal.proposed.peer_id
        self._last_swap_proposal = now
        conn.peer.send(SwapRequest(proposal.point, proposal.proposed.peer_id.raw))
        self._flush(conn)
        log.debug("swap: proposed %s to %s", proposal.proposed.peer_id, proposal.recipient.peer_id)
        return True

    def _swap_request(self, conn: _Conn, msg: SwapRequest) -> None:
        now = self.clock()
        peer = conn.peer
        assert peer is not None and peer.peer_id is not None
        given = decide_swap_request(
            self._pool(),
            self.config.limits,
            now,
            source=peer.peer_id,
            point=msg.point,
            peer_id=PeerId(msg.peer_id),
            last_swap=self._last_swap,
            rng=self.rng,
        )
        if given is None:
            return
        self._last_swap = now
        peer.send(SwapAck(listening_point(given), given.peer_id.raw))
        self._flush(conn)
        self._spawn(self._swap_connect(msg.point, given.peer_id))

    def _swap_ack(self, conn: _Conn, msg: SwapAck) -> None:
        now = self.clock()
        proposed = conn.swap_proposed
        conn.swap_proposed = None
        if not decide_swap_ack(
            self._pool(), now, point=msg.point, peer_id=PeerId(msg.peer_id), proposed=proposed
        ):
            return
        assert proposed is not None
        self._last_swap = now
        self._spawn(self._swap_connect(msg.point, proposed))

    async def _swap_connect(self, point: Service, drop: PeerId) -> None:
        got = await self.connect(point)
        if got is not None:
            log.info("swap: connected to %s, dropping %s", got, drop)
            if not self.disconnect(drop, "swapped"):
                self.disconnect(got, "swap: the peer to drop had left")

    # -- workers ------------------------------------------------------------------------

    def _next_housekeeping(self, now: float) -> float:
        """The greylist's next countdown (:meth:`PeerPool.next_wakeup`) or the next save,
        whichever is first, at least ``HOUSEKEEPING_INTERVAL`` after ``now``."""
        at = min(self._pool().next_wakeup(), self._last_save + SAVE_INTERVAL)
        return max(at, now + HOUSEKEEPING_INTERVAL)

    def _housekeeping(self, now: float) -> None:
        """The pool's timer (run by :meth:`_on_timer`): greylist countdowns and a save
        every ``SAVE_INTERVAL`` (in the background; one at a time)."""
        self._pool().gc_greylist(now)
        if now - self._last_save >= SAVE_INTERVAL and self._save_task is None:
            self._last_save = now  # a failing save is retried at the next interval
            self._save_task = self._spawn(self._background_save())
        self._housekeeping_at = self._next_housekeeping(now)

    async def _background_save(self) -> None:
        try:
            await self.save_peers()
        except Exception as e:  # noqa: BLE001 - the timer must survive the store
            log.error("could not save the pool: %s", e)
        finally:
            self._save_task = None

    async def _wait_first(self, *aws: Any) -> None:
        """Until the first of ``aws`` is done (the others are cancelled)."""
        waits = [asyncio.ensure_future(a) for a in aws]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _look_for_more_contacts(self) -> None:
        """Octez ``ask_for_more_contacts``' wait (``src/lib_p2p/p2p_maintenance.ml``):
        ``time_between_looking_for_peers`` of the node's clock or, unless private, a new
        point or peer, whichever is first. Ours: a wake (:meth:`maintain`, a trusted
        point's back-off ending) also ends it, and one that came while the worker was
        dialling ends it at once."""
        assert self.events is not None
        if self._wake.is_set():
            self._wake.clear()
            return
        self._maint.look(self.clock())
        self._rearm()
        waits: list[Any] = [self._wake.wait()]
        if not self.config.pool.private_mode:
            waits.append(self.events.wait_any(("new_point", "new_peer"), None))
        try:
            await self._wait_first(*waits)
        finally:
            self._maint.busy()
            self._wake.clear()

    async def _idle(self) -> None:
        """Octez ``worker_loop``'s wait (``src/lib_p2p/p2p_maintenance.ml``): until
        ``maintenance_idle_time`` of the node's clock has passed, :meth:`maintain` is
        called, or too few / too many connections are signalled (ours: or a trusted
        point's back-off ends)."""
        assert self.events is not None
        self._maint.idle(self.clock())
        self._rearm()
        try:
            await self._wait_first(
                self._wake.wait(),
                self.events.wait_any(("too_few_connections", "too_many_connections"), None),
            )
        finally:
            self._maint.busy()

    async def _maintenance(self) -> None:
        """Octez's maintenance worker (:mod:`peerkeeper.native.maintenance`); its waits
        run on the node's clock (:class:`MaintenanceSchedule`)."""
        cfg = self.config.limits
        b = bounds(cfg.min_connections, cfg.expected_connections, cfg.max_connections)
        while True:
            self._wake.clear()  # whatever woke the worker is served by this pass
            round_start = self.clock()
            seen: set[Service] = set()
            while True:
                pool = self._pool()
                step = decide(
                    pool,
                    cfg,
                    self.clock(),
                    round_start=round_start,
                    seen=seen,
                    pending=len(self._pending),
                )
                for info in step.drop:
                    if isinstance(info.conn, _Conn):
                        self._close_conn(info.conn, "too many connections")
                if step.contact:
                    await asyncio.gather(
                        *(self.connect(p) for p in step.contact), return_exceptions=True
                    )
                    if pool.active_connections() >= b.min_threshold:
                        break
                    continue
                if step.need > 0 or step.bootstrap:
                    if step.bootstrap:
                        for info in pool.running_peers():
                            if not info.private:
                                self.send(info.peer_id, Bootstrap())
                    await self._look_for_more_contacts()
                    round_start = self.clock()
                    seen.clear()
                    continue
                if step.swap and pool.active_connections() >= 2:
                    self.propose_swap()
                break
            await self._idle()
