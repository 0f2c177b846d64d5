"""PeerPool: known points and peer ids, greylists, trusted points, events (seed 003).

The pool of Octez's P2P layer (seed 003 ``P2p_pool``; tezos/tezos-mirror
``src/lib_p2p/p2p_pool.ml``, ``p2p_acl.ml``, ``p2p_connect_handler.ml``), sans-IO:
every operation takes ``now`` (seconds) and, where it draws, uses the pool's
``random.Random``. The asyncio shell (:mod:`peerkeeper.shell.nativenode`) owns sockets and
files and tells the pool what happened; the pool closes connections only through the
``close(conn, reason)`` callable it is given.

Tables: ``known_points`` (:class:`~peerkeeper.native.poolstate.PointInfo` by point),
``known_peer_ids`` (:class:`~peerkeeper.native.poolstate.PeerInfo` by peer id), the connected
subsets, and ``my_id_points`` (an LRU of our own points, size 7). Access control: an
IP greylist (:class:`~peerkeeper.native.greylist.IpGreylist`, a time-decaying counting Bloom
filter of fixed size), a peer-id greylist (bounded FIFO), and static bans of addresses
and peer ids (Octez ``P2p_acl``). Trusted points and peers are never greylisted,
garbage-collected or evicted.

Events (:class:`PoolEvent`) are passed to every listener registered with
:meth:`PeerPool.subscribe`; the asyncio shell turns them into an async stream and
awaitable triggers (:mod:`peerkeeper.shell.poolevents`).
"""

from __future__ import annotations

import logging
import random
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from peerkeeper.native.greylist import (
    DEFAULT_IP_GREYLIST_CLEANUP_DELAY,
    DEFAULT_IP_GREYLIST_SIZE_KB,
    DEFAULT_PEER_GREYLIST_SIZE,
    IpGreylist,
    PeerGreylist,
)
from peerkeeper.native.identity import Identity, PeerId
from peerkeeper.native.messages import NackReason
from peerkeeper.native.poolstate import (
    PeerInfo,
    PeerState,
    PointInfo,
    PointState,
    ReconnectionConfig,
)
from peerkeeper.net.netaddr import NetAddr, Service

__all__ = [
    "DEFAULT_MAX_KNOWN",
    "MY_ID_POINTS_SIZE",
    "SCORE_HALF_LIFE",
    "PeerPool",
    "PoolConfig",
    "PoolEvent",
    "decaying_score",
]

log = logging.getLogger("peerkeeper.pool")

#: Octez ``P2p_limits.default``: max_known_points / max_known_peer_ids = (400, 300).
DEFAULT_MAX_KNOWN: tuple[int, int] = (400, 300)
#: Size of the LRU of our own points (Octez ``my_id_points``).
MY_ID_POINTS_SIZE = 7
#: Half-life of the default decaying score (seconds). Ours: Octez leaves scoring to the app.
SCORE_HALF_LIFE = 6 * 3600.0
#: Default size of ``list_known_points`` (Octez ``?size`` default).
DEFAULT_LIST_SIZE = 50

#: Event kinds logged at INFO (the rest at DEBUG).
_INFO_KINDS = frozenset(
    {
        "connection_established",
        "connection_closed",
        "connection_rejected",
        "greylisted_addr",
        "greylisted_peer",
        "gc_points",
        "gc_peer_ids",
    }
)

ScoreFunction = Callable[[PeerInfo, float], float]
CloseFunction = Callable[[object, str], None]


def decaying_score(info: PeerInfo, now: float) -> float:
    """The default score: the stored score halved every :data:`SCORE_HALF_LIFE` seconds.

    Survives disconnections (it lives in :class:`PeerInfo`, saved with the peers).
    """
    age = max(0.0, now - info.score_time)
    return float(info.score * 0.5 ** (age / SCORE_HALF_LIFE))


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """The pool's configuration (seed 003 ``P2p_pool.config``) with Octez's defaults.

    * ``identity``: our identity (its peer id recognises connections to ourselves);
      :class:`PeerPool` may be given ``my_peer_id`` instead.
    * ``trusted_points``: ``(point, expected peer id or None)`` pairs, registered as
      trusted at creation.
    * ``peers_file``: where :meth:`PeerPool.peers_document` is saved (path text; the
      shell writes it), ``None`` for none.
    * ``private_mode``: dial and accept only trusted points/peers, send no advertise
      or swap, ignore advertisements.
    * ``max_known_points`` / ``max_known_peer_ids``: ``(high, low)`` GC thresholds
      (Octez (400, 300)); ``None`` disables the GC.
    * ``peer_greylist_size`` (1023), ``ip_greylist_size_in_kilobytes`` (2048),
      ``ip_greylist_cleanup_delay`` (86400 s): Octez ``P2p_limits.default``.
    * ``score``: the pluggable score function (default :func:`decaying_score`).
    """

    identity: Identity | None = None
    trusted_points: tuple[tuple[Service, PeerId | None], ...] = ()
    peers_file: str | None = None
    private_mode: bool = False
    max_known_points: tuple[int, int] | None = DEFAULT_MAX_KNOWN
    max_known_peer_ids: tuple[int, int] | None = DEFAULT_MAX_KNOWN
    peer_greylist_size: int = DEFAULT_PEER_GREYLIST_SIZE
    ip_greylist_size_in_kilobytes: int = DEFAULT_IP_GREYLIST_SIZE_KB
    ip_greylist_cleanup_delay: float = DEFAULT_IP_GREYLIST_CLEANUP_DELAY
    reconnection: ReconnectionConfig = field(default_factory=ReconnectionConfig)
    score: ScoreFunction = decaying_score

    def __post_init__(self) -> None:
        for name in ("max_known_points", "max_known_peer_ids"):
            limits = getattr(self, name)
            if limits is not None and not 0 <= limits[1] <= limits[0]:
                raise ValueError(f"{name} must be (high, low) with 0 <= low <= high")


@dataclass(frozen=True, slots=True)
class PoolEvent:
    """One pool event (Octez ``P2p_connection.P2p_event``), passed to listeners.

    ``kind``: ``new_point``, ``new_peer``, ``connection_requested``,
    ``connection_failed`` (a dial or handshake that never ran), ``connection_accepted``,
    ``connection_established``, ``connection_rejected``, ``connection_closed`` (a running
    or accepted connection ended), ``greylisted_addr``, ``greylisted_peer``, ``gc_points``,
    ``gc_peer_ids``, ``new_points_registered``, ``point_unregistered``.
    ``reason`` says why (closed, rejected, greylisted, gc counts, medium/source).
    """

    kind: str
    time: float
    point: Service | None = None
    peer_id: PeerId | None = None
    reason: str = ""
    incoming: bool = False


class PeerPool:
    """The pool of points and peer ids (seed 003; Octez ``P2p_pool``).

    ``PeerPool(config, *, my_peer_id=None, now, rng, close=None)`` (``my_peer_id``
    defaults to ``config.identity``'s; ``now`` in seconds; ``rng`` a ``random.Random``
    the owner seeds, every draw of the pool uses it). ``close(conn,
    reason)`` is called for a connection the pool decides to end (an expected peer id
    mismatch, an untrusted peer when private, tear-down).
    """

    def __init__(
        self,
        config: PoolConfig,
        *,
        my_peer_id: PeerId | None = None,
        now: float,
        rng: random.Random,
        close: CloseFunction | None = None,
    ) -> None:
        self.config = config
        if my_peer_id is None and config.identity is not None:
            my_peer_id = config.identity.peer_id
        self.my_peer_id = my_peer_id
        self.rng = rng
        self.close = close if close is not None else (lambda conn, reason: None)
        self.known_points: dict[Service, PointInfo] = {}
        self.known_peer_ids: dict[PeerId, PeerInfo] = {}
        self.connected_points: dict[Service, PointInfo] = {}
        self._connected_peers: dict[PeerId, PeerInfo] = {}
        self.my_id_points: OrderedDict[Service, None] = OrderedDict()
        self.ip_greylist = IpGreylist(
            config.ip_greylist_size_in_kilobytes, cleanup_delay=config.ip_greylist_cleanup_delay
        )
        self.peer_greylist = PeerGreylist(config.peer_greylist_size)
        self.banned_addrs: set[NetAddr] = set()
        self.banned_peers: set[PeerId] = set()
        self._listeners: list[Callable[[PoolEvent], None]] = []
        self.ip_greylist.tick(now)
        for point, expected in config.trusted_points:
            self.register_point(point, now, trusted=True, expected_peer_id=expected)

    # -- events -------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[PoolEvent], None]) -> Callable[[], None]:
        """Call ``listener(event)`` for every event; returns a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _emit(self, event: PoolEvent) -> None:
        level = logging.INFO if event.kind in _INFO_KINDS else logging.DEBUG
        if log.isEnabledFor(level):
            log.log(
                level,
                "%s%s%s%s",
                event.kind,
                f" point={event.point}" if event.point is not None else "",
                f" peer={event.peer_id}" if event.peer_id is not None else "",
                f" ({event.reason})" if event.reason else "",
            )
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("pool event listener failed")

    # -- points -------------------------------------------------------------------------

    def register_point(
        self,
        point: Service,
        now: float,
        *,
        trusted: bool | None = None,
        expected_peer_id: PeerId | None = None,
    ) -> PointInfo:
        """The point's info, created (event ``new_point``, GC if full) when unknown.

        ``trusted`` (when given) sets the point's trusted flag; ``expected_peer_id``
        (when given) is checked at the next handshake and against a current connection
        (a mismatch disconnects and greylists the address). Octez ``register_point``.
        """
        info = self.known_points.get(point)
        if info is None:
            limits = self.config.max_known_points
            if limits is not None and len(self.known_points) >= limits[0]:
                self.gc_points(now)
            info = PointInfo(
                point, created=now, reconnection_delay=self.config.reconnection.initial_delay
            )
            self.known_points[point] = info
            self._emit(PoolEvent("new_point", now, point=point))
        if trusted is not None:
            info.trusted = trusted
        if expected_peer_id is not None:
            self.set_expected_peer_id(point, expected_peer_id, now)
        return info

    def unregister_point(self, point: Service, now: float) -> None:
        """Forget a known point; a live connection to it is not touched (Octez)."""
        if self.known_points.pop(point, None) is not None:
            self._emit(PoolEvent("point_unregistered", now, point=point))

    def register_new_point(
        self, point: Service, now: float, *, trusted: bool | None = None
    ) -> PointInfo | None:
        """``None`` if ``point`` is one of ours (``my_id_points``), else :meth:`register_point`."""
        if point in self.my_id_points:
            return None
        return self.register_point(point, now, trusted=trusted)

    def register_list_of_new_points(
        self,
        points: Iterable[Service],
        now: float,
        *,
        medium: str,
        source: PeerId | None,
        trusted: bool | None = None,
    ) -> int:
        """Register points learnt through ``medium`` (``advertise``, ``nack``, ...) from
        ``source``; banned/greylisted addresses and our own points are skipped. Returns
        how many were new. Octez ``register_list_of_new_points``.
        """
        new = 0
        for point in points:
            if self.banned_addr(point.addr) or point in self.known_points:
                continue
            if self.register_new_point(point, now, trusted=trusted) is not None:
                new += 1
        self._emit(
            PoolEvent("new_points_registered", now, peer_id=source, reason=f"{medium}: {new} new")
        )
        return new

    def add_to_id_points(self, point: Service, now: float) -> None:
        """Remember ``point`` as ours (LRU of :data:`MY_ID_POINTS_SIZE`) and forget it
        as a known point (Octez ``add_to_id_points``, after a ``Myself`` error)."""
        self.my_id_points[point] = None
        self.my_id_points.move_to_end(point)
        while len(self.my_id_points) > MY_ID_POINTS_SIZE:
            self.my_id_points.popitem(last=False)
        info = self.known_points.get(point)
        if info is not None and info.state is PointState.DISCONNECTED:
            self.unregister_point(point, now)

    def set_expected_peer_id(self, point: Service, peer_id: PeerId, now: float) -> None:
        """Expect ``peer_id`` at ``point`` from now on (Octez ``set_expected_peer_id``).

        A point connected (running or accepted) to another peer id is greylisted and
        disconnected (``unexpected peer id``).
        """
        info = self.register_point(point, now)
        info.expected_peer_id = peer_id
        current = info.current_peer_id
        if (
            current is not None
            and current != peer_id
            and info.state
            in (
                PointState.ACCEPTED,
                PointState.RUNNING,
            )
        ):
            self.greylist_addr(point.addr, now, reason="unexpected peer id")
            if info.conn is not None:
                self.close(info.conn, "unexpected peer id")

    def trust_point(self, point: Service, now: float) -> PointInfo:
        """Unban and trust ``point`` (Octez ``Points.trust``)."""
        self.banned_addrs.discard(point.addr)
        self.ip_greylist.remove(point.addr)
        return self.register_point(point, now, trusted=True)

    def untrust_point(self, point: Service, now: float) -> PointInfo:
        """Clear the trusted flag of ``point`` (Octez ``Points.untrust``)."""
        return self.register_point(point, now, trusted=False)

    # -- peers --------------------------------------------------------------------------

    def register_peer(self, peer_id: PeerId, now: float) -> PeerInfo:
        """The peer's info, created (event ``new_peer``, GC if full) when unknown."""
        info = self.known_peer_ids.get(peer_id)
        if info is None:
            limits = self.config.max_known_peer_ids
            if limits is not None and len(self.known_peer_ids) >= limits[0]:
                self.gc_peer_ids(now)
            info = PeerInfo(peer_id, created=now, score_time=now)
            self.known_peer_ids[peer_id] = info
            self._emit(PoolEvent("new_peer", now, peer_id=peer_id))
        return info

    def trust_peer(self, peer_id: PeerId, now: float) -> PeerInfo:
        """Unban and trust ``peer_id`` (Octez ``Peers.trust``)."""
        self.banned_peers.discard(peer_id)
        self.peer_greylist.remove(peer_id.raw)
        info = self.register_peer(peer_id, now)
        info.trusted = True
        return info

    def untrust_peer(self, peer_id: PeerId, now: float) -> PeerInfo:
        """Clear the trusted flag of ``peer_id``."""
        info = self.register_peer(peer_id, now)
        info.trusted = False
        return info

    def score(self, peer_id: PeerId, now: float) -> float:
        """The peer's score by the configured function (0.0 for an unknown peer)."""
        info = self.known_peer_ids.get(peer_id)
        return self.config.score(info, now) if info is not None else 0.0

    def add_score(self, peer_id: PeerId, delta: float, now: float) -> float:
        """Decay the stored score to ``now``, add ``delta``; returns the new score."""
        info = self.register_peer(peer_id, now)
        info.score = decaying_score(info, now) + delta
        info.score_time = now
        return info.score

    def connected_peer_ids(self) -> dict[PeerId, PeerInfo]:
        """Peers whose connection is accepted or running (a copy)."""
        return dict(self._connected_peers)

    def active_connections(self) -> int:
        """Connections in the running state (Octez ``active_connections``)."""
        return sum(1 for p in self._connected_peers.values() if p.state is PeerState.RUNNING)

    def running_peers(self) -> list[PeerInfo]:
        """Peers in the running state."""
        return [p for p in self._connected_peers.values() if p.state is PeerState.RUNNING]

    # -- access control -------------------------------------------------------------------

    def _trusted_addr(self, addr: NetAddr) -> bool:
        return any(i.trusted and p.addr == addr for p, i in self.known_points.items())

    def banned_addr(self, addr: NetAddr) -> bool:
        """Static ban or IP greylist membership (Octez ``P2p_acl.banned_addr``)."""
        return addr in self.banned_addrs or addr in self.ip_greylist

    def banned_peer(self, peer_id: PeerId) -> bool:
        """Static ban or peer greylist membership (Octez ``P2p_acl.banned_peer``)."""
        return peer_id in self.banned_peers or peer_id.raw in self.peer_greylist

    def greylist_addr(self, addr: NetAddr, now: float, *, reason: str = "") -> bool:
        """Add ``addr`` to the IP greylist; a trusted point's address is never added.

        Returns True if greylisted. Event ``greylisted_addr``.
        """
        if self._trusted_addr(addr):
            log.info("not greylisting trusted address %s (%s)", addr, reason)
            return False
        self.ip_greylist.add(addr, now)
        self._emit(PoolEvent("greylisted_addr", now, point=Service(addr, 0), reason=reason))
        return True

    def greylist_peer(self, peer_id: PeerId, now: float, *, reason: str = "") -> bool:
        """Greylist ``peer_id`` and the address it is (or was last) on (Octez
        ``greylist_peer``); a trusted peer is never greylisted. Returns True if done."""
        info = self.known_peer_ids.get(peer_id)
        at = info.current_point if info is not None else None
        at_trusted = at is not None and at in self.known_points and self.known_points[at].trusted
        if info is not None and (info.trusted or at_trusted):
            log.info("not greylisting trusted peer %s (%s)", peer_id, reason)
            return False
        self.peer_greylist.add(peer_id.raw)
        self._emit(PoolEvent("greylisted_peer", now, peer_id=peer_id, reason=reason))
        if info is not None:
            point = info.current_point
            if point is None and info.last_seen is not None:
                point = info.last_seen[0]
            if point is not None:
                self.greylist_addr(point.addr, now, reason=reason)
        return True

    def clear_greylist(self) -> None:
        """Empty both greylists (Octez ``clear_greylist``)."""
        self.ip_greylist.clear()
        self.peer_greylist.clear()

    def gc_greylist(self, now: float) -> int:
        """Run the IP greylist's due countdowns (every cleanup_delay / 16); returns how many."""
        return self.ip_greylist.tick(now)

    def next_wakeup(self) -> float:
        """When (seconds) :meth:`gc_greylist` next has a countdown to run: the pool's one
        timer (Octez runs the countdown in ``P2p_acl.create``'s cleanup loop)."""
        return self.ip_greylist.next_countdown()

    def acl_clear(self) -> None:
        """Clear the greylists and the static bans (Octez ``acl_clear``)."""
        self.clear_greylist()
        self.banned_addrs.clear()
        self.banned_peers.clear()

    # -- GC -----------------------------------------------------------------------------

    def gc_points(self, now: float) -> int:
        """Drop disconnected, non-trusted points, oldest ``last_miss`` first (never missed
        counts by creation time), down to ``low``; returns how many (Octez ``gc_points``)."""
        limits = self.config.max_known_points
        if limits is None or len(self.known_points) < limits[0]:
            return 0
        excess = len(self.known_points) - limits[1]
        victims = sorted(
            (
                i
                for i in self.known_points.values()
                if i.state is PointState.DISCONNECTED and not i.trusted
            ),
            key=lambda i: i.last_miss if i.last_miss is not None else i.created,
        )[:excess]
        for info in victims:
            del self.known_points[info.point]
        if victims:
            self._emit(PoolEvent("gc_points", now, reason=f"{len(victims)} removed"))
        return len(victims)

    def gc_peer_ids(self, now: float) -> int:
        """Drop disconnected, non-trusted peers, lowest score first and, on equal score,
        the most recently created first (Octez ``gc_peer_ids``: "older (and probably
        legit) peer_id infos are kept"), down to ``low``; returns how many."""
        limits = self.config.max_known_peer_ids
        if limits is None or len(self.known_peer_ids) < limits[0]:
            return 0
        excess = len(self.known_peer_ids) - limits[1]
        victims = sorted(
            (
                i
                for i in self.known_peer_ids.values()
                if i.state is PeerState.DISCONNECTED and not i.trusted
            ),
            key=lambda i: (self.config.score(i, now), -i.created),
        )[:excess]
        for info in victims:
            del self.known_peer_ids[info.peer_id]
        if victims:
            self._emit(PoolEvent("gc_peer_ids", now, reason=f"{len(victims)} removed"))
        return len(victims)

    # -- advertising --------------------------------------------------------------------

    def list_known_points(
        self, *, ignore_private: bool, size: int = DEFAULT_LIST_SIZE
    ) -> list[Service]:
        """Up to ``size`` points, not banned (and public when ``ignore_private``): 3/5 the
        best, 2/5 random others (Octez ``list_known_points``).

        "Best": connected points first, longest-established first, then disconnected
        ones, most recently seen first. Raises ValueError if ``size < 0``. Trusted points
        are not advertised (Octez: "peers shouldn't advertise trusted points").
        """
        if size < 0:
            raise ValueError("size must be >= 0")
        pool = [
            i
            for i in self.known_points.values()
            if not i.trusted and i.point.port != 0 and (i.known_public or not ignore_private)
        ]
        self.rng.shuffle(pool)  # ties broken at random, as Octez's coin flip

        def rank(i: PointInfo) -> tuple[int, float]:
            if i.state is PointState.RUNNING:
                return (0, i.last_established_connection or 0.0)
            seen = i.last_seen
            return (1, -seen if seen is not None else float("inf"))

        pool.sort(key=rank)
        other = size * 2 // 5
        best = size - other
        # The greylist is asked only about points about to be listed (a Blake2b each).
        chosen: list[PointInfo] = []
        k = 0
        while len(chosen) < best and k < len(pool):
            if not self.banned_addr(pool[k].point.addr):
                chosen.append(pool[k])
            k += 1
        rest = pool[k:]
        if rest and other:
            picks = {self.rng.randrange(len(rest)) for _ in range(other)}
            chosen += [rest[j] for j in sorted(picks) if not self.banned_addr(rest[j].point.addr)]
        return [i.point for i in chosen]

    # -- connections (called by the shell) -------------------------------------------------

    def may_dial(self, point: Service, now: float) -> str | None:
        """Why ``point`` may not be dialled now, or ``None`` (Octez ``connect`` checks:
        banned, private mode and untrusted, not disconnected, in back-off, ours)."""
        if self.banned_addr(point.addr):
            return "banned"
        if point in self.my_id_points:
            return "myself"
        info = self.known_points.get(point)
        if self.config.private_mode and (info is None or not info.trusted):
            return "private mode"
        if info is not None and info.state is not PointState.DISCONNECTED:
            return "already connected"
        return None

    def dial_started(self, point: Service, now: float, conn: object = None) -> PointInfo:
        """A dial to ``point`` begins: it becomes ``requested``."""
        info = self.register_point(point, now)
        info.set_requested(now, conn)
        self.connected_points[point] = info
        self._emit(PoolEvent("connection_requested", now, point=point))
        return info

    def dial_failed(self, point: Service, now: float, reason: str) -> None:
        """A dial (or its handshake before ``accepted``) failed: back-off, event."""
        info = self.known_points.get(point)
        if info is not None and info.state is not PointState.DISCONNECTED:
            info.set_disconnected(now, self.config.reconnection)
        self.connected_points.pop(point, None)
        self._emit(PoolEvent("connection_failed", now, point=point, reason=reason))

    def may_accept_socket(self, addr: NetAddr) -> bool:
        """Whether an incoming socket from ``addr`` is kept at all (Octez ``accept``:
        a banned or greylisted address is closed silently)."""
        return not self.banned_addr(addr)

    def authenticated(
        self,
        conn: object,
        point: Service,
        peer_id: PeerId,
        now: float,
        *,
        incoming: bool,
        listen_port: int,
        private: bool,
        max_connections: int | None = None,
    ) -> NackReason | None:
        """The remote proved ``peer_id`` on ``point``: decide ack (``None``) or nack.

        Octez ``raw_authenticate`` after the crypto: a banned or greylisted peer, our
        own id (the point joins ``my_id_points``), an expected-peer-id mismatch (the
        address is greylisted), no free slot (``max_connections + U{0,1} > active``
        else too many), private mode with neither point nor peer trusted, or the point
        or peer already connected (or dialled by us while this is incoming). On ack the
        point and the peer become ``accepted``. ``point`` is the remote's listening point
        for an incoming connection that gave one, else the socket's address.
        """
        if peer_id == self.my_peer_id:
            if not incoming:  # the point we dialled is ours: forget it as a peer's point
                info = self.connected_points.pop(point, None)
                if info is not None and info.state is not PointState.DISCONNECTED:
                    info.set_disconnected(now, self.config.reconnection, rejected=True)
                self.add_to_id_points(point, now)
            return NackReason.MYSELF
        point_info = self.known_points.get(point)
        trusted_point = point_info is not None and point_info.trusted
        if self.banned_peer(peer_id) and not trusted_point:
            return NackReason.GREYLISTED  # a trusted point is never locked out
        live = self.connected_points.get(point)
        if (
            live is not None
            and live is not point_info
            and live.state is not PointState.DISCONNECTED
        ):
            return NackReason.ALREADY_CONNECTED  # another connection holds this point
        if point_info is not None and point_info.expected_peer_id not in (None, peer_id):
            self.greylist_addr(point.addr, now, reason="unexpected peer id")
            return NackReason.UNEXPECTED_PEER_ID
        peer_info = self.register_peer(peer_id, now)
        peer_info.private = private
        peer_info.listen_port = listen_port
        if (
            max_connections is not None
            and not peer_info.trusted
            and not (point_info is not None and point_info.trusted)
            and max_connections + self.rng.randrange(2) <= self.active_connections()
        ):
            return NackReason.TOO_MANY_CONNECTIONS
        trusted = peer_info.trusted or (point_info is not None and point_info.trusted)
        if self.config.private_mode and not trusted:
            return NackReason.PRIVATE_MODE
        if peer_info.state is not PeerState.DISCONNECTED:
            return NackReason.ALREADY_CONNECTED
        if point_info is not None and (
            point_info.state in (PointState.ACCEPTED, PointState.RUNNING)
            or (incoming and point_info.state is PointState.REQUESTED)
        ):
            return NackReason.ALREADY_CONNECTED
        if point_info is None:
            if incoming and not listen_port:
                # A node that does not listen: its socket address is no point to keep.
                point_info = PointInfo(point, created=now)
            else:
                point_info = self.register_point(point, now)
        point_info.known_public = not private
        point_info.set_accepted(peer_id, now, incoming=incoming)
        point_info.conn = conn
        peer_info.set_accepted(point, now, conn)
        self.connected_points[point] = point_info
        self._connected_peers[peer_id] = peer_info
        self._emit(
            PoolEvent("connection_accepted", now, point=point, peer_id=peer_id, incoming=incoming)
        )
        return None

    def established(self, peer_id: PeerId, now: float) -> None:
        """Both sides acked: point and peer become ``running`` (event)."""
        peer_info = self._connected_peers[peer_id]
        point = peer_info.current_point
        assert point is not None
        peer_info.set_running(point, now)
        point_info = self.connected_points[point]
        point_info.set_running(peer_id, now)
        self._emit(
            PoolEvent(
                "connection_established",
                now,
                point=point,
                peer_id=peer_id,
                incoming=point_info.incoming,
            )
        )

    def connection_ended(
        self,
        point: Service,
        peer_id: PeerId | None,
        now: float,
        *,
        reason: str,
        rejected: bool = False,
    ) -> None:
        """A connection (accepted or running) ended, or a handshake was rejected
        (``rejected``: either side nacked). Back-off per Octez; event
        ``connection_closed`` (or ``connection_rejected``)."""
        point_info = self.connected_points.pop(point, None)
        if point_info is not None and point_info.state is not PointState.DISCONNECTED:
            point_info.set_disconnected(now, self.config.reconnection, rejected=rejected)
        if peer_id is not None:
            peer_info = self._connected_peers.pop(peer_id, None)
            if peer_info is not None and peer_info.state is not PeerState.DISCONNECTED:
                peer_info.set_disconnected(now, rejected=rejected)
        kind = "connection_rejected" if rejected else "connection_closed"
        self._emit(PoolEvent(kind, now, point=point, peer_id=peer_id, reason=reason))

    def connections(self) -> list[object]:
        """The shell handles of every accepted or running connection and pending dial."""
        seen: list[object] = []
        for info in self.connected_points.values():
            if info.conn is not None and info.conn not in seen:
                seen.append(info.conn)
        for peer in self._connected_peers.values():
            if peer.conn is not None and peer.conn not in seen:
                seen.append(peer.conn)
        return seen

    def tear_down_connections(self, reason: str) -> int:
        """Close every connection through ``close`` (Octez ``tear_down_connections``);
        returns how many were asked to close. The shell awaits their end."""
        conns = self.connections()
        for conn in conns:
            self.close(conn, reason)
        return len(conns)

    # -- persistence (Octez peers file) --------------------------------------------------

    def peers_document(self) -> list[dict[str, Any]]:
        """The known peers in Octez's peers-file JSON shape (``P2p_peer_state.Info``
        encoding): ``peer_id``, ``created``, ``trusted``, ``peer_metadata`` (ours:
        score, score_time, private, listen_port), ``events``, and the optional
        ``last_*`` ``[[addr, port], time]`` pairs. Times are seconds since the epoch.
        """
        out: list[dict[str, Any]] = []
        for info in self.known_peer_ids.values():
            doc: dict[str, Any] = {
                "peer_id": str(info.peer_id),
                "created": info.created,
                "trusted": info.trusted,
                "peer_metadata": {
                    "score": info.score,
                    "score_time": info.score_time,
                    "private": info.private,
                    "listen_port": info.listen_port,
                },
                "events": [[t, what] for t, what in info.events],
            }
            for name in (
                "last_failed_connection",
                "last_rejected_connection",
                "last_established_connection",
                "last_disconnection",
            ):
                pair = getattr(info, name)
                if pair is not None:
                    doc[name] = [[str(pair[0].addr), pair[0].port], pair[1]]
            out.append(doc)
        return out

    def points_document(self) -> list[dict[str, Any]]:
        """The known points as JSON records (for the SQLite store): ``point`` ``[addr,
        port]``, ``created``, ``trusted``, ``known_public``, ``expected_peer_id``, the
        four ``last_*`` times, ``last_seen``, and the back-off (``reconnection_delay``,
        ``reconnection_end``). Our own points are not saved."""
        out: list[dict[str, Any]] = []
        for info in self.known_points.values():
            rec: dict[str, Any] = {
                "point": [str(info.point.addr), info.point.port],
                "created": info.created,
                "trusted": info.trusted,
                "known_public": info.known_public,
                "reconnection_delay": info.reconnection_delay,
                "reconnection_end": info.reconnection_end,
                "last_seen": info.last_seen,
            }
            if info.expected_peer_id is not None:
                rec["expected_peer_id"] = str(info.expected_peer_id)
            for name in _LAST_FIELDS:
                rec[name] = getattr(info, name)
            out.append(rec)
        return out

    def load_points_document(self, doc: object, now: float) -> int:
        """Restore points saved by :meth:`points_document` (connections are not: every
        point comes back disconnected). Returns how many; raises ValueError naming the
        first malformed record (nothing is loaded then)."""
        if not isinstance(doc, list):
            raise ValueError("points: expected a list")
        loaded: list[PointInfo] = []
        for n, rec in enumerate(doc):
            try:
                if not isinstance(rec, dict):
                    raise ValueError("not an object")
                info = PointInfo(_point_from_json(rec["point"]), created=float(rec["created"]))
                info.trusted = bool(rec.get("trusted", False))
                info.known_public = bool(rec.get("known_public", True))
                info.reconnection_delay = float(rec.get("reconnection_delay", 1.0))
                end = rec.get("reconnection_end")
                info.reconnection_end = None if end is None else float(end)
                expected = rec.get("expected_peer_id")
                info.expected_peer_id = None if expected is None else PeerId.parse(expected)
                for name in _LAST_FIELDS:
                    t = rec.get(name)
                    setattr(info, name, None if t is None else float(t))
                loaded.append(info)
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"points: record {n}: {e}") from None
        for info in loaded:
            old = self.known_points.get(info.point)
            if old is not None and old.trusted:
                info.trusted = True  # configured trusted points stay trusted
                info.expected_peer_id = info.expected_peer_id or old.expected_peer_id
            if old is None or old.state is PointState.DISCONNECTED:
                self.known_points[info.point] = info
        return len(loaded)

    def load_peers_document(self, doc: object, now: float) -> int:
        """Restore peers from :meth:`peers_document`'s shape; registers each peer's
        last-seen point (Octez ``create``). Returns the number of peers loaded.

        Raises ValueError naming the first malformed record (nothing is loaded then).
        """
        if not isinstance(doc, list):
            raise ValueError("peers file: expected a JSON array")
        loaded: list[tuple[PeerInfo, Service | None]] = []
        for n, rec in enumerate(doc):
            try:
                loaded.append(_peer_from_record(rec))
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"peers file: record {n}: {e}") from None
        for info, point in loaded:
            self.known_peer_ids[info.peer_id] = info
            if point is not None and point.port:
                self.register_point(point, now)
        return len(loaded)


_LAST_FIELDS = (
    "last_failed_connection",
    "last_rejected_connection",
    "last_established_connection",
    "last_disconnection",
)


def _point_from_json(value: object) -> Service:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError("point must be [addr, port]")
    addr, port = value
    if not isinstance(addr, str) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError("bad point")
    return Service(NetAddr.parse(addr), port)


def _peer_from_record(rec: object) -> tuple[PeerInfo, Service | None]:
    if not isinstance(rec, dict):
        raise ValueError("not an object")
    info = PeerInfo(PeerId.parse(str(rec["peer_id"])), created=float(rec["created"]))
    info.trusted = bool(rec.get("trusted", False))
    meta = rec.get("peer_metadata") or {}
    if not isinstance(meta, dict):
        raise ValueError("peer_metadata must be an object")
    info.score = float(meta.get("score", 0.0))
    info.score_time = float(meta.get("score_time", info.created))
    info.private = bool(meta.get("private", False))
    info.listen_port = int(meta.get("listen_port", 0))
    for t, what in rec.get("events", [])[-100:]:
        info.events.append((float(t), str(what)))
    for name in (
        "last_failed_connection",
        "last_rejected_connection",
        "last_established_connection",
        "last_disconnection",
    ):
        pair = rec.get(name)
        if pair is not None:
            if not isinstance(pair, list) or len(pair) != 2:
                raise ValueError(f"{name} must be [point, time]")
            setattr(info, name, (_point_from_json(pair[0]), float(pair[1])))
    seen = info.last_seen
    return info, seen[0] if seen is not None else None
