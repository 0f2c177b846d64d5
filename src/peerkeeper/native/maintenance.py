"""Octez's connection maintenance for the native protocol, as pure decisions.

Instead of Bitcoin Core's outbound slots, a native node keeps its number of running
connections between ``min`` and ``max`` around ``expected`` with hysteresis
(tezos/tezos-mirror ``src/lib_p2p/p2p_maintenance.ml``, defaults
``src/lib_p2p_services/p2p_limits.ml``):

* :func:`bounds`: ``step_min = (expected - min) // 3``, ``step_max = (max - expected)
  // 3``; ``min_threshold = min + step_min``, ``min_target = min + 2 step_min``,
  ``max_target = max - 2 step_max``, ``max_threshold = max - step_max`` (10/50/100 give
  23/36/68/84).
* :func:`decide`: below ``min_threshold`` contact between ``min_target - n`` and
  ``max_target - n`` points; above ``max_threshold`` drop ``n - max_target``
  connections; otherwise (not private) propose one swap and wait for the idle timer
  (``maintenance_idle_time``, 120 s) or a trigger (too few: a disconnection leaves fewer
  than ``min``; too many: a connection makes more than ``max``).
* :func:`points_to_contact` (Octez ``classify`` + bounded heap): disconnected points out
  of their back-off whose last miss is before this round, not banned, trusted only in
  private mode; never-missed points first, then the oldest miss. Trusted points that
  are disconnected and out of back-off always come first, so they are reconnected with
  back-off whatever the count.
* :func:`connections_to_drop`: random running connections, never trusted ones. Ours on
  top of Octez: the draw is among the lower-scored half, so the pool's score decides
  who survives a trim.
* The swap policy (Octez ``P2p_maintenance.send_swap_request`` and
  ``P2p_protocol.on_swap_request`` / ``on_swap_ack``, ``src/lib_p2p/p2p_protocol.ml``):
  :func:`decide_swap_proposal` (whom to ask, whom to name), :func:`decide_swap_request`
  (whom to offer back, or ignore) and :func:`decide_swap_ack` (dial the offered point
  or not). Each is pure: the pool, ``now`` and an ``rng`` in, a decision out; the shell
  sends the messages, dials and drops.
* :class:`MaintenanceSchedule`: when the worker next runs, in the node clock's seconds
  (Octez ``worker_loop``'s idle timer, ``ask_for_more_contacts``' wait, and ours: the end
  of a trusted point's back-off). The shell arms its one timer at ``next_wakeup()``.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass

from peerkeeper.native.identity import PeerId
from peerkeeper.native.pool import PeerPool
from peerkeeper.native.poolstate import PeerInfo, PointState
from peerkeeper.net.netaddr import Service

__all__ = [
    "Bounds",
    "MaintenanceConfig",
    "MaintenanceSchedule",
    "MaintenanceStep",
    "SwapProposal",
    "bounds",
    "connections_to_drop",
    "decide",
    "decide_swap_ack",
    "decide_swap_proposal",
    "decide_swap_request",
    "listening_point",
    "points_to_contact",
    "swap_candidates",
]


@dataclass(frozen=True, slots=True)
class MaintenanceConfig:
    """Octez ``P2p_limits`` for maintenance (counts; times in seconds).

    Defaults: min 10, expected 50, max 100 connections, idle 120 s, 5 s between
    looks for peers (``time_between_looking_for_peers``), swap linger 30 s,
    connection timeout 10 s, authentication timeout 5 s, 20 pending incoming
    handshakes (``max_incoming_connections``).
    """

    min_connections: int = 10
    expected_connections: int = 50
    max_connections: int = 100
    maintenance_idle_time: float = 120.0
    time_between_looking_for_peers: float = 5.0
    swap_linger: float = 30.0
    connection_timeout: float = 10.0
    authentication_timeout: float = 5.0
    max_incoming_connections: int = 20

    def __post_init__(self) -> None:
        if not 0 <= self.min_connections <= self.expected_connections <= self.max_connections:
            raise ValueError("need 0 <= min_connections <= expected_connections <= max")


@dataclass(frozen=True, slots=True)
class Bounds:
    """The four hysteresis thresholds (Octez ``bounds``)."""

    min_threshold: int
    min_target: int
    max_target: int
    max_threshold: int


def bounds(min_connections: int, expected: int, max_connections: int) -> Bounds:
    """Octez ``P2p_maintenance.bounds`` (integer division as OCaml's ``/``)."""
    step_min = (expected - min_connections) // 3
    step_max = (max_connections - expected) // 3
    return Bounds(
        min_threshold=min_connections + step_min,
        min_target=min_connections + 2 * step_min,
        max_target=max_connections - 2 * step_max,
        max_threshold=max_connections - step_max,
    )


@dataclass(frozen=True, slots=True)
class MaintenanceStep:
    """What one maintenance pass decided.

    ``contact``: points to dial now (``need`` of them should succeed); ``drop``: peers
    to disconnect; ``swap``: propose one swap; ``bootstrap``: nothing to dial although
    connections are missing, so ask the peers for more points (Octez
    ``ask_for_more_contacts``).
    """

    contact: tuple[Service, ...] = ()
    need: int = 0
    drop: tuple[PeerInfo, ...] = ()
    swap: bool = False
    bootstrap: bool = False


def points_to_contact(
    pool: PeerPool,
    limit: int,
    now: float,
    *,
    round_start: float,
    seen: set[Service],
    only_trusted: bool = False,
) -> list[Service]:
    """Up to ``limit`` points to dial (Octez ``classify`` / ``connectable``), best first.

    Skipped: points in ``seen`` (already tried this round; they are added), banned or
    greylisted, ours, not disconnected, in back-off, missed since ``round_start``, and
    every untrusted point in private mode (or when ``only_trusted``). Trusted points come first; then never-missed
    points; then the oldest ``last_miss``.
    """
    if limit <= 0:
        return []
    private = pool.config.private_mode
    ranked: list[tuple[int, float, float, Service]] = []
    for point, info in pool.known_points.items():
        if point in seen or info.state is not PointState.DISCONNECTED:
            continue
        if ((private or only_trusted) and not info.trusted) or point.port == 0:
            continue
        if pool.may_dial(point, now) is not None or not info.can_reconnect(now):
            continue
        miss = info.last_miss
        if miss is not None and miss >= round_start and not info.trusted:
            continue
        tier = 0 if info.trusted else (1 if miss is None else 2)
        ranked.append((tier, miss if miss is not None else 0.0, pool.rng.random(), point))
    ranked.sort()
    chosen = [r[3] for r in ranked[:limit]]
    seen.update(chosen)
    return chosen


def connections_to_drop(pool: PeerPool, count: int, now: float) -> list[PeerInfo]:
    """``count`` running, untrusted connections chosen at random among the
    lower-scored half (at least ``count`` candidates); Octez drops random ones."""
    if count <= 0:
        return []
    candidates = []
    for peer in pool.running_peers():
        point = pool.known_points.get(peer.current_point) if peer.current_point else None
        if peer.trusted or (point is not None and point.trusted):
            continue
        candidates.append(peer)
    candidates.sort(key=lambda p: pool.score(p.peer_id, now))
    pool_size = min(len(candidates), max(count, (len(candidates) + 1) // 2))
    return pool.rng.sample(candidates[:pool_size], min(count, pool_size))


def decide(
    pool: PeerPool,
    config: MaintenanceConfig,
    now: float,
    *,
    round_start: float,
    seen: set[Service],
    pending: int = 0,
) -> MaintenanceStep:
    """One maintenance pass over ``pool`` (Octez ``worker_loop`` / ``do_maintain``).

    ``pending`` counts dials and handshakes in flight (they count towards the targets so
    a pass does not dial twice for the same gap). Disconnected trusted points out of
    back-off are always contacted.
    """
    b = bounds(config.min_connections, config.expected_connections, config.max_connections)
    n = pool.active_connections()
    have = n + pending
    trusted_due = points_to_contact(
        pool, 1 << 30, now, round_start=round_start, seen=set(), only_trusted=True
    )
    if n >= b.min_threshold and trusted_due:
        seen.update(trusted_due)
        if n > b.max_threshold:
            drop = tuple(connections_to_drop(pool, n - b.max_target, now))
            return MaintenanceStep(contact=tuple(trusted_due), drop=drop)
        return MaintenanceStep(contact=tuple(trusted_due))  # only the trusted ones
    if n < b.min_threshold:
        want_max = max(0, b.max_target - have)
        need = max(0, b.min_target - have)
        contact = points_to_contact(pool, want_max, now, round_start=round_start, seen=seen)
        for p in trusted_due:
            if p not in contact:
                contact.append(p)
                seen.add(p)
        return MaintenanceStep(
            contact=tuple(contact),
            need=need,
            bootstrap=not contact and need > 0 and not pool.config.private_mode,
        )
    if n > b.max_threshold:
        return MaintenanceStep(drop=tuple(connections_to_drop(pool, n - b.max_target, now)))
    return MaintenanceStep(swap=not pool.config.private_mode)


class MaintenanceSchedule:
    """The maintenance worker's deadlines, in seconds of the node's clock (pure: every
    method takes ``now``; the shell arms one timer at :meth:`next_wakeup` and calls
    :meth:`due` when it fires).

    Octez's worker (tezos/tezos-mirror ``src/lib_p2p/p2p_maintenance.ml``) waits on two
    timers, each raced against triggers the shell awaits itself:

    * ``worker_loop``: after a pass that left the count within bounds (and proposed a
      swap), it idles until ``maintenance_idle_time`` has passed, ``maintain`` is
      called, or too few / too many connections are signalled: :meth:`idle`.
    * ``ask_for_more_contacts``: when no point could be contacted, it waits
      ``time_between_looking_for_peers`` or (not in private mode) a new point or peer:
      :meth:`look`.

    Ours on top of Octez (trusted points are reconnected whatever the count, see
    :func:`decide`): :meth:`retry` wakes the worker at the first instant a trusted
    point's back-off is over. Octez ``P2p_point_state.Info.cannot_reconnect_yet`` holds
    while ``now <= end`` (``src/lib_p2p/p2p_point_state.ml``), so that instant is the
    float just after ``end``.
    """

    __slots__ = ("config", "_wait_until", "_retries")

    def __init__(self, config: MaintenanceConfig) -> None:
        self.config = config
        self._wait_until = math.inf
        self._retries: list[float] = []

    def idle(self, now: float) -> float:
        """The worker idles from ``now``; returns when its idle timer ends."""
        self._wait_until = now + self.config.maintenance_idle_time
        return self._wait_until

    def look(self, now: float) -> float:
        """The worker waits for new points from ``now``; returns when that wait ends."""
        self._wait_until = now + self.config.time_between_looking_for_peers
        return self._wait_until

    def busy(self) -> None:
        """The worker runs a pass: its own timer is off until the next :meth:`idle` or
        :meth:`look` (retries stay)."""
        self._wait_until = math.inf

    def retry(self, reconnection_end: float) -> float:
        """A trusted point is in back-off until ``reconnection_end``: wake the worker at
        the first instant it may be dialled again; returns that instant."""
        at = math.nextafter(reconnection_end, math.inf)
        heapq.heappush(self._retries, at)
        return at

    def next_wakeup(self) -> float:
        """When :meth:`due` next has something to report (``math.inf``: never)."""
        return min(self._wait_until, self._retries[0] if self._retries else math.inf)

    def due(self, now: float) -> bool:
        """Whether the worker must be woken at ``now``: its wait's timer ran out or a
        trusted point's back-off ended (each reported once)."""
        woken = False
        while self._retries and self._retries[0] <= now:
            heapq.heappop(self._retries)
            woken = True
        if self._wait_until <= now:
            self._wait_until = math.inf
            woken = True
        return woken


# -- swaps (Octez p2p_maintenance.ml send_swap_request, p2p_protocol.ml on_swap_*) ------


@dataclass(frozen=True, slots=True)
class SwapProposal:
    """A ``swaprequest`` to send: to ``recipient``, naming ``proposed`` at ``point``
    (its listening point), whom we drop if the recipient's swap succeeds."""

    recipient: PeerInfo
    proposed: PeerInfo
    point: Service


def listening_point(info: PeerInfo) -> Service:
    """``info``'s connected address with its advertised listening port (what a swap
    names: Octez sends the peer's ``P2p_point.Id``). Raises ValueError if ``info`` has
    no current point."""
    if info.current_point is None:
        raise ValueError(f"{info.peer_id} has no current point")
    return Service(info.current_point.addr, info.listen_port)


def swap_candidates(pool: PeerPool, exclude: set[PeerId]) -> list[PeerInfo]:
    """Running peers a swap may name or be sent to: not in ``exclude``, not private,
    listening (a port to dial), neither the peer nor its point trusted (trusted
    connections are never traded away; Octez ``P2p_pool.Connection.random_lowid``
    picks among public running connections)."""
    out = []
    for info in pool.running_peers():
        if info.peer_id in exclude or info.private or not info.listen_port:
            continue
        point = pool.known_points.get(info.current_point) if info.current_point else None
        if info.trusted or (point is not None and point.trusted):
            continue
        out.append(info)
    return out


def decide_swap_proposal(
    pool: PeerPool,
    config: MaintenanceConfig,
    now: float,
    *,
    last_proposal: float,
    rng: random.Random,
) -> SwapProposal | None:
    """Whether and what to propose (Octez ``P2p_maintenance.send_swap_request``).

    ``now`` and ``last_proposal`` (our previous proposal) are seconds. None in private
    mode, within ``config.swap_linger`` of the last proposal (one at a time: it names a
    peer we may drop), or with fewer than two :func:`swap_candidates`; else a random
    recipient and a random other candidate to name, both drawn with ``rng``.
    """
    if pool.config.private_mode or now - last_proposal < config.swap_linger:
        return None
    candidates = swap_candidates(pool, set())
    if len(candidates) < 2:
        return None
    recipient, proposed = rng.sample(candidates, 2)
    return SwapProposal(recipient, proposed, listening_point(proposed))


def decide_swap_request(
    pool: PeerPool,
    config: MaintenanceConfig,
    now: float,
    *,
    source: PeerId,
    point: Service,
    peer_id: PeerId,
    last_swap: float,
    rng: random.Random,
) -> PeerInfo | None:
    """The peer to offer back in ``swapack`` for ``source``'s ``swaprequest(point,
    peer_id)``, or None to ignore it (Octez ``P2p_protocol.on_swap_request``).

    Ignored in private mode, within ``config.swap_linger`` seconds of our last swap
    (``last_swap``; Octez ``latest_successful_swap``), when the proposed peer is us or
    already connected, when ``point`` is not disconnected or may not be dialled now
    (banned, greylisted, in back-off), or when we have nobody to offer; else a random
    :func:`swap_candidates` other than ``source`` (Octez ``random_lowid``). The caller
    sends the ack, dials ``point`` and, once connected, drops the offered peer.
    """
    if pool.config.private_mode or now - last_swap < config.swap_linger:
        return None
    if peer_id == pool.my_peer_id or peer_id in pool.connected_peer_ids():
        return None
    info = pool.known_points.get(point)
    if info is not None and info.state is not PointState.DISCONNECTED:
        return None
    if pool.may_dial(point, now) is not None:
        return None
    offer = swap_candidates(pool, {source})
    return rng.choice(offer) if offer else None


def decide_swap_ack(
    pool: PeerPool,
    now: float,
    *,
    point: Service,
    peer_id: PeerId,
    proposed: PeerId | None,
) -> bool:
    """Whether to dial ``point`` offered by a ``swapack(point, peer_id)`` (Octez
    ``P2p_protocol.on_swap_ack``): only when we proposed (``proposed`` is the peer we
    named, to drop once connected; None when this connection had no proposal), the
    offered peer is neither us nor connected, and ``point`` may be dialled at ``now``
    (seconds)."""
    if proposed is None:
        return False
    if peer_id == pool.my_peer_id or peer_id in pool.connected_peer_ids():
        return False
    return pool.may_dial(point, now) is None
