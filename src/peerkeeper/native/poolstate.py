"""Point and peer-id state machines of the peer pool (Octez ``P2p_point_state`` /
``P2p_peer_state``). Sans-IO: every change takes ``now`` (seconds since the epoch).

A *point* is an ``(address, port)`` :class:`~peerkeeper.net.netaddr.Service`; a *peer id*
is the hash of a node's public key (:class:`~peerkeeper.native.identity.PeerId`). One address
may host several peers, and one peer may move between points, so the pool keeps the
two in separate tables with one :class:`PointInfo` / :class:`PeerInfo` each.

Point states and their legal transitions (tezos/tezos-mirror
``src/lib_p2p/p2p_point_state.ml``, the asserts of ``set_*``)::

    requested    <- disconnected | requested
    accepted     <- requested | disconnected
    running      <- disconnected | requested | accepted (same peer)
    disconnected <- any state but disconnected

Peer states (``src/lib_p2p/p2p_peer_state.ml``; a peer id cannot be dialled, so it
has no ``requested``)::

    accepted     <- disconnected
    running      <- accepted (same point) | disconnected
    disconnected <- accepted | running

Any other change raises :class:`IllegalTransition`.

Per-point reconnection back-off (``p2p_point_state.ml`` ``set_reconnection_delay`` /
``set_disconnected``, defaults ``point_reconnection_config.ml``): a failed dial or a
rejected handshake (state ``requested`` or ``accepted``) sets ``end = now + delay``
and then ``delay = min(delay * 1.2, 2 days)``; the end of a ``running`` connection
sets ``end = now + 60 s`` and resets ``delay`` to 1 s.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from peerkeeper.net.netaddr import Service

if TYPE_CHECKING:
    from peerkeeper.native.identity import PeerId

__all__ = [
    "EVENT_RING_SIZE",
    "IllegalTransition",
    "PeerInfo",
    "PeerState",
    "PointInfo",
    "PointState",
    "ReconnectionConfig",
]

#: Pool events remembered per point and per peer (Octez keeps a ring of 100).
EVENT_RING_SIZE = 100


class IllegalTransition(ValueError):
    """A state change the Octez state machine forbids (a bug in the caller)."""


class PointState(enum.Enum):
    """Octez ``P2p_point_state.t``."""

    REQUESTED = "requested"
    ACCEPTED = "accepted"
    RUNNING = "running"
    DISCONNECTED = "disconnected"


class PeerState(enum.Enum):
    """Octez ``P2p_peer_state.t``."""

    ACCEPTED = "accepted"
    RUNNING = "running"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True, slots=True)
class ReconnectionConfig:
    """Octez ``Point_reconnection_config.t`` (seconds; ``factor`` is a ratio).

    Defaults from ``src/lib_p2p/point_reconnection_config.ml``: factor 1.2, initial
    delay 1 s, 60 s after a running connection ends, delays capped at 2 days.
    """

    factor: float = 1.2
    initial_delay: float = 1.0
    disconnection_delay: float = 60.0
    increase_cap: float = 172_800.0


def _ring() -> deque[tuple[float, str]]:
    return deque(maxlen=EVENT_RING_SIZE)


@dataclass(slots=True, eq=False)
class PointInfo:
    """What the pool knows about one point (Octez ``P2p_point_state.Info.t``).

    Times are seconds since the epoch or ``None``. ``conn`` is the shell's handle of
    the live connection (opaque here). ``known_public`` is False for a point whose
    node asked to stay private (it is then never advertised).
    """

    point: Service
    created: float
    trusted: bool = False
    known_public: bool = True
    state: PointState = PointState.DISCONNECTED
    current_peer_id: PeerId | None = None
    expected_peer_id: PeerId | None = None
    last_failed_connection: float | None = None
    last_rejected_connection: float | None = None
    last_established_connection: float | None = None
    last_disconnection: float | None = None
    reconnection_delay: float = 1.0
    reconnection_end: float | None = None
    incoming: bool = False
    conn: object = None
    events: deque[tuple[float, str]] = field(default_factory=_ring)

    @property
    def last_seen(self) -> float | None:
        """Most recent of established, rejected and disconnected (Octez ``last_seen``)."""
        times = [
            t
            for t in (
                self.last_established_connection,
                self.last_rejected_connection,
                self.last_disconnection,
            )
            if t is not None
        ]
        return max(times) if times else None

    @property
    def last_miss(self) -> float | None:
        """Most recent of failed, rejected and disconnected (Octez ``last_miss``)."""
        times = [
            t
            for t in (
                self.last_failed_connection,
                self.last_rejected_connection,
                self.last_disconnection,
            )
            if t is not None
        ]
        return max(times) if times else None

    def can_reconnect(self, now: float) -> bool:
        """False while the back-off runs (Octez ``cannot_reconnect_yet``: ``now <= end``)."""
        return self.reconnection_end is None or now > self.reconnection_end

    def _log(self, now: float, what: str) -> None:
        self.events.append((now, what))

    def _bad(self, to: PointState) -> IllegalTransition:
        return IllegalTransition(f"point {self.point}: {self.state.value} -> {to.value}")

    def set_requested(self, now: float, conn: object = None) -> None:
        """We started dialling (Octez ``set_requested``)."""
        if self.state not in (PointState.DISCONNECTED, PointState.REQUESTED):
            raise self._bad(PointState.REQUESTED)
        self.state = PointState.REQUESTED
        self.incoming = False
        self.conn = conn
        self._log(now, "outgoing_request")

    def set_accepted(self, peer_id: PeerId, now: float, *, incoming: bool) -> None:
        """Authenticated, waiting for acks (Octez ``set_accepted``)."""
        if self.state not in (PointState.REQUESTED, PointState.DISCONNECTED):
            raise self._bad(PointState.ACCEPTED)
        self.state = PointState.ACCEPTED
        self.current_peer_id = peer_id
        self.incoming = incoming
        self._log(now, "accepting_request")

    def set_running(self, peer_id: PeerId, now: float) -> None:
        """Both sides acked (Octez ``set_running``)."""
        if self.state is PointState.RUNNING or (
            self.state is PointState.ACCEPTED and self.current_peer_id != peer_id
        ):
            raise self._bad(PointState.RUNNING)
        self.state = PointState.RUNNING
        self.current_peer_id = peer_id
        self.last_established_connection = now
        self._log(now, "connection_established")

    def set_disconnected(
        self, now: float, config: ReconnectionConfig, *, rejected: bool = False
    ) -> None:
        """The connection (attempt) ended; applies Octez's reconnection back-off.

        ``rejected``: the handshake ended in a nack (``last_rejected_connection``);
        otherwise a failure before ``running`` is a failed connection.
        """
        if self.state is PointState.DISCONNECTED:
            raise self._bad(PointState.DISCONNECTED)
        if self.state is PointState.RUNNING:
            self.reconnection_end = now + config.disconnection_delay
            self.reconnection_delay = config.initial_delay
            self.last_disconnection = now
            self._log(now, "disconnection")
        else:
            self.reconnection_end = now + self.reconnection_delay
            self.reconnection_delay = min(
                self.reconnection_delay * config.factor, config.increase_cap
            )
            if rejected:
                self.last_rejected_connection = now
                self._log(now, "rejecting_request")
            else:
                self.last_failed_connection = now
                self._log(now, "request_failed")
        self.state = PointState.DISCONNECTED
        self.current_peer_id = None
        self.conn = None


@dataclass(slots=True, eq=False)
class PeerInfo:
    """What the pool knows about one peer id (Octez ``P2p_peer_state.Info.t``).

    ``score`` and ``score_time`` hold the decaying score (see
    :meth:`peerkeeper.native.pool.PeerPool.score`); they survive disconnections and restarts.
    ``private`` is the peer's own request not to be advertised. ``last_*`` are
    ``(point, time)`` pairs as in Octez's peers file.
    """

    peer_id: PeerId
    created: float
    trusted: bool = False
    state: PeerState = PeerState.DISCONNECTED
    current_point: Service | None = None
    private: bool = False
    listen_port: int = 0
    score: float = 0.0
    score_time: float = 0.0
    last_failed_connection: tuple[Service, float] | None = None
    last_rejected_connection: tuple[Service, float] | None = None
    last_established_connection: tuple[Service, float] | None = None
    last_disconnection: tuple[Service, float] | None = None
    conn: object = None
    events: deque[tuple[float, str]] = field(default_factory=_ring)

    @property
    def last_seen(self) -> tuple[Service, float] | None:
        """Most recent of established, rejected and disconnected, with its point."""
        pairs = [
            p
            for p in (
                self.last_established_connection,
                self.last_rejected_connection,
                self.last_disconnection,
            )
            if p is not None
        ]
        return max(pairs, key=lambda p: p[1]) if pairs else None

    def _bad(self, to: PeerState) -> IllegalTransition:
        return IllegalTransition(f"peer {self.peer_id}: {self.state.value} -> {to.value}")

    def set_accepted(self, point: Service, now: float, conn: object = None) -> None:
        """Authenticated on ``point`` (Octez ``set_accepted``)."""
        if self.state is not PeerState.DISCONNECTED:
            raise self._bad(PeerState.ACCEPTED)
        self.state = PeerState.ACCEPTED
        self.current_point = point
        self.conn = conn
        self.events.append((now, "accepting_request"))

    def set_running(self, point: Service, now: float, conn: object = None) -> None:
        """Both sides acked (Octez ``set_running``)."""
        if self.state is PeerState.RUNNING or (
            self.state is PeerState.ACCEPTED and self.current_point != point
        ):
            raise self._bad(PeerState.RUNNING)
        self.state = PeerState.RUNNING
        self.current_point = point
        if conn is not None:
            self.conn = conn
        self.last_established_connection = (point, now)
        self.events.append((now, "connection_established"))

    def set_disconnected(self, now: float, *, rejected: bool = False) -> None:
        """The connection ended (Octez ``set_disconnected``)."""
        if self.state is PeerState.DISCONNECTED or self.current_point is None:
            raise self._bad(PeerState.DISCONNECTED)
        point = self.current_point
        if self.state is PeerState.RUNNING:
            self.last_disconnection = (point, now)
            self.events.append((now, "disconnection"))
        elif rejected:
            self.last_rejected_connection = (point, now)
            self.events.append((now, "rejecting_request"))
        else:
            self.last_failed_connection = (point, now)
            self.events.append((now, "request_failed"))
        self.state = PeerState.DISCONNECTED
        self.current_point = None
        self.conn = None
