"""NativeNodeCore: a native-protocol node without I/O (Octez's ``P2p`` minus its sockets).

The policy of a native node, driven by its caller's clock and sockets, as
:class:`~peerkeeper.bitcoin.connman.ConnManCore` is for Bitcoin: one
:class:`~peerkeeper.native.pool.PeerPool` (points, peer ids, greylists, trusted points),
one :class:`~peerkeeper.native.peer.NativePeer` per connection, the maintenance worker
(:mod:`peerkeeper.native.maintenance`: Octez's min/expected/max connection counts) and
swaps, wired as Octez's ``P2p`` wires its connect handler, maintenance worker and
answerer (tezos/tezos-mirror ``src/lib_p2p/p2p.ml``, ``p2p_connect_handler.ml``,
``p2p_maintenance.ml``, ``p2p_protocol.ml``). The asyncio shell
(:class:`peerkeeper.shell.nativenode.NativeNode`) and the simulator
(:mod:`peerkeeper.sim.native`) both drive it.

Inputs (each takes ``now``, seconds of the node's one clock): :meth:`NativeNodeCore.start`,
:meth:`~NativeNodeCore.connect`, :meth:`~NativeNodeCore.connected`,
:meth:`~NativeNodeCore.dial_failed`, :meth:`~NativeNodeCore.accepted`,
:meth:`~NativeNodeCore.received`, :meth:`~NativeNodeCore.closed`,
:meth:`~NativeNodeCore.tick` (at :meth:`~NativeNodeCore.next_wakeup`),
:meth:`~NativeNodeCore.send`, :meth:`~NativeNodeCore.disconnect`,
:meth:`~NativeNodeCore.maintain`, :meth:`~NativeNodeCore.propose_swap`,
:meth:`~NativeNodeCore.stop`. Outputs: :meth:`~NativeNodeCore.poll_actions` returns what
to do, in order: :class:`Dial`, :class:`CancelDial`, :class:`Send`, :class:`Close`, and
what to tell the layer above: :class:`DialDone` (a dial's outcome: the peer id once the
connection runs, or None), :class:`Deliver` (an envelope's payload), :class:`Signal`
(Octez's ``too_few_connections`` / ``too_many_connections`` triggers).

Connection rules (Octez ``p2p_connect_handler.ml``): an incoming socket from a banned or
greylisted address, or beyond ``max_incoming_connections`` pending handshakes, is refused;
dials have ``connection_timeout`` (the driver's) and handshakes
``authentication_timeout``; authentication failures and undecodable messages greylist
the address (and the peer id once known); a nack carries up to 50 known points (none in
private mode), which the receiver registers (medium ``nack``) unless it is private.

The maintenance worker (Octez ``worker_loop``) is a state machine here: a pass
(:func:`~peerkeeper.native.maintenance.decide`) dials the points it names and waits for
those dials' outcomes; with nothing to dial it sends ``bootstrap`` and looks for
contacts (``time_between_looking_for_peers``, or a new point or peer); within bounds it
may propose a swap and idles (``maintenance_idle_time``, or :meth:`maintain`, or too
few / too many connections). Its waits are :class:`MaintenanceSchedule` deadlines on
the same clock.
"""

from __future__ import annotations

import heapq
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass

from peerkeeper.native.identity import Identity, PeerId
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

__all__ = [
    "BOOTSTRAP_INTERVAL",
    "HOUSEKEEPING_INTERVAL",
    "CancelDial",
    "Close",
    "Deliver",
    "Dial",
    "DialDone",
    "NativeConn",
    "NativeNodeCore",
    "NodeAction",
    "Send",
    "Signal",
]

log = logging.getLogger("peerkeeper.native")

#: Seconds between two answers to one peer's ``bootstrap`` (more are ignored).
BOOTSTRAP_INTERVAL = 5.0
#: Shortest interval (seconds) between two housekeeping runs (greylist countdowns).
HOUSEKEEPING_INTERVAL = 1.0
#: Passes in a row that dial nothing new before the worker waits anyway (a guard: a
#: pass whose every point is refused at once must not spin).
_MAX_PASSES = 64


@dataclass(frozen=True, slots=True)
class Dial:
    """Open a connection to ``point`` within ``timeout`` seconds; report with
    :meth:`NativeNodeCore.connected` or :meth:`NativeNodeCore.dial_failed`."""

    id: int
    point: Service
    timeout: float


@dataclass(frozen=True, slots=True)
class CancelDial:
    """Give up dial ``id`` (the core has already counted it as failed); a connection it
    still yields is to be reported with :meth:`NativeNodeCore.connected`, which closes it."""

    id: int


@dataclass(frozen=True, slots=True)
class Send:
    """Write ``data`` on connection ``conn_id``."""

    conn_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Close:
    """Close connection ``conn_id`` (after what was sent on it); ``reason`` is for logs.
    The core has already forgotten it."""

    conn_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class DialDone:
    """Dial ``id`` is over: ``peer_id`` runs on it, or None (refused, failed, nacked,
    closed during the handshake)."""

    id: int
    peer_id: PeerId | None


@dataclass(frozen=True, slots=True)
class Deliver:
    """An ``envelope`` from ``peer_id``: the application's bytes."""

    peer_id: PeerId
    payload: bytes


@dataclass(frozen=True, slots=True)
class Signal:
    """Octez's ``too_few_connections`` / ``too_many_connections`` trigger, at ``time``."""

    name: str
    time: float


NodeAction = Dial | CancelDial | Send | Close | DialDone | Deliver | Signal


class NativeConn:
    """One connection or dial (the pool's opaque ``conn``): its point, its NativePeer
    once the socket is open, its timer entry."""

    __slots__ = (
        "conn_id",
        "dial_id",
        "peer",
        "point",
        "socket_addr",
        "inbound",
        "wake_at",
        "closing",
        "done",
        "swap_proposed",
        "last_bootstrap",
    )

    def __init__(self, point: Service, socket_addr: Service, inbound: bool) -> None:
        self.conn_id: int | None = None
        self.dial_id: int | None = None
        self.peer: NativePeer | None = None
        self.point = point
        self.socket_addr = socket_addr
        self.inbound = inbound
        #: When this connection's entry in the core's timer heap is due (inf: none).
        self.wake_at = float("inf")
        self.closing = False
        #: Whether the dial's outcome (:class:`DialDone`) was reported.
        self.done = False
        self.swap_proposed: PeerId | None = None
        self.last_bootstrap = float("-inf")


class NativeNodeCore:
    """A native node's policy without I/O (see the module docstring).

    ``NativeNodeCore(pool_config, limits, identity, *, rng, now, difficulty,
    maintenance=True, listen_port=0)``: ``rng`` (a ``random.Random``) is the one source
    of randomness (pool draws, swaps, ping nonces, BIP324 key material: a seeded one
    belongs in tests and simulations only); ``difficulty`` the proof of work (bits) a
    remote identity must carry; ``maintenance`` False disables the worker (Octez
    ``maintenance_idle_time = None``); ``listen_port`` is sent in ``identity`` (0: not
    listening; may be set before the first connection).
    """

    def __init__(
        self,
        pool_config: PoolConfig,
        limits: MaintenanceConfig,
        identity: Identity,
        *,
        rng: random.Random,
        now: float,
        difficulty: float,
        maintenance: bool = True,
        listen_port: int = 0,
    ) -> None:
        self.limits = limits
        self.identity = identity
        self.rng = rng
        self.difficulty = difficulty
        self.listen_port = listen_port
        self.private = pool_config.private_mode
        self.pool = PeerPool(
            pool_config, my_peer_id=identity.peer_id, now=now, rng=rng, close=self._close_handle
        )
        self.pool.subscribe(self._on_pool_event)
        self.now = now
        #: Connections with an open socket, by the driver's conn id.
        self.conns: dict[int, NativeConn] = {}
        #: Dials in flight, by dial id.
        self.dials: dict[int, NativeConn] = {}
        self._next_dial = 1
        self._actions: list[NodeAction] = []
        # One timer heap for every connection's NativePeer: (wake_at, conn id); entries
        # whose time is not the connection's wake_at are stale.
        self.heap: list[tuple[float, int]] = []
        self.schedule = MaintenanceSchedule(limits)
        self.housekeeping_at = float("inf")
        self.last_swap = float("-inf")
        self.last_swap_proposal = float("-inf")
        #: Dials refused at once because the point is greylisted or banned.
        self.greylisted_dials = 0
        #: Swaps carried out (a swap's new connection ran and an old one was dropped).
        self.swaps = 0
        #: Why the last :meth:`connect` returned None (the pool's refusal).
        self.last_refusal: str | None = None
        self.stopping = False
        self._swap_dials: dict[int, PeerId] = {}
        self._cancelled: list[NativeConn] = []
        # The maintenance worker: "off", "pass", "dialling", "look" or "idle".
        self._maintenance = maintenance
        self.worker = "off"
        self._wake = False
        self._new_contact = False
        self._round_start = now
        self._seen: set[Service] = set()
        self._waiting: set[int] = set()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, now: float, bootstrap_points: Sequence[Service] = ()) -> None:
        """Register the bootstrap points and start the timers and the worker.

        A bootstrap point (``--peer``) is dialled by the first maintenance pass, at
        ``now``: whatever back-off a previous run left on it in the store (its failed
        dials, or the 60 s ``disconnection_delay`` our own shutdown started when it
        closed the connection) is cleared, as a node that starts afresh has none.
        """
        self.now = now
        for point in bootstrap_points:
            info = self.pool.register_point(point, now)
            info.reconnection_end = None
            info.reconnection_delay = self.pool.config.reconnection.initial_delay
        self.housekeeping_at = self._next_housekeeping(now)
        if self._maintenance:
            self.worker = "pass"
            self._round_start = now
        self._settle(now)

    def tear_down_connections(self, reason: str, now: float) -> None:
        """Close every connection and dial (Octez ``tear_down_connections``)."""
        self.now = now
        self.pool.tear_down_connections(reason)
        for conn in list(self.conns.values()) + list(self.dials.values()):
            self._close_handle(conn, reason)
        self._settle(now)

    def stop(self, now: float) -> None:
        """Stop the worker and the timers and close everything (Octez ``destroy``; the
        driver saves the pool afterwards)."""
        self.worker = "off"
        self.stopping = True
        self.tear_down_connections("shutdown", now)

    def poll_actions(self) -> list[NodeAction]:
        """What to do since the last call, in order."""
        actions, self._actions = self._actions, []
        return actions

    def next_wakeup(self) -> float:
        """When :meth:`tick` next has work (seconds; ``inf``: none): the connections'
        timers, housekeeping, the worker's deadlines."""
        if self.stopping:
            return float("inf")
        at = min(self.housekeeping_at, self.schedule.next_wakeup())
        if self.heap:
            at = min(at, self.heap[0][0])
        return at

    def tick(self, now: float) -> None:
        """Run what is due at ``now``: every due connection's timer once, the greylist
        countdowns, the worker's timers."""
        self.now = now
        if self.stopping:
            return
        heap = self.heap
        due: list[NativeConn] = []
        while heap and heap[0][0] <= now:
            at, conn_id = heapq.heappop(heap)
            conn = self.conns.get(conn_id)
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
        if now >= self.housekeeping_at:
            self.pool.gc_greylist(now)
            self.housekeeping_at = self._next_housekeeping(now)
        if self.schedule.due(now):
            self._wake = True
        self._settle(now)

    def _next_housekeeping(self, now: float) -> float:
        return max(self.pool.next_wakeup(), now + HOUSEKEEPING_INTERVAL)

    # -- dials and sockets -----------------------------------------------------------------

    def connect(self, point: Service, now: float) -> int | None:
        """Dial ``point``: the dial id (its outcome comes as :class:`DialDone`), or None
        when the pool refuses (reason in :attr:`last_refusal`)."""
        dial_id = self._connect(point, now)
        self._settle(now)
        return dial_id

    def _connect(self, point: Service, now: float) -> int | None:
        self.now = now
        refusal = self.pool.may_dial(point, now)
        self.last_refusal = refusal
        if refusal is not None:
            if refusal == "banned":
                self.greylisted_dials += 1
            return None
        conn = NativeConn(point, point, inbound=False)
        conn.dial_id = dial_id = self._next_dial
        self._next_dial += 1
        self.dials[dial_id] = conn
        self.pool.dial_started(point, now, conn)
        self._actions.append(Dial(dial_id, point, self.limits.connection_timeout))
        return dial_id

    def connected(self, dial_id: int, conn_id: int, now: float) -> None:
        """Dial ``dial_id`` opened connection ``conn_id`` (report it in the same step as
        the socket opens: bytes that came with it must find the connection)."""
        self.now = now
        conn = self.dials.pop(dial_id, None)
        if conn is None or conn.closing:
            self._actions.append(Close(conn_id, "closed while dialling"))
        else:
            self._attach(conn, conn_id, now)
        self._settle(now)

    def dial_failed(self, dial_id: int, reason: str, now: float) -> None:
        """Dial ``dial_id`` failed (refused, timed out, ...)."""
        self.now = now
        conn = self.dials.pop(dial_id, None)
        if conn is not None:
            conn.closing = True
            self.pool.dial_failed(conn.point, now, f"dial failed: {reason}")
            self._retry_trusted(conn.point)
            self._finish(conn, None)
        self._settle(now)

    def abort_dial(self, dial_id: int, now: float) -> None:
        """The caller gave up dial ``dial_id`` (cancelled): as a tear-down does."""
        self.now = now
        conn = self.dials.get(dial_id)
        if conn is not None:
            self._close_handle(conn, "cancelled")
        self._settle(now)

    def accepted(self, conn_id: int, them: Service, now: float) -> bool:
        """A socket from ``them`` came in on ``conn_id``: False refuses it (Octez
        ``accept``: banned or greylisted address, too many pending handshakes)."""
        self.now = now
        if self.stopping or not self.pool.may_accept_socket(them.addr):
            return False
        handshaking = sum(
            1
            for c in self.conns.values()
            if c.inbound and c.peer is not None and c.peer.state not in ("running", "closed")
        )
        if handshaking >= self.limits.max_incoming_connections:
            return False
        self._attach(NativeConn(them, them, inbound=True), conn_id, now)
        self._settle(now)
        return True

    def received(self, conn_id: int, data: bytes, now: float) -> None:
        """Bytes arrived on ``conn_id``."""
        self.now = now
        conn = self.conns.get(conn_id)
        if conn is None or conn.peer is None or conn.closing:
            return
        for action in conn.peer.receive_data(data, now):
            if conn.closing:
                break
            self._apply(conn, action)
        self._flush(conn)
        self._settle(now)

    def closed(self, conn_id: int, reason: str, now: float) -> None:
        """The socket ``conn_id`` ended (the remote closed, an error)."""
        self.now = now
        self._gone(conn_id, reason)
        self._settle(now)

    def is_open(self, conn_id: int) -> bool:
        """Whether ``conn_id`` is a live connection the core has not closed."""
        conn = self.conns.get(conn_id)
        return conn is not None and not conn.closing

    def _new_peer(self, inbound: bool, now: float) -> NativePeer:
        return NativePeer(
            self.identity,
            inbound=inbound,
            listen_port=self.listen_port,
            private=self.private,
            difficulty=self.difficulty,
            rng=self.rng,
            now=now,
            authentication_timeout=self.limits.authentication_timeout,
        )

    def _attach(self, conn: NativeConn, conn_id: int, now: float) -> None:
        conn.conn_id = conn_id
        conn.peer = self._new_peer(conn.inbound, now)
        self.conns[conn_id] = conn
        self._flush(conn)

    def _flush(self, conn: NativeConn) -> None:
        """Queue what the peer wrote and re-read its next wakeup (after every call into
        a NativePeer)."""
        if conn.peer is None or conn.conn_id is None:
            return
        data = conn.peer.data_to_send()
        if data:
            self._actions.append(Send(conn.conn_id, data))
        self._schedule(conn)

    def _schedule(self, conn: NativeConn) -> None:
        if conn.closing or conn.peer is None or conn.conn_id is None:
            return
        at = conn.peer.next_wakeup()
        if at == conn.wake_at:
            return
        conn.wake_at = at
        if at == float("inf"):
            return
        heap = self.heap
        if len(heap) > 2 * len(self.conns) + 64:  # drop stale entries now and then
            heap[:] = [(c.wake_at, i) for i, c in self.conns.items() if c.wake_at < float("inf")]
            heapq.heapify(heap)
        else:
            heapq.heappush(heap, (at, conn.conn_id))

    def _close_handle(self, handle: object, reason: str) -> None:
        """Close a connection or dial (also the pool's ``close``)."""
        if not isinstance(handle, NativeConn) or handle.closing:
            return
        handle.closing = True
        log.debug("closing %s: %s", handle.point, reason)
        if handle.conn_id is None:
            # A dial in flight: the driver cancels it; the pool hears of it once the
            # pool's own call (a tear-down, say) is over.
            if handle.dial_id is not None and self.dials.pop(handle.dial_id, None) is not None:
                self._actions.append(CancelDial(handle.dial_id))
                self._cancelled.append(handle)
            return
        self._flush(handle)
        self._actions.append(Close(handle.conn_id, reason))
        self._gone(handle.conn_id, reason)

    def _gone(self, conn_id: int, reason: str) -> None:
        conn = self.conns.pop(conn_id, None)
        if conn is None:
            return
        conn.closing = True
        pool = self.pool
        now = self.now
        peer = conn.peer
        peer_id = peer.peer_id if peer is not None else None
        was_running = peer is not None and peer.state == "running"
        connected = pool.connected_peer_ids()
        point_info = pool.connected_points.get(conn.point)
        if peer_id is not None and peer_id in connected and connected[peer_id].conn is conn:
            pool.connection_ended(conn.point, peer_id, now, reason=reason)
        elif point_info is not None and point_info.conn is conn:
            pool.dial_failed(conn.point, now, reason)  # ended before both acked
        self._finish(conn, None)
        self._retry_trusted(conn.point)
        if was_running and pool.active_connections() < self.limits.min_connections:
            self._actions.append(Signal("too_few_connections", now))
            self._wake = True

    def _finish(self, conn: NativeConn, peer_id: PeerId | None) -> None:
        """Report a dial's outcome once (and run what waited on it: a swap, the worker)."""
        if conn.done or conn.dial_id is None:
            return
        conn.done = True
        dial_id = conn.dial_id
        self._actions.append(DialDone(dial_id, peer_id))
        self._waiting.discard(dial_id)
        drop = self._swap_dials.pop(dial_id, None)
        if drop is not None and peer_id is not None:
            log.info("swap: connected to %s, dropping %s", peer_id, drop)
            if self._disconnect(drop, "swapped"):
                self.swaps += 1
            else:
                self._disconnect(peer_id, "swap: the peer to drop had left")

    def _retry_trusted(self, point: Service) -> None:
        """Wake the worker when a trusted point's back-off ends (:meth:`MaintenanceSchedule.retry`)."""
        info = self.pool.known_points.get(point)
        if self.stopping or info is None or not info.trusted or info.reconnection_end is None:
            return
        self.schedule.retry(info.reconnection_end)

    # -- a connection's actions ------------------------------------------------------------

    def _apply(self, conn: NativeConn, action: NativeAction) -> None:
        pool = self.pool
        now = self.now
        peer = conn.peer
        assert peer is not None
        if isinstance(action, Authenticated):
            self._authenticated(conn, action)
        elif isinstance(action, Established):
            pool.established(action.peer_id, now)
            self._finish(conn, action.peer_id)
            if pool.active_connections() > self.limits.max_connections:
                self._actions.append(Signal("too_many_connections", now))
                self._wake = True
        elif isinstance(action, Rejected):
            log.info("%s refused the connection (nack): %s", conn.point, action.reason)
            if not self.private and action.points:
                pool.register_list_of_new_points(
                    action.points, now, medium="nack", source=peer.peer_id
                )
            if peer.peer_id is not None and peer.peer_id in pool.connected_peer_ids():
                pool.connection_ended(conn.point, peer.peer_id, now, reason="nacked", rejected=True)
            self._close_handle(conn, f"nack {action.reason}")
        elif isinstance(action, Greylist):
            log.info("greylisting %s (%s): %s", conn.socket_addr, peer.peer_id, action.reason)
            if peer.peer_id is not None:
                pool.greylist_peer(peer.peer_id, now, reason=action.reason)
            pool.greylist_addr(conn.socket_addr.addr, now, reason=action.reason)
            self._close_handle(conn, action.reason)
        elif isinstance(action, Disconnect):
            self._close_handle(conn, action.reason)
        elif isinstance(action, Received):
            self._received(conn, action.message)

    def _authenticated(self, conn: NativeConn, auth: Authenticated) -> None:
        pool = self.pool
        now = self.now
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
            max_connections=self.limits.max_connections,
        )
        if reason is None:
            for action in peer.accept(now):
                self._apply(conn, action)
            return
        points: tuple[Service, ...] = ()
        if not self.private and reason is not NackReason.MYSELF:
            points = tuple(pool.list_known_points(ignore_private=True))
        log.debug("nacking %s (%s): %s", conn.point, auth.peer_id, reason.name)
        peer.reject(reason, points)
        if not conn.inbound:
            info = pool.known_points.get(conn.point)
            if info is not None and info.state is not PointState.DISCONNECTED:
                pool.connection_ended(conn.point, None, now, reason=reason.name, rejected=True)
        self._close_handle(conn, f"rejected: {reason.name}")

    def _received(self, conn: NativeConn, message: NativeMessage) -> None:
        pool = self.pool
        now = self.now
        peer = conn.peer
        assert peer is not None and peer.peer_id is not None
        if isinstance(message, Envelope):
            self._actions.append(Deliver(peer.peer_id, message.payload))
        elif isinstance(message, Bootstrap):
            if not self.private and now - conn.last_bootstrap >= BOOTSTRAP_INTERVAL:
                conn.last_bootstrap = now  # more often: ignored (an advertise is 50 points)
                peer.send(Advertise(tuple(pool.list_known_points(ignore_private=True))))
        elif isinstance(message, Advertise):
            if not self.private:
                pool.register_list_of_new_points(
                    message.points, now, medium="advertise", source=peer.peer_id
                )
        elif isinstance(message, SwapRequest):
            self._swap_request(conn, message)
        elif isinstance(message, SwapAck):
            self._swap_ack(conn, message)

    # -- the layer above ---------------------------------------------------------------------

    def conn_of(self, peer_id: PeerId) -> NativeConn | None:
        """The connection running with ``peer_id``, if any."""
        info = self.pool.connected_peer_ids().get(peer_id)
        return info.conn if info is not None and isinstance(info.conn, NativeConn) else None

    def send(self, peer_id: PeerId, message: NativeMessage, now: float) -> bool:
        """Send ``message`` to a running peer; False if it is not connected."""
        self.now = now
        conn = self.conn_of(peer_id)
        if conn is None or conn.peer is None or conn.peer.state != "running":
            return False
        conn.peer.send(message)
        self._flush(conn)
        return True

    def disconnect(self, peer_id: PeerId, reason: str, now: float) -> bool:
        """Close the connection to ``peer_id``; False if there is none."""
        self.now = now
        done = self._disconnect(peer_id, reason)
        self._settle(now)
        return done

    def _disconnect(self, peer_id: PeerId, reason: str) -> bool:
        conn = self.conn_of(peer_id)
        if conn is None:
            return False
        self._close_handle(conn, reason)
        return True

    def maintain(self) -> None:
        """Wake the maintenance worker (Octez ``P2p_maintenance.maintain``); it runs at
        the next input."""
        self._wake = True

    # -- swaps (Octez p2p_protocol.ml; the policy is native.maintenance.decide_swap_*) -----

    def propose_swap(self, now: float) -> bool:
        """Send one ``swaprequest`` (Octez ``send_swap_request``): to a random running,
        non-private peer R, naming another random connected peer P that listens.
        Returns False when :func:`~peerkeeper.native.maintenance.decide_swap_proposal`
        says no (private mode, a proposal within ``swap_linger``, fewer than two peers)."""
        self.now = now
        proposal = decide_swap_proposal(
            self.pool, self.limits, now, last_proposal=self.last_swap_proposal, rng=self.rng
        )
        if proposal is None:
            return False
        conn = proposal.recipient.conn
        if not isinstance(conn, NativeConn) or conn.peer is None:
            return False
        conn.swap_proposed = proposal.proposed.peer_id
        self.last_swap_proposal = now
        conn.peer.send(SwapRequest(proposal.point, proposal.proposed.peer_id.raw))
        self._flush(conn)
        return True

    def _swap_request(self, conn: NativeConn, msg: SwapRequest) -> None:
        now = self.now
        peer = conn.peer
        assert peer is not None and peer.peer_id is not None
        given = decide_swap_request(
            self.pool,
            self.limits,
            now,
            source=peer.peer_id,
            point=msg.point,
            peer_id=PeerId(msg.peer_id),
            last_swap=self.last_swap,
            rng=self.rng,
        )
        if given is None:
            return
        self.last_swap = now
        peer.send(SwapAck(listening_point(given), given.peer_id.raw))
        self._flush(conn)
        self._swap_connect(msg.point, given.peer_id)

    def _swap_ack(self, conn: NativeConn, msg: SwapAck) -> None:
        now = self.now
        proposed = conn.swap_proposed
        conn.swap_proposed = None
        if not decide_swap_ack(
            self.pool, now, point=msg.point, peer_id=PeerId(msg.peer_id), proposed=proposed
        ):
            return
        assert proposed is not None
        self.last_swap = now
        self._swap_connect(msg.point, proposed)

    def _swap_connect(self, point: Service, drop: PeerId) -> None:
        """Dial ``point``; once it runs, drop ``drop`` (or the new one, if ``drop`` left)."""
        dial_id = self._connect(point, self.now)
        if dial_id is not None:
            self._swap_dials[dial_id] = drop

    # -- the maintenance worker ------------------------------------------------------------

    def _on_pool_event(self, event: PoolEvent) -> None:
        if event.kind in ("new_point", "new_peer"):
            self._new_contact = True

    def _settle(self, now: float) -> None:
        """After every input: dials cancelled during a pool call are failed in the pool,
        then the worker runs as far as it can."""
        while self._cancelled:
            conn = self._cancelled.pop(0)
            self.pool.dial_failed(conn.point, now, "cancelled")
            self._finish(conn, None)
        if self.worker != "off" and not self.stopping:
            self._run_worker(now)

    def _begin_round(self, now: float) -> None:
        self._round_start = now
        self._seen = set()

    def _run_worker(self, now: float) -> None:
        cfg = self.limits
        b = bounds(cfg.min_connections, cfg.expected_connections, cfg.max_connections)
        pool = self.pool
        for _ in range(_MAX_PASSES):
            state = self.worker
            if state == "idle":
                if not self._wake:
                    return
                self.schedule.busy()
                self._wake = False  # whatever woke the worker is served by this pass
                self._begin_round(now)
                self.worker = "pass"
            elif state == "look":
                if not (self._wake or (self._new_contact and not self.private)):
                    return
                self.schedule.busy()
                self._wake = False
                self._begin_round(now)
                self.worker = "pass"
            elif state == "dialling":
                if self._waiting:
                    return
                if pool.active_connections() >= b.min_threshold:
                    self._idle(now)
                    continue
                self.worker = "pass"
            step = decide(
                pool,
                cfg,
                now,
                round_start=self._round_start,
                seen=self._seen,
                pending=len(self.dials),
            )
            for info in step.drop:
                if isinstance(info.conn, NativeConn):
                    self._close_handle(info.conn, "too many connections")
            if step.contact:
                ids = [self._connect(p, now) for p in step.contact]
                self._waiting = {i for i in ids if i is not None}
                self.worker = "dialling"
                continue
            if step.need > 0 or step.bootstrap:
                if step.bootstrap:
                    for info in pool.running_peers():
                        if not info.private:
                            self._send_bootstrap(info)
                if self._wake:  # a wake that came meanwhile ends the look at once
                    self._wake = False
                    self._begin_round(now)
                    continue
                self.schedule.look(now)
                self._new_contact = False
                self.worker = "look"
                return
            if step.swap and pool.active_connections() >= 2:
                self.propose_swap(now)
            self._idle(now)
        if self.worker in ("pass", "dialling") and not self._waiting:
            # Many passes in a row that dialled nothing: look again later, not spin.
            self.schedule.look(now)
            self._new_contact = False
            self.worker = "look"

    def _idle(self, now: float) -> None:
        self.schedule.idle(now)
        self.worker = "idle"

    def _send_bootstrap(self, info: PeerInfo) -> None:
        conn = info.conn
        if isinstance(conn, NativeConn) and conn.peer is not None and conn.peer.state == "running":
            conn.peer.send(Bootstrap())
            self._flush(conn)
